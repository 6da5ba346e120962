-- Every certificate the CA has issued, with its revocation status.
-- serial: lower-case hex without leading zeros (serials have up to 159 bits).
-- Times are Unix seconds (UTC). reason: RFC 5280 CRLReason code.
-- status_version grows on every status change (the OCSP cache checks it).
CREATE TABLE certificates (
    serial          TEXT PRIMARY KEY,
    hierarchy       TEXT NOT NULL CHECK (hierarchy IN ('sign', 'auth')),
    profile         TEXT NOT NULL,
    holder_id       TEXT NOT NULL,
    shard           INTEGER NOT NULL,
    issued_at       BIGINT NOT NULL,
    not_before      BIGINT NOT NULL,
    not_after       BIGINT NOT NULL,
    status          TEXT NOT NULL DEFAULT 'good' CHECK (status IN ('good', 'revoked', 'hold')),
    reason          INTEGER,
    revoked_at      BIGINT,
    cause           TEXT,
    successor       TEXT,
    status_version  BIGINT NOT NULL DEFAULT 0,
    updated_at      BIGINT NOT NULL,
    der             {blob} NOT NULL
);
CREATE INDEX certificates_holder ON certificates (holder_id);
-- CRL shards only read the (few) certificates that are not good.
CREATE INDEX certificates_shard_not_good ON certificates (hierarchy, shard) WHERE status <> 'good';

-- The last CRL number used per shard; CRL numbers only grow.
CREATE TABLE crl_numbers (
    hierarchy   TEXT NOT NULL,
    shard       INTEGER NOT NULL,
    number      BIGINT NOT NULL,
    PRIMARY KEY (hierarchy, shard)
);
