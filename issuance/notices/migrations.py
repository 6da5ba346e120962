"""The notice tables, versioned on their own.

`issuance.storage.migrations` holds one fixed tuple of migrations and takes none from
other modules, so the notice path keeps its own version table, `notices_schema_version`,
and applies its migrations (append-only, one transaction each, under the same named
lock as the storage migrations) whenever a notice component opens the database.

Tables (version 1):
- `notices`: every notice that arrived, keyed by (source, id). States: accepted (stored,
  waiting to be applied), applied, unmatched (no such resident; kept and listed),
  rejected (malformed; `payload` holds the raw text, `reason` why; its id is
  `rejected:<sha256 of the raw text>` and its source `-`, so resending a corrected notice
  with the same id is not a duplicate of the broken one).
- `notice_effects`: what applying a notice did, one row per (notice, target, action);
  the primary key makes every effect happen once.
- `notice_facts`: per resident and fact (name, address, birth_date, sex, status,
  address_abroad), the effective date and notice of the value last applied, so an
  earlier-dated notice arriving late never overwrites a later one.
- `notice_senders`: HTTP senders and the SHA-256 of their bearer tokens.

Version 4 binds notices to their sender: `notices` and `notice_effects` gain a `sender`
column and are keyed by (sender, source, id), so one sender can never take over or
pre-empt another's ids; `notice_facts` records the sender of the notice that set a fact;
`notice_sender_sources` lists the sources (juki, fuhyo) each sender may send. Rows stored
before version 4 get the sender `local` (the file intake, `notices ingest`), and every
existing sender may send both sources until an operator narrows it.

Version 5 adds `notices.bucket` (the resident's bucket, `issuance.notices.claims`) and a
partial index of the waiting notices by bucket, so several processors on PostgreSQL each
apply the buckets they hold.
"""

from __future__ import annotations

from issuance.notices.claims import BUCKET_SQL
from issuance.notices.model import LOCAL_SENDER
from issuance.storage import Database
from issuance.storage.migrations import apply_migrations

NOTICE_STATES = ("accepted", "applied", "unmatched", "rejected")
_states = ", ".join(f"'{s}'" for s in NOTICE_STATES)

V1 = (
    f"""CREATE TABLE notices (
        source         TEXT NOT NULL,
        id             TEXT NOT NULL,
        kind           TEXT,
        resident_code  TEXT,
        effective_date TEXT,
        received_at    TEXT NOT NULL,
        payload        TEXT NOT NULL,
        state          TEXT NOT NULL CHECK (state IN ({_states})),
        reason         TEXT,
        applied_at     TEXT,
        PRIMARY KEY (source, id)
    )""",
    "CREATE INDEX notices_state_date ON notices (state, effective_date)",
    "CREATE INDEX notices_resident ON notices (resident_code)",
    """CREATE TABLE notice_effects (
        source    TEXT NOT NULL,
        notice_id TEXT NOT NULL,
        target    TEXT NOT NULL,
        action    TEXT NOT NULL,
        serial    TEXT,
        reason    TEXT,
        outcome   TEXT NOT NULL,
        at        TEXT NOT NULL,
        PRIMARY KEY (source, notice_id, target, action),
        FOREIGN KEY (source, notice_id) REFERENCES notices (source, id)
    )""",
    "CREATE INDEX notice_effects_serial ON notice_effects (serial)",
    """CREATE TABLE notice_facts (
        resident_code  TEXT NOT NULL,
        fact           TEXT NOT NULL,
        effective_date TEXT NOT NULL,
        source         TEXT NOT NULL,
        notice_id      TEXT NOT NULL,
        PRIMARY KEY (resident_code, fact)
    )""",
    """CREATE TABLE notice_senders (
        name       TEXT PRIMARY KEY,
        token_hash TEXT NOT NULL UNIQUE,
        created_at TEXT NOT NULL,
        disabled   INTEGER NOT NULL DEFAULT 0 CHECK (disabled IN (0, 1))
    )""",
)

# Version 2: the processor pages through due notices in (effective date, arrival, source,
# id) order with a keyset cursor; this index serves that order without a sort.
V2 = (
    "CREATE INDEX notices_due ON notices (state, effective_date, received_at, source, id)",
)

# Version 3: indexes that cost every write and serve no query. `notices_due` starts with
# (state, effective_date), so it serves every query `notices_state_date` served; no query
# looks effects up by serial (the certificate store records each revocation's cause).
V3 = (
    "DROP INDEX notices_state_date",
    "DROP INDEX notice_effects_serial",
)

# Version 4: (sender, source, id) identifies a notice. SQLite cannot change a primary key,
# so both tables are rebuilt (the same statements on both databases); the effects table
# first, as it refers to the notices.
V4 = (
    f"""CREATE TABLE notices_v4 (
        sender         TEXT NOT NULL,
        source         TEXT NOT NULL,
        id             TEXT NOT NULL,
        kind           TEXT,
        resident_code  TEXT,
        effective_date TEXT,
        received_at    TEXT NOT NULL,
        payload        TEXT NOT NULL,
        state          TEXT NOT NULL CHECK (state IN ({_states})),
        reason         TEXT,
        applied_at     TEXT,
        PRIMARY KEY (sender, source, id)
    )""",
    f"INSERT INTO notices_v4 (sender, source, id, kind, resident_code, effective_date,"
    f" received_at, payload, state, reason, applied_at) SELECT '{LOCAL_SENDER}', source, id,"
    f" kind, resident_code, effective_date, received_at, payload, state, reason, applied_at"
    f" FROM notices",
    """CREATE TABLE notice_effects_v4 (
        sender    TEXT NOT NULL,
        source    TEXT NOT NULL,
        notice_id TEXT NOT NULL,
        target    TEXT NOT NULL,
        action    TEXT NOT NULL,
        serial    TEXT,
        reason    TEXT,
        outcome   TEXT NOT NULL,
        at        TEXT NOT NULL,
        PRIMARY KEY (sender, source, notice_id, target, action),
        FOREIGN KEY (sender, source, notice_id) REFERENCES notices_v4 (sender, source, id)
    )""",
    f"INSERT INTO notice_effects_v4 (sender, source, notice_id, target, action, serial,"
    f" reason, outcome, at) SELECT '{LOCAL_SENDER}', source, notice_id, target, action,"
    f" serial, reason, outcome, at FROM notice_effects",
    "DROP TABLE notice_effects",
    "DROP TABLE notices",
    "ALTER TABLE notices_v4 RENAME TO notices",
    "ALTER TABLE notice_effects_v4 RENAME TO notice_effects",
    "CREATE INDEX notices_due ON notices (state, effective_date, received_at, sender, source,"
    " id)",
    "CREATE INDEX notices_resident ON notices (resident_code)",
    f"ALTER TABLE notice_facts ADD COLUMN sender TEXT NOT NULL DEFAULT '{LOCAL_SENDER}'",
    """CREATE TABLE notice_sender_sources (
        sender TEXT NOT NULL REFERENCES notice_senders (name),
        source TEXT NOT NULL CHECK (source IN ('juki', 'fuhyo')),
        PRIMARY KEY (sender, source)
    )""",
    "INSERT INTO notice_sender_sources (sender, source) SELECT name, 'juki'"
    " FROM notice_senders",
    "INSERT INTO notice_sender_sources (sender, source) SELECT name, 'fuhyo'"
    " FROM notice_senders",
    # a client certificate (mutual TLS) may stand for a sender: SHA-256 of its DER
    "ALTER TABLE notice_senders ADD COLUMN cert_sha256 TEXT",
    "CREATE UNIQUE INDEX notice_senders_cert ON notice_senders (cert_sha256)",
)

# Version 5: several processors share the waiting notices on PostgreSQL by resident
# bucket (`issuance.notices.claims`): each notice records its bucket, and a partial index
# holds only the waiting ones, in the order a processor applies a bucket.
V5 = (
    "ALTER TABLE notices ADD COLUMN bucket INTEGER",
    f"UPDATE notices SET bucket = {BUCKET_SQL} WHERE resident_code IS NOT NULL"
    " AND state <> 'rejected'",
    "CREATE INDEX notices_bucket_due ON notices (bucket, effective_date, received_at, sender,"
    " source, id) WHERE state = 'accepted'",
)

MIGRATIONS: tuple[tuple[int, str, tuple[str, ...]], ...] = (
    (1, "notices, effects, fact dates, senders", V1),
    (2, "index for paging through due notices", V2),
    (3, "drop two indexes no query needs", V3),
    (4, "notices keyed by (sender, source, id); the sources each sender may send", V4),
    (5, "resident buckets, so several processors share the waiting notices", V5),
)
LATEST_VERSION = MIGRATIONS[-1][0]


def migrate_notices(db: Database) -> int:
    """Bring the notice tables of `db` to the latest version; return it."""
    apply_migrations(db, "notices_schema_version", MIGRATIONS)
    return LATEST_VERSION
