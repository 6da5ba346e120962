-- One row counting status changes: every transaction that changes a certificate's
-- status (revoke, hold, revoke_many) adds one in that same transaction. An OCSP
-- responder that serves pre-generated responses from memory reads it (on SQLite only
-- after PRAGMA data_version says another connection committed) and forgets what it
-- holds when it moved, so a revocation is seen by the very next request.
CREATE TABLE status_changes (
    id       INTEGER PRIMARY KEY CHECK (id = 1),
    version  BIGINT NOT NULL
);
INSERT INTO status_changes (id, version) VALUES (1, 0);
