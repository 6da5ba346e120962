"""The workflow tables, versioned on their own (`workflow_schema_version`).

`issuance.storage.migrations` holds one fixed tuple; like the notice path, the workflow
keeps its own version table and applies its append-only migrations (one transaction
each, under the same named lock) whenever a workflow component opens the database.

Tables (version 1):
- `workflow_jobs`: one row per application being (or having been) personalised: the card
  serial bound to it, the step reached (`bound`, `certified`, `done`), the attempt count,
  when the first attempt started (certificates issued for the holder after that and not
  recorded here are orphans of a crash), the card's security code, and the run that owns
  the job (`host:pid:thread`), so a second reader cannot take over a job still running.
- `cards`: every card the center touched, by serial: the application it belongs to and
  its state (`personalising`, `issued`, `active`, `spoiled`, `lost`, `returned`,
  `abolished`). A partial unique index keeps one live card per application.
- `issued_certificates`: every certificate the workflow issued, by serial, with the
  card and application it belongs to and its status (`current`, `spoiled`, `replaced`,
  `revoked`).
"""

from __future__ import annotations

from issuance.storage import Database
from issuance.storage.migrations import apply_migrations

CARD_STATES = ("personalising", "issued", "active", "spoiled", "lost", "returned",
               "abolished")
LIVE_CARD_STATES = ("personalising", "issued", "active")
CERT_STATUSES = ("current", "spoiled", "replaced", "revoked")
JOB_STEPS = ("new", "bound", "certified", "done")


def _in(values: tuple[str, ...]) -> str:
    return ", ".join(f"'{v}'" for v in values)


V1 = (
    f"""CREATE TABLE workflow_jobs (
        application_id TEXT PRIMARY KEY REFERENCES applications (id),
        card_serial    TEXT,
        step           TEXT NOT NULL CHECK (step IN ({_in(JOB_STEPS)})),
        attempt        INTEGER NOT NULL,
        started_at     TEXT NOT NULL,
        security_code  TEXT NOT NULL,
        operator       TEXT NOT NULL,
        owner          TEXT NOT NULL DEFAULT '',
        updated_at     TEXT NOT NULL
    )""",
    f"""CREATE TABLE cards (
        serial         TEXT PRIMARY KEY CHECK (length(serial) = 15),
        application_id TEXT NOT NULL REFERENCES applications (id),
        state          TEXT NOT NULL CHECK (state IN ({_in(CARD_STATES)})),
        note           TEXT,
        created_at     TEXT NOT NULL,
        updated_at     TEXT NOT NULL
    )""",
    "CREATE INDEX cards_application ON cards (application_id)",
    f"""CREATE UNIQUE INDEX cards_one_live_per_application ON cards (application_id)
        WHERE state IN ({_in(LIVE_CARD_STATES)})""",
    f"""CREATE TABLE issued_certificates (
        serial         TEXT PRIMARY KEY,
        application_id TEXT NOT NULL REFERENCES applications (id),
        card_serial    TEXT NOT NULL,
        kind           TEXT NOT NULL CHECK (kind IN ('signing', 'user_authentication')),
        status         TEXT NOT NULL CHECK (status IN ({_in(CERT_STATUSES)})),
        issued_at      TEXT NOT NULL,
        updated_at     TEXT NOT NULL
    )""",
    "CREATE INDEX issued_certificates_application ON issued_certificates (application_id)",
    "CREATE INDEX issued_certificates_card ON issued_certificates (card_serial)",
)

MIGRATIONS: tuple[tuple[int, str, tuple[str, ...]], ...] = (
    (1, "workflow jobs, cards, issued certificates", V1),
)
LATEST_VERSION = MIGRATIONS[-1][0]


def migrate_workflow(db: Database) -> int:
    """Bring the workflow tables of `db` to the latest version; return it."""
    apply_migrations(db, "workflow_schema_version", MIGRATIONS)
    return LATEST_VERSION
