"""Every line is hostile: a line that cannot be parsed or stored is rejected with its
number and reason, every other line is stored, for `notices ingest`, the intake and the
POST body of `notices serve` (on SQLite and PostgreSQL)."""

from __future__ import annotations

import argparse
import io
import json
import random
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from hostile import DEEP, HOSTILE_JSON, mixed, mutate_json
from notices_support import NOW, clock, line, notice

from issuance.notices import cli
from issuance.notices.http import create_app
from issuance.notices.intake import NoticeIntake, bounded_lines
from issuance.notices.model import MAX_LINE
from issuance.notices.senders import add_sender
from issuance.registry.checkdigits import complete_resident_code
from issuance.storage import Database

ID_FIELDS = ("id", "source", "kind", "resident_code", "effective_date")


def _good(n: int, seed: int) -> list[bytes]:
    rng = random.Random(seed)
    out = []
    for i in range(n):
        code = complete_resident_code(f"{rng.randrange(10**10):010d}")
        kind = rng.choice(["death", "name_change", "address_change", "record_deleted"])
        out.append(line(notice(kind, code, nid=f"F{seed}-{i:05d}")).encode("utf-8"))
    return out


def _stored(db: Database) -> list[tuple[str, str]]:
    with db.transaction() as tx:
        return [(r["source"], r["id"]) for r in tx.query(
            "SELECT source, id FROM notices WHERE state <> 'rejected'")]


@pytest.mark.parametrize("seed", [1, 2])
def test_fuzz_every_good_line_stored_once_every_bad_one_reported(db: Database,
                                                                 seed: int) -> None:
    good = _good(800, seed)
    lines, good_at, bad_at = mixed(
        good, lambda ln, rng: mutate_json(ln, rng, fields=ID_FIELDS, limit=MAX_LINE),
        seed=seed, bad=2000)
    started = time.monotonic()
    report = NoticeIntake(db, clock=clock(NOW)).accept_lines(
        bounded_lines(io.BytesIO(b"\n".join(lines) + b"\n")))
    assert time.monotonic() - started < 20
    assert report.lines == len(lines)
    # nobody lives under these codes: a stored good notice is "unmatched", listed once
    by_line: dict[int, list[str]] = {}
    for p in report.problems:
        by_line.setdefault(p.line, []).append(p.outcome)
    assert {n for n, o in by_line.items() if o == ["unmatched"]} == good_at
    assert {n for n, o in by_line.items() if o == ["rejected"]} == bad_at
    assert all(len(o) == 1 for o in by_line.values())
    assert all(p.reason for p in report.problems)
    assert report.counts == {"accepted": 0, "duplicate": 0, "unmatched": len(good_at),
                             "rejected": len(bad_at)}
    stored = _stored(db)
    assert len(stored) == len(set(stored)) == len(good)
    assert {i for _s, i in stored} == {json.loads(g)["id"] for g in good}
    json.dumps(report.to_json(), ensure_ascii=False).encode("utf-8")  # always printable


@pytest.mark.parametrize("value", HOSTILE_JSON + (b'"' + b"\\ud800" * 3 + b'"',))
def test_each_hostile_value_is_rejected_with_a_reason(db: Database, value: bytes) -> None:
    code = complete_resident_code("0000000042")
    good = line(notice("death", code, nid="keep")).encode()
    bad = line(notice("name_change", code, nid="bad", facts={"name": "@"})).encode() \
        .replace(b'"@"', value)
    report = NoticeIntake(db, clock=clock(NOW)).accept_lines(
        bounded_lines(io.BytesIO(b"\n".join([bad, good, bad]))))
    assert [(p.line, p.outcome) for p in report.problems] == \
        [(1, "rejected"), (2, "unmatched"), (3, "rejected")]
    assert report.problems[0].reason
    assert _stored(db) == [("juki", "keep")]


def test_rejected_raw_text_is_kept_even_with_nul_and_surrogates(db: Database) -> None:
    raw = [b'{"id": "a\x00", "x": 1}', b'{"id": "\\ud800"}', b"\xff\xfe{}", b"x" * 70_000]
    report = NoticeIntake(db, clock=clock(NOW)).accept_lines(
        bounded_lines(io.BytesIO(b"\n".join(raw))))
    reasons = [p.reason for p in report.problems]
    assert reasons[1] == "contains a lone surrogate (not a Unicode character)"
    assert reasons[2] == "not UTF-8 (byte 1)"
    assert reasons[3] == f"longer than {MAX_LINE} bytes"
    with db.transaction() as tx:
        kept = {r["id"]: r["payload"] for r in tx.query(
            "SELECT id, payload FROM notices WHERE state = 'rejected'")}
    assert len(kept) == 4 and {p.stored_as for p in report.problems} == set(kept)
    assert kept[report.problems[0].stored_as] == '{"id": "a\\x00", "x": 1}'
    assert kept[report.problems[2].stored_as] == "\\xff\\xfe{}"


def test_an_over_long_line_is_read_in_bounded_pieces() -> None:
    stream = io.BytesIO(b"a\n" + b"y" * (MAX_LINE * 5) + b"\nb\n\nlast")
    got = list(bounded_lines(stream))
    assert [len(x) for x in got] == [2, MAX_LINE + 1, 2, 1, 4]
    assert got[0] == b"a\n" and got[2] == b"b\n" and got[4] == b"last"


def test_ingest_command_reports_hostile_lines_and_stores_the_rest(
    db_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    home = tmp_path / "home"
    home.mkdir()
    code = complete_resident_code("0000000077")
    good = [line(notice("death", code, nid=f"ok-{i}")).encode() for i in range(3)]
    file = tmp_path / "hostile.jsonl"
    file.write_bytes(b"\n".join([good[0], DEEP, b'{"id": 1' + b"0" * 5000 + b"}", good[1],
                                 b'"\\ud800"', b"\xc3\x28", good[2]]) + b"\n")
    argv = ["notices", "ingest", str(file), "--json", "--no-process", "--operator", "clerk",
            "--db", db_url]
    parser = argparse.ArgumentParser(prog="mynacard")
    cli.register(parser.add_subparsers(), clock=clock(NOW))
    args = parser.parse_args(argv)
    args.home = home
    assert args.func(args) == 1  # some lines refused
    out, err = capsys.readouterr()
    assert "Traceback" not in err
    report = json.loads(out)["intake"]
    assert report["unmatched"] == 3 and report["rejected"] == 4
    assert [(p["line"], p["outcome"]) for p in report["problems"] if
            p["outcome"] == "rejected"] == [(2, "rejected"), (3, "rejected"), (5, "rejected"),
                                            (6, "rejected")]


@pytest.fixture
def server(db: Database, store_url: str) -> Iterator[str]:
    import socket

    import uvicorn

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    app = create_app(db, store_url, clock=clock(NOW), max_body=32 * 1024 * 1024)
    srv = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not srv.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        srv.should_exit = True
        thread.join(timeout=20)


def test_post_body_with_hostile_lines(db: Database, server: str) -> None:
    token = add_sender(db, "juki-gateway", sources=["juki", "fuhyo"])
    good = _good(150, 7)
    lines, good_at, bad_at = mixed(
        good, lambda ln, rng: mutate_json(ln, rng, fields=ID_FIELDS, limit=MAX_LINE),
        seed=7, bad=300)
    req = urllib.request.Request(server + "/notices", data=b"\n".join(lines), method="POST",
                                 headers={"Content-Type": "application/x-ndjson",
                                          "Authorization": f"Bearer {token}"})
    with urllib.request.urlopen(req, timeout=60) as resp:
        assert resp.status == 200
        body = json.loads(resp.read())
    problems = body["problems"]
    assert {p["line"] for p in problems if p["outcome"] == "rejected"} == bad_at
    assert {p["line"] for p in problems if p["outcome"] == "unmatched"} == good_at
    assert len(problems) == len(lines)
    assert len(_stored(db)) == len(good)
