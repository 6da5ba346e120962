"""The registry, apply and audit commands end to end, on SQLite and PostgreSQL.

The commands are registered on a parser of our own with a pinned clock, the way the
root `mynacard` command registers them through entry points.
"""

from __future__ import annotations

import argparse
import json
from datetime import date, timedelta
from pathlib import Path

import pytest
from issuance_factories import fixed_clock, resident

from issuance.applications.cli import register as register_apply
from issuance.audit.cli import register as register_audit
from issuance.registry.cli import register as register_registry
from issuance.storage import open_database

TODAY = date(2026, 11, 20)


class Cli:
    def __init__(self, home: Path, db_url: str, capsys: pytest.CaptureFixture[str]) -> None:
        self.home, self.db_url, self.capsys = home, db_url, capsys
        parser = argparse.ArgumentParser(prog="mynacard")
        sub = parser.add_subparsers()
        clock = fixed_clock(TODAY)
        for register in (register_registry, register_apply, register_audit):
            register(sub, clock=clock)
        self.parser = parser

    def __call__(self, *argv: str, operator: str | None = "clerk-1") -> tuple[int, str, str]:
        extra = ["--db", self.db_url] + (["--operator", operator] if operator else [])
        args = self.parser.parse_args([*argv, *extra])
        args.home = self.home
        self.capsys.readouterr()
        code = args.func(args)
        out, err = self.capsys.readouterr()
        return code, out, err


@pytest.fixture
def cli(tmp_path: Path, db_url: str, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> Cli:
    monkeypatch.delenv("MYNACARD_OPERATOR", raising=False)
    home = tmp_path / "home"
    home.mkdir()
    return Cli(home, db_url, capsys)


def test_generate_load_apply_and_verify(cli: Cli, tmp_path: Path) -> None:
    out_file = tmp_path / "residents.csv"
    code, _, _ = cli("registry", "generate", "--count", "300", "--seed", "3",
                     "--as-of", TODAY.isoformat(), "--out", str(out_file))
    assert code == 0 and out_file.read_text(encoding="utf-8").startswith("resident_code,")
    code, out, _ = cli("registry", "load", str(out_file), "--json")
    assert code == 0
    report = json.loads(out)
    assert report["loaded"] == 300 and report["rejected"] == []

    rows = out_file.read_text(encoding="utf-8").splitlines()[1:]
    living = next(r.split(",")[0] for r in rows if ",resident," in r and ",false," in r)
    code, out, _ = cli("apply", "--resident-code", living, "--json")
    decision = json.loads(out)
    assert code == 0 and decision["accepted"] and decision["application_id"].startswith("APP-")
    code, out, _ = cli("apply", "--resident-code", living, "--json")
    assert code == 1 and json.loads(out)["refusal"]["rule"] == "I4"

    code, out, _ = cli("audit", "verify", "--json")
    verification = json.loads(out)
    assert code == 0 and verification["ok"]
    # generate, load, apply (accepted), apply (refused); verifying records nothing
    assert verification["entries"] == 4
    assert verification["head"] == f"4:{verification['head_hash']}"
    code, out, _ = cli("audit", "verify", "--json", "--head", verification["head"])
    assert code == 0 and json.loads(out) == verification  # verify does not break its own check
    code, out, _ = cli("audit", "show", "--json")
    actions = [(e["action"], e["outcome"], e["operator"]) for e in json.loads(out)]
    assert actions == [
        ("registry.generate", "ok", "clerk-1"), ("registry.load", "ok", "clerk-1"),
        ("application.apply", "accepted", "clerk-1"), ("application.apply", "refused", "clerk-1"),
    ]


def test_load_reports_bad_rows_and_exits_1(cli: Cli, tmp_path: Path) -> None:
    good = resident()
    path = tmp_path / "in.jsonl"
    path.write_text(json.dumps(good.to_row(), ensure_ascii=False) + "\n"
                    + json.dumps({**resident().to_row(), "sex": 7}) + "\n", encoding="utf-8")
    code, out, err = cli("registry", "load", str(path))
    assert code == 1
    assert f"{path}: row 2: sex: must be 0, 1, 2 or 9" in err
    assert "loaded 1 resident(s), rejected 1 row(s)" in out
    assert (tmp_path / "in.rejects.jsonl").exists()
    code, out, _ = cli("registry", "show", good.resident_code, "--json")
    assert code == 0 and json.loads(out)["my_number"] == good.my_number


def test_apply_prints_the_decision(cli: Cli, tmp_path: Path) -> None:
    baby = resident(birth_date=TODAY - timedelta(days=30))
    path = tmp_path / "baby.jsonl"
    path.write_text(json.dumps(baby.to_row(), ensure_ascii=False) + "\n", encoding="utf-8")
    assert cli("registry", "load", str(path))[0] == 0
    code, out, _ = cli("apply", "--resident-code", baby.resident_code, "--express")
    assert code == 0
    assert "photo-less" in out and "under_one" in out and "certificates: user-authentication" in out


def test_express_refusals_name_the_rule(cli: Cli, tmp_path: Path) -> None:
    adult = resident()
    path = tmp_path / "a.jsonl"
    path.write_text(json.dumps(adult.to_row(), ensure_ascii=False) + "\n", encoding="utf-8")
    cli("registry", "load", str(path))
    code, _, err = cli("apply", "--resident-code", adult.resident_code, "--express")
    assert code == 1 and "rule 4.8: no express reason applies" in err
    late = (TODAY - timedelta(days=31)).isoformat()
    code, _, err = cli("apply", "--resident-code", adult.resident_code,
                       "--express", "card_lost", "--event-date", late)
    assert code == 1 and "rule 4.8(3): deadline passed" in err
    code, _, err = cli("apply", "--resident-code", adult.resident_code, "--express", "nope")
    assert code == 2 and "unknown express reason" in err


def test_changing_commands_need_an_operator(cli: Cli, tmp_path: Path) -> None:
    for argv in (("registry", "generate", "--count", "1"),
                 ("registry", "load", str(tmp_path / "x.csv")),
                 ("apply", "--resident-code", "12345678901")):
        code, _, err = cli(*argv, operator=None)
        assert code == 2 and "operator" in err
    for argv in (("registry", "show", "12345678901"), ("audit", "verify"), ("audit", "show"),
                 ("registry", "schema")):
        code, _, err = cli(*argv, operator=None)  # read-only: no operator needed
        assert code != 2 and "operator" not in err
    with open_database(cli.db_url) as db, db.transaction() as tx:
        assert tx.query("SELECT * FROM audit_log") == []


def test_operator_from_environment(cli: Cli, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MYNACARD_OPERATOR", "from-env")
    code, out, _ = cli("registry", "generate", "--count", "1", operator=None)
    assert code == 0
    code, out, _ = cli("audit", "show", "--json", operator=None)
    assert json.loads(out)[0]["operator"] == "from-env"


def test_verify_exits_1_on_a_broken_chain(cli: Cli, tmp_path: Path) -> None:
    cli("registry", "generate", "--count", "1", "--out", str(tmp_path / "a.jsonl"))
    cli("registry", "generate", "--count", "1", "--out", str(tmp_path / "b.jsonl"))
    with open_database(cli.db_url) as db, db.transaction() as tx:
        if db.dialect == "sqlite":
            tx.execute("DROP TRIGGER audit_log_no_update")
        else:
            tx.execute("DROP TRIGGER audit_log_no_change ON audit_log")
        tx.execute("UPDATE audit_log SET operator = 'mallory' WHERE seq = 1")
    code, out, err = cli("audit", "verify")
    assert code == 1 and "seq 1: edited" in err and "BROKEN" in out


def test_default_database_is_sqlite_in_the_home(tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MYNACARD_DB", raising=False)
    parser = argparse.ArgumentParser()
    register_audit(parser.add_subparsers(), clock=fixed_clock(TODAY))
    args = parser.parse_args(["audit", "show"])
    args.home = tmp_path
    assert args.func(args) == 0
    assert (tmp_path / "issuance.sqlite3").exists()


def test_generate_out_is_private_and_replaced_only_with_force(cli: Cli, tmp_path: Path) -> None:
    victim = tmp_path / "victim.csv"
    victim.write_text("precious")
    out = tmp_path / "residents.csv"
    out.symlink_to(victim)
    code, _, err = cli("registry", "generate", "--count", "3", "--seed", "1", "--out", str(out))
    assert code == 1 and "--force" in err and "Traceback" not in err
    assert victim.read_text() == "precious" and out.is_symlink()
    code, _, err = cli("registry", "generate", "--count", "3", "--seed", "1", "--out", str(out),
                       "--force")
    assert code == 0, err
    assert not out.is_symlink() and out.read_text(encoding="utf-8").startswith("resident_code,")
    assert out.stat().st_mode & 0o777 == 0o600 and victim.read_text() == "precious"


def test_sqlite_databases_are_created_private(tmp_path: Path) -> None:
    from pki.store import open_store

    with open_database(f"sqlite:///{tmp_path / 'issuance.sqlite3'}"):
        pass
    open_store(tmp_path / "store.sqlite").close()
    for name in ("issuance.sqlite3", "store.sqlite"):
        assert (tmp_path / name).stat().st_mode & 0o777 == 0o600


def test_load_reports_hostile_lines_and_loads_the_rest(cli: Cli, tmp_path: Path) -> None:
    good = [json.dumps(resident().to_row(), ensure_ascii=False).encode() for _ in range(3)]
    path = tmp_path / "hostile.jsonl"
    path.write_bytes(b"\n".join([good[0], b"[" * 30_000 + b"]" * 30_000, b"\xff", good[1],
                                 b'{"name": "\\ud800"}', b"x" * 70_000, good[2]]) + b"\n")
    code, out, err = cli("registry", "load", str(path), "--json")
    assert code == 1 and "Traceback" not in err
    report = json.loads(out)
    assert report["loaded"] == 3
    assert [r["row"] for r in report["rejected"]] == [2, 3, 5, 6]
    assert (tmp_path / "hostile.rejects.jsonl").stat().st_mode & 0o777 == 0o600


def test_apply_keeps_the_photo_given(cli: Cli, tmp_path: Path) -> None:
    from PIL import Image

    from card import images
    from issuance.applications.photos import photo_of

    adult, baby = resident(), resident(birth_date=TODAY - timedelta(days=30))
    path = tmp_path / "two.jsonl"
    path.write_text("".join(json.dumps(r.to_row(), ensure_ascii=False) + "\n"
                            for r in (adult, baby)), encoding="utf-8")
    assert cli("registry", "load", str(path))[0] == 0
    bad = tmp_path / "not-an-image.png"
    bad.write_bytes(b"\x89PNG not really")
    code, _, err = cli("apply", "--resident-code", adult.resident_code, "--photo", str(bad))
    assert code == 1 and "invalid photo" in err and "Traceback" not in err
    photo = tmp_path / "me.png"
    Image.new("L", (120, 160), 128).save(photo)
    code, out, _ = cli("apply", "--resident-code", adult.resident_code, "--photo", str(photo),
                       "--json")
    assert code == 0
    app_id = json.loads(out)["application_id"]
    with open_database(cli.db_url) as db:
        kept = photo_of(db, app_id)
    assert kept == images.photo_from_file(photo.read_bytes())
    code, out, _ = cli("apply", "--resident-code", baby.resident_code, "--photo", str(photo),
                       "--json")
    assert code == 0 and json.loads(out)["decision"]["photo_less"]
    with open_database(cli.db_url) as db:
        assert photo_of(db, json.loads(out)["application_id"]) is None  # rule 4.5
