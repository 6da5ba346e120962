"""The command line behaves as one tool: the README's exit codes in every command
group, one line (never a traceback) for every error, --version, completion."""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from card.errors import CardError, PinIncorrect
from hsm.errors import DeviceError, HsmError
from issuance.cli import main as root
from issuance.errors import IssuanceError
from pki.errors import PkiError, StoreError

# one read-only command of every group (the root command runs each the same way)
ONE_PER_GROUP = {
    "card readers": [], "hsm keys": [], "emulator status": [], "ca status": ["01"],
    "verify": ["--cert", "x.pem"], "rp list": [], "registry schema": [],
    "notices status": [], "audit show": [], "config show": [],
}


def _raising(exc: BaseException) -> Callable[[argparse.Namespace], int]:
    def func(args: argparse.Namespace) -> int:
        raise exc
    return func


# (what escapes a command, the README's exit code)
CLASSES: list[tuple[BaseException, int]] = [
    (CardError("the card was removed"), 3),
    (PinIncorrect(0x63C3), 1),
    (HsmError("token gone"), 3),
    (DeviceError("CKR_DEVICE_ERROR"), 3),
    (PkiError("no trusted roots"), 1),
    (StoreError("database is locked"), 3),
    (IssuanceError("storage failed"), 3),
    (ConnectionResetError(104, "Connection reset by peer"), 3),
    (FileNotFoundError(2, "No such file or directory", "/no/such/dir/out.pem"), 1),
    (EOFError(), 1),
    (RuntimeError("a bug"), 3),
]


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.delenv("MYNACARD_DB", raising=False)
    home = tmp_path / "home"
    home.mkdir()
    return home


@pytest.mark.parametrize(("exc", "code"), CLASSES, ids=[type(e).__name__ for e, _ in CLASSES])
def test_every_group_maps_each_error_class(exc: BaseException, code: int, home: Path,
                                           monkeypatch: pytest.MonkeyPatch,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    build = root.build_parser

    def patched() -> argparse.ArgumentParser:
        parser = build()
        for path, sub in root.command_tree(parser).items():
            if path in ONE_PER_GROUP:
                sub.set_defaults(func=_raising(exc))
        return parser

    monkeypatch.setattr(root, "build_parser", patched)
    for path, extra in ONE_PER_GROUP.items():
        got = root.main(["--home", str(home), *path.split(), *extra])
        err = capsys.readouterr().err
        assert got == code, (path, err)
        assert "Traceback" not in err and len(err.strip().splitlines()) == 1, (path, err)
        assert err.startswith(f"mynacard {path}:"), err


def test_an_unexpected_error_leaves_its_traceback_in_a_private_log(
        home: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    build = root.build_parser

    def patched() -> argparse.ArgumentParser:
        parser = build()
        root.command_tree(parser)["card readers"].set_defaults(
            func=_raising(ZeroDivisionError("division by zero")))
        return parser

    monkeypatch.setattr(root, "build_parser", patched)
    assert root.main(["--home", str(home), "card", "readers"]) == 3
    err = capsys.readouterr().err
    assert "internal error: ZeroDivisionError" in err and "Traceback" not in err
    log = Path(err.rsplit("details in ", 1)[1].rstrip(")\n"))
    assert log.parent == home / "logs" and log.stat().st_mode & 0o777 == 0o600
    assert "Traceback" in log.read_text() and "ZeroDivisionError" in log.read_text()


def test_end_of_input_at_a_prompt_is_one_line(home: Path, capsys: pytest.CaptureFixture[str],
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """getpass at end of input (Ctrl-D, </dev/null) raises EOFError: one line, exit 1."""
    import card.cli

    def eof(*_: object, **__: object) -> str:
        raise EOFError

    monkeypatch.setattr(card.cli, "read_pin", eof)
    doc = home / "doc.txt"
    doc.write_text("x")
    code = root.main(["--home", str(home), "card", "sign", str(doc)])
    err = capsys.readouterr().err
    assert code == 1 and "end of input" in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1


def test_usage_is_2_and_version(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as ex:
        root.main(["--home", str(home), "ca", "status"])  # SERIAL missing
    assert ex.value.code == 2
    with pytest.raises(SystemExit) as ex:
        root.main(["--version"])
    assert ex.value.code == 0 and capsys.readouterr().out.startswith("mynacard ")


def test_config_show_without_a_center(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert root.main(["--home", str(home), "config", "show", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out == {"path": str(home / "config.toml"), "exists": False, "center": {}}
    (home / "config.toml").write_text("[center\n")
    assert root.main(["--home", str(home), "config", "show"]) == 3
    assert "not valid TOML" in capsys.readouterr().err


def test_config_fills_only_unset_options_of_the_ca_commands(home: Path) -> None:
    from issuance.cli.config import apply_config, load_config, write_config

    path = write_config(home, {"token": "jpki", "pin_source": "file:/h/hsm/jpki.pin",
                               "store": "/h/store.sqlite", "crl_dir": "/h/crl", "x": None})
    assert path.stat().st_mode & 0o777 == 0o600
    config = load_config(home)
    assert "x" not in config
    parser = root.build_parser()
    args = parser.parse_args(["ocsp", "serve"])
    apply_config(args, "ocsp serve", config)
    assert (args.token, args.pin_source, args.db) == ("jpki", "file:/h/hsm/jpki.pin",
                                                      "/h/store.sqlite")
    args = parser.parse_args(["crl", "publish", "--pin-source", "env:MINE"])
    apply_config(args, "crl publish", config)
    assert args.pin_source == "env:MINE" and args.out == "/h/crl"
    args = parser.parse_args(["card", "sign", "f"])  # a card PIN is never the token's
    apply_config(args, "card sign", config)
    assert args.pin_source is None


def test_completion_scripts(capsys: pytest.CaptureFixture[str]) -> None:
    for shell in ("bash", "zsh"):
        assert root.main(["completion", shell]) == 0
        script = capsys.readouterr().out
        assert '"center") opts="--help init"' in script and "--pin-source" in script
        assert "complete -o default -F _mynacard mynacard" in script
        if shell == "bash" and shutil.which("bash"):
            check = subprocess.run(["bash", "-n"], input=script, text=True,
                                   capture_output=True, check=False)
            assert check.returncode == 0, check.stderr


def test_old_spellings_are_hidden_aliases_that_warn(capsys: pytest.CaptureFixture[str]) -> None:
    parser = root.build_parser()
    args = parser.parse_args(["pin", "reset", "--reader", "r", "--pin", "auth",
                              "--new-pin-source", "env:X"])
    assert args.new_pin_source == "env:X"
    assert "--new-pin-source is deprecated; use --pin-source" in capsys.readouterr().err
    args = parser.parse_args(["pin", "reset", "--reader", "r", "--pin", "auth",
                              "--pin-source", "auth=env:X"])
    assert args.new_pin_source == "auth=env:X" and capsys.readouterr().err == ""
    for argv in (["ca", "status", "01"], ["rp", "list"]):
        args = parser.parse_args([*argv, "--db", "s.sqlite"])
        assert args.db == "s.sqlite"
        assert "--db is deprecated; use --store" in capsys.readouterr().err
        assert parser.parse_args([*argv, "--store", "t.sqlite"]).db == "t.sqlite"
    helps = {path: sub.format_help() for path, sub in root.command_tree(parser).items()}
    assert "--new-pin-source" not in helps["pin reset"] and "--db" not in helps["ca status"]


def test_progress_and_colour_only_on_a_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    import io

    from hsm.terminal import Progress, paint

    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    monkeypatch.delenv("NO_COLOR", raising=False)
    tty, pipe = Tty(), io.StringIO()
    assert paint("INVALID", tty) == "\033[31mINVALID\033[0m" and paint("INVALID", pipe) == \
        "INVALID"
    monkeypatch.setenv("NO_COLOR", "1")
    assert paint("VALID", tty) == "VALID"
    for stream, quiet, shown in ((tty, False, True), (tty, True, False), (pipe, False, False)):
        stream.seek(0)
        stream.truncate()
        assert list(Progress("loaded", total=3, quiet=quiet, stream=stream).over("abc")) == \
            ["a", "b", "c"]
        assert ("loaded: 3/3 (" in stream.getvalue()) is shown


def test_verify_serve_is_spelled_both_ways() -> None:
    from issuance.cli.main import spelled_out

    assert spelled_out(["verify", "serve", "--port", "1"]) == ["verify-serve", "--port", "1"]
    assert spelled_out(["--home", "/h", "verify", "serve"]) == ["--home", "/h", "verify-serve"]
    assert spelled_out(["verify", "--cert", "serve"]) == ["verify", "--cert", "serve"]
    assert spelled_out(["card", "sign", "verify", "serve"]) == ["card", "sign", "verify", "serve"]
