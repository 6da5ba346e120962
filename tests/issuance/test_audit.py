"""The hash-chained audit log: tampering is found and located, on both databases."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from issuance.audit import GENESIS_HASH, AuditLog, OperatorError, resolve_operator
from issuance.audit.log import entry_hash
from issuance.storage import Database, StorageError


def _ticking() -> object:
    start = datetime(2026, 11, 20, 1, 0, tzinfo=UTC)
    state = {"n": 0}

    def clock() -> datetime:
        state["n"] += 1
        return start + timedelta(seconds=state["n"])

    return clock


def _log_with(db: Database, n: int = 5) -> AuditLog:
    log = AuditLog(db, clock=_ticking())  # type: ignore[arg-type]
    for i in range(1, n + 1):
        log.append(operator=f"op{i % 2}", action="application.apply",
                   subject=f"0000000000{i}", outcome="accepted", detail={"i": i, "名": "山田"})
    return log


def _unprotect(db: Database) -> None:
    """What an attacker with database access does first."""
    with db.transaction() as tx:
        if db.dialect == "sqlite":
            tx.execute("DROP TRIGGER audit_log_no_update")
            tx.execute("DROP TRIGGER audit_log_no_delete")
        else:
            tx.execute("DROP TRIGGER audit_log_no_change ON audit_log")


def test_chain_links_and_hashes(db: Database) -> None:
    log = _log_with(db)
    entries = log.entries()
    assert [e.seq for e in entries] == [1, 2, 3, 4, 5]
    assert entries[0].prev_hash == GENESIS_HASH
    for before, after in zip(entries, entries[1:], strict=False):
        assert after.prev_hash == before.hash
    e = entries[2]
    assert e.hash == entry_hash(seq=3, at=e.at, operator=e.operator, action=e.action,
                                subject=e.subject, outcome=e.outcome, detail=e.detail,
                                prev_hash=e.prev_hash)
    result = log.verify()
    assert result.ok and result.count == 5 and result.head == entries[-1].hash


def test_database_refuses_edits(db: Database) -> None:
    _log_with(db, 2)
    with pytest.raises(StorageError), db.transaction() as tx:
        tx.execute("UPDATE audit_log SET outcome = 'refused' WHERE seq = 1")
    with pytest.raises(StorageError), db.transaction() as tx:
        tx.execute("DELETE FROM audit_log WHERE seq = 2")


def test_edited_entry_is_found(db: Database) -> None:
    log = _log_with(db)
    _unprotect(db)
    with db.transaction() as tx:
        tx.execute("UPDATE audit_log SET outcome = 'refused' WHERE seq = 3")
    result = log.verify()
    assert not result.ok
    assert [(p.seq, p.kind) for p in result.problems] == [(3, "edited")]


def test_edit_with_recomputed_hash_breaks_the_next_link(db: Database) -> None:
    log = _log_with(db)
    _unprotect(db)
    e = log.entries()[1]
    forged = entry_hash(seq=2, at=e.at, operator="someone-else", action=e.action,
                        subject=e.subject, outcome=e.outcome, detail=e.detail,
                        prev_hash=e.prev_hash)
    with db.transaction() as tx:
        tx.execute("UPDATE audit_log SET operator = 'someone-else', hash = ? WHERE seq = 2",
                   (forged,))
    result = log.verify()
    assert [(p.seq, p.kind) for p in result.problems] == [(3, "broken")]
    assert "rewritten or removed" in result.problems[0].message


def test_removed_entry_is_found(db: Database) -> None:
    log = _log_with(db)
    _unprotect(db)
    with db.transaction() as tx:
        tx.execute("DELETE FROM audit_log WHERE seq = 2")
    result = log.verify()
    assert [(p.seq, p.kind) for p in result.problems] == [(3, "removed")]
    assert "seq 2 missing" in result.problems[0].message


def test_removed_and_renumbered_is_found(db: Database) -> None:
    log = _log_with(db)
    _unprotect(db)
    with db.transaction() as tx:
        tx.execute("DELETE FROM audit_log WHERE seq = 2")
        for seq in (3, 4, 5):
            tx.execute("UPDATE audit_log SET seq = ? WHERE seq = ?", (seq - 1, seq))
    result = log.verify()
    assert not result.ok
    assert result.problems[0].seq == 2


def test_reordered_entries_are_found(db: Database) -> None:
    log = _log_with(db)
    _unprotect(db)
    with db.transaction() as tx:
        tx.execute("UPDATE audit_log SET seq = 100 WHERE seq = 2")
        tx.execute("UPDATE audit_log SET seq = 2 WHERE seq = 4")
        tx.execute("UPDATE audit_log SET seq = 4 WHERE seq = 100")
    result = log.verify()
    kinds = {(p.seq, p.kind) for p in result.problems}
    assert (2, "reordered") in kinds and (4, "reordered") in kinds
    assert "written as seq 4" in next(p.message for p in result.problems if p.seq == 2)


def test_truncation_is_found_with_the_recorded_head(db: Database) -> None:
    log = _log_with(db)
    head = log.verify().head
    _unprotect(db)
    with db.transaction() as tx:
        tx.execute("DELETE FROM audit_log WHERE seq = 5")
    assert log.verify().ok  # a shorter chain is still a chain
    result = log.verify(expected_head=head)
    assert [p.kind for p in result.problems] == ["truncated"]


def test_operator_is_required() -> None:
    with pytest.raises(OperatorError):
        resolve_operator(None, {})
    with pytest.raises(OperatorError):
        resolve_operator("  ", {})
    with pytest.raises(OperatorError):
        resolve_operator("bad\nname", {})
    assert resolve_operator(None, {"MYNACARD_OPERATOR": "clerk"}) == "clerk"
    assert resolve_operator("desk-2", {"MYNACARD_OPERATOR": "clerk"}) == "desk-2"


def test_append_refuses_without_operator(db: Database) -> None:
    with pytest.raises(OperatorError):
        AuditLog(db).append(operator="", action="x", subject="y", outcome="ok")
