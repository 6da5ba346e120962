-- The operator hierarchy: certificates of the center's operator IC cards are recorded
-- (and revoked, listed in CRLs, answered by OCSP) like the JPKI ones. The CHECK on
-- certificates.hierarchy is widened by rebuilding the table (SQLite cannot alter it).
CREATE TABLE certificates_v3 (
    serial          TEXT PRIMARY KEY,
    hierarchy       TEXT NOT NULL CHECK (hierarchy IN ('sign', 'auth', 'operator')),
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
    der             {blob} NOT NULL,
    key_sha256      TEXT
);
INSERT INTO certificates_v3 (serial, hierarchy, profile, holder_id, shard, issued_at,
    not_before, not_after, status, reason, revoked_at, cause, successor, status_version,
    updated_at, der, key_sha256)
SELECT serial, hierarchy, profile, holder_id, shard, issued_at, not_before, not_after,
    status, reason, revoked_at, cause, successor, status_version, updated_at, der,
    key_sha256 FROM certificates;
DROP TABLE certificates;
ALTER TABLE certificates_v3 RENAME TO certificates;
CREATE INDEX certificates_holder ON certificates (holder_id);
CREATE INDEX certificates_shard_not_good ON certificates (hierarchy, shard) WHERE status <> 'good';
CREATE INDEX certificates_key ON certificates (key_sha256);
