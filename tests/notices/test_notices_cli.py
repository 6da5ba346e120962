"""`mynacard notices ingest|process|status|unmatched|schema` through argparse, as the root
command calls them (args.home set, then args.func(args))."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import pytest
from notices_support import NOW, clock, issue_pair, line, notice, resident

from issuance.audit.log import AuditLog
from issuance.notices import cli
from issuance.notices.queries import notice_state, problem_notices
from issuance.registry.store import ResidentStore
from issuance.storage import open_database
from pki.store import open_store


def run(argv: list[str], home: Path) -> int:
    parser = argparse.ArgumentParser(prog="mynacard")
    sub = parser.add_subparsers()
    cli.register(sub, clock=clock(NOW))
    args = parser.parse_args(argv)
    args.home = home
    return int(args.func(args))


def out_json(capsys: pytest.CaptureFixture[str]) -> Any:
    return json.loads(capsys.readouterr().out)


def _setting(tmp_path: Path, db_url: str, backend: str, store_url: str
             ) -> tuple[Path, list[str], Any, list[str]]:
    """(home, store options, store location, common options) for one backend."""
    home = tmp_path / "home"
    home.mkdir()
    store_opts = [] if backend == "sqlite" else ["--store", store_url]
    store_loc: Any = home / "store.sqlite" if backend == "sqlite" else store_url
    return home, store_opts, store_loc, ["--operator", "clerk-1", "--db", db_url]


def test_ingest_status_unmatched_process(db_url: str, backend: str, store_url: str,
                                         tmp_path: Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    home, store_opts, store_loc, common = _setting(tmp_path, db_url, backend, store_url)
    known, stranger = resident(), resident()
    with open_database(db_url) as db:
        ResidentStore(db).put(known)
    with open_store(store_loc) as store:
        sign, auth = issue_pair(store, known.resident_code)
        s_sign, s_auth = issue_pair(store, stranger.resident_code)
    death = line(notice("death", known.resident_code, nid="cli-1"))
    file = tmp_path / "notices.jsonl"
    file.write_text("\n".join([
        death, death, "{oops",
        line(notice("name_change", stranger.resident_code, nid="cli-2")),
    ]) + "\n", encoding="utf-8")

    assert run(["notices", "ingest", str(file), "--json", *store_opts, *common], home) == 1
    report = out_json(capsys)
    assert {k: report["intake"][k] for k in ("accepted", "duplicate", "unmatched",
                                             "rejected")} == \
        {"accepted": 1, "duplicate": 1, "unmatched": 1, "rejected": 1}
    assert [p["line"] for p in report["intake"]["problems"]] == [2, 3, 4]
    assert report["processed"]["applied"] == 1 and report["processed"]["revoked"] == 2
    with open_store(store_loc) as store:
        assert store.get(sign).status.value == store.get(auth).status.value == "revoked"
        assert store.get(s_sign).status.value == "good"

    assert run(["notices", "status", "--json", *common], home) == 0
    assert out_json(capsys) == {"arrived": 3, "applied": 1, "waiting": 0, "unmatched": 1,
                                "rejected": 1, "not_yet_effective": 0}

    assert run(["notices", "unmatched", "--json", *common], home) == 0
    listed = out_json(capsys)
    assert [u["id"] for u in listed["unmatched"]] == ["cli-2"]
    assert listed["rejected"][0]["raw"] == "{oops" and listed["rejected"][0]["reason"]

    assert run(["notices", "unmatched", *common], home) == 0
    text = capsys.readouterr().out
    assert "juki:cli-2 name_change" in text and "{oops" in text

    with open_database(db_url) as db:
        ResidentStore(db).put(stranger)
    assert run(["notices", "process", "--json", *store_opts, *common], home) == 0
    processed = out_json(capsys)
    assert (processed["rematched"], processed["applied"], processed["revoked"]) == (1, 1, 1)
    with open_store(store_loc) as store:
        assert store.get(s_sign).status.value == "revoked"
        assert store.get(s_auth).status.value == "good"

    with open_database(db_url) as db:
        actions = [e.action for e in AuditLog(db).entries()]
        # status and unmatched only read: they record nothing
        assert actions == ["notices.ingest", "notices.process"]
        assert all(e.operator == "clerk-1" for e in AuditLog(db).entries())
        assert AuditLog(db).verify().ok


def test_plain_output_and_progress(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                   monkeypatch: pytest.MonkeyPatch) -> None:
    home = tmp_path / "home"
    home.mkdir()
    person = resident()
    db_url = f"sqlite:///{home / 'issuance.sqlite3'}"
    with open_database(db_url) as db:
        ResidentStore(db).put(person)
    file = tmp_path / "many.jsonl"
    file.write_text("".join(line(notice("address_change", person.resident_code,
                                        nid=f"p-{i}")) + "\n" for i in range(1100)),
                    encoding="utf-8")
    import io
    import sys

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    terminal = Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    assert run(["notices", "ingest", str(file), "--operator", "clerk"], home) == 0
    monkeypatch.undo()
    captured = capsys.readouterr()
    assert "accepted 1100" in captured.out and "applied 1100 notice(s)" in captured.out
    # progress with counts and rate on stderr when it is a terminal, only then
    assert "ingest: 500 (" in terminal.getvalue() and "lines read" in terminal.getvalue()
    more = tmp_path / "more.jsonl"  # piped (not a terminal): no progress
    more.write_text("".join(line(notice("address_change", person.resident_code,
                                        nid=f"q-{i}")) + "\n" for i in range(600)),
                    encoding="utf-8")
    assert run(["notices", "ingest", str(more), "--operator", "clerk", "--no-process"],
               home) == 0
    assert "ingest:" not in capsys.readouterr().err
    assert run(["notices", "status", "--operator", "clerk"], home) == 0
    assert "applied: 1100" in capsys.readouterr().out


def test_refusals(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MYNACARD_OPERATOR", raising=False)
    home = tmp_path / "home"
    home.mkdir()
    assert run(["notices", "ingest", str(tmp_path / "missing.jsonl")], home) == 2
    assert "no operator identity" in capsys.readouterr().err
    assert run(["notices", "status"], home) == 0  # read-only: no operator needed
    capsys.readouterr()
    assert run(["notices", "ingest", str(tmp_path / "missing.jsonl"), "--operator", "c"],
               home) == 3
    assert "missing.jsonl" in capsys.readouterr().err
    assert run(["notices", "schema"], home) == 0
    assert json.loads(capsys.readouterr().out)["title"].startswith("mynacard registry notice")


def test_unusable_certificate_store_keeps_the_notices(tmp_path: Path,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    home = tmp_path / "home"
    home.mkdir()
    person = resident()
    db_url = f"sqlite:///{home / 'issuance.sqlite3'}"
    with open_database(db_url) as db:
        ResidentStore(db).put(person)
    file = tmp_path / "n.jsonl"
    file.write_text(line(notice("death", person.resident_code)) + "\n", encoding="utf-8")
    bad_store = ["--store", "postgresql://nobody@/nowhere?host=/nonexistent&port=1"]
    assert run(["notices", "ingest", str(file), "--operator", "c", *bad_store], home) == 3
    assert "stored but not applied: certificate store" in capsys.readouterr().err
    with open_database(db_url) as db:
        assert AuditLog(db).entries()[-1].outcome == "stored_not_applied"
    assert run(["notices", "status", "--json", "--operator", "c"], home) == 0
    assert out_json(capsys)["waiting"] == 1


def test_ingest_applies_alongside_in_a_second_process(
        db_url: str, backend: str, store_url: str, tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    home, store_opts, store_loc, common = _setting(tmp_path, db_url, backend, store_url)
    people = [resident() for _ in range(12)]
    with open_database(db_url) as db:
        ResidentStore(db).put(*people)
    serials = {}
    with open_store(store_loc) as store:
        for p in people:
            serials[p.resident_code] = issue_pair(store, p.resident_code)
    lines = []
    for i, p in enumerate(people):
        kind = "death" if i % 2 else "address_change"
        facts = {"address": "大阪府大阪市北区梅田1丁目1番1号"} if kind == "address_change" else None
        lines.append(line(notice(kind, p.resident_code, nid=f"al-{i}",
                                 **({"facts": facts} if facts else {}))))
    file = tmp_path / "many.jsonl"
    file.write_text("\n".join(lines + lines[:3]) + "\n", encoding="utf-8")  # 3 resent
    argv = ["notices", "ingest", str(file), "--json", "--batch", "4",
            "--apply-alongside", "always"]
    assert run([*argv, *store_opts, *common], home) == 0
    report = out_json(capsys)
    assert (report["intake"]["accepted"], report["intake"]["duplicate"]) == (12, 3)
    assert report["processed"]["applied"] == 12
    assert report["processed"]["revoked"] == 6 * 2 + 6  # deaths: both; moves: signing
    with open_store(store_loc) as store:
        for i, p in enumerate(people):
            sign, auth = serials[p.resident_code]
            assert store.get(sign).status.value == "revoked"
            assert store.get(auth).status.value == ("revoked" if i % 2 else "good")
    assert run(["notices", "status", "--json", *common], home) == 0
    assert out_json(capsys)["applied"] == 12

    # the processor cannot open the certificate store: stored, not applied, said so
    more = tmp_path / "more.jsonl"
    more.write_text(line(notice("death", people[0].resident_code, nid="al-x")) + "\n")
    bad_store = ["--store", "postgresql://nobody@127.0.0.1:1/none"]
    assert run(["notices", "ingest", str(more), "--apply-alongside", "always", *bad_store,
                *common], home) == 3
    err = capsys.readouterr().err
    assert "stored but not applied" in err and "Traceback" not in err
    assert run(["notices", "status", "--json", *common], home) == 0
    assert out_json(capsys)["waiting"] == 1


def test_ingest_takes_source_and_records_the_local_sender(
        db_url: str, backend: str, store_url: str, tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    home, store_opts, _loc, common = _setting(tmp_path, db_url, backend, store_url)
    person = resident()
    with open_database(db_url) as db:
        ResidentStore(db).put(person)
    file = tmp_path / "notices.jsonl"
    file.write_text(line(notice("death", person.resident_code, nid="L-1")) + "\n"
                    + line(notice("address_change", person.resident_code, source="fuhyo",
                                  nid="L-2")) + "\n", encoding="utf-8")
    code = run(["notices", "ingest", str(file), "--source", "juki", "--no-process", "--json",
                *store_opts, *common], home)
    assert code == 1  # a line refused by the rule
    report = json.loads(capsys.readouterr().out)["intake"]
    assert (report["accepted"], report["rejected"]) == (1, 1)
    assert "'local' may not send fuhyo" in report["problems"][0]["reason"]
    with open_database(db_url) as db:
        assert notice_state(db, "juki", "L-1") == "accepted"
        assert notice_state(db, "juki", "L-1", sender="gw") is None
        assert notice_state(db, "fuhyo", "L-2") is None
        [rejected] = problem_notices(db)["rejected"]
        assert rejected["sender"] == "local"
    # without --source the file intake takes both networks' notices
    assert run(["notices", "ingest", str(file), "--no-process", "--json", *store_opts,
                *common], home) == 0
    capsys.readouterr()
    with open_database(db_url) as db:
        assert notice_state(db, "fuhyo", "L-2") == "accepted"
