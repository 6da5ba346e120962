"""The command table (`mynacard commands`, docs/cli.md) is generated from the commands'
declarations and cannot drift; every command that reports anything takes --json and
prints one JSON document, errors as `{"error", "exit"}` on stderr."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from issuance.cli.commands import BEGIN, END, markdown, table
from issuance.cli.main import build_parser, command_tree, declaration, main
from issuance.cli.output import has_json, reports

ROOT = Path(__file__).resolve().parents[2]


def test_docs_cli_md_is_the_generated_table() -> None:
    text = (ROOT / "docs" / "cli.md").read_text()
    assert BEGIN in text and END in text
    section = text[text.index(BEGIN):text.index(END) + len(END)] + "\n"
    assert section == markdown(table()), "run `mynacard commands --markdown` into docs/cli.md"


def test_the_table_says_what_each_command_declares(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["commands", "--json"]) == 0
    rows = {r["command"]: r for r in json.loads(capsys.readouterr().out)["commands"]}
    tree = command_tree(build_parser())
    assert sorted(rows) == sorted(tree)
    for path, parser in tree.items():
        decl = declaration(parser, path)
        row = rows[path]
        assert row["changes"] == decl.changes and row["roles"] == list(decl.roles or ())
        assert (row["audit"] != "no") == decl.changes
        assert row["json"] == has_json(parser)
    assert 4 in rows["verify"]["exits"] and 4 not in rows["ca status"]["exits"]
    assert rows["hsm init"]["secrets"] == ["user", "so", "second-officer", "second-card"]
    assert rows["login"]["secrets"] == ["password", "card"]
    assert rows["card sign"]["secrets"] == ["pin"]
    assert rows["activate"]["secrets"] == ["auth", "sign", "text", "juki"]
    assert rows["ca revoke"]["audit"] == "one entry" and rows["apply"]["audit"] == "own entries"
    assert main(["commands"]) == 0
    assert "ca init" in capsys.readouterr().out


def test_every_command_that_reports_takes_json() -> None:
    tree = command_tree(build_parser())
    for path, parser in tree.items():
        if reports(parser):
            assert has_json(parser), f"{path} reports something but takes no --json"
    # the exceptions are servers, help-only groups and the completion script
    assert sorted(p for p, s in tree.items() if not reports(s)) == [
        "card", "completion", "config", "emulator", "hsm", "notices serve", "ocsp serve",
        "verify-serve"]


def _mynacard(home: Path, *argv: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "MYNACARD_DEVELOPMENT": "1",
           "MYNACARD_OPERATOR": "json-walker"}
    env.pop("MYNACARD_DB", None)
    return subprocess.run([sys.executable, "-m", "issuance.cli.main", "--home", str(home),
                           *argv], env=env, capture_output=True, text=True, timeout=120,
                          check=False)


def test_json_documents_and_json_errors_through_the_real_cli(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    (tmp_path / "pw").write_text("a-long-password-1\n")
    (tmp_path / "pw").chmod(0o600)
    # an action without a result of its own: its lines, wrapped
    added = _mynacard(home, "operator", "add", "kato", "--role", "clerk",
                      "--pin-source", f"file:{tmp_path / 'pw'}", "--json")
    assert added.returncode == 0, added.stderr
    doc = json.loads(added.stdout)
    assert doc["command"] == "operator add" and doc["exit"] == 0
    assert any("kato" in line for line in doc["lines"])
    # a command with its own JSON output: unchanged
    schema = _mynacard(home, "registry", "schema", "--json")
    assert schema.returncode == 0 and "properties" in json.loads(schema.stdout)
    # errors: stdout empty, one JSON line on stderr with the exit code
    for argv, code in ((["operator", "disable", "nobody", "--json"], 1),
                       (["ca", "status", "zz", "--json"], 3),  # no store yet
                       (["registry", "load", str(tmp_path / "missing.csv"), "--json"], 1)):
        res = _mynacard(home, *argv)
        assert res.returncode == code, (argv, res.stderr)
        assert res.stdout == "", (argv, res.stdout)
        err = json.loads(res.stderr.strip().splitlines()[-1])
        assert err["exit"] == code and err["error"].startswith("mynacard"), err
        assert "Traceback" not in res.stderr
