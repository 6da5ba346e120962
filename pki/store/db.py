"""The certificate store over SQLite (a file path) or PostgreSQL (a postgresql:// URL).

Connections and durability: `pki.store.connection`; the schema and its migrations:
`pki.store.schema`; CRL queries: `pki.store.crl`; pre-generated OCSP responses:
`pki.store.responses`. This module holds the certificates and their status.

`CertificateStore` reads and writes (the CA, revocation); `ReadOnlyStore` only reads
(CRL publisher, OCSP responder) and opens SQLite with ``mode=ro`` and PostgreSQL with
a read-only session, so a write fails in the database, not only in Python.
Queries are written once with ``?`` placeholders; the PostgreSQL dialect rewrites them.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import sqlite3
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, Self

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from pki.errors import ReadOnlyStoreError, StoreError, UnknownCertificateError
from pki.store import bulk
from pki.store.connection import connect, is_postgres_url
from pki.store.crl import CrlReads, CrlWrites
from pki.store.records import (
    REASON_CODES,
    REASONS_BY_CODE,
    CertificateRecord,
    CertStatus,
    HolderCertificate,
    Revocation,
    StatusInfo,
    epoch,
    from_epoch,
    serial_to_text,
    to_datetime,
)
from pki.store.responses import BUMP_STATUS_CHANGES, ResponseReads, ResponseWrites
from pki.store.schema import migrations, split_sql

_COLUMNS = ("serial, hierarchy, profile, holder_id, shard, issued_at, not_before, not_after, "
            "status, reason, revoked_at, cause, successor, status_version, der")


_IN_CHUNK = 500  # values per `IN (...)` list in set queries
_INSERT = ("INSERT INTO certificates (serial, hierarchy, profile, holder_id, shard, issued_at,"
           " not_before, not_after, status, updated_at, der, key_sha256)"
           " VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'good', ?, ?, ?)")
_KEYS_SINCE = 2  # the migration that added certificates.key_sha256


def key_digest(key: Any) -> str:
    """SHA-256 (hex) of a public key's DER SubjectPublicKeyInfo: how the store finds a
    key that is already certified."""
    return hashlib.sha256(key.public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
                          ).hexdigest()
_INSERT_IF_ABSENT = _INSERT + " ON CONFLICT (serial) DO NOTHING"


def _record(row: tuple[Any, ...]) -> CertificateRecord:
    (serial, hierarchy, profile, holder_id, shard, issued_at, not_before, not_after, status,
     reason, revoked_at, cause, successor, version, der) = row
    return CertificateRecord(
        serial=int(serial, 16), hierarchy=hierarchy, profile=profile, holder_id=holder_id,
        shard=shard, issued_at=to_datetime(issued_at), not_before=to_datetime(not_before),
        not_after=to_datetime(not_after), status=CertStatus(status),
        reason=None if reason is None else REASONS_BY_CODE[reason],
        revoked_at=from_epoch(revoked_at), cause=cause,
        successor=None if successor is None else int(successor, 16),
        status_version=version, der=bytes(der),
    )


class ReadOnlyStore(ResponseReads, CrlReads):
    """Reads certificates and their status; cannot write (enforced by the database)."""

    _read_only = True

    def __init__(self, location: str | Path) -> None:
        if not isinstance(location, (str, Path)):
            raise TypeError("location must be a path or a postgresql:// URL")
        self.location = location
        self._db = connect(location, read_only=self._read_only)
        self._in_tx = False
        if self._read_only:
            self._check_schema()

    # -- plumbing ---------------------------------------------------------------------
    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _execute(self, sql: str, params: tuple[Any, ...] = ()) -> Any:
        db = self._db
        try:
            return db.conn.execute(db.q(sql), params)
        except sqlite3.OperationalError as exc:
            if "readonly" in str(exc) or "read-only" in str(exc):
                raise ReadOnlyStoreError("the certificate store is open read-only") from exc
            raise StoreError(f"certificate store: {exc}") from exc
        except sqlite3.IntegrityError as exc:
            raise StoreError(f"certificate store: {exc}") from exc
        except Exception as exc:
            if type(exc).__module__.startswith("psycopg"):
                if type(exc).__name__ == "ReadOnlySqlTransaction":
                    raise ReadOnlyStoreError("the certificate store is open read-only") from exc
                raise StoreError(f"certificate store: {exc}".splitlines()[0]) from exc
            raise

    def _executemany(self, sql: str, rows: Sequence[tuple[Any, ...]]) -> None:
        db = self._db
        try:
            db.conn.cursor().executemany(db.q(sql), rows)
        except (sqlite3.OperationalError, sqlite3.IntegrityError) as exc:
            raise StoreError(f"certificate store: {exc}") from exc
        except Exception as exc:
            if type(exc).__module__.startswith("psycopg"):
                raise StoreError(f"certificate store: {exc}".splitlines()[0]) from exc
            raise

    def _fetchone(self, sql: str, params: tuple[Any, ...] = ()) -> Any:
        with self._db.lock:
            return self._execute(sql, params).fetchone()

    def _fetchall(self, sql: str, params: tuple[Any, ...] = ()) -> list[Any]:
        with self._db.lock:
            return self._execute(sql, params).fetchall()

    def schema_version(self) -> int:
        try:
            row = self._fetchone("SELECT MAX(version) FROM schema_version")
        except StoreError:
            return 0
        return int(row[0] or 0)

    def _check_schema(self) -> None:
        have, want = self.schema_version(), len(migrations())
        if have != want:
            raise StoreError(f"certificate store schema is version {have}, expected {want}"
                             " (open it read-write once to migrate)")

    # -- queries ----------------------------------------------------------------------
    def get(self, serial: int) -> CertificateRecord:
        row = self._fetchone(f"SELECT {_COLUMNS} FROM certificates WHERE serial = ?",
                             (serial_to_text(serial),))
        if row is None:
            raise UnknownCertificateError(f"no certificate with serial {serial:x}")
        return _record(row)

    def certified_keys(self, digests: Sequence[str]) -> dict[str, int]:
        """Which of these key digests (`key_digest`) the store has certified: digest ->
        the serial of one certificate for it."""
        found: dict[str, int] = {}
        unique = sorted(set(digests))
        for start in range(0, len(unique), 500):
            chunk = unique[start:start + 500]
            marks = ", ".join("?" * len(chunk))
            for digest, serial in self._fetchall(
                    f"SELECT key_sha256, serial FROM certificates WHERE key_sha256 IN ({marks})",
                    tuple(chunk)):
                found.setdefault(digest, int(serial, 16))
        return found

    def exists(self, serial: int) -> bool:
        return self._fetchone("SELECT 1 FROM certificates WHERE serial = ?",
                              (serial_to_text(serial),)) is not None

    def status(self, serial: int) -> StatusInfo | None:
        """The status of one certificate, or None when the serial is unknown."""
        row = self._fetchone(
            "SELECT hierarchy, status, reason, revoked_at, status_version, not_after "
            "FROM certificates WHERE serial = ?", (serial_to_text(serial),))
        if row is None:
            return None
        hierarchy, status, reason, revoked_at, version, not_after = row
        return StatusInfo(
            serial=serial, hierarchy=hierarchy, status=CertStatus(status),
            reason=None if reason is None else REASONS_BY_CODE[reason],
            revoked_at=from_epoch(revoked_at), status_version=version,
            not_after=to_datetime(not_after),
        )

    def by_holder(self, holder_id: str) -> list[CertificateRecord]:
        rows = self._fetchall(
            f"SELECT {_COLUMNS} FROM certificates WHERE holder_id = ? ORDER BY issued_at, serial",
            (holder_id,))
        return [_record(r) for r in rows]

    def by_holders(self, holder_ids: Sequence[str]) -> dict[str, list[HolderCertificate]]:
        """The certificates of many holders, without their DER, in set queries (one per
        500 holders): what revoking by notice needs. Each holder's list is in issuance
        order; a holder without certificates has an empty list."""
        out: dict[str, list[HolderCertificate]] = {h: [] for h in holder_ids}
        wanted = sorted(out)
        for i in range(0, len(wanted), _IN_CHUNK):
            part = tuple(wanted[i:i + _IN_CHUNK])
            rows = self._fetchall(
                "SELECT serial, holder_id, profile, issued_at, status, cause FROM certificates"
                f" WHERE holder_id IN ({', '.join('?' * len(part))})", part)
            for serial, holder, profile, issued_at, status, cause in rows:
                out[holder].append(HolderCertificate(
                    serial=int(serial, 16), holder_id=holder, profile=profile,
                    issued_at=to_datetime(issued_at), status=CertStatus(status), cause=cause))
        for held in out.values():
            if len(held) > 1:
                held.sort(key=lambda c: (c.issued_at, c.serial))
        return out

    def count(self) -> int:
        return int(self._fetchone("SELECT COUNT(*) FROM certificates")[0])

    def expiring(self, start: dt.datetime, end: dt.datetime) -> list[CertificateRecord]:
        """Good certificates whose notAfter lies in [start, end): the expiry notices
        (jpki-rules 1.7) are written from these."""
        rows = self._fetchall(
            f"SELECT {_COLUMNS} FROM certificates WHERE status = 'good'"
            " AND not_after >= ? AND not_after < ? ORDER BY not_after, serial",
            (epoch(start), epoch(end)))
        return [_record(r) for r in rows]

    def revoked_between(self, start: dt.datetime, end: dt.datetime) -> list[CertificateRecord]:
        """Certificates revoked or held in [start, end): the daily report counts them by
        reason."""
        rows = self._fetchall(
            f"SELECT {_COLUMNS} FROM certificates WHERE status <> 'good'"
            " AND revoked_at >= ? AND revoked_at < ? ORDER BY revoked_at, serial",
            (epoch(start), epoch(end)))
        return [_record(r) for r in rows]


class CertificateStore(ReadOnlyStore, ResponseWrites, CrlWrites):
    """The read-write store; migrates the schema on open."""

    _read_only = False

    def __init__(self, location: str | Path) -> None:
        super().__init__(location)
        self.migrate()

    def migrate(self) -> int:
        """Apply pending migrations; returns the schema version."""
        with self._db.lock:
            self._execute("CREATE TABLE IF NOT EXISTS schema_version "
                          "(version INTEGER PRIMARY KEY, applied_at BIGINT NOT NULL)")
            current = self.schema_version()
            for version, _name, sql in migrations():
                if version <= current:
                    continue
                with self.transaction():
                    for stmt in split_sql(sql.replace("{blob}", self._db.blob)):
                        self._execute(stmt)
                    if version == _KEYS_SINCE:
                        self._fill_key_digests()
                    self._execute("INSERT INTO schema_version (version, applied_at) VALUES (?, ?)",
                                  (version, epoch(dt.datetime.now(dt.UTC))))
            return self.schema_version()

    def _fill_key_digests(self) -> None:
        """key_sha256 of the certificates recorded before the column existed."""
        while True:
            rows = self._execute("SELECT serial, der FROM certificates WHERE key_sha256 IS NULL"
                                 " LIMIT 1000").fetchall()
            if not rows:
                return
            self._executemany("UPDATE certificates SET key_sha256 = ? WHERE serial = ?", [
                (key_digest(x509.load_der_x509_certificate(bytes(der)).public_key()), serial)
                for serial, der in rows])

    @contextlib.contextmanager
    def transaction(self) -> Iterator[None]:
        """One database transaction (nested calls join the outer one)."""
        with self._db.lock:
            if self._in_tx:
                yield
                return
            self._execute("BEGIN IMMEDIATE" if not self._db.postgres else "BEGIN")
            self._in_tx = True
            try:
                yield
            except BaseException:
                self._in_tx = False
                self._execute("ROLLBACK")
                raise
            self._in_tx = False
            self._execute("COMMIT")

    def _status_changed(self) -> None:
        """In a transaction that changed statuses: move the change counter the OCSP
        responders watch, and on PostgreSQL commit with `synchronous_commit = remote_apply`,
        so where the primary names synchronous standbys (`synchronous_standby_names`) the
        commit returns only once they have applied it, and responders reading them answer
        "revoked" from then on, as those reading the primary do (no standby named: the same
        as a local commit)."""
        if self._db.postgres:
            self._execute("SET LOCAL synchronous_commit = remote_apply")
        self._execute(BUMP_STATUS_CHANGES)

    def add(self, cert: x509.Certificate, *, hierarchy: str, profile: str, holder_id: str,
            shard: int, issued_at: dt.datetime) -> None:
        """Record a newly issued certificate (status good); StoreError if the serial exists."""
        self._insert(cert, hierarchy=hierarchy, profile=profile, holder_id=holder_id,
                     shard=shard, issued_at=issued_at, if_absent=False)

    def add_if_absent(self, cert: x509.Certificate, *, hierarchy: str, profile: str,
                      holder_id: str, shard: int, issued_at: dt.datetime,
                      der: bytes | None = None, key_sha256: str | None = None) -> bool:
        """Record a newly issued certificate unless its serial is taken: True when
        recorded, False (and nothing written) when the serial exists. One statement;
        the primary key makes it race-free, and on PostgreSQL a taken serial does not
        abort the surrounding transaction. `der`: the certificate's DER, and `key_sha256`:
        `key_digest` of its public key, if the caller has them at hand (issuance speed)."""
        return self._insert(cert, hierarchy=hierarchy, profile=profile, holder_id=holder_id,
                            shard=shard, issued_at=issued_at, if_absent=True, der=der,
                            key_sha256=key_sha256)

    def _insert(self, cert: x509.Certificate, *, hierarchy: str, profile: str, holder_id: str,
                shard: int, issued_at: dt.datetime, if_absent: bool,
                der: bytes | None = None, key_sha256: str | None = None) -> bool:
        if not isinstance(cert, x509.Certificate):
            raise TypeError("cert must be an x509.Certificate")
        if not isinstance(holder_id, str) or not holder_id:
            raise ValueError("holder_id must be a non-empty str")
        if der is None:
            der = cert.public_bytes(Encoding.DER)
        elif not isinstance(der, bytes):
            raise TypeError("der must be bytes")
        now = epoch(issued_at)
        sql = _INSERT_IF_ABSENT if if_absent else _INSERT
        with self._db.lock:
            cur = self._execute(
                sql,
                (serial_to_text(cert.serial_number), hierarchy, profile, holder_id, shard, now,
                 epoch(cert.not_valid_before_utc), epoch(cert.not_valid_after_utc), now, der,
                 key_sha256 or key_digest(cert.public_key())),
            )
            return bool(cur.rowcount == 1)

    def revoke(self, serial: int, *, reason: x509.ReasonFlags, cause: str | None = None,
               at: dt.datetime) -> bool:
        """Revoke a certificate (good or on hold). False when it was already revoked."""
        if not isinstance(reason, x509.ReasonFlags):
            raise TypeError("reason must be an x509.ReasonFlags")
        if reason in (x509.ReasonFlags.certificate_hold, x509.ReasonFlags.remove_from_crl):
            raise ValueError(f"{reason.value} is not a revocation reason; use hold()")
        return self._change(serial, CertStatus.REVOKED, REASON_CODES[reason], cause, at,
                            ("good", "hold"))

    def by_holders(self, holder_ids: Sequence[str]) -> dict[str, list[HolderCertificate]]:
        """As `ReadOnlyStore.by_holders`, set-based (`pki.store.bulk`): the holders
        staged in a temporary table, one join."""
        return bulk.holders_certificates(self, holder_ids)

    def revoke_many(self, revocations: Sequence[Revocation]) -> list[bool]:
        """Revoke many certificates in one transaction, with set queries: the same as
        calling `revoke` for each in order (a serial revoked earlier in the list, or
        before, is not changed again). Returns, per revocation, whether it changed the
        status. An unknown serial raises UnknownCertificateError and changes nothing.
        Set-based (`pki.store.bulk`): staged, then one UPDATE."""
        return bulk.revoke_set(self, revocations)

    def _revoke_many_by_rows(self, revocations: Sequence[Revocation]) -> list[bool]:
        """The row-by-row form of `revoke_many` (kept as the reference the tests
        compare the set-based one with)."""
        items = list(revocations)
        for r in items:
            if not isinstance(r, Revocation):
                raise TypeError("revocations must be pki.store.Revocation values")
            if r.reason in (x509.ReasonFlags.certificate_hold, x509.ReasonFlags.remove_from_crl):
                raise ValueError(f"{r.reason.value} is not a revocation reason; use hold()")
        if not items:
            return []
        texts = sorted({serial_to_text(r.serial) for r in items})
        # PostgreSQL: lock the rows, so the statuses read are the ones the updates change
        lock = " FOR UPDATE" if self._db.postgres else ""
        changed: list[bool] = []
        with self.transaction():
            status: dict[str, str] = {}
            for i in range(0, len(texts), _IN_CHUNK):
                part = tuple(texts[i:i + _IN_CHUNK])
                for serial, st in self._execute(
                        "SELECT serial, status FROM certificates WHERE serial IN"
                        f" ({', '.join('?' * len(part))}){lock}", part).fetchall():
                    status[serial] = st
            unknown = [t for t in texts if t not in status]
            if unknown:
                raise UnknownCertificateError(f"no certificate with serial {unknown[0]}")
            updates: list[tuple[Any, ...]] = []
            for r in items:
                text = serial_to_text(r.serial)
                if status[text] in ("good", "hold"):
                    status[text] = "revoked"
                    at = epoch(r.at)
                    updates.append(("revoked", REASON_CODES[r.reason], at, r.cause, at, text))
                    changed.append(True)
                else:
                    changed.append(False)
            updates.sort(key=lambda u: u[-1])  # in key order: neighbouring pages together
            self._executemany(
                "UPDATE certificates SET status = ?, reason = ?, revoked_at = ?, cause = ?,"
                " status_version = status_version + 1, updated_at = ? WHERE serial = ?",
                updates)
            if updates:
                self._status_changed()
        return changed

    def hold(self, serial: int, *, cause: str | None = None, at: dt.datetime) -> bool:
        """Put a good certificate on hold (一時保留). False when it was not good."""
        return self._change(serial, CertStatus.HOLD,
                            REASON_CODES[x509.ReasonFlags.certificate_hold], cause, at, ("good",))

    def _change(self, serial: int, status: CertStatus, reason: int, cause: str | None,
                at: dt.datetime, allowed_from: tuple[str, ...]) -> bool:
        text = serial_to_text(serial)
        # PostgreSQL (READ COMMITTED): lock the row while reading it, so a revocation
        # another connection is committing is waited for and seen, never overwritten;
        # the UPDATE re-checks the status too (SQLite: BEGIN IMMEDIATE serialises writers)
        lock = " FOR UPDATE" if self._db.postgres else ""
        allowed = ", ".join("?" * len(allowed_from))
        with self.transaction():
            row = self._execute(f"SELECT status FROM certificates WHERE serial = ?{lock}",
                                (text,)).fetchone()
            if row is None:
                raise UnknownCertificateError(f"no certificate with serial {serial:x}")
            if row[0] not in allowed_from:
                return False
            cur = self._execute(
                "UPDATE certificates SET status = ?, reason = ?, revoked_at = ?, cause = ?,"
                " status_version = status_version + 1, updated_at = ? WHERE serial = ?"
                f" AND status IN ({allowed})",
                (status.value, reason, epoch(at), cause, epoch(at), text, *allowed_from))
            if cur.rowcount != 1:
                return False
            self._status_changed()
            return True

    def set_successor(self, serial: int, successor: int) -> None:
        """Link a certificate to the one that replaces it (証明書新旧紐付け)."""
        with self.transaction():
            for s in (serial, successor):
                if not self.exists(s):
                    raise UnknownCertificateError(f"no certificate with serial {s:x}")
            self._execute("UPDATE certificates SET successor = ? WHERE serial = ?",
                          (serial_to_text(successor), serial_to_text(serial)))


def open_store(location: str | Path) -> CertificateStore:
    """Open (creating and migrating if needed) the read-write store at a path or URL."""
    return CertificateStore(location)


def open_readonly_store(location: str | Path) -> ReadOnlyStore:
    """Open the store read-only (for CRL and OCSP)."""
    return ReadOnlyStore(location)


__all__ = ["CertificateStore", "ReadOnlyStore", "is_postgres_url", "key_digest", "migrations",
           "open_readonly_store", "open_store"]
