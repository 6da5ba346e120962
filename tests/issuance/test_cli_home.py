"""The state directory and the root command's plumbing."""

from __future__ import annotations

from pathlib import Path

import pytest

from issuance.cli import home as home_mod
from issuance.cli.main import build_parser, main


def test_home_option_wins_and_is_created(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MYNACARD_HOME", str(tmp_path / "from-env"))
    chosen = home_mod.resolve_home(str(tmp_path / "from-option"), create=True)
    assert chosen == (tmp_path / "from-option").resolve()
    assert chosen.is_dir()
    assert oct(chosen.stat().st_mode & 0o777) == oct(0o700)


def test_a_named_home_that_does_not_exist_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    typo = tmp_path / "hmoe"
    with pytest.raises(home_mod.HomeError, match="does not exist"):
        home_mod.resolve_home(str(typo))
    monkeypatch.setenv("MYNACARD_HOME", str(typo))
    with pytest.raises(home_mod.HomeError, match=r"\$MYNACARD_HOME"):
        home_mod.resolve_home(None)
    capsys.readouterr()
    assert main(["--home", str(typo), "ca", "status", "01"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "does not exist" in err and "Traceback" not in err
    assert not typo.exists()
    # the default home (neither --home nor $MYNACARD_HOME) is still created
    monkeypatch.delenv("MYNACARD_HOME")
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    assert home_mod.resolve_home(None) == (tmp_path / "xdg" / "mynacard").resolve()


def test_only_the_setting_up_commands_may_create_the_home() -> None:
    parser = build_parser()
    creating = {" ".join(argv) for argv in (["center", "init"], ["hsm", "init", "--token", "t"],
                                            ["emulator", "up"], ["ca", "status", "01"],
                                            ["registry", "load", "f.csv"],
                                            ["notices", "ingest", "f.jsonl"])
                if getattr(parser.parse_args(argv), "creates_home", False)}
    assert creating == {"center init", "hsm init --token t", "emulator up"}


def test_loose_modes_are_fixed_on_every_start(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir(mode=0o755)
    home.chmod(0o755)
    db = home / "store.sqlite"
    db.write_bytes(b"")
    db.chmod(0o644)
    (home / "hsm").mkdir()
    others = [home / "issuance.sqlite3", home / "issuance.sqlite3-wal", home / "hsm" / "t.pin",
              home / "residents.rejects.csv", home / "center.json"]
    for path in others:
        path.write_bytes(b"")
        path.chmod(0o640)
    (home / "notes.txt").write_bytes(b"")
    (home / "notes.txt").chmod(0o644)
    victim = tmp_path / "victim.sqlite"
    victim.write_bytes(b"")
    victim.chmod(0o644)
    (home / "link.sqlite").symlink_to(victim)
    home_mod.resolve_home(str(home))
    assert home.stat().st_mode & 0o777 == 0o700
    assert db.stat().st_mode & 0o777 == 0o600
    assert [p.stat().st_mode & 0o777 for p in others] == [0o600] * len(others)
    assert (home / "notes.txt").stat().st_mode & 0o777 == 0o644  # not personal data
    assert victim.stat().st_mode & 0o777 == 0o644  # a symlink is never followed


def test_a_home_that_is_a_file_is_refused(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    with pytest.raises(home_mod.HomeError, match="not a directory"):
        home_mod.resolve_home(str(tmp_path / "file"))


def test_socket_of_another_homes_emulator_is_named(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    other = tmp_path / "other"
    socket = other / "emulator" / "run" / "pcscd" / "pcscd.comm"
    socket.parent.mkdir(parents=True)
    socket.touch()
    (other / "emulator" / "pcscd.env").write_text(f"PCSCLITE_CSOCK_NAME={socket}\n")
    mine = tmp_path / "mine"
    mine.mkdir()
    monkeypatch.setenv("PCSCLITE_CSOCK_NAME", str(socket))
    home_mod.load_emulator_env(mine)
    err = capsys.readouterr().err
    assert f"emulator of home {other}" in err and str(mine) in err
    home_mod.load_emulator_env(other)  # its own emulator: nothing to say
    assert capsys.readouterr().err == ""


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
