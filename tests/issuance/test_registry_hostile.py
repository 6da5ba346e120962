"""`registry load` treats every line as hostile (CSV and JSON Lines, SQLite and PostgreSQL):
a line that cannot be parsed or stored is rejected with its row number and the reason,
and every other row is loaded; the rejects file keeps the rejected lines, 0600."""

from __future__ import annotations

import csv
import io
import json
import time
from datetime import date
from pathlib import Path

import pytest
from hostile import DEEP, HOSTILE_JSON, mixed, mutate_csv, mutate_json
from issuance_factories import resident

from issuance.registry import COLUMNS, ResidentStore, load_file
from issuance.registry.loader import MAX_LINE, rejects_path
from issuance.storage import Database

TODAY = date(2026, 11, 20)
TEXT_FIELDS = ("resident_code", "my_number", "name", "address", "municipality_code")


def _json_line(row: dict[str, object]) -> bytes:
    return json.dumps(row, ensure_ascii=False).encode("utf-8")


def _csv_line(row: dict[str, object]) -> bytes:
    buf = io.StringIO()
    csv.writer(buf, lineterminator="").writerow(
        "" if row[c] is None else str(row[c]).lower() if isinstance(row[c], bool) else row[c]
        for c in COLUMNS)
    assert '"' not in buf.getvalue()
    return buf.getvalue().encode("utf-8")


@pytest.mark.parametrize("fmt", ["jsonl", "csv"])
def test_fuzz_every_good_row_loaded_once_every_bad_line_reported(
    db: Database, tmp_path: Path, fmt: str
) -> None:
    rows = [resident().to_row() for _ in range(600)]
    if fmt == "jsonl":
        good = [_json_line(r) for r in rows]
        lines, good_at, bad_at = mixed(
            good, lambda ln, rng: mutate_json(ln, rng, fields=TEXT_FIELDS, limit=MAX_LINE),
            seed=11, bad=2000)
        header: list[bytes] = []
    else:
        good = [_csv_line(r) for r in rows]
        text_at = [COLUMNS.index(c) for c in ("name", "address")]
        lines, good_at, bad_at = mixed(
            good, lambda ln, rng: mutate_csv(ln, rng, fields=text_at, limit=MAX_LINE),
            seed=12, bad=2000)
        header = [",".join(COLUMNS).encode()]
        good_at = {n + 1 for n in good_at}
        bad_at = {n + 1 for n in bad_at}
    path = tmp_path / f"residents.{fmt}"
    path.write_bytes(b"\n".join(header + lines) + b"\n")
    started = time.monotonic()
    report = load_file(db, path, today=TODAY)
    assert time.monotonic() - started < 20
    rejected = [r.row for r in report.rejected]
    assert len(rejected) == len(set(rejected)) and set(rejected) == bad_at
    assert all(r.reason for r in report.rejected)
    assert report.loaded == len(good_at) == len(rows)
    store = ResidentStore(db)
    assert store.count() == len(rows)
    assert all(store.get(r["resident_code"]) is not None for r in rows[::50])
    kept = rejects_path(path, fmt)
    assert kept.stat().st_mode & 0o777 == 0o600
    if fmt == "jsonl":
        assert [json.loads(x)["row"] for x in kept.read_text("utf-8").splitlines()] == \
            sorted(bad_at)
    else:
        with kept.open(encoding="utf-8", newline="") as fh:
            assert [int(r[0]) for r in list(csv.reader(fh))[1:]] == sorted(bad_at)
    json.dumps(report.to_json(), ensure_ascii=False).encode("utf-8")  # always printable


def test_an_unclosed_quote_does_not_swallow_the_following_rows(db: Database,
                                                               tmp_path: Path) -> None:
    a, b, c = (resident().to_row() for _ in range(3))
    broken = _csv_line(b).replace(b.get("name").encode(), b'"' + b["name"].encode(), 1)
    path = tmp_path / "quote.csv"
    path.write_bytes(b"\n".join([",".join(COLUMNS).encode(), _csv_line(a), broken,
                                 _csv_line(c)]) + b"\n")
    report = load_file(db, path, today=TODAY)
    assert [(r.row, r.reason) for r in report.rejected] == \
        [(3, "a quoted field is not closed on its line")]
    assert report.loaded == 2
    assert ResidentStore(db).get(c["resident_code"]) is not None


@pytest.mark.parametrize("value", HOSTILE_JSON)
def test_each_hostile_value_in_a_jsonl_row(db: Database, tmp_path: Path,
                                           value: bytes) -> None:
    a, b = resident().to_row(), resident().to_row()
    bad = _json_line({**b, "name": "@@"}).replace(b'"@@"', value)
    path = tmp_path / "r.jsonl"
    path.write_bytes(b"\n".join([bad, _json_line(a), bad]))
    report = load_file(db, path, today=TODAY)
    assert [r.row for r in report.rejected] == [1, 3] and report.loaded == 1
    assert report.rejected[0].reason


def test_csv_lines_with_bad_bytes_are_rejected_alone(db: Database, tmp_path: Path) -> None:
    rows = [resident().to_row() for _ in range(6)]
    lines = [_csv_line(r) for r in rows]
    lines[0] = lines[0].replace(rows[0]["name"].encode(), b"\xff\xfe", 1)
    lines[1] = lines[1].replace(rows[1]["name"].encode(), b"a\x00b", 1)
    lines[2] = lines[2] + b"x" * (MAX_LINE + 10)
    lines[3] = lines[3].replace(rows[3]["name"].encode(), "a\u0085b".encode(), 1)
    path = tmp_path / "bytes.csv"
    path.write_bytes(b"\xef\xbb\xbf" + b"\r\n".join([",".join(COLUMNS).encode(), *lines]))
    report = load_file(db, path, today=TODAY)
    assert [(r.row, r.reason) for r in report.rejected] == [
        (2, "not UTF-8 (byte 1)".replace("1", str(lines[0].index(b"\xff") + 1))),
        (3, "contains a NUL byte"),
        (4, f"longer than {MAX_LINE} bytes"),
        (5, "name: contains control characters"),
    ]
    assert report.loaded == 2


def test_a_deep_jsonl_line_is_rejected_not_raised(db: Database, tmp_path: Path) -> None:
    path = tmp_path / "deep.jsonl"
    path.write_bytes(DEEP + b"\n" + _json_line(resident().to_row()) + b"\n")
    report = load_file(db, path, today=TODAY)
    assert [(r.row, r.reason) for r in report.rejected] == \
        [(1, "not valid JSON (nested too deeply)")]
    assert report.loaded == 1


def test_rejects_file_replaces_a_planted_symlink_not_its_target(db: Database,
                                                                tmp_path: Path) -> None:
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    path = tmp_path / "r.jsonl"
    path.write_bytes(b"{bad\n")
    rejects_path(path, "jsonl").symlink_to(victim)
    report = load_file(db, path, today=TODAY)
    assert report.rejects_file is not None and not report.rejects_file.is_symlink()
    assert victim.read_text() == "precious"
