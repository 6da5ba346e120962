"""Connections to the certificate store: SQLite (a file path) or PostgreSQL (a
postgresql:// URL), and the dialect each needs.

Durability (SQLite): the read-write store runs in WAL mode with ``synchronous=NORMAL``.
Every certificate is recorded in its own transaction, and a committed transaction
survives a crash of the process (the WAL is written before the commit returns); only a
power loss or kernel crash can lose the last transactions before the next WAL
checkpoint, which is the price of a commit costing tens of µs instead of an fsync.
Checkpoints (with their fsyncs) run in a background thread every 0.25 s, off the commit
path. Where that is not acceptable, use PostgreSQL (``synchronous_commit=on``).
A read-only connection opens SQLite with ``mode=ro`` and PostgreSQL with a read-only
session, so a write fails in the database, not only in Python. Queries are written once
with ``?`` placeholders; the PostgreSQL dialect rewrites them.
"""

from __future__ import annotations

import os
import re
import sqlite3
import threading
from pathlib import Path
from typing import Any

from hsm.advice import scheme
from hsm.files import UnsafePath, private_database
from pki.errors import StoreError

_CACHE_KIB = 131_072  # SQLite page cache per connection: 128 MiB
_MMAP_BYTES = 1 << 30  # reads through mmap, up to 1 GiB of the file
_AUTOCHECKPOINT_PAGES = 16384


_URL = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://")  # scheme://, never a file path


def is_postgres_url(location: str | Path) -> bool:
    """True for a postgresql:// (or postgres://) URL, False for a SQLite file path.
    `StoreError` for any other ``scheme://`` location: it is never taken for a path (a
    directory named after a URL, its password included, would be created). The message
    names the scheme only, never the URL (which may hold a password)."""
    if not isinstance(location, str):
        return False
    if location.startswith(("postgresql://", "postgres://")):
        return True
    if _URL.match(location):
        raise StoreError(f"unsupported certificate store URL scheme {scheme(location)!r}: "
                         "the store is a SQLite file path or a postgresql:// URL")
    return False


class _Backend:
    """One DB-API connection and its dialect."""

    blob = "BLOB"
    postgres = False

    def __init__(self, conn: Any) -> None:
        self.conn = conn
        self.lock = threading.RLock()

    def q(self, sql: str) -> str:
        return sql

    def close(self) -> None:
        self.conn.close()


class _SqliteBackend(_Backend):
    def __init__(self, conn: Any, checkpointer: _Checkpointer | None = None) -> None:
        super().__init__(conn)
        self.checkpointer = checkpointer

    def close(self) -> None:
        if self.checkpointer is not None:
            self.checkpointer.stop()
        self.conn.close()


class _Checkpointer:
    """Copies the WAL back into the database file from a thread of its own, so a
    checkpoint's two fsyncs never stall a commit (issuance). Durability is unchanged:
    commits are in the WAL either way; this only moves when the WAL is folded in.
    SQLite's own automatic checkpoint stays as a safety net for a much larger WAL."""

    INTERVAL = 0.25  # seconds between PASSIVE checkpoints

    def __init__(self, path: Path) -> None:
        self._conn = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._conn.execute("PRAGMA busy_timeout=10000")
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"sqlite-checkpoint {path.name}",
                                        daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self.INTERVAL):
            try:
                self._conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
            except sqlite3.Error:
                pass  # busy or failing: the next tick, or SQLite's own checkpoint, retries

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not threading.current_thread():
            self._thread.join(10)
        try:
            self._conn.close()
        except sqlite3.Error:
            pass


class _PostgresBackend(_Backend):
    blob = "BYTEA"
    postgres = True

    def q(self, sql: str) -> str:
        return sql.replace("?", "%s")


def connect(location: str | Path, *, read_only: bool) -> _Backend:
    if is_postgres_url(location):
        try:
            import psycopg
        except ImportError as exc:  # pragma: no cover - depends on the install
            raise StoreError("PostgreSQL needs the psycopg package (pip install psycopg[binary])") \
                from exc
        try:
            pg = psycopg.connect(str(location), autocommit=True)
        except psycopg.Error as exc:
            from hsm.advice import database_unreachable

            raise StoreError(database_unreachable(str(location), exc)) from exc
        if read_only:
            pg.execute("SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY")
        return _PostgresBackend(pg)
    path = Path(location)
    conn = open_sqlite_file(path, read_only=read_only)
    try:
        if not read_only:
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            # checkpoints run in the background (_Checkpointer); SQLite's own only past
            # 16,384 pages (64 MiB) of WAL
            conn.execute(f"PRAGMA wal_autocheckpoint={_AUTOCHECKPOINT_PAGES}")
        conn.execute("PRAGMA busy_timeout=10000")
        # a store of millions of rows: keep its hot B-tree pages in memory (allocated lazily)
        conn.execute(f"PRAGMA cache_size=-{_CACHE_KIB}")
        conn.execute(f"PRAGMA mmap_size={_MMAP_BYTES}")
        checkpointer = None if read_only else _Checkpointer(path)
    except sqlite3.Error as exc:
        conn.close()
        raise StoreError(f"cannot open certificate store {path}: {exc}") from exc
    return _SqliteBackend(conn, checkpointer)


def open_sqlite_file(path: Path, *, read_only: bool) -> sqlite3.Connection:
    """The store's SQLite file opened for the caller's pragmas (this module's backend, the
    relying-party tables): never through a symlink at the file or its -wal/-shm/-journal,
    created 0600 (SQLite's companions take its mode); read-only: `mode=ro`, and a missing
    file is a StoreError, not a new empty store."""
    try:
        if read_only:
            if not os.path.lexists(path):
                raise StoreError(f"no certificate store at {path}")
            private_database(path, create=False)
            uri = (path.parent.resolve() / path.name).as_uri()  # never resolves the file
            return sqlite3.connect(f"{uri}?mode=ro", uri=True, check_same_thread=False,
                                   isolation_level=None)
        path.parent.mkdir(parents=True, exist_ok=True)
        private_database(path)
        return sqlite3.connect(path, check_same_thread=False, isolation_level=None)
    except UnsafePath as exc:
        raise StoreError(f"refusing to open the certificate store: {exc}") from None
    except sqlite3.Error as exc:
        raise StoreError(f"cannot open certificate store {path}: {exc}") from exc
