-- Pre-generated OCSP responses (RFC 5019 style): signed when a certificate's status
-- changes and before they expire, served without a signature. Keyed as a request asks:
-- the SHA-1 hash of the issuer's public key and the serial (lower-case hex, as in
-- certificates). status_version is the certificate's status_version the response was
-- signed for: a response is served only while it equals the certificate's current one,
-- so a revocation makes the stale response unreachable in the same transaction that
-- revokes, whoever revokes. this_update/next_update: Unix seconds (UTC).
CREATE TABLE ocsp_responses (
    issuer_key_hash {blob} NOT NULL,
    serial          TEXT NOT NULL,
    status          TEXT NOT NULL,
    status_version  BIGINT NOT NULL,
    this_update     BIGINT NOT NULL,
    next_update     BIGINT NOT NULL,
    der             {blob} NOT NULL,
    PRIMARY KEY (issuer_key_hash, serial)
);
CREATE INDEX ocsp_responses_next_update ON ocsp_responses (next_update);
