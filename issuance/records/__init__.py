"""The counter's records: identity checks, legal representatives, substitute characters,
and the read-only queries staff lists and a web console are built on (`queries`)."""
