"""Notice intake: store first, then acknowledge; idempotent by (sender, source, id); never lose
one.

Each intake stores for one sender (`local` for the file intake, `notices ingest`; an HTTP
sender's name for `notices serve`) and accepts only the sources that sender may send; a
notice of another source is rejected for that line, with the reason. The sender is part
of a stored notice's key, so two senders may use the same id without touching each
other's notices.

`NoticeIntake.accept_lines` takes JSON Lines text in batches. Every line of a batch is
written in one transaction, and a line's result is returned (acknowledged) only after
that transaction committed. Outcomes:

- `accepted`: stored, waiting to be applied by `issuance.notices.processor`;
- `duplicate`: a notice of this sender with this (source, id) and the same content is
  already stored; nothing changes;
- `unmatched`: well formed, but no resident has the resident code: kept (state
  unmatched) and listed; `NoticeProcessor` re-matches it once the resident is loaded;
- `rejected`: malformed (not UTF-8, not JSON, schema or semantic failure) or a reused
  id with different content: the raw text is kept with the reason under the id
  `rejected:<sha256 of the text>` (source `-`), so nothing is lost and a corrected
  notice with the same id is accepted normally.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import IO, Any, Literal

from issuance.notices.claims import bucket_of
from issuance.notices.migrations import migrate_notices
from issuance.notices.model import (
    LOCAL_SENDER,
    MAX_LINE,
    Notice,
    NoticeError,
    Source,
    claimed_identity,
    parse_notice,
)
from issuance.notices.queries import query_in, stored_notices
from issuance.notices.staging import insert_notices
from issuance.registry.store import hold_registry_loads
from issuance.storage import Database, SqliteDatabase, Transaction

Outcome = Literal["accepted", "duplicate", "unmatched", "rejected"]
Clock = Callable[[], datetime]
REJECTED_SOURCE = "-"
BATCH = 500
BULK_BATCH = 5000  # for large files: fewer commits, less WAL rewriting of hot index pages
CACHE_KIB = 256 * 1024  # SQLite page cache of the intake's connection


def _utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class IntakeResult:
    line: int
    outcome: Outcome
    source: str | None
    id: str | None
    reason: str | None = None
    stored_as: str | None = None  # the id a rejected line is kept under

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"line": self.line, "outcome": self.outcome,
                               "source": self.source, "id": self.id}
        if self.reason:
            out["reason"] = self.reason
        if self.stored_as:
            out["stored_as"] = self.stored_as
        return out


@dataclass
class IntakeReport:
    counts: dict[str, int] = field(default_factory=lambda: {
        "accepted": 0, "duplicate": 0, "unmatched": 0, "rejected": 0})
    problems: list[IntakeResult] = field(default_factory=list)  # everything not accepted
    lines: int = 0

    def add(self, result: IntakeResult) -> None:
        self.counts[result.outcome] += 1
        if result.outcome != "accepted":
            self.problems.append(result)

    def to_json(self) -> dict[str, Any]:
        return {"lines": self.lines, **self.counts,
                "problems": [p.to_json() for p in self.problems]}


def _decode(raw: str | bytes) -> str:
    """The line as text that any database stores: invalid UTF-8, lone surrogates and
    NUL characters are written as backslash escapes."""
    if isinstance(raw, bytes):
        text = raw.decode("utf-8", errors="backslashreplace")
    else:
        text = raw.encode("utf-8", errors="backslashreplace").decode("utf-8")
    return text.replace("\x00", "\\x00")


def bounded_lines(stream: IO[bytes], limit: int = MAX_LINE) -> Iterator[bytes]:
    """The lines of a binary stream, one item per line (so line numbers stay right),
    none held longer than `limit` + 1 bytes: the rest of an over-long line is skipped,
    and what is kept (longer than `limit`) is rejected as too long by `parse_notice`."""
    while True:
        line = stream.readline(limit + 2)
        if not line:
            return
        if len(line) > limit + 1 and not line.endswith(b"\n"):
            while True:  # drop the rest of this line, a bounded piece at a time
                rest = stream.readline(limit + 2)
                if not rest or rest.endswith(b"\n"):
                    break
            line = line[: limit + 1]
        yield line


def rejected_id(raw: str | bytes) -> str:
    data = raw if isinstance(raw, bytes) else raw.encode("utf-8", errors="surrogatepass")
    return "rejected:" + hashlib.sha256(data).hexdigest()


class NoticeIntake:
    """Stores notices in the issuance database (SQLite or PostgreSQL)."""

    def __init__(self, db: Database, *, clock: Clock = _utc_now, batch: int = BATCH,
                 sender: str = LOCAL_SENDER, sources: Iterable[str] | None = None) -> None:
        """Store for `sender`, accepting the `sources` it may send (default: all)."""
        if batch < 1:
            raise ValueError("batch must be at least 1")
        self.sender = sender
        self.sources = frozenset(s.value for s in Source) if sources is None \
            else frozenset(sources)
        self.db = db
        self.clock = clock
        self.batch = batch
        migrate_notices(db)
        if isinstance(db, SqliteDatabase):
            # large files of notices insert all over the notice indexes
            with db.transaction() as tx:
                tx.execute(f"PRAGMA cache_size = -{CACHE_KIB}")

    def accept(self, text: str | bytes) -> IntakeResult:
        """Store one notice (its own transaction) and return the outcome."""
        return next(iter(self._store_batch([(1, text)])))

    def accept_lines(
        self,
        lines: Iterable[str | bytes],
        *,
        progress: Callable[[IntakeReport], None] | None = None,
    ) -> IntakeReport:
        """Store every non-blank line (numbered from 1), a batch per transaction."""
        report = IntakeReport()
        for chunk in _chunks(lines, self.batch):
            for result in self._store_batch(chunk):
                report.add(result)
            report.lines = chunk[-1][0]
            if progress is not None:
                progress(report)
        return report

    def _store_batch(self, chunk: list[tuple[int, str | bytes]]) -> list[IntakeResult]:
        """Parse the chunk, then store it in one transaction with set queries (what is
        stored already, which residents exist) and set-based inserts. The results are
        returned (acknowledged) only once the commit succeeded."""
        received = self.clock().astimezone(UTC).isoformat(timespec="microseconds")
        parsed: list[tuple[int, str | bytes, Notice | NoticeError]] = []
        for line, raw in chunk:
            try:
                parsed.append((line, raw, parse_notice(raw)))
            except NoticeError as exc:
                parsed.append((line, raw, exc))
            except Exception as exc:  # noqa: BLE001 - every line is hostile: reject, go on
                parsed.append((line, raw, NoticeError(
                    f"cannot be parsed: {type(exc).__name__}")))
        good = [p for _l, _r, p in parsed if isinstance(p, Notice)]
        results: list[IntakeResult] = []
        rows: list[tuple[Any, ...]] = []
        rejects: list[tuple[Any, ...]] = []
        with self.db.transaction() as tx:
            # one intake of this sender at a time (PostgreSQL; SQLite's BEGIN IMMEDIATE
            # already is): what is stored is read and written as one step, so a retry
            # racing its first attempt finds its notices stored, instead of failing on
            # the key and costing the batch's other lines
            tx.lock(f"mynacard.notices.intake:{self.sender}")
            # a notice stored unmatched is seen by the re-match a later load triggers
            hold_registry_loads(tx)
            stored = _stored_payloads(tx, self.sender, [(n.source.value, n.id) for n in good])
            known = _known_residents(tx, [n.resident_code for n in good])
            for line, raw, item in parsed:
                if isinstance(item, NoticeError):
                    text = _decode(raw).rstrip("\r\n")
                    source, nid = claimed_identity(text)
                    results.append(_rejected(rejects, line, raw, text, item.reason, received,
                                             source, nid))
                    continue
                source = item.source.value
                if source not in self.sources:
                    results.append(_rejected(
                        rejects, line, raw, _decode(raw).rstrip("\r\n"),
                        f"sender {self.sender!r} may not send {source} notices", received,
                        source, item.id))
                    continue
                payload = item.canonical()
                have = stored.get((source, item.id))
                if have is not None:  # stored before, or earlier in this chunk
                    if have == payload:
                        results.append(IntakeResult(line, "duplicate", source, item.id))
                    else:
                        results.append(_rejected(
                            rejects, line, raw, _decode(raw).rstrip("\r\n"),
                            "id already used by a different notice from this sender and source",
                            received, source, item.id))
                    continue
                stored[(source, item.id)] = payload
                reason = None if item.resident_code in known else NO_RESIDENT
                state: Outcome = "accepted" if reason is None else "unmatched"
                rows.append((self.sender, source, item.id, item.kind.value, item.resident_code,
                             item.effective_date.isoformat(), received, payload, state, reason,
                             bucket_of(item.resident_code)))
                results.append(IntakeResult(line, state, source, item.id, reason))
            insert_notices(tx, rows)
            if rejects:
                tx.executemany(
                    "INSERT INTO notices (sender, source, id, received_at, payload, state, reason)"
                    " VALUES (?, ?, ?, ?, ?, 'rejected', ?)"
                    " ON CONFLICT (sender, source, id) DO NOTHING",
                    [(self.sender, *r) for r in rejects])
        return results


NO_RESIDENT = "no resident with this resident code"


def _stored_payloads(tx: Transaction, sender: str,
                     keys: list[tuple[str, str]]) -> dict[tuple[str, str], str]:
    """The payloads `sender` already stored under these (source, id), in set queries."""
    return {(source, nid): row["payload"] for (_s, source, nid), row in stored_notices(
        tx, [(sender, source, nid) for source, nid in keys], "payload").items()}


def _known_residents(tx: Transaction, codes: list[str]) -> set[str]:
    return {row["resident_code"] for row in query_in(
        tx, "SELECT resident_code FROM residents WHERE resident_code IN ({values})", codes)}


def _rejected(rejects: list[tuple[Any, ...]], line: int, raw: str | bytes, text: str,
              reason: str, received: str, source: str | None, nid: str | None) -> IntakeResult:
    """Queue the raw text for storing as rejected (with the reason) and say so."""
    stored_as = rejected_id(raw)
    rejects.append((REJECTED_SOURCE, stored_as, received, text, reason))
    return IntakeResult(line, "rejected", source, nid, reason, stored_as)


def _chunks(lines: Iterable[str | bytes],
            size: int) -> Iterator[list[tuple[int, str | bytes]]]:
    chunk: list[tuple[int, str | bytes]] = []
    for number, raw in enumerate(lines, start=1):
        if number == 1:  # a byte-order mark some editors put first is not the notice's
            raw = raw.removeprefix(b"\xef\xbb\xbf") if isinstance(raw, bytes) \
                else raw.removeprefix("\ufeff")
        if not raw.strip():
            continue
        chunk.append((number, raw))
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk
