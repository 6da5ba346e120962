"""Pre-generated OCSP responses in the certificate store (table ``ocsp_responses``,
migration 0004): what a responder serves without signing.

A row is served only while its ``status_version`` equals the certificate's (one query
joins the two), so any status change - `revoke`, `hold`, `revoke_many`, whoever makes it -
makes the stale response unreachable in the very transaction that changes the status;
the responder then signs on demand until the row is regenerated
(`pki.ocsp.pregenerate`). The same transactions add one to ``status_changes`` (migration
0005), which a responder holding responses in memory (`pki.ocsp.memory`) watches."""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
from collections.abc import Sequence
from typing import Any

from pki.store.records import epoch, serial_to_text, to_datetime

_when = functools.lru_cache(maxsize=4096)(to_datetime)  # rows signed together share times

_LOOKUP = (
    "SELECT r.der, r.status, r.this_update, r.next_update FROM ocsp_responses r"
    " JOIN certificates c ON c.serial = r.serial"
    " WHERE r.issuer_key_hash = ? AND r.serial = ? AND r.status_version = c.status_version"
    " AND r.next_update > ?")
_UPSERT = (
    "INSERT INTO ocsp_responses (issuer_key_hash, serial, status, status_version, this_update,"
    " next_update, der) VALUES (?, ?, ?, ?, ?, ?, ?)"
    " ON CONFLICT (issuer_key_hash, serial) DO UPDATE SET status = excluded.status,"
    " status_version = excluded.status_version, this_update = excluded.this_update,"
    " next_update = excluded.next_update, der = excluded.der"
    " WHERE excluded.status_version >= ocsp_responses.status_version")
# the certificates of one hierarchy that need a (new) response: none yet, signed for an
# older status, or expiring before the refresh horizon; not those long expired
_DUE = (
    "SELECT c.serial, c.status, c.reason, c.revoked_at, c.status_version FROM certificates c"
    " LEFT JOIN ocsp_responses r ON r.serial = c.serial AND r.issuer_key_hash = ?"
    " WHERE c.hierarchy = ? AND c.not_after >= ? AND (r.serial IS NULL"
    " OR r.status_version <> c.status_version OR r.next_update < ?)"
    " ORDER BY c.serial LIMIT ?")


# in the transaction of every status change (`revoke`, `hold`, `revoke_many`): what a
# responder serving from memory watches (`status_changes`, migration 0005)
BUMP_STATUS_CHANGES = "UPDATE status_changes SET version = version + 1 WHERE id = 1"
_STATUS_CHANGES = "SELECT version FROM status_changes WHERE id = 1"


@dataclasses.dataclass(frozen=True, slots=True)
class StoredResponse:
    """A pre-generated response as served: DER and its validity."""

    der: bytes
    status: str  # good | revoked (hold is revoked with reason certificateHold)
    this_update: dt.datetime
    next_update: dt.datetime


@dataclasses.dataclass(frozen=True, slots=True)
class DueCertificate:
    """A certificate whose response must be (re)signed, with the status to sign."""

    serial: int
    status: str  # good | revoked | hold
    reason: int | None
    revoked_at: int | None
    status_version: int


@dataclasses.dataclass(frozen=True, slots=True)
class NewResponse:
    issuer_key_hash: bytes
    serial: int
    status: str
    status_version: int
    this_update: dt.datetime
    next_update: dt.datetime
    der: bytes


class ResponseReads:
    """Mixed into `ReadOnlyStore`: the lookup a responder makes per request."""

    _db: Any
    _fetchone: Any
    _fetchall: Any
    _lookup_sql: str | None = None
    _changes_sql: str | None = None
    _dv_cursor: Any = None

    def pregenerated(self, issuer_key_hash: bytes, serial: int,
                     now: dt.datetime) -> StoredResponse | None:
        """The current pre-generated response for (SHA-1 issuer key hash, serial), or None
        when there is none, it was signed for an older status, or it has expired. The
        responder's hot path: one statement, straight on the connection."""
        db = self._db
        sql = self._lookup_sql
        if sql is None:
            sql = self._lookup_sql = db.q(_LOOKUP)
        params = (issuer_key_hash, format(serial, "x"), int(now.timestamp()))
        try:
            with db.lock:
                row = db.conn.execute(sql, params).fetchone()
        except Exception:  # the store's own error mapping, for the rare failure
            row = self._fetchone(_LOOKUP, params)
        if row is None:
            return None
        der, status, this_update, next_update = row
        return StoredResponse(bytes(der), status, _when(this_update), _when(next_update))

    def data_version(self) -> int | None:
        """SQLite's ``PRAGMA data_version`` of this connection: it changes when another
        connection commits (a read of the shared WAL index, no I/O). None on PostgreSQL,
        which has nothing as cheap."""
        db = self._db
        if db.postgres:
            return None
        with db.lock:
            cursor = self._dv_cursor  # one cursor kept: a third cheaper than a new one
            if cursor is None:
                cursor = self._dv_cursor = db.conn.cursor()
            return int(cursor.execute("PRAGMA data_version").fetchone()[0])

    def status_changes(self) -> int:
        """The store's status-change counter (grows in the transaction of every revoke,
        hold and revoke_many)."""
        db = self._db
        sql = self._changes_sql
        if sql is None:
            sql = self._changes_sql = db.q(_STATUS_CHANGES)
        with db.lock:
            row = db.conn.execute(sql).fetchone()
        return int(row[0])

    def due_responses(self, issuer_key_hash: bytes, hierarchy: str, *, now: dt.datetime,
                      refresh_before: dt.datetime, limit: int = 1000) -> list[DueCertificate]:
        """Up to `limit` certificates of `hierarchy` (not expired at `now`) whose response
        is missing, signed for an older status, or ends before `refresh_before`."""
        rows = self._fetchall(_DUE, (issuer_key_hash, hierarchy, epoch(now),
                                     epoch(refresh_before), limit))
        return [DueCertificate(int(s, 16), st, reason, revoked_at, version)
                for s, st, reason, revoked_at, version in rows]

    def pregenerated_count(self) -> int:
        return int(self._fetchone("SELECT COUNT(*) FROM ocsp_responses")[0])


class ResponseWrites:
    """Mixed into `CertificateStore`: storing freshly signed responses."""

    _executemany: Any
    transaction: Any

    def put_responses(self, responses: Sequence[NewResponse]) -> None:
        """Store (or replace) responses in one transaction. A response signed for an older
        status than the one stored does not replace it."""
        rows = [(r.issuer_key_hash, serial_to_text(r.serial), r.status, r.status_version,
                 epoch(r.this_update), epoch(r.next_update), r.der) for r in responses]
        if rows:
            with self.transaction():
                self._executemany(_UPSERT, rows)

    def drop_expired_responses(self, now: dt.datetime) -> None:
        """Forget responses that ended before `now` (of expired certificates, mostly)."""
        with self.transaction():
            self._executemany("DELETE FROM ocsp_responses WHERE next_update < ?",
                              [(epoch(now),)])
