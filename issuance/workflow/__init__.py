"""The issuance workflow: a persisted state machine from application to active card.

`Issuer` personalises and issues a card for an application (crash-safe, resumable),
`Activator` hands it over and lets the holder set the PINs, `issue_batch` runs K readers
at once; `init_center`/`Center` set up and open the HSM token, CA and issuer keys.
"""
