"""The staged (set-based) registry writes of a notice batch (`issuance.notices.staging`)
against the registry's row-by-row reference, on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
import random
from dataclasses import replace
from typing import Any

import pytest
from notices_support import emigrant, resident

from issuance.notices.migrations import migrate_notices
from issuance.notices.queries import query_in
from issuance.notices.staging import insert_notices, write_facts, write_residents
from issuance.registry.model import FuhyoEntry, Resident, ResidentStatus, Sex
from issuance.registry.store import get_resident, put_residents, update_residents
from issuance.storage import Database, IntegrityViolation, open_database


def _changed(rnd: random.Random, r: Resident) -> Resident:
    """Random changes of one to three facts, the status and the 附票 entry."""
    for _ in range(rnd.randint(1, 3)):
        what = rnd.choice(["name", "address", "birth", "sex", "status", "fuhyo", "none"])
        if what == "name":
            r = replace(r, name=f"佐藤 {rnd.randint(0, 9)}子")
        elif what == "address":
            r = replace(r, address=f"大阪府大阪市北区梅田{rnd.randint(1, 9)}丁目")
        elif what == "birth":
            r = replace(r, birth_date=dt.date(1985, 7, rnd.randint(1, 28)))
        elif what == "sex":
            r = replace(r, sex=rnd.choice(list(Sex)))
        elif what == "status":
            r = replace(r, status=rnd.choice(list(ResidentStatus)),
                        status_date=dt.date(2026, 6, rnd.randint(1, 28)))
        elif what == "fuhyo":
            r = replace(r, fuhyo=rnd.choice([None, FuhyoEntry(
                "131016", f"ドイツ {rnd.randint(0, 9)}", rnd.random() < 0.5)]))
    return r


def _rows(db: Database, table: str, key: str) -> list[dict[str, Any]]:
    with db.transaction() as tx:
        rows = tx.query(f"SELECT * FROM {table} ORDER BY {key}")
    for row in rows:
        row.pop("updated_at", None)  # the time of the write
    return rows


def test_write_residents_is_update_residents(db: Database, tmp_path: Any) -> None:
    reference = open_database(f"sqlite:///{tmp_path / 'reference.sqlite3'}")
    rnd = random.Random(16)
    people = [emigrant() if i % 4 == 0 else resident() for i in range(300)]
    try:
        for target in (db, reference):
            migrate_notices(target)
            with target.transaction() as tx:
                put_residents(tx, people)
        current = {p.resident_code: p for p in people}
        for _round in range(3):
            chosen = rnd.sample(sorted(current), 120)
            changes = [(current[c], _changed(rnd, current[c])) for c in chosen]
            with db.transaction() as tx:
                staged = write_residents(tx, changes)
            with reference.transaction() as tx:
                by_rows = update_residents(tx, changes)
            assert staged == by_rows
            current.update((after.resident_code, after) for _b, after in changes)
        assert _rows(db, "residents", "resident_code") == _rows(
            reference, "residents", "resident_code")
        assert _rows(db, "fuhyo_entries", "resident_code") == _rows(
            reference, "fuhyo_entries", "resident_code")
        with db.transaction() as tx:
            for code in rnd.sample(sorted(current), 20):
                assert get_resident(tx, code) == current[code]
            # nothing changed: nothing written
            assert write_residents(tx, [(current[c], current[c]) for c in current]) == 0
    finally:
        reference.close()


def test_write_facts_inserts_and_replaces(db: Database) -> None:
    migrate_notices(db)
    first = [("00000000019", "name", "2026-06-01", "juki", "A-1", "local"),
             ("00000000019", "status", "2026-06-01", "juki", "A-2", "local"),
             ("00000000027", "address", "2026-05-01", "fuhyo", "B-1", "city")]
    with db.transaction() as tx:
        write_facts(tx, first)
        write_facts(tx, [])
    with db.transaction() as tx:
        write_facts(tx, [("00000000019", "name", "2026-07-01", "fuhyo", "A-9", "city")])
    with db.transaction() as tx:
        rows = tx.query("SELECT resident_code, fact, effective_date, source, notice_id, sender"
                        " FROM notice_facts ORDER BY resident_code, fact")
    assert [tuple(r.values()) for r in rows] == [
        ("00000000019", "name", "2026-07-01", "fuhyo", "A-9", "city"),
        ("00000000019", "status", "2026-06-01", "juki", "A-2", "local"),
        ("00000000027", "address", "2026-05-01", "fuhyo", "B-1", "city")]


def _notice_row(n: int, state: str = "accepted") -> tuple[Any, ...]:
    return ("local", "juki", f"N-{n}", "death", f"{n:011d}", "2026-06-01",
            "2026-06-02T00:00:00+00:00", f'{{"id":"N-{n}"}}', state, None, n % 100)


def test_insert_notices_stores_every_row_or_none(db: Database) -> None:
    migrate_notices(db)
    with db.transaction() as tx:
        insert_notices(tx, [_notice_row(n) for n in range(1, 1201)])
        insert_notices(tx, [])
    with db.transaction() as tx:
        rows = tx.query("SELECT sender, source, id, kind, resident_code, effective_date,"
                        " received_at, payload, state, reason, bucket FROM notices"
                        " ORDER BY resident_code")
    assert [tuple(r.values()) for r in rows] == [_notice_row(n) for n in range(1, 1201)]
    # a key already stored fails the whole statement, as row by row; nothing is added
    with pytest.raises(IntegrityViolation), db.transaction() as tx:
        insert_notices(tx, [_notice_row(5000), _notice_row(7)])
    with db.transaction() as tx:
        assert tx.query_one("SELECT COUNT(*) AS n FROM notices")["n"] == 1200  # type: ignore[index]


def test_query_in_is_the_transactions_query_in(db: Database) -> None:
    migrate_notices(db)
    with db.transaction() as tx:
        insert_notices(tx, [_notice_row(n) for n in range(1, 1201)])
    wanted = [f"N-{n}" for n in range(0, 1500, 3)] + ["N-3", "nope"]
    sql = "SELECT id, state FROM notices WHERE sender = ? AND source = ? AND id IN ({values})"
    with db.transaction() as tx:
        mine = query_in(tx, sql, wanted, ("local", "juki"))
        theirs = tx.query_in(sql, wanted, ("local", "juki"))
        assert sorted(r["id"] for r in mine) == sorted(r["id"] for r in theirs)
        assert len(mine) == 400  # N-3 … N-1200 by threes, each once
        assert query_in(tx, sql, [], ("local", "juki")) == []
        with pytest.raises(ValueError):
            query_in(tx, "SELECT id FROM notices WHERE id = ?", ["N-1"])
