"""One way to give a PIN or a password: `--pin-source [KIND=]SPEC` on every command that
takes one, the same grammar everywhere (env:NAME, file:PATH, fd:N, prompt), old spellings
as hidden aliases that warn, and never a secret as an option's value."""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from hsm.errors import PinSourceError
from hsm.options import DeprecatedAlias, PinSourceOption, split_kind
from hsm.pin_source import PinSource
from issuance.cli.main import build_parser, command_tree

SECRET_DEST = re.compile(r"pin|password|secret|passphrase", re.I)
ROOT = Path(__file__).resolve().parents[2]


def _secret_options() -> dict[str, list[argparse.Action]]:
    out: dict[str, list[argparse.Action]] = {}
    for path, parser in command_tree(build_parser()).items():
        out[path] = [a for a in parser._actions
                     if a.option_strings and SECRET_DEST.search(a.dest)]
    return out


def test_every_secret_option_is_pin_source_or_a_documented_alias() -> None:
    docs = (ROOT / "docs" / "cli.md").read_text()
    takes = {path: acts for path, acts in _secret_options().items() if acts}
    for path, actions in takes.items():
        for action in actions:
            if action.option_strings == ["--pin-source"]:
                continue
            if isinstance(action, DeprecatedAlias):
                old = action.option_strings[0]
                assert action.help == argparse.SUPPRESS, (path, old)
                assert f"`{old}`" in docs, f"{path}: deprecated {old} not in docs/cli.md"
                continue
            # an option naming WHICH PIN (`pin reset --pin auth`) carries no secret
            assert action.choices is not None, f"{path}: {action.option_strings} takes a secret"
    # the commands the issue names take --pin-source
    for path in ("card sign", "card authenticate", "issue", "activate", "pin reset",
                 "card update", "hsm init", "hsm create-key", "hsm keys", "center init",
                 "ca init", "ca issue", "ca issue-batch", "crl publish", "ocsp serve", "login",
                 "operator add", "operator passwd"):
        assert any(a.option_strings == ["--pin-source"] for a in takes[path]), path


def test_kinds_route_each_source_and_old_spellings_warn(
        capsys: pytest.CaptureFixture[str]) -> None:
    parser = build_parser()
    args = parser.parse_args(["ca", "init", "--pin-source", "env:U", "--pin-source", "so=fd:4",
                              "--pin-source", "second-officer=file:/p=q"])
    assert (args.pin_source, args.so_pin_source, args.second_password_source) == \
        ("env:U", "fd:4", "file:/p=q")
    assert capsys.readouterr().err == ""
    assert parser.parse_args(["ca", "init"]).so_pin_source == "env:MYNACARD_HSM_SO_PIN"
    for argv, dest, new in (
            (["hsm", "init", "--token", "t", "--so-pin-source", "env:S"], "so_pin_source",
             "--pin-source so=SPEC"),
            (["login", "--password-source", "env:S"], "password_source", "--pin-source"),
            (["hsm", "create-key", "--label", "k", "--second-password-source", "env:S"],
             "second_password_source", "--pin-source second-officer=SPEC")):
        assert getattr(parser.parse_args(argv), dest) == "env:S"
        assert f"is deprecated; use {new}" in capsys.readouterr().err
    with pytest.raises(SystemExit) as ex:
        parser.parse_args(["hsm", "init", "--token", "t", "--pin-source", "root=env:S"])
    assert ex.value.code == 2
    assert "KIND is one of user, so, second-officer" in capsys.readouterr().err
    with pytest.raises(SystemExit) as ex:  # the secret itself where its source belongs
        parser.parse_args(["login", "--pin-source", "hunter2-secret"])
    assert ex.value.code == 2
    err = capsys.readouterr().err
    assert "never the secret itself" in err and "hunter2" not in err
    assert split_kind("file:/a=b") == (None, "file:/a=b")
    assert split_kind("auth=env:X") == ("auth", "env:X")
    helps = command_tree(parser)["hsm init"].format_help()
    assert "--so-pin-source" not in helps and "fd:N" in helps
    pins = [a for a in command_tree(parser)["hsm init"]._actions
            if isinstance(a, PinSourceOption)]
    assert list(pins[0].kinds) == ["user", "so", "second-officer", "second-card"]


def test_one_grammar_fd_and_prompt(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    r, w = os.pipe()
    os.write(w, b"from-a-vault\nrest")
    os.close(w)
    src = PinSource.from_spec(f"fd:{r}")
    assert src.read() == "from-a-vault" and src.read() == "from-a-vault"  # read once, kept
    os.close(r)
    assert "vault" not in repr(src) and repr(src) == f"PinSource('fd:{r}')"
    with pytest.raises(PinSourceError, match="descriptor"):
        PinSource.from_spec("fd:x")
    with pytest.raises(PinSourceError, match="Bad file descriptor"):
        PinSource.from_spec("fd:987").read()
    monkeypatch.setattr(sys, "stdin", open(os.devnull))  # noqa: SIM115 - not a terminal
    with pytest.raises(PinSourceError, match="no terminal"):
        PinSource.from_spec("prompt").read()
    with pytest.raises(PinSourceError, match="env:NAME, file:PATH, fd:N or prompt"):
        PinSource.from_spec("1234")  # a bare value is refused, and not echoed
    from card.cli import read_pin

    r, w = os.pipe()
    os.write(w, b"1234\n")
    os.close(w)
    assert read_pin(f"fd:{r}", "PIN: ") == "1234"  # the card's own reader: same grammar
    os.close(r)


def test_a_password_from_a_descriptor_through_the_real_cli(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    env = {**os.environ, "PYTHONPATH": str(ROOT), "MYNACARD_DEVELOPMENT": "1"}
    env.pop("MYNACARD_DB", None)
    password = "a-long-password-1"

    def run(*argv: str) -> subprocess.CompletedProcess[str]:
        r, w = os.pipe()
        os.write(w, f"{password}\n".encode())
        os.close(w)
        try:
            return subprocess.run(
                [sys.executable, "-m", "issuance.cli.main", "--home", str(home), *argv,
                 "--pin-source", f"fd:{r}"], env=env, pass_fds=(r,), capture_output=True,
                text=True, timeout=120, check=False)
        finally:
            os.close(r)

    added = run("operator", "add", "kato", "--role", "clerk", "--operator", "kato")
    assert added.returncode == 0, added.stderr
    assert password not in added.stdout + added.stderr
    from issuance.operators import OperatorStore
    from issuance.storage import open_database

    with open_database(f"sqlite:///{home / 'issuance.sqlite3'}") as db:
        assert OperatorStore(db).authenticate("kato", password).name == "kato"
    password = "another-password-2"
    changed = run("operator", "passwd", "kato", "--operator", "kato")
    assert changed.returncode == 0, changed.stderr
    with open_database(f"sqlite:///{home / 'issuance.sqlite3'}") as db:
        assert OperatorStore(db).authenticate("kato", password).name == "kato"
