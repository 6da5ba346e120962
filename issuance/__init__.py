"""The issuance center: registry, applications, workflow, personalisation, notices, CLI."""
