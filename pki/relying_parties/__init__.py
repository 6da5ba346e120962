"""Relying parties: who may ask the OCSP responder, what they subscribe to, and the
revocation pushes (webhooks) they receive.

- `registry`: `RelyingPartyRegistry` (add, list, remove, subscribe), `TokenAuthorizer`
  (the OCSP server's bearer-token check, read-only);
- `webhooks`: `WebhookDispatcher` (durable outbox, HMAC-SHA256 signatures, retries),
  `verify_signature` for receivers;
- `schedule`: `parse_duration`, `run_every`, `scheduled` (`--every` loops);
- `cli`: `mynacard rp …`.
"""
