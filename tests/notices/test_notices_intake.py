"""Intake: stored before acknowledged, idempotent by (source, id), nothing lost."""

from __future__ import annotations

import json
from typing import Any

import pytest
from notices_support import clock, line, notice, resident

from issuance.notices.intake import NoticeIntake
from issuance.notices.queries import notice_counts, notice_state, problem_notices
from issuance.registry.store import ResidentStore
from issuance.storage import Database, open_database


def test_accept_then_duplicate_changes_nothing(db: Database) -> None:
    person = resident()
    ResidentStore(db).put(person)
    intake = NoticeIntake(db, clock=clock())
    text = line(notice("death", person.resident_code, nid="D-1"))
    assert intake.accept(text).outcome == "accepted"
    before = notice_counts(db)
    again = intake.accept(text)
    # the same notice, re-serialised differently, is still the same notice
    reordered = json.dumps(dict(reversed(list(json.loads(text).items()))), ensure_ascii=True)
    assert (again.outcome, intake.accept(reordered).outcome) == ("duplicate", "duplicate")
    assert notice_counts(db) == before == {"arrived": 1, "applied": 0, "waiting": 1,
                                           "unmatched": 0, "rejected": 0}
    assert notice_state(db, "juki", "D-1") == "accepted"


def test_same_id_from_the_other_network_is_another_notice(db: Database) -> None:
    person = resident()
    ResidentStore(db).put(person)
    intake = NoticeIntake(db)
    assert intake.accept(line(notice("death", person.resident_code, nid="X"))).outcome \
        == "accepted"
    assert intake.accept(line(notice("death", person.resident_code, nid="X",
                                     source="fuhyo"))).outcome == "accepted"


def test_reused_id_with_other_content_is_kept_as_rejected(db: Database) -> None:
    person = resident()
    ResidentStore(db).put(person)
    intake = NoticeIntake(db)
    intake.accept(line(notice("death", person.resident_code, nid="R-1")))
    clash = line(notice("record_deleted", person.resident_code, nid="R-1"))
    result = intake.accept(clash)
    assert result.outcome == "rejected" and "different notice" in (result.reason or "")
    rejected = problem_notices(db)["rejected"]
    assert [r["raw"] for r in rejected] == [clash]


def test_unknown_resident_is_kept_as_unmatched_and_listed(db: Database) -> None:
    stranger = resident()
    intake = NoticeIntake(db)
    result = intake.accept(line(notice("death", stranger.resident_code, nid="U-1")))
    assert result.outcome == "unmatched"
    listed = problem_notices(db)["unmatched"]
    assert [(u["id"], u["resident_code"], u["kind"]) for u in listed] == \
        [("U-1", stranger.resident_code, "death")]
    assert notice_counts(db)["unmatched"] == 1


def test_malformed_notices_are_kept_with_raw_text_and_reason(db: Database) -> None:
    person = resident()
    ResidentStore(db).put(person)
    good = line(notice("death", person.resident_code, nid="G-1"))
    lines = [
        good + "\n",
        "{broken\n",
        "\n",  # blank lines are not notices
        line(notice("name_change", person.resident_code, nid="B-2", facts={})) + "\n",
        b"\xff\xfe not utf-8\n",
        "{broken\n",  # the same broken line again: kept once
    ]
    report = NoticeIntake(db, batch=2).accept_lines(lines)
    assert report.counts == {"accepted": 1, "duplicate": 0, "unmatched": 0, "rejected": 4}
    assert report.lines == 6
    assert [p.line for p in report.problems] == [2, 4, 5, 6]
    assert report.problems[1].id == "B-2" and "name" in (report.problems[1].reason or "")
    rejected = problem_notices(db)["rejected"]
    assert sorted(r["raw"] for r in rejected) == sorted(
        ["{broken", lines[3].rstrip("\n"), "\\xff\\xfe not utf-8"])
    assert all(r["reason"] for r in rejected)
    assert notice_counts(db) == {"arrived": 4, "applied": 0, "waiting": 1, "unmatched": 0,
                                 "rejected": 3}


def test_a_corrected_notice_with_the_id_of_a_broken_one_is_accepted(db: Database) -> None:
    person = resident()
    ResidentStore(db).put(person)
    intake = NoticeIntake(db)
    assert intake.accept(line(notice("name_change", person.resident_code, nid="C-1",
                                     facts={}))).outcome == "rejected"
    assert intake.accept(line(notice("name_change", person.resident_code,
                                     nid="C-1"))).outcome == "accepted"


def test_accepted_notices_survive_closing_the_database(db_url: str) -> None:
    person = resident()
    with open_database(db_url) as first:
        ResidentStore(first).put(person)
        report = NoticeIntake(first).accept_lines(
            [line(notice("address_change", person.resident_code, nid=f"S-{i}"))
             for i in range(1200)])
        assert report.counts["accepted"] == 1200
    with open_database(db_url) as second:
        assert notice_counts(second)["waiting"] == 1200


def test_one_batch_sees_its_own_earlier_lines(db: Database) -> None:
    person, stranger = resident(), resident()
    ResidentStore(db).put(person)
    first = line(notice("death", person.resident_code, nid="S-1"))
    clash = line(notice("record_deleted", person.resident_code, nid="S-1"))
    lines = [first, first, clash, line(notice("death", stranger.resident_code, nid="S-2")),
             "{broken", "{broken"]
    report = NoticeIntake(db, batch=100).accept_lines(lines)  # all in one transaction
    assert [(p.line, p.outcome) for p in report.problems] == [
        (2, "duplicate"), (3, "rejected"), (4, "unmatched"), (5, "rejected"), (6, "rejected")]
    assert "different notice" in (report.problems[1].reason or "")
    assert notice_state(db, "juki", "S-1") == "accepted"
    assert sorted(r["raw"] for r in problem_notices(db)["rejected"]) == sorted([clash, "{broken"])
    assert notice_counts(db) == {"arrived": 4, "applied": 0, "waiting": 1, "unmatched": 1,
                                 "rejected": 2}


def test_two_intakes_of_one_notice_at_once_store_it_once_and_lose_no_line(
        db: Database, db_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """A sender's retry racing its first attempt: both carry notice SHARED-1, the retry
    also GOOD-2. Whichever stores second finds SHARED-1 stored (a duplicate) and still
    stores GOOD-2. On PostgreSQL both once read "not stored", and the second's INSERT
    then failed on the key and took GOOD-2 down with it. The intakes are held at the
    point of writing until both are there (or, once one waits for the other, 2 s)."""
    import threading

    import issuance.notices.intake as intake

    person = resident()
    ResidentStore(db).put(person)
    shared = notice("death", person.resident_code, nid="SHARED-1")
    other = notice("name_change", person.resident_code, nid="GOOD-2")
    both_there = threading.Barrier(2, timeout=2)
    insert = intake.insert_notices

    def held(tx: Any, rows: Any) -> None:
        try:
            both_there.wait()
        except threading.BrokenBarrierError:
            pass  # the other intake waits for this one's commit: the race cannot happen
        insert(tx, rows)

    monkeypatch.setattr(intake, "insert_notices", held)
    counts: dict[str, Any] = {}

    def run(name: str, lines: list[str]) -> None:
        conn = open_database(db_url)
        try:
            counts[name] = NoticeIntake(conn, clock=clock()).accept_lines(lines).counts
        except Exception as exc:  # noqa: BLE001 - reported by the assertions
            counts[name] = exc
        finally:
            conn.close()

    threads = [threading.Thread(target=run, args=("first", [line(shared)])),
               threading.Thread(target=run, args=("retry", [line(shared), line(other)]))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert all(isinstance(c, dict) for c in counts.values()), counts
    assert notice_state(db, "juki", "GOOD-2") == "accepted"
    assert notice_state(db, "juki", "SHARED-1") == "accepted"
    assert sum(c.get("accepted", 0) for c in counts.values()) == 2
    assert sum(c.get("duplicate", 0) for c in counts.values()) == 1


def test_a_byte_order_mark_before_the_first_notice_costs_it_nothing(db: Database) -> None:
    """Some editors save UTF-8 with a BOM: the first notice is still a notice (as bytes
    from a file and as text)."""
    person = resident()
    ResidentStore(db).put(person)
    first, second = (notice("death", person.resident_code) for _ in range(2))
    as_bytes = [b"\xef\xbb\xbf" + line(first).encode(), line(second).encode()]
    assert NoticeIntake(db, clock=clock()).accept_lines(as_bytes).counts["accepted"] == 2
    third = notice("death", person.resident_code)
    report = NoticeIntake(db, clock=clock()).accept_lines(["\ufeff" + line(third)])
    assert report.counts["accepted"] == 1
