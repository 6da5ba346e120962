"""The hash-chained audit log over the issuance store.

Entry hash: SHA-256 (hex) of the canonical JSON (keys sorted, no whitespace, UTF-8,
non-ASCII kept) of the object
    {"seq", "at", "operator", "action", "subject", "outcome", "detail", "prev_hash"}
where `prev_hash` is the previous entry's hash, or 64 zeros for seq 1. Sequence numbers
start at 1 with no gaps. The database refuses UPDATE and DELETE on the table; `verify`
catches whoever bypasses that. Dropping entries from the *end* of the log leaves a
valid shorter chain: pass the last known head (`expected_head`) to detect it.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from issuance.audit.operator import check_operator
from issuance.errors import IssuanceError
from issuance.storage import Database, Transaction

GENESIS_HASH = "0" * 64
Clock = Callable[[], datetime]


class AuditError(IssuanceError):
    """The audit log could not be written or read."""


def _utc_now() -> datetime:
    return datetime.now(UTC)


def canonical_json(value: Any) -> bytes:
    return json.dumps(
        value, sort_keys=True, separators=(",", ":"), ensure_ascii=False
    ).encode("utf-8")


def entry_hash(
    *,
    seq: int,
    at: str,
    operator: str,
    action: str,
    subject: str,
    outcome: str,
    detail: Mapping[str, Any],
    prev_hash: str,
) -> str:
    body = {
        "seq": seq,
        "at": at,
        "operator": operator,
        "action": action,
        "subject": subject,
        "outcome": outcome,
        "detail": dict(detail),
        "prev_hash": prev_hash,
    }
    return hashlib.sha256(canonical_json(body)).hexdigest()


@dataclass(frozen=True)
class AuditEntry:
    seq: int
    at: str
    operator: str
    action: str
    subject: str
    outcome: str
    detail: dict[str, Any]
    prev_hash: str
    hash: str

    def computed_hash(self, seq: int | None = None) -> str:
        return entry_hash(
            seq=self.seq if seq is None else seq,
            at=self.at,
            operator=self.operator,
            action=self.action,
            subject=self.subject,
            outcome=self.outcome,
            detail=self.detail,
            prev_hash=self.prev_hash,
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "seq": self.seq,
            "at": self.at,
            "operator": self.operator,
            "action": self.action,
            "subject": self.subject,
            "outcome": self.outcome,
            "detail": self.detail,
            "prev_hash": self.prev_hash,
            "hash": self.hash,
        }


@dataclass(frozen=True)
class Problem:
    seq: int
    kind: str  # edited | removed | reordered | broken | truncated
    message: str


@dataclass
class Verification:
    count: int = 0
    head: str = GENESIS_HASH
    problems: list[Problem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def to_json(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "entries": self.count,
            "head": self.head,
            "problems": [
                {"seq": p.seq, "kind": p.kind, "message": p.message} for p in self.problems
            ],
        }


def append_entry(
    tx: Transaction,
    *,
    operator: str,
    action: str,
    subject: str,
    outcome: str,
    detail: Mapping[str, Any] | None = None,
    at: datetime,
) -> AuditEntry:
    """Append one entry inside `tx` (so an action and its record commit together)."""
    operator = check_operator(operator)
    if not action or not outcome:
        raise AuditError("an audit entry needs an action and an outcome")
    if at.tzinfo is None:
        raise AuditError("audit times must be timezone-aware")
    detail = dict(detail or {})
    tx.lock("mynacard.audit")
    last = tx.query_one("SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1")
    seq = int(last["seq"]) + 1 if last else 1
    prev = str(last["hash"]) if last else GENESIS_HASH
    stamp = at.astimezone(UTC).isoformat(timespec="microseconds")
    digest = entry_hash(
        seq=seq, at=stamp, operator=operator, action=action, subject=subject,
        outcome=outcome, detail=detail, prev_hash=prev,
    )
    tx.execute(
        "INSERT INTO audit_log (seq, at, operator, action, subject, outcome, detail,"
        " prev_hash, hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (seq, stamp, operator, action, subject, outcome,
         canonical_json(detail).decode("utf-8"), prev, digest),
    )
    return AuditEntry(seq, stamp, operator, action, subject, outcome, detail, prev, digest)


def _from_row(row: Mapping[str, Any]) -> AuditEntry:
    try:
        detail = json.loads(row["detail"])
    except (TypeError, json.JSONDecodeError):
        detail = {"unparseable": str(row["detail"])}
    if not isinstance(detail, dict):
        detail = {"unparseable": str(row["detail"])}
    return AuditEntry(
        int(row["seq"]), str(row["at"]), str(row["operator"]), str(row["action"]),
        str(row["subject"]), str(row["outcome"]), detail, str(row["prev_hash"]),
        str(row["hash"]),
    )


class AuditLog:
    """The audit log of one database. Time is injected through `clock`."""

    def __init__(self, db: Database, *, clock: Clock = _utc_now) -> None:
        self.db = db
        self.clock = clock

    def append(
        self,
        *,
        operator: str,
        action: str,
        subject: str,
        outcome: str,
        detail: Mapping[str, Any] | None = None,
        tx: Transaction | None = None,
    ) -> AuditEntry:
        if tx is not None:
            return append_entry(tx, operator=operator, action=action, subject=subject,
                                outcome=outcome, detail=detail, at=self.clock())
        with self.db.transaction() as own:
            return append_entry(own, operator=operator, action=action, subject=subject,
                                outcome=outcome, detail=detail, at=self.clock())

    def entries(self, *, since: int = 1, limit: int | None = None) -> list[AuditEntry]:
        sql = "SELECT * FROM audit_log WHERE seq >= ? ORDER BY seq"
        params: list[Any] = [since]
        if limit is not None:
            sql += " LIMIT ?"
            params.append(limit)
        with self.db.transaction() as tx:
            return [_from_row(r) for r in tx.query(sql, params)]

    def verify(self, *, expected_head: str | None = None) -> Verification:
        """Walk the chain from seq 1; report every entry that breaks it."""
        entries = self.entries()
        result = Verification(count=len(entries))
        by_own_hash = {e.hash: e for e in entries}
        prev_hash = GENESIS_HASH
        expected_seq = 1
        for entry in entries:
            if entry.seq != expected_seq:
                gap = (f"seq {expected_seq}" if entry.seq == expected_seq + 1
                       else f"seqs {expected_seq}–{entry.seq - 1}")
                result.problems.append(Problem(
                    entry.seq, "removed", f"{gap} missing before seq {entry.seq}"))
            computed = entry.computed_hash()
            if computed != entry.hash:
                moved = self._original_seq(entry, len(entries))
                if moved is not None:
                    result.problems.append(Problem(
                        entry.seq, "reordered",
                        f"seq {entry.seq} holds the entry written as seq {moved}"))
                else:
                    result.problems.append(Problem(
                        entry.seq, "edited", f"seq {entry.seq} does not match its hash"))
            elif entry.prev_hash != prev_hash and entry.seq == expected_seq:
                before = by_own_hash.get(entry.prev_hash)
                if before is not None:
                    problem = Problem(entry.seq, "reordered",
                                      f"seq {entry.seq} was written after seq {before.seq}, "
                                      f"not after seq {entry.seq - 1}")
                else:
                    problem = Problem(entry.seq, "broken",
                                      f"seq {entry.seq} does not follow seq {entry.seq - 1}: "
                                      "an entry before it was rewritten or removed")
                result.problems.append(problem)
            prev_hash = entry.hash
            expected_seq = entry.seq + 1
        result.head = prev_hash
        if expected_head is not None and expected_head != result.head:
            known = by_own_hash.get(expected_head)
            message = (f"entries after seq {known.seq} are not the ones recorded"
                       if known else "the expected head is not in the log (truncated?)")
            result.problems.append(Problem(
                known.seq if known else result.count, "truncated", message))
        return result

    @staticmethod
    def _original_seq(entry: AuditEntry, count: int, window: int = 1000) -> int | None:
        """The seq under which this entry's hash was written, if it sits elsewhere."""
        low = max(1, entry.seq - window)
        high = max(count, entry.seq) + window
        for seq in range(low, high + 1):
            if seq != entry.seq and entry.computed_hash(seq) == entry.hash:
                return seq
        return None
