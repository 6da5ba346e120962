"""The hash-chained audit log over the issuance store.

Entry hash: SHA-256 (hex) of the canonical JSON (keys sorted, no whitespace, UTF-8,
non-ASCII kept) of the object
    {"seq", "at", "operator", "action", "subject", "outcome", "detail", "prev_hash"}
where `prev_hash` is the previous entry's hash, or 64 zeros for seq 1. Sequence numbers
start at 1 with no gaps. The database refuses UPDATE and DELETE on the table; `verify`
catches whoever bypasses that.

Keyed chain (schema version 2): `mac` = hex HMAC-SHA256, made by the audit key in the
HSM (see `issuance.audit.keyer`), over `MAC_CONTEXT || hash`. A plain hash can be
recomputed by anyone who can write the database; the MAC cannot. So with the key,
`verify` also finds a re-chained log (every hash recomputed after an edit) and an
appended forged entry. Entries written before the center had its audit key carry no
MAC; the first keyed entry covers them (its hash chains them all), and every entry
after it must be keyed.

Dropping entries from the *end* of the log leaves a valid shorter chain: record the
head (`seq:hash`, printed by `audit verify`) and pass it back as `expected_head`;
any log that extends it is accepted, one where it is missing or different is not.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from issuance.audit.keyer import Keyer, current_keyer, keyer_available
from issuance.audit.operator import acting_role, check_operator
from issuance.errors import IssuanceError
from issuance.storage import Database, Transaction

GENESIS_HASH = "0" * 64
MAC_CONTEXT = b"mynacard audit entry v1\x00"
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
    role: str | None = None,
) -> str:
    body: dict[str, Any] = {
        "seq": seq,
        "at": at,
        "operator": operator,
        "action": action,
        "subject": subject,
        "outcome": outcome,
        "detail": dict(detail),
        "prev_hash": prev_hash,
    }
    if role is not None:  # entries from before version 3 carry none
        body["role"] = role
    return hashlib.sha256(canonical_json(body)).hexdigest()


def mac_input(digest: str) -> bytes:
    """What the MAC of an entry is computed over: a fixed context and the entry hash."""
    return MAC_CONTEXT + digest.encode("ascii")


def head_ref(seq: int, digest: str) -> str:
    """The head as an operator records it: `seq:hash`."""
    return f"{seq}:{digest}"


def parse_head(text: str) -> tuple[int | None, str]:
    """`seq:hash` (or a bare hash, as printed before version 2)."""
    seq, sep, digest = text.strip().partition(":")
    if not sep:
        return None, seq.lower()
    try:
        number = int(seq)
    except ValueError:
        raise AuditError(f"not a head (SEQ:HASH): {text!r}") from None
    return number, digest.lower()


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
    mac: str | None = None
    role: str | None = None

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
            role=self.role,
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
            "mac": self.mac,
            "role": self.role,
        }


@dataclass(frozen=True)
class Problem:
    seq: int
    # edited | removed | reordered | broken | forged | unkeyed | unverifiable
    # | truncated | diverged
    kind: str
    message: str


@dataclass
class Verification:
    count: int = 0
    head: str = GENESIS_HASH
    head_seq: int = 0
    keyed: bool = False  # MACs were checked with the audit key
    macs: int = 0  # entries that carry a MAC
    problems: list[Problem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def head_ref(self) -> str:
        return head_ref(self.head_seq, self.head)

    def to_json(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "entries": self.count,
            "head": self.head_ref,
            "head_hash": self.head,
            "head_seq": self.head_seq,
            "keyed": self.keyed,
            "macs": self.macs,
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
    keyer: Keyer | None = None,
    role: str | None = None,
) -> AuditEntry:
    """Append one entry inside `tx` (so an action and its record commit together).

    The entry is keyed by `keyer`, else by the keyer installed for the running command
    (`issuance.audit.keyer.keyed_by`); without either it carries no MAC. The role is
    `role`, else the one the root command authenticated (`issuance.audit.operator.acting`).
    """
    operator = check_operator(operator)
    if role is None:
        role = acting_role(operator)
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
        outcome=outcome, detail=detail, prev_hash=prev, role=role,
    )
    active = keyer_available(keyer if keyer is not None else current_keyer())
    mac = active.mac(mac_input(digest)).hex() if active is not None else None
    tx.execute(
        "INSERT INTO audit_log (seq, at, operator, action, subject, outcome, detail,"
        " prev_hash, hash, mac, role) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (seq, stamp, operator, action, subject, outcome,
         canonical_json(detail).decode("utf-8"), prev, digest, mac, role),
    )
    return AuditEntry(seq, stamp, operator, action, subject, outcome, detail, prev, digest, mac,
                      role)


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
        str(row["hash"]), str(row["mac"]) if row.get("mac") else None,
        str(row["role"]) if row.get("role") is not None else None,
    )


class AuditLog:
    """The audit log of one database. Time is injected through `clock`; the keyer
    (`keyer=`, else the one installed for the running command) keys new entries and
    checks the MACs in `verify`."""

    def __init__(self, db: Database, *, clock: Clock = _utc_now,
                 keyer: Keyer | None = None) -> None:
        self.db = db
        self.clock = clock
        self.keyer = keyer

    def _keyer(self) -> Keyer | None:
        return keyer_available(self.keyer if self.keyer is not None else current_keyer())

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
                                outcome=outcome, detail=detail, at=self.clock(),
                                keyer=self.keyer)
        with self.db.transaction() as own:
            return append_entry(own, operator=operator, action=action, subject=subject,
                                outcome=outcome, detail=detail, at=self.clock(),
                                keyer=self.keyer)

    def last_seq(self) -> int:
        """The seq of the newest entry (0 when empty)."""
        with self.db.transaction() as tx:
            row = tx.query_one("SELECT max(seq) AS seq FROM audit_log")
        return int(row["seq"]) if row and row["seq"] is not None else 0

    def entries(self, *, since: int = 1, limit: int | None = None) -> list[AuditEntry]:
        sql = "SELECT * FROM audit_log WHERE seq >= ? ORDER BY seq"
        params: list[Any] = [since]
        if limit is not None:
            sql += " LIMIT ?"
            params.append(limit)
        with self.db.transaction() as tx:
            return [_from_row(r) for r in tx.query(sql, params)]

    def verify(self, *, expected_head: str | None = None) -> Verification:
        """Walk the chain from seq 1; report every entry that breaks it.

        Read-only: verifying writes nothing, so it never changes what it checks.
        """
        keyer = self._keyer()
        entries = self.entries()
        result = Verification(count=len(entries), keyed=keyer is not None)
        by_own_hash = {e.hash: e for e in entries}
        prev_hash = GENESIS_HASH
        expected_seq = 1
        first_keyed: int | None = None
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
            self._check_mac(entry, keyer, first_keyed, result)
            if entry.mac and first_keyed is None:
                first_keyed = entry.seq
            prev_hash = entry.hash
            expected_seq = entry.seq + 1
        result.head = prev_hash
        result.head_seq = entries[-1].seq if entries else 0
        if keyer is not None and entries and first_keyed is None:
            result.problems.append(Problem(
                entries[-1].seq, "unkeyed",
                "no entry carries a MAC although the center has an audit key: the log was "
                "rewritten without the key, or nothing was recorded since the key was made "
                "(`mynacard center init` records a keyed entry)"))
        if keyer is None and result.macs:
            result.problems.append(Problem(
                first_keyed or 0, "unverifiable",
                f"{result.macs} entries carry a MAC but there is no audit key to check them "
                "(run it where the center's HSM is configured)"))
        if expected_head is not None:
            self._check_head(expected_head, entries, by_own_hash, result)
        return result

    @staticmethod
    def _check_mac(entry: AuditEntry, keyer: Keyer | None, first_keyed: int | None,
                   result: Verification) -> None:
        if entry.mac:
            result.macs += 1
            if keyer is None:
                return
            try:
                tag = bytes.fromhex(entry.mac)
            except ValueError:
                tag = b""
            if not keyer.check(mac_input(entry.hash), tag):
                result.problems.append(Problem(
                    entry.seq, "forged",
                    f"seq {entry.seq}: its MAC does not match (written or rewritten without "
                    "the audit key)"))
        elif first_keyed is not None:
            result.problems.append(Problem(
                entry.seq, "unkeyed",
                f"seq {entry.seq} has no MAC but follows keyed seq {first_keyed} (appended "
                "or rewritten without the audit key)"))

    @staticmethod
    def _check_head(expected: str, entries: list[AuditEntry],
                    by_own_hash: dict[str, AuditEntry], result: Verification) -> None:
        """The log must extend the recorded head: it holds that very entry at its seq."""
        seq, digest = parse_head(expected)
        if seq is None:  # a bare hash: find it wherever it is
            known = by_own_hash.get(digest)
            if known is None:
                result.problems.append(Problem(
                    result.head_seq, "truncated",
                    "the expected head is not in the log (truncated?)"))
            return
        if seq == 0 and digest == GENESIS_HASH:
            return  # recorded when the log was empty: every log extends it
        at = next((e for e in entries if e.seq == seq), None)
        if at is None:
            result.problems.append(Problem(
                seq, "truncated",
                f"the recorded head seq {seq} is not in the log (it ends at seq "
                f"{result.head_seq}): entries were removed from its end"))
        elif at.hash != digest:
            result.problems.append(Problem(
                seq, "diverged",
                f"seq {seq} is not the entry recorded as the head: the log was rewritten "
                "from there"))

    @staticmethod
    def _original_seq(entry: AuditEntry, count: int, window: int = 1000) -> int | None:
        """The seq under which this entry's hash was written, if it sits elsewhere."""
        low = max(1, entry.seq - window)
        high = max(count, entry.seq) + window
        for seq in range(low, high + 1):
            if seq != entry.seq and entry.computed_hash(seq) == entry.hash:
                return seq
        return None
