"""Set-based reads and writes of the certificate store for revocation by notice.

A batch of notices reads the certificates of thousands of holders and revokes thousands
of certificates. Here each is a few statements, whatever the batch size: the keys are
staged in a temporary table (COPY on PostgreSQL, one multi-row executemany on SQLite),
then one join reads the holders' certificates, and one `UPDATE … FROM` revokes every
certificate still good or on hold, returning the serials it changed. The staging
tables are the connection's own (TEMP), emptied before and after each use.

Only the read-write store uses these (a read-only PostgreSQL session may not create
even a temporary table); `CertificateStore.by_holders` and `.revoke_many` call them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from cryptography import x509

from pki.errors import UnknownCertificateError
from pki.store.records import (
    REASON_CODES,
    CertStatus,
    HolderCertificate,
    Revocation,
    epoch,
    serial_to_text,
    to_datetime,
)

_HOLDERS = "bulk_holders"
_REVOCATIONS = "bulk_revocations"
_TABLES = {
    _HOLDERS: "holder_id TEXT PRIMARY KEY",
    _REVOCATIONS: ("serial TEXT PRIMARY KEY, reason INTEGER NOT NULL, at BIGINT NOT NULL,"
                   " cause TEXT"),
}


# READ COMMITTED (PostgreSQL) re-checks the status of a row another transaction changed
# meanwhile, so a certificate is revoked by one transaction only. PostgreSQL joins the
# analysed staging table; SQLite's UPDATE … FROM would scan every certificate (its planner
# puts the target table outside), so there the staged serials drive primary-key probes.
_REVOKE_POSTGRES = (
    "UPDATE certificates SET status = 'revoked', reason = r.reason, revoked_at = r.at,"
    " cause = r.cause, status_version = status_version + 1, updated_at = r.at"
    f" FROM {_REVOCATIONS} r WHERE certificates.serial = r.serial"
    " AND certificates.status IN ('good', 'hold') RETURNING certificates.serial")
_REVOKE_SQLITE = (
    "UPDATE certificates SET status = 'revoked', status_version = status_version + 1,"
    " (reason, revoked_at, cause, updated_at) ="
    f" (SELECT r.reason, r.at, r.cause, r.at FROM {_REVOCATIONS} r"
    " WHERE r.serial = certificates.serial)"
    f" WHERE serial IN (SELECT serial FROM {_REVOCATIONS})"
    " AND status IN ('good', 'hold') RETURNING serial")


def _stage(store: Any, table: str, columns: tuple[str, ...],
           rows: Sequence[tuple[Any, ...]]) -> None:
    """Empty the connection's TEMP `table` and load `rows` into it (inside the caller's
    transaction)."""
    store._execute(f"CREATE TEMP TABLE IF NOT EXISTS {table} ({_TABLES[table]})")
    store._execute(f"DELETE FROM {table}")
    if not rows:
        return
    db = store._db
    if db.postgres:
        with db.conn.cursor() as cur, cur.copy(
                f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
        # a TEMP table has no statistics until analysed: without them the planner may
        # scan all the certificates instead of probing their primary key per staged row
        store._execute(f"ANALYZE {table}")
    else:
        store._executemany(f"INSERT INTO {table} ({', '.join(columns)})"
                           f" VALUES ({', '.join('?' * len(columns))})", rows)


def _clear(store: Any, table: str) -> None:
    store._execute(f"DELETE FROM {table}")


def holders_certificates(store: Any, holder_ids: Sequence[str]
                         ) -> dict[str, list[HolderCertificate]]:
    """The certificates of many holders, without their DER: stage the holders, one join.
    Each holder's list is in issuance order; a holder without certificates has []."""
    out: dict[str, list[HolderCertificate]] = {h: [] for h in holder_ids}
    if not out:
        return out
    with store.transaction():
        _stage(store, _HOLDERS, ("holder_id",), [(h,) for h in sorted(out)])
        # CROSS JOIN: SQLite then loops over the staged holders and probes the holder
        # index (its planner, without statistics, would scan every certificate instead);
        # PostgreSQL plans it as any inner join
        rows = store._execute(
            "SELECT c.serial, c.holder_id, c.profile, c.issued_at, c.status, c.cause"
            f" FROM {_HOLDERS} h CROSS JOIN certificates c WHERE c.holder_id = h.holder_id"
        ).fetchall()
        _clear(store, _HOLDERS)
    statuses = {s.value: s for s in CertStatus}
    for serial, holder, profile, issued_at, status, cause in rows:
        out[holder].append(HolderCertificate(
            serial=int(serial, 16), holder_id=holder, profile=profile,
            issued_at=to_datetime(issued_at), status=statuses[status], cause=cause))
    for held in out.values():
        if len(held) > 1:
            held.sort(key=lambda c: (c.issued_at, c.serial))
    return out


def revoke_set(store: Any, revocations: Sequence[Revocation]) -> list[bool]:
    """Revoke many certificates as `revoke` would one by one, in order (the first
    revocation of a serial wins; a certificate already revoked is not changed), in one
    transaction: stage the first revocation of each serial, check they all exist, one
    UPDATE of those good or on hold. Per revocation, whether it changed the status. An
    unknown serial raises UnknownCertificateError and changes nothing."""
    items = list(revocations)
    for r in items:
        if not isinstance(r, Revocation):
            raise TypeError("revocations must be pki.store.Revocation values")
        if r.reason in (x509.ReasonFlags.certificate_hold, x509.ReasonFlags.remove_from_crl):
            raise ValueError(f"{r.reason.value} is not a revocation reason; use hold()")
    if not items:
        return []
    first: dict[str, int] = {}  # serial text -> index of its first revocation
    texts = [serial_to_text(r.serial) for r in items]
    for i, text in enumerate(texts):
        first.setdefault(text, i)
    staged = sorted((text, REASON_CODES[items[i].reason], epoch(items[i].at), items[i].cause)
                    for text, i in first.items())
    with store.transaction():
        _stage(store, _REVOCATIONS, ("serial", "reason", "at", "cause"), staged)
        unknown = store._execute(
            f"SELECT r.serial FROM {_REVOCATIONS} r WHERE NOT EXISTS"
            " (SELECT 1 FROM certificates c WHERE c.serial = r.serial)"
            " ORDER BY r.serial LIMIT 1").fetchone()
        if unknown is not None:
            raise UnknownCertificateError(f"no certificate with serial {unknown[0]}")
        changed = {row[0] for row in store._execute(
            _REVOKE_POSTGRES if store._db.postgres else _REVOKE_SQLITE).fetchall()}
        if changed:
            store._status_changed()
        _clear(store, _REVOCATIONS)
    return [first[text] == i and text in changed for i, text in enumerate(texts)]
