"""The hash-chained audit log: tampering is found and located, on both databases."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from issuance.audit import GENESIS_HASH, AuditLog, OperatorError, resolve_operator
from issuance.audit.keyer import Keyer, SoftwareKeyer, keyed_by
from issuance.audit.log import append_entry, entry_hash, mac_input
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


# -- the keyed chain -----------------------------------------------------------------------

KEY = SoftwareKeyer(b"k" * 32, name="test")


def _keyed_log(db: Database, n: int = 5, keyer: Keyer = KEY) -> AuditLog:
    log = AuditLog(db, clock=_ticking(), keyer=keyer)  # type: ignore[arg-type]
    for i in range(1, n + 1):
        log.append(operator=f"op{i % 2}", action="ca.revoke", subject=f"serial-{i}",
                   outcome="done", detail={"i": i})
    return log


def _rechain(db: Database, from_seq: int, *, change: dict[str, str] | None = None,
             drop_macs: bool = False) -> None:
    """What an attacker without the key does: edit, then recompute every plain hash."""
    _unprotect(db)
    with db.transaction() as tx:
        rows = tx.query("SELECT * FROM audit_log ORDER BY seq")
        prev = rows[from_seq - 2]["hash"] if from_seq > 1 else GENESIS_HASH
        for row in rows[from_seq - 1:]:
            if row["seq"] == from_seq and change:
                row.update(change)
            digest = entry_hash(seq=row["seq"], at=row["at"], operator=row["operator"],
                                action=row["action"], subject=row["subject"],
                                outcome=row["outcome"], detail=json.loads(row["detail"]),
                                prev_hash=prev)
            tx.execute("UPDATE audit_log SET operator = ?, outcome = ?, prev_hash = ?, hash = ?,"
                       " mac = ? WHERE seq = ?",
                       (row["operator"], row["outcome"], prev, digest,
                        None if drop_macs else row["mac"], row["seq"]))
            prev = digest


def test_keyed_entries_carry_a_mac_that_checks(db: Database) -> None:
    log = _keyed_log(db)
    entries = log.entries()
    assert all(e.mac and len(e.mac) == 64 for e in entries)
    assert KEY.check(mac_input(entries[0].hash), bytes.fromhex(entries[0].mac or ""))
    result = log.verify()
    assert result.ok and result.keyed and result.macs == 5
    assert result.head_ref == f"5:{entries[-1].hash}"


def test_keyed_edit_delete_reorder_are_found(db: Database) -> None:
    log = _keyed_log(db, 6)
    _unprotect(db)
    with db.transaction() as tx:
        tx.execute("UPDATE audit_log SET outcome = 'refused' WHERE seq = 2")
        tx.execute("DELETE FROM audit_log WHERE seq = 4")
        tx.execute("UPDATE audit_log SET seq = 100 WHERE seq = 5")
        tx.execute("UPDATE audit_log SET seq = 5 WHERE seq = 6")
        tx.execute("UPDATE audit_log SET seq = 6 WHERE seq = 100")
    kinds = {(p.seq, p.kind) for p in log.verify().problems}
    assert (2, "edited") in kinds
    assert (5, "removed") in kinds
    assert (5, "reordered") in kinds and (6, "reordered") in kinds


def test_rechained_log_passes_the_plain_chain_but_not_the_key(db: Database) -> None:
    log = _keyed_log(db)
    _rechain(db, 2, change={"operator": "mallory"})
    unkeyed_view = AuditLog(db)  # no keyer: only the plain chain is checked
    assert [p.kind for p in unkeyed_view.verify().problems] == ["unverifiable"]
    result = log.verify()
    assert [(p.seq, p.kind) for p in result.problems] == [
        (2, "forged"), (3, "forged"), (4, "forged"), (5, "forged")]


def test_rechained_without_any_mac_is_found(db: Database) -> None:
    log = _keyed_log(db)
    _rechain(db, 1, change={"outcome": "refused"}, drop_macs=True)
    assert AuditLog(db).verify().ok  # a perfect plain chain ...
    result = log.verify()  # ... but the center has a key and no entry is keyed
    assert [p.kind for p in result.problems] == ["unkeyed"]


def test_forged_appended_entry_is_found(db: Database) -> None:
    log = _keyed_log(db, 3)
    last = log.entries()[-1]
    _unprotect(db)
    at = "2026-11-20T01:00:09.000000+00:00"
    digest = entry_hash(seq=4, at=at, operator="mallory", action="ca.revoke",
                        subject="serial-x", outcome="done", detail={}, prev_hash=last.hash)
    guessed = SoftwareKeyer(b"x" * 32).mac(mac_input(digest)).hex()
    for mac, kind in ((None, "unkeyed"), ("00" * 32, "forged"), (guessed, "forged")):
        with db.transaction() as tx:
            tx.execute("DELETE FROM audit_log WHERE seq = 4")
            tx.execute("INSERT INTO audit_log (seq, at, operator, action, subject, outcome,"
                       " detail, prev_hash, hash, mac) VALUES (4, ?, 'mallory', 'ca.revoke',"
                       " 'serial-x', 'done', '{}', ?, ?, ?)", (at, last.hash, digest, mac))
        assert [(p.seq, p.kind) for p in log.verify().problems] == [(4, kind)]


def test_truncation_and_the_recorded_head(db: Database) -> None:
    log = _keyed_log(db)
    head = log.verify().head_ref
    assert log.verify(expected_head=head).ok
    log.append(operator="op1", action="ca.revoke", subject="later", outcome="done")
    assert log.verify(expected_head=head).ok  # a log that extends the head is fine
    _unprotect(db)
    with db.transaction() as tx:
        tx.execute("DELETE FROM audit_log WHERE seq >= 5")
    assert log.verify().ok  # a shorter keyed chain is still a chain ...
    result = log.verify(expected_head=head)  # ... but not the one recorded
    assert [(p.seq, p.kind) for p in result.problems] == [(5, "truncated")]
    # truncated, then a new entry in its place: the head differs
    log.append(operator="op1", action="ca.revoke", subject="replacement", outcome="done")
    assert [(p.seq, p.kind) for p in log.verify(expected_head=head).problems] == [
        (5, "diverged")]
    assert log.verify(expected_head="0:" + GENESIS_HASH).ok


def test_unkeyed_entries_before_the_key_are_covered(db: Database) -> None:
    plain = AuditLog(db, clock=_ticking())  # type: ignore[arg-type]
    plain.append(operator="op", action="hsm.init", subject="jpki", outcome="done")
    plain.append(operator="op", action="ca.init", subject="ca", outcome="done")
    keyed = AuditLog(db, keyer=KEY)
    keyed.append(operator="op", action="center.init", subject="home", outcome="ok")
    result = keyed.verify()
    assert result.ok and result.macs == 1
    # rewriting a covered entry and re-chaining breaks the first keyed entry's MAC
    _rechain(db, 1, change={"operator": "mallory"})
    assert [(p.seq, p.kind) for p in keyed.verify().problems] == [(3, "forged")]


def test_installed_keyer_keys_every_append(db: Database) -> None:
    with keyed_by(KEY):
        append_via = AuditLog(db)
        append_via.append(operator="op", action="x", subject="y", outcome="done")
        with db.transaction() as tx:
            entry = append_entry(tx, operator="op", action="x", subject="z", outcome="done",
                                 at=datetime.now(UTC))
        assert entry.mac and AuditLog(db).verify().ok
    assert AuditLog(db).entries()[0].mac
    assert not AuditLog(db).verify().ok  # outside the block: no key to check the MACs


def test_secrets_never_reach_entries(db: Database) -> None:
    log = _keyed_log(db, 1)
    for e in log.entries():
        text = json.dumps(e.to_json())
        assert "pin" not in text.lower() and "password" not in text.lower()
