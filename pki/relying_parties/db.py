"""The relying-party tables, kept in the certificate store's database (SQLite file or
PostgreSQL) beside `certificates`, versioned on their own in `rp_schema_version` so the
store's own migrations never see them.

This module opens its own connection (read-write for the registry and the webhook
dispatcher, read-only for the OCSP responder's token check) and writes SQL once with
``?`` placeholders, as `pki.store` does.
"""

from __future__ import annotations

import contextlib
import sqlite3
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from pki.errors import StoreError
from pki.store import is_postgres_url
from pki.store.connection import open_sqlite_file

KINDS = ("signature_verifier", "user_verifier", "platform_operator")

# Version 1. Times are Unix seconds; serials lower-case hex as in `certificates`.
V1 = (
    """CREATE TABLE relying_parties (
        name           TEXT PRIMARY KEY,
        kind           TEXT NOT NULL CHECK (kind IN ('signature_verifier', 'user_verifier',
                                                     'platform_operator')),
        token_hash     TEXT NOT NULL UNIQUE,
        webhook_url    TEXT,
        webhook_secret TEXT,
        created_at     BIGINT NOT NULL
    )""",
    # what a relying party relies on, and what the dispatcher has already queued for it
    """CREATE TABLE rp_subscriptions (
        rp_name            TEXT NOT NULL REFERENCES relying_parties (name) ON DELETE CASCADE,
        serial             TEXT NOT NULL,
        created_at         BIGINT NOT NULL,
        notified_version   BIGINT NOT NULL DEFAULT 0,
        notified_successor TEXT,
        PRIMARY KEY (rp_name, serial)
    )""",
    "CREATE INDEX rp_subscriptions_serial ON rp_subscriptions (serial)",
    # the outbox: one row per event and relying party; event_id is the idempotency key
    """CREATE TABLE rp_deliveries (
        event_id        TEXT PRIMARY KEY,
        rp_name         TEXT NOT NULL REFERENCES relying_parties (name) ON DELETE CASCADE,
        serial          TEXT NOT NULL,
        payload         TEXT NOT NULL,
        state           TEXT NOT NULL CHECK (state IN ('pending', 'delivered', 'failed')),
        attempts        INTEGER NOT NULL DEFAULT 0,
        next_attempt_at DOUBLE PRECISION NOT NULL,
        last_error      TEXT,
        created_at      BIGINT NOT NULL,
        delivered_at    BIGINT
    )""",
    "CREATE INDEX rp_deliveries_due ON rp_deliveries (state, next_attempt_at)",
)
MIGRATIONS: tuple[tuple[int, tuple[str, ...]], ...] = ((1, V1),)
LATEST = MIGRATIONS[-1][0]


class RpDatabase:
    """One connection to the store's database for the relying-party tables."""

    def __init__(self, location: str | Path, *, read_only: bool = False) -> None:
        if not isinstance(location, (str, Path)):
            raise TypeError("location must be a path or a postgresql:// URL")
        self.location = location
        self.read_only = read_only
        self.postgres = is_postgres_url(location)
        self.lock = threading.RLock()
        self._in_tx = False
        if self.postgres:
            import psycopg

            try:
                self.conn: Any = psycopg.connect(str(location), autocommit=True)
            except psycopg.Error as exc:
                from hsm.advice import database_unreachable

                raise StoreError(database_unreachable(str(location), exc)) from exc
            if read_only:
                self.conn.execute("SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY")
        else:
            path = Path(location)
            self.conn = open_sqlite_file(path, read_only=read_only)
            try:
                if not read_only:
                    self.conn.execute("PRAGMA journal_mode=WAL")
                    self.conn.execute("PRAGMA synchronous=NORMAL")
                    self.conn.execute("PRAGMA foreign_keys=ON")
                self.conn.execute("PRAGMA busy_timeout=10000")
            except sqlite3.Error as exc:
                raise StoreError(f"cannot open certificate store {path}: {exc}") from exc
        if not read_only:
            self.migrate()

    def close(self) -> None:
        self.conn.close()

    def __enter__(self) -> RpDatabase:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def execute(self, sql: str, params: tuple[Any, ...] = ()) -> Any:
        if self.postgres:
            sql = sql.replace("?", "%s")
        try:
            return self.conn.execute(sql, params)
        except sqlite3.Error as exc:
            raise StoreError(f"relying parties: {exc}") from exc
        except Exception as exc:
            if type(exc).__module__.startswith("psycopg"):
                raise StoreError(f"relying parties: {exc}".splitlines()[0]) from exc
            raise

    def query(self, sql: str, params: tuple[Any, ...] = ()) -> list[Any]:
        with self.lock:
            return list(self.execute(sql, params).fetchall())

    def query_one(self, sql: str, params: tuple[Any, ...] = ()) -> Any:
        with self.lock:
            return self.execute(sql, params).fetchone()

    @contextlib.contextmanager
    def transaction(self) -> Iterator[RpDatabase]:
        with self.lock:
            if self._in_tx:
                yield self
                return
            self.execute("BEGIN" if self.postgres else "BEGIN IMMEDIATE")
            self._in_tx = True
            try:
                yield self
            except BaseException:
                self._in_tx = False
                self.execute("ROLLBACK")
                raise
            self._in_tx = False
            self.execute("COMMIT")

    def has_tables(self) -> bool:
        try:
            row = self.query_one("SELECT MAX(version) FROM rp_schema_version")
        except StoreError:
            return False
        return bool(row and row[0])

    def migrate(self) -> int:
        with self.transaction():
            if self.postgres:
                self.execute("SELECT pg_advisory_xact_lock(hashtext('mynacard.rp.schema'))")
            self.execute("CREATE TABLE IF NOT EXISTS rp_schema_version "
                         "(version INTEGER PRIMARY KEY, applied_at BIGINT NOT NULL)")
            row = self.execute("SELECT MAX(version) FROM rp_schema_version").fetchone()
            current = int(row[0] or 0)
            for version, statements in MIGRATIONS:
                if version <= current:
                    continue
                for stmt in statements:
                    self.execute(stmt)
                self.execute("INSERT INTO rp_schema_version (version, applied_at) VALUES (?, ?)",
                             (version, int(time.time())))
        return LATEST
