"""The state directory and the root command's plumbing."""

from __future__ import annotations

from pathlib import Path

import pytest

from issuance.cli import home as home_mod
from issuance.cli.main import build_parser, main


def test_home_option_wins_and_is_created(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MYNACARD_HOME", str(tmp_path / "from-env"))
    chosen = home_mod.resolve_home(str(tmp_path / "from-option"))
    assert chosen == (tmp_path / "from-option").resolve()
    assert chosen.is_dir()
    assert oct(chosen.stat().st_mode & 0o777) == oct(0o700)


def test_env_then_xdg_then_default(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MYNACARD_HOME", str(tmp_path / "env"))
    assert home_mod.default_home() == tmp_path / "env"
    monkeypatch.delenv("MYNACARD_HOME")
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    assert home_mod.default_home() == tmp_path / "xdg" / "mynacard"
    monkeypatch.delenv("XDG_DATA_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "user"))
    assert home_mod.default_home() == tmp_path / "user" / ".local" / "share" / "mynacard"


def test_emulator_socket_is_loaded_unless_already_set(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    socket = tmp_path / "pcscd.comm"
    socket.touch()
    (tmp_path / "emulator").mkdir()
    (tmp_path / "emulator" / "pcscd.env").write_text(f"export PCSCLITE_CSOCK_NAME={socket}\n")
    monkeypatch.delenv("PCSCLITE_CSOCK_NAME", raising=False)
    home_mod.load_emulator_env(tmp_path)
    import os

    assert os.environ["PCSCLITE_CSOCK_NAME"] == str(socket)
    monkeypatch.setenv("PCSCLITE_CSOCK_NAME", "/elsewhere")
    home_mod.load_emulator_env(tmp_path)
    assert os.environ["PCSCLITE_CSOCK_NAME"] == "/elsewhere"


def test_stale_emulator_socket_is_ignored(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "emulator").mkdir()
    (tmp_path / "emulator" / "pcscd.env").write_text("PCSCLITE_CSOCK_NAME=/no/such/socket\n")
    monkeypatch.delenv("PCSCLITE_CSOCK_NAME", raising=False)
    home_mod.load_emulator_env(tmp_path)
    import os

    assert "PCSCLITE_CSOCK_NAME" not in os.environ


def test_every_command_group_registers() -> None:
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "==SUPPRESS==" or a.choices)
    names = set(sub.choices or ())
    assert {"card", "emulator", "hsm"} <= names


def test_no_command_prints_help_and_fails(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 2
    assert "usage: mynacard" in capsys.readouterr().err
