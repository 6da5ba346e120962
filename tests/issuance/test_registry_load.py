"""Loading the registry view from CSV and JSON Lines, on SQLite and PostgreSQL."""

from __future__ import annotations

import csv
import json
from datetime import date
from pathlib import Path

import pytest
from issuance_factories import emigrant, resident

from issuance.registry import (
    COLUMNS,
    REQUIRED,
    LoadFileError,
    ResidentGenerator,
    ResidentStore,
    load_file,
    parse_record,
)
from issuance.registry.loader import rejects_path
from issuance.registry.model import RecordError, ResidentStatus
from issuance.storage import Database

TODAY = date(2026, 11, 20)
SCHEMA = Path(__file__).parents[2] / "issuance" / "registry" / "schema.json"


def _write_jsonl(path: Path, rows: list[object]) -> Path:
    path.write_text("".join(
        (r if isinstance(r, str) else json.dumps(r, ensure_ascii=False)) + "\n" for r in rows
    ), encoding="utf-8")
    return path


def _write_csv(path: Path, rows: list[dict[str, object]]) -> Path:
    with path.open("w", encoding="utf-8", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(COLUMNS))
        writer.writeheader()
        for row in rows:
            writer.writerow({k: ("" if v is None else str(v).lower() if isinstance(v, bool)
                                 else v) for k, v in row.items()})
    return path


def test_schema_matches_the_columns() -> None:
    schema = json.loads(SCHEMA.read_text(encoding="utf-8"))
    assert tuple(schema["properties"]) == COLUMNS
    assert tuple(schema["required"]) == REQUIRED
    assert schema["additionalProperties"] is False


def test_round_trip_of_a_record() -> None:
    for r in (resident(), emigrant(), resident(adult_ward=True)):
        assert parse_record(r.to_row(), today=TODAY) == r


@pytest.mark.parametrize("change,field,fragment", [
    ({"resident_code": "12345678900"}, "resident_code", "check digit"),
    ({"my_number": "123456789017"}, "my_number", "check digit"),
    ({"my_number": None}, "my_number", "missing"),
    ({"name": "  "}, "name", "missing"),
    ({"name_kana": "やまだ"}, "name_kana", "katakana"),
    ({"birth_date": "1980/05/15"}, "birth_date", "YYYY-MM-DD"),
    ({"birth_date": "2027-01-01"}, "birth_date", "future"),
    ({"sex": 3}, "sex", "0, 1, 2 or 9"),
    ({"nationality": "martian"}, "nationality", "not one of"),
    ({"status": "alive"}, "status", "not one of"),
    ({"status_date": "2020-01-01"}, "status_date", "resident"),
    ({"adult_ward": "maybe"}, "adult_ward", "true or false"),
    ({"municipality_code": "131017"}, "municipality_code", "check digit"),
    ({"residence_expiry": "2030-01-01"}, "residence_expiry", "foreign"),
    ({"fuhyo_municipality_code": "131016"}, "fuhyo_municipality_code", "not abroad"),
    ({"continued_use": True}, "fuhyo_municipality_code", "missing"),
    ({"colour": "blue"}, "colour", "unknown column"),
])
def test_each_field_rule(change: dict[str, object], field: str, fragment: str) -> None:
    row = {**resident().to_row(), **change}
    with pytest.raises(RecordError) as exc:
        parse_record(row, today=TODAY)
    assert exc.value.field == field
    assert fragment in exc.value.reason


def test_foreign_emigrant_cannot_have_fuhyo() -> None:
    row = {**emigrant().to_row(), "nationality": "foreign"}
    with pytest.raises(RecordError, match="foreign nationals have no 附票"):
        parse_record(row, today=TODAY)


def _mixed_rows() -> tuple[list[object], list[tuple[int, str]]]:
    good1, good2, good3 = resident(), emigrant(), resident()
    rows: list[object] = [
        good1.to_row(),                                            # 1
        {**resident().to_row(), "my_number": "123456789017"},      # 2 bad check digit
        good2.to_row(),                                            # 3
        {**resident().to_row(), "birth_date": "2001-02-30"},       # 4 impossible date
        {**good1.to_row(), "name": "重複 花子"},                    # 5 same code again
        good3.to_row(),                                            # 6
        {**resident().to_row(), "my_number": good3.my_number},     # 7 number taken
    ]
    expected = [(2, "my_number"), (4, "birth_date"), (5, "already given in row"),
                (7, "already given in row")]
    return rows, expected


def test_jsonl_bad_rows_are_rejected_good_ones_loaded(db: Database, tmp_path: Path) -> None:
    rows, expected = _mixed_rows()
    rows.insert(3, "{not json")  # becomes line 4
    rows.insert(4, "[1, 2]")  # line 5
    path = _write_jsonl(tmp_path / "residents.jsonl", rows)
    report = load_file(db, path, today=TODAY)
    assert report.loaded == 3
    got = [(r.row, r.reason) for r in report.rejected]
    assert [g[0] for g in got] == [2, 4, 5, 6, 7, 9]
    assert "my_number" in got[0][1]
    assert "not valid JSON" in got[1][1]
    assert "not a JSON object" in got[2][1]
    assert "birth_date" in got[3][1]
    assert "already given in row 1" in got[4][1]
    assert "already given in row 8" in got[5][1]
    rejects = [json.loads(line) for line in
               rejects_path(path, "jsonl").read_text(encoding="utf-8").splitlines()]
    assert [r["row"] for r in rejects] == [2, 4, 5, 6, 7, 9]
    assert ResidentStore(db).count() == 3


def test_csv_row_numbers_count_the_header(db: Database, tmp_path: Path) -> None:
    rows, expected = _mixed_rows()
    path = _write_csv(tmp_path / "residents.csv", rows)  # type: ignore[arg-type]
    report = load_file(db, path, today=TODAY)
    assert report.loaded == 3
    assert [r.row for r in report.rejected] == [row + 1 for row, _ in expected]
    for rej, (_, fragment) in zip(report.rejected, expected, strict=True):
        assert fragment in rej.reason
    with rejects_path(path, "csv").open(encoding="utf-8") as fh:
        rejected = list(csv.DictReader(fh))
    assert [int(r["row"]) for r in rejected] == [3, 5, 6, 8]
    assert rejected[0]["reason"].startswith("my_number")


def test_a_csv_without_its_header_row_names_no_resident_data(db: Database,
                                                             tmp_path: Path) -> None:
    """A file whose first row is a resident, not the header: refused whole, and the
    reason (printed, and kept in the audit log) repeats none of the resident's data."""
    person = resident()
    path = _write_csv(tmp_path / "with-header.csv", [person.to_row()])
    lines = path.read_text(encoding="utf-8").splitlines()
    path.write_text("\n".join(lines[1:]) + "\n", encoding="utf-8")  # the header dropped
    with pytest.raises(LoadFileError) as refused:
        load_file(db, path, today=TODAY)
    reason = str(refused.value)
    assert "first row must name the columns" in reason
    for value in (person.resident_code, person.my_number, person.name, person.address):
        assert str(value) not in reason


def test_csv_with_bad_header_is_refused_whole(db: Database, tmp_path: Path) -> None:
    path = tmp_path / "bad.csv"
    path.write_text("resident_code,colour\n1,2\n", encoding="utf-8")
    with pytest.raises(LoadFileError, match="unknown column"):
        load_file(db, path, today=TODAY)
    path.write_text("resident_code,name\n", encoding="utf-8")
    with pytest.raises(LoadFileError, match="missing column"):
        load_file(db, path, today=TODAY)


def test_csv_row_with_wrong_field_count(db: Database, tmp_path: Path) -> None:
    path = _write_csv(tmp_path / "r.csv", [resident().to_row()])
    with path.open("a", encoding="utf-8") as fh:
        fh.write("1,2,3\n")
    report = load_file(db, path, today=TODAY)
    assert report.loaded == 1
    assert [(r.row, r.reason) for r in report.rejected] == [
        (3, "wrong number of fields for the header")]


def test_loading_is_idempotent_and_updates_by_resident_code(
    db: Database, tmp_path: Path
) -> None:
    r = emigrant()
    path = _write_jsonl(tmp_path / "a.jsonl", [r.to_row()])
    assert load_file(db, path, today=TODAY).loaded == 1
    assert load_file(db, path, today=TODAY).loaded == 1
    store = ResidentStore(db)
    assert store.count() == 1
    assert store.get(r.resident_code) == r
    moved_back = {**r.to_row(), "status": "resident", "status_date": None,
                  "fuhyo_municipality_code": None, "fuhyo_address": None,
                  "continued_use": None, "address": "大阪府大阪市北区梅田1丁目1番1号"}
    _write_jsonl(path, [moved_back])
    load_file(db, path, today=TODAY)
    again = store.get(r.resident_code)
    assert again is not None and again.fuhyo is None
    assert again.status is ResidentStatus.RESIDENT and again.address.startswith("大阪府")
    assert not rejects_path(path, "jsonl").exists()


@pytest.mark.parametrize("fmt", ["jsonl", "csv"])
def test_generated_residents_load_cleanly(db: Database, tmp_path: Path, fmt: str) -> None:
    gen = ResidentGenerator(seed=42, as_of=TODAY)
    residents = list(gen.generate(1500))
    rows = [r.to_row() for r in residents]
    path = (_write_jsonl(tmp_path / "g.jsonl", rows) if fmt == "jsonl"  # type: ignore[arg-type]
            else _write_csv(tmp_path / "g.csv", rows))
    report = load_file(db, path, today=TODAY)
    assert report.rejected == []
    assert report.loaded == 1500
    sample = residents[:50]
    store = ResidentStore(db)
    assert [store.get(r.resident_code) for r in sample] == sample


def test_generator_is_deterministic_and_realistic() -> None:
    a = [r.to_row() for r in ResidentGenerator(seed=7, as_of=TODAY).generate(3000)]
    b = [r.to_row() for r in ResidentGenerator(seed=7, as_of=TODAY).generate(3000)]
    assert a == b
    c = [r.to_row() for r in ResidentGenerator(seed=8, as_of=TODAY).generate(10)]
    assert a[:10] != c
    people = list(ResidentGenerator(seed=7, as_of=TODAY).generate(3000))
    from issuance.registry.dates import age_on

    ages = [age_on(p.birth_date, TODAY) for p in people]
    assert any(a == 0 for a in ages)
    assert 0.08 < sum(a < 15 for a in ages) / len(ages) < 0.16
    assert sum(a >= 65 for a in ages) / len(ages) > 0.2
    assert any(p.status is ResidentStatus.EMIGRATED and p.fuhyo for p in people)
    assert any(p.status is ResidentStatus.EMIGRATED and not p.fuhyo for p in people)
    assert any(p.status is ResidentStatus.DECEASED for p in people)
    assert any(p.adult_ward for p in people)
    assert len({p.resident_code for p in people}) == len({p.my_number for p in people}) == 3000
    assert all(p.name_kana for p in people if p.nationality.value == "japanese")


def test_update_residents_writes_only_what_changed(db: Database) -> None:
    from dataclasses import replace

    from issuance.registry.model import FuhyoEntry
    from issuance.registry.store import get_resident, put_residents, update_residents

    home, abroad = resident(), emigrant()
    with db.transaction() as tx:
        put_residents(tx, [home, abroad])
    moved = replace(home, address="大阪府大阪市北区梅田1丁目1番1号", name="佐藤 太郎")
    emigrated = replace(home, status=ResidentStatus.EMIGRATED, status_date=date(2026, 6, 1),
                        fuhyo=FuhyoEntry("131016", "フランス パリ", True))
    returned = replace(abroad, status=ResidentStatus.RESIDENT, fuhyo=None)
    with db.transaction() as tx:
        assert update_residents(tx, [(home, moved), (abroad, returned), (home, home)]) == 2
        assert get_resident(tx, home.resident_code) == moved
        assert get_resident(tx, abroad.resident_code) == returned
        # a second change of the same resident in one call builds on the first
        assert update_residents(tx, [(moved, replace(emigrated, name=moved.name,
                                                     address=moved.address))]) == 1
        got = get_resident(tx, home.resident_code)
        assert got is not None and got.fuhyo == emigrated.fuhyo
        assert (got.name, got.status) == (moved.name, ResidentStatus.EMIGRATED)
        with pytest.raises(ValueError):
            update_residents(tx, [(home, abroad)])


def test_a_load_moves_the_registry_counter_once_and_only_when_it_loaded(
        db: Database, tmp_path: Path) -> None:
    """Notice processors re-match their unmatched notices when this counter moves."""
    from issuance.registry.store import registry_version

    def version() -> int:
        with db.transaction() as tx:
            return registry_version(tx)

    before = version()
    rows = [resident().to_row() for _ in range(3)]
    assert load_file(db, _write_jsonl(tmp_path / "a.jsonl", rows), today=TODAY).loaded == 3
    assert version() == before + 1  # one load, one step, however many residents
    nothing = load_file(db, _write_jsonl(tmp_path / "b.jsonl", ["{not json"]), today=TODAY)
    assert nothing.loaded == 0 and version() == before + 1


def test_a_load_cannot_commit_while_a_notice_is_being_found_unmatched(
        db: Database, tmp_path: Path) -> None:
    """Intake and the notice processor decide "no such resident" with loads held off: a
    load waits, then moves the counter after their marks are visible (so the re-match it
    triggers finds them). The load here runs on a connection of its own."""
    import threading

    from issuance.registry.store import get_resident, hold_registry_loads, registry_version
    from issuance.storage import open_database

    person = resident()
    other = open_database(db.url)
    loaded = threading.Event()
    failed: list[BaseException] = []

    def load() -> None:
        try:
            ResidentStore(other).put(person)
            loaded.set()
        except BaseException as exc:  # noqa: BLE001 - reported by the assertion below
            failed.append(exc)

    try:
        with db.transaction() as tx:
            hold_registry_loads(tx)
            before = registry_version(tx)
            loader = threading.Thread(target=load)
            loader.start()
            assert not loaded.wait(1.0)  # held off while this transaction is open
            assert get_resident(tx, person.resident_code) is None
        loader.join(30)
        assert not failed and loaded.is_set()
        with db.transaction() as tx:
            assert registry_version(tx) == before + 1
            assert get_resident(tx, person.resident_code) is not None
    finally:
        other.close()
