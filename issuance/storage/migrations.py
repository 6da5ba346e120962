"""Versioned schema migrations for both databases.

Each migration is a version number and a list of statements per dialect. `migrate`
applies, in one transaction per migration, every migration above the version recorded
in `schema_version`. Migrations are append-only: never edit one that has shipped.

Tables (version 1):
- `residents`: the registry view (本人確認情報), one row per resident code.
- `fuhyo_entries`: koseki-fuhyo (附票) entries of residents living abroad.
- `applications`: card applications and, through their state, the cards they become.
  States: applied, registered, personalised, handed_over, activated, refused,
  cancelled, lost, returned, abolished. At most one application per resident is in
  progress (applied, registered, personalised): a partial unique index enforces it.
- `audit_log`: the append-only, hash-chained operator log; triggers refuse UPDATE and
  DELETE.

Version 2: `audit_log.mac`, the hex HMAC-SHA256 of each entry's hash made by the audit
key in the HSM (`issuance.audit.keyer`). Entries from version 1 keep a NULL MAC: the
first keyed entry written after them covers them through the hash chain.

Version 3: enrolled operators and who acted with which role. `operators`: one row per
operator -- roles (comma-separated: clerk, supervisor, ca-officer, auditor), the argon2id
password hash, consecutive failed logins, locked and disabled flags. `audit_log.role`: the
role(s) the acting operator held (NULL in entries from before; "development" when the
command ran in development mode on a claimed identity).

Version 4: operator IC cards. `operator_cards`: one row per card issued to an operator --
the card serial, the operator, the operator certificate (serial in hex and SHA-256
fingerprint, by which a card login's session is bound), its notAfter, and the state
(active, revoked); at most one active card per operator (a partial unique index).

Version 5: the counter's records (`issuance.records`). `identity_checks`: each identity
document the clerk saw at intake or at hand-over (rule 4.3) -- its kind and a digest of its
reference, never the reference -- for the holder or the legal representative.
`legal_representatives`: the 法定代理人 who came with a minor or an adult ward (name,
relation) and set the PINs. `character_substitutions`: a resident's choice of the
character that replaces one JIS X 0208 cannot show (代替文字), asked for at the counter.

Version 6: `certificate_links`, 証明書新旧紐付け (rule 5.7): each certificate a renewal, a
reissue onto the card or a card update replaced, linked to its successor (old serial ->
new serial, the kind, the holder's resident code, why, when). A chain of renewals is a
chain of rows; a relying party keeps one user across them.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from issuance.storage.db import Database

APPLICATION_STATES = (
    "applied",
    "registered",
    "personalised",
    "handed_over",
    "activated",
    "refused",
    "cancelled",
    "lost",
    "returned",
    "abolished",
)
IN_PROGRESS_STATES = ("applied", "registered", "personalised")

_states = ", ".join(f"'{s}'" for s in APPLICATION_STATES)
_in_progress = ", ".join(f"'{s}'" for s in IN_PROGRESS_STATES)

_COMMON_V1 = [
    """CREATE TABLE residents (
        resident_code     TEXT PRIMARY KEY CHECK (length(resident_code) = 11),
        my_number         TEXT NOT NULL UNIQUE CHECK (length(my_number) = 12),
        name              TEXT NOT NULL,
        name_kana         TEXT,
        address           TEXT NOT NULL,
        birth_date        TEXT NOT NULL,
        sex               INTEGER NOT NULL CHECK (sex IN (0, 1, 2, 9)),
        nationality       TEXT NOT NULL CHECK (nationality IN ('japanese', 'foreign')),
        status            TEXT NOT NULL
                          CHECK (status IN ('resident', 'emigrated', 'deceased', 'deleted')),
        status_date       TEXT,
        adult_ward        INTEGER NOT NULL DEFAULT 0 CHECK (adult_ward IN (0, 1)),
        municipality_code TEXT NOT NULL CHECK (length(municipality_code) = 6),
        residence_expiry  TEXT,
        updated_at        TEXT NOT NULL
    )""",
    """CREATE TABLE fuhyo_entries (
        resident_code     TEXT PRIMARY KEY
                          REFERENCES residents (resident_code) ON DELETE CASCADE,
        municipality_code TEXT NOT NULL CHECK (length(municipality_code) = 6),
        address_abroad    TEXT,
        continued_use     INTEGER NOT NULL DEFAULT 0 CHECK (continued_use IN (0, 1))
    )""",
    f"""CREATE TABLE applications (
        id                  TEXT PRIMARY KEY,
        resident_code       TEXT NOT NULL REFERENCES residents (resident_code),
        applied_on          TEXT NOT NULL,
        created_at          TEXT NOT NULL,
        updated_at          TEXT NOT NULL,
        state               TEXT NOT NULL CHECK (state IN ({_states})),
        express_reason      TEXT,
        event_date          TEXT,
        express_deadline    TEXT,
        photo_less          INTEGER NOT NULL CHECK (photo_less IN (0, 1)),
        signing_certificate INTEGER NOT NULL CHECK (signing_certificate IN (0, 1)),
        user_certificate    INTEGER NOT NULL CHECK (user_certificate IN (0, 1)),
        validity_years      INTEGER NOT NULL CHECK (validity_years IN (5, 10)),
        card_expiry         TEXT NOT NULL,
        operator            TEXT NOT NULL
    )""",
    "CREATE INDEX applications_resident ON applications (resident_code)",
    f"""CREATE UNIQUE INDEX applications_one_in_progress ON applications (resident_code)
        WHERE state IN ({_in_progress})""",
    "CREATE INDEX residents_municipality ON residents (municipality_code)",
]

_AUDIT_TABLE = """CREATE TABLE audit_log (
        seq       BIGINT PRIMARY KEY CHECK (seq >= 1),
        at        TEXT NOT NULL,
        operator  TEXT NOT NULL,
        action    TEXT NOT NULL,
        subject   TEXT NOT NULL,
        outcome   TEXT NOT NULL,
        detail    TEXT NOT NULL,
        prev_hash TEXT NOT NULL,
        hash      TEXT NOT NULL UNIQUE
    )"""

SQLITE_V1 = [
    *_COMMON_V1,
    _AUDIT_TABLE,
    """CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
       BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END""",
    """CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
       BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END""",
]

POSTGRES_V1 = [
    *_COMMON_V1,
    _AUDIT_TABLE,
    """CREATE FUNCTION audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
       BEGIN RAISE EXCEPTION 'audit_log is append-only'; END $$""",
    """CREATE TRIGGER audit_log_no_change BEFORE UPDATE OR DELETE ON audit_log
       FOR EACH ROW EXECUTE FUNCTION audit_log_append_only()""",
    """CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log
       FOR EACH STATEMENT EXECUTE FUNCTION audit_log_append_only()""",
]


@dataclass(frozen=True)
class Migration:
    version: int
    description: str
    sqlite: tuple[str, ...]
    postgresql: tuple[str, ...]


_V2 = ("ALTER TABLE audit_log ADD COLUMN mac TEXT",)

_V3 = (
    """CREATE TABLE operators (
        name          TEXT PRIMARY KEY,
        roles         TEXT NOT NULL,
        password_hash TEXT NOT NULL,
        failures      INTEGER NOT NULL DEFAULT 0 CHECK (failures >= 0),
        locked        INTEGER NOT NULL DEFAULT 0 CHECK (locked IN (0, 1)),
        disabled      INTEGER NOT NULL DEFAULT 0 CHECK (disabled IN (0, 1)),
        created_at    TEXT NOT NULL,
        updated_at    TEXT NOT NULL
    )""",
    "ALTER TABLE audit_log ADD COLUMN role TEXT",
)

_V4 = (
    """CREATE TABLE operator_cards (
        card_serial   TEXT PRIMARY KEY,
        operator      TEXT NOT NULL REFERENCES operators (name),
        cert_serial   TEXT NOT NULL UNIQUE,
        fingerprint   TEXT NOT NULL UNIQUE,
        not_after     TEXT NOT NULL,
        state         TEXT NOT NULL CHECK (state IN ('active', 'revoked')),
        issued_at     TEXT NOT NULL,
        issued_by     TEXT NOT NULL,
        revoked_at    TEXT
    )""",
    "CREATE UNIQUE INDEX operator_cards_one_active ON operator_cards (operator)"
    " WHERE state = 'active'",
)

_V5 = (
    """CREATE TABLE identity_checks (
        application_id TEXT NOT NULL REFERENCES applications (id),
        step           TEXT NOT NULL CHECK (step IN ('intake', 'handover')),
        person         TEXT NOT NULL CHECK (person IN ('holder', 'representative')),
        position       INTEGER NOT NULL CHECK (position IN (1, 2)),
        document_kind  TEXT NOT NULL,
        reference_digest TEXT NOT NULL,
        operator       TEXT NOT NULL,
        checked_at     TEXT NOT NULL,
        PRIMARY KEY (application_id, step, person, position)
    )""",
    """CREATE TABLE legal_representatives (
        application_id TEXT NOT NULL REFERENCES applications (id),
        step           TEXT NOT NULL CHECK (step IN ('intake', 'handover')),
        name           TEXT NOT NULL,
        relation       TEXT NOT NULL,
        operator       TEXT NOT NULL,
        recorded_at    TEXT NOT NULL,
        PRIMARY KEY (application_id, step)
    )""",
    """CREATE TABLE character_substitutions (
        resident_code TEXT NOT NULL REFERENCES residents (resident_code),
        original      TEXT NOT NULL,
        replacement   TEXT NOT NULL,
        operator      TEXT NOT NULL,
        requested_at  TEXT NOT NULL,
        PRIMARY KEY (resident_code, original)
    )""",
)

_V6 = (
    """CREATE TABLE certificate_links (
        old_serial    TEXT PRIMARY KEY,
        new_serial    TEXT NOT NULL UNIQUE,
        kind          TEXT NOT NULL CHECK (kind IN ('signing', 'user_authentication')),
        resident_code TEXT NOT NULL,
        reason        TEXT NOT NULL CHECK (reason IN ('renewal', 'reissue', 'card_update')),
        linked_at     TEXT NOT NULL
    )""",
    "CREATE INDEX certificate_links_resident ON certificate_links (resident_code)",
)

# a counter every registry load bumps in its own transaction
# (`issuance.registry.store.note_registry_load`): a notice processor re-matches its
# unmatched notices only when it moved, instead of probing the whole unmatched backlog on
# every pass
_V7 = (
    """CREATE TABLE registry_changes (
        id      INTEGER PRIMARY KEY CHECK (id = 1),
        version BIGINT NOT NULL
    )""",
    "INSERT INTO registry_changes (id, version) VALUES (1, 0)",
)

MIGRATIONS: tuple[Migration, ...] = (
    Migration(1, "registry, applications, audit log", tuple(SQLITE_V1), tuple(POSTGRES_V1)),
    Migration(2, "audit log: keyed by an HMAC made in the HSM", _V2, _V2),
    Migration(3, "enrolled operators; the acting role in the audit log", _V3, _V3),
    Migration(4, "operator IC cards", _V4, _V4),
    Migration(5, "counter records: identity checks, legal representatives, substitutes",
              _V5, _V5),
    Migration(6, "certificate links old -> new (証明書新旧紐付け)", _V6, _V6),
    Migration(7, "a counter of registry loads (notices re-match when it moves)", _V7, _V7),
)

LATEST_VERSION = MIGRATIONS[-1].version


def apply_migrations(
    db: Database, table: str, steps: Iterable[tuple[int, str, Sequence[str]]]
) -> None:
    """Apply every step not yet recorded in `table`, one transaction per step.

    The shared mechanism of every component's versioned schema: this module's own
    (`schema_version`) and those of components that keep their tables apart (notices,
    workflow), each in a version table of its own. Steps are append-only.
    """
    if not table.isidentifier():
        raise ValueError(f"not a table name: {table!r}")
    with db.transaction() as tx:
        tx.lock("mynacard.schema")
        tx.execute(
            f"CREATE TABLE IF NOT EXISTS {table} ("
            " version INTEGER PRIMARY KEY, description TEXT NOT NULL, applied_at TEXT NOT NULL)"
        )
    for version, description, statements in steps:
        with db.transaction() as tx:
            tx.lock("mynacard.schema")
            if tx.query_one(f"SELECT version FROM {table} WHERE version = ?",
                            (version,)) is not None:
                continue
            for statement in statements:
                tx.execute(statement)
            tx.execute(
                f"INSERT INTO {table} (version, description, applied_at) VALUES (?, ?, ?)",
                (version, description, datetime.now(UTC).isoformat()),
            )


def migrate(db: Database) -> int:
    """Bring `db` to the latest schema; return the version it is at."""
    apply_migrations(db, "schema_version", (
        (m.version, m.description, m.sqlite if db.dialect == "sqlite" else m.postgresql)
        for m in MIGRATIONS
    ))
    return db.schema_version()
