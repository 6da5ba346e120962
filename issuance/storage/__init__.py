"""One small database layer over SQLite (default) and PostgreSQL (psycopg 3).

`open_database(url)` returns a `Database`; `Database.transaction()` is a context manager
yielding a `Transaction` whose `execute`/`query` take SQL written with `?` placeholders
(translated for PostgreSQL). Migrations are versioned in `issuance.storage.migrations`
and applied by `open_database` (`issuance.storage.opening`, table `schema_version`).
"""

from issuance.storage.db import (
    Database,
    PostgresDatabase,
    SqliteDatabase,
    Transaction,
    default_url,
)
from issuance.storage.errors import IntegrityViolation, StorageError
from issuance.storage.opening import open_database

__all__ = [
    "Database",
    "IntegrityViolation",
    "PostgresDatabase",
    "SqliteDatabase",
    "StorageError",
    "Transaction",
    "default_url",
    "open_database",
]
