"""Database handles for SQLite and PostgreSQL behind one interface.

SQL is written once, with `?` placeholders; the PostgreSQL handle translates them to
psycopg's `%s`. Dates are stored as ISO-8601 text and flags as 0/1 integers in both
databases, so rows read back identically whichever database holds them.

Every write happens inside `Database.transaction()`, a context manager that commits on
success and rolls back on any exception. SQLite transactions start with
`BEGIN IMMEDIATE`, so writers are serialised and reads inside a transaction see a
stable snapshot; the file uses WAL and enforces foreign keys.
"""

from __future__ import annotations

import sqlite3
import threading
from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Literal

from hsm.advice import database_unreachable
from hsm.files import UnsafePath, private_database
from issuance.storage.errors import IntegrityViolation, StorageError

Params = Sequence[Any]
Row = dict[str, Any]
Dialect = Literal["sqlite", "postgresql"]

DEFAULT_FILENAME = "issuance.sqlite3"


def default_url(home: Path) -> str:
    """The default database: a SQLite file in the state directory (the directory's path is
    made absolute; the file's is not resolved: a symlink there is refused, not followed)."""
    return f"sqlite:///{Path(home).resolve() / DEFAULT_FILENAME}"


IN_CHUNK = 500  # values per IN (...) list: far below SQLite's and PostgreSQL's limits


class Transaction(ABC):
    """One open transaction. Obtain it from `Database.transaction()` only."""

    dialect: Dialect

    @abstractmethod
    def execute(self, sql: str, params: Params = ()) -> int:
        """Run one statement; return the number of rows it changed."""

    @abstractmethod
    def executemany(self, sql: str, rows: Iterable[Params]) -> None:
        """Run one statement once per parameter tuple."""

    @abstractmethod
    def query(self, sql: str, params: Params = ()) -> list[Row]:
        """Run a query; return its rows as dicts keyed by column name."""

    def query_one(self, sql: str, params: Params = ()) -> Row | None:
        rows = self.query(sql, params)
        return rows[0] if rows else None

    def query_in(self, sql: str, values: Iterable[Any], params: Params = (), *,
                 chunk: int = IN_CHUNK) -> list[Row]:
        """A set query: `sql` holds one `IN ({values})`, filled with the distinct
        `values`, one statement per `chunk` of them (bound parameters, never text);
        `params` bind the placeholders before it."""
        distinct = sorted(set(values))
        rows: list[Row] = []
        for i in range(0, len(distinct), chunk):
            part = distinct[i:i + chunk]
            rows += self.query(sql.replace("{values}", ", ".join("?" * len(part))),
                               (*params, *part))
        return rows

    @abstractmethod
    def lock(self, name: str) -> None:
        """Serialise against other transactions taking the same named lock."""


class Database(ABC):
    """A connection to the issuance store. A context manager: closes on exit."""

    dialect: Dialect
    url: str

    @abstractmethod
    def transaction(self) -> Any:  # a context manager yielding a Transaction
        ...

    @abstractmethod
    def close(self) -> None: ...

    def schema_version(self) -> int:
        with self.transaction() as tx:
            row = tx.query_one("SELECT MAX(version) AS v FROM schema_version")
        return int(row["v"]) if row and row["v"] is not None else 0

    def __enter__(self) -> Database:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class _SqliteTransaction(Transaction):
    dialect: Dialect = "sqlite"

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn

    def execute(self, sql: str, params: Params = ()) -> int:
        try:
            return self._conn.execute(sql, tuple(params)).rowcount
        except sqlite3.IntegrityError as exc:
            raise IntegrityViolation(str(exc)) from exc
        except sqlite3.Error as exc:
            raise StorageError(f"SQLite error: {exc}") from exc

    def executemany(self, sql: str, rows: Iterable[Params]) -> None:
        try:
            self._conn.executemany(sql, (tuple(r) for r in rows))
        except sqlite3.IntegrityError as exc:
            raise IntegrityViolation(str(exc)) from exc
        except sqlite3.Error as exc:
            raise StorageError(f"SQLite error: {exc}") from exc

    def query(self, sql: str, params: Params = ()) -> list[Row]:
        try:
            cur = self._conn.execute(sql, tuple(params))
        except sqlite3.Error as exc:
            raise StorageError(f"SQLite error: {exc}") from exc
        names = [d[0] for d in cur.description or ()]
        return [dict(zip(names, r, strict=True)) for r in cur.fetchall()]

    def lock(self, name: str) -> None:
        # BEGIN IMMEDIATE already holds the database's single write lock.
        return None


class SqliteDatabase(Database):
    """A SQLite file (WAL, foreign keys on, writers serialised)."""

    dialect: Dialect = "sqlite"

    def __init__(self, path: Path, *, busy_timeout_s: float = 30.0) -> None:
        self.path = Path(path)
        self.url = f"sqlite:///{self.path}"  # absolute paths give sqlite:////…
        self._lock = threading.RLock()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            # 0600, created without following a symlink; a symlink at the file or at its
            # -wal/-shm/-journal is refused (SQLite follows them; its companions take the
            # file's mode)
            private_database(self.path)
            conn = sqlite3.connect(
                str(self.path),
                timeout=busy_timeout_s,
                isolation_level=None,
                check_same_thread=False,
            )
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA foreign_keys=ON")
            conn.execute("PRAGMA synchronous=NORMAL")
        except UnsafePath as exc:
            raise StorageError(f"refusing to open the SQLite database: {exc}") from None
        except sqlite3.Error as exc:
            raise StorageError(f"cannot open SQLite database {self.path}: {exc}") from exc
        self._conn = conn

    @contextmanager
    def transaction(self) -> Iterator[Transaction]:
        with self._lock:
            try:
                self._conn.execute("BEGIN IMMEDIATE")
            except sqlite3.Error as exc:
                raise StorageError(f"cannot begin a transaction: {exc}") from exc
            try:
                yield _SqliteTransaction(self._conn)
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            else:
                try:
                    self._conn.execute("COMMIT")
                except sqlite3.IntegrityError as exc:
                    self._conn.execute("ROLLBACK")
                    raise IntegrityViolation(str(exc)) from exc

    def close(self) -> None:
        self._conn.close()


def _pg_sql(sql: str) -> str:
    return sql.replace("%", "%%").replace("?", "%s")


class _PostgresTransaction(Transaction):
    dialect: Dialect = "postgresql"

    def __init__(self, conn: Any) -> None:
        self._conn = conn

    def _run(self, sql: str, params: Params) -> Any:
        import psycopg

        try:
            return self._conn.execute(_pg_sql(sql), tuple(params))
        except psycopg.errors.IntegrityError as exc:
            raise IntegrityViolation(str(exc)) from exc

    def execute(self, sql: str, params: Params = ()) -> int:
        return int(self._run(sql, params).rowcount)

    def executemany(self, sql: str, rows: Iterable[Params]) -> None:
        import psycopg

        try:
            with self._conn.cursor() as cur:
                cur.executemany(_pg_sql(sql), [tuple(r) for r in rows])
        except psycopg.errors.IntegrityError as exc:
            raise IntegrityViolation(str(exc)) from exc

    def query(self, sql: str, params: Params = ()) -> list[Row]:
        return list(self._run(sql, params).fetchall())

    def lock(self, name: str) -> None:
        self._run("SELECT pg_advisory_xact_lock(hashtext(?))", (name,))


class PostgresDatabase(Database):
    """A PostgreSQL database reached by a `postgresql://` URL (psycopg 3)."""

    dialect: Dialect = "postgresql"

    def __init__(self, url: str) -> None:
        import psycopg
        from psycopg.rows import dict_row

        self.url = url
        self._lock = threading.RLock()
        try:
            self._conn = psycopg.connect(url, autocommit=True, row_factory=dict_row)
        except psycopg.Error as exc:
            raise StorageError(database_unreachable(url, exc)) from exc

    def _connection(self) -> Any:
        """The open connection; a new one if the last was lost (the server restarted): a
        transaction that failed with it failed, the next one starts on a fresh connection."""
        import psycopg
        from psycopg.rows import dict_row

        if self._conn.closed or self._conn.broken:
            try:
                self._conn.close()
            except psycopg.Error:
                pass
            try:
                self._conn = psycopg.connect(self.url, autocommit=True, row_factory=dict_row)
            except psycopg.Error as exc:
                raise StorageError(database_unreachable(self.url, exc)) from exc
        return self._conn

    @contextmanager
    def transaction(self) -> Iterator[Transaction]:
        import psycopg

        with self._lock:
            try:
                with self._connection().transaction():
                    yield _PostgresTransaction(self._conn)
            except psycopg.errors.IntegrityError as exc:  # raised at commit (deferred)
                raise IntegrityViolation(str(exc)) from exc
            except psycopg.Error as exc:
                raise StorageError(f"PostgreSQL error: {exc}") from exc

    def close(self) -> None:
        self._conn.close()
