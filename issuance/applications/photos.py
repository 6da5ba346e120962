"""The face photo given with an application, kept as the card's JPEG 2000 until issuance.

A table of its own with its own version table (`application_photo_schema`), like the
other components that keep their tables apart, so it never competes with the core
migrations' version numbers. Photo-less applications (rule 4.5) store none.
"""

from __future__ import annotations

from issuance.storage.db import Database
from issuance.storage.migrations import apply_migrations

_STEPS = {
    "sqlite": ["CREATE TABLE IF NOT EXISTS application_photo ("
               " application_id TEXT PRIMARY KEY, jp2 BLOB NOT NULL)"],
    "postgresql": ["CREATE TABLE IF NOT EXISTS application_photo ("
                   " application_id TEXT PRIMARY KEY, jp2 BYTEA NOT NULL)"],
}


def _migrate(db: Database) -> None:
    apply_migrations(db, "application_photo_schema",
                     ((1, "application photos (JPEG 2000)", _STEPS[db.dialect]),))


def put_photo(db: Database, application_id: str, jp2: bytes) -> None:
    """Keep the JP2 photo of an accepted application (replacing an earlier one)."""
    _migrate(db)
    with db.transaction() as tx:
        tx.execute("DELETE FROM application_photo WHERE application_id = ?", (application_id,))
        tx.execute("INSERT INTO application_photo (application_id, jp2) VALUES (?, ?)",
                   (application_id, bytes(jp2)))


def photo_of(db: Database, application_id: str) -> bytes | None:
    """The JP2 photo given with the application, or None (a drawn portrait is used then)."""
    _migrate(db)
    with db.transaction() as tx:
        row = tx.query_one("SELECT jp2 FROM application_photo WHERE application_id = ?",
                           (application_id,))
    return None if row is None else bytes(row["jp2"])
