"""Opening a database by URL: the one place that knows both the backends and the migrations.

`db` holds the backends and `migrations` the schema history (which needs a `Database`);
opening lives here so neither of them imports the other.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import unquote

from hsm.advice import redacted, scheme
from issuance.storage.db import Database, PostgresDatabase, SqliteDatabase
from issuance.storage.errors import StorageError
from issuance.storage.migrations import migrate as run_migrations


def open_database(url: str, *, migrate: bool = True) -> Database:
    """Open `sqlite:///PATH`, a bare file path, or `postgresql://…`; apply migrations."""
    db: Database
    if url.startswith(("postgresql://", "postgres://")):
        db = PostgresDatabase(url)
    elif url.startswith("sqlite:"):
        # SQLAlchemy's convention: sqlite:///relative.db, sqlite:////absolute/path.db
        if not url.startswith("sqlite:///") or len(url) == len("sqlite:///"):
            raise StorageError(f"no file in SQLite URL {redacted(url)!r} (sqlite:///PATH)")
        db = SqliteDatabase(Path(unquote(url[len("sqlite:///"):])))
    elif "://" in url:
        # only the scheme: the rest may hold a password in a form no redaction knows
        raise StorageError(f"unsupported database URL scheme {scheme(url)!r}"
                           " (sqlite:/// or postgresql://)")
    else:
        db = SqliteDatabase(Path(url))
    if migrate:
        try:
            run_migrations(db)
        except BaseException:
            db.close()
            raise
    return db
