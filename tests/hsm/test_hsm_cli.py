"""`mynacard hsm init|keys|create-key` through the real root command."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from hsm import KeyKind, PinSource, Pkcs11Uri, open_key_manager
from hsm.module import SOFTHSM2_CONF_ENV
from issuance.cli.main import main


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    # the CLI points SOFTHSM2_CONF at the state directory; restore it after the test
    monkeypatch.setenv(SOFTHSM2_CONF_ENV, str(tmp_path / "unused.conf"))
    monkeypatch.setenv("MYNACARD_OPERATOR", "key-custodian")  # init and create-key need one
    return tmp_path / "state"


def run(home: Path, *argv: str) -> int:
    return main(["--home", str(home), "hsm", *argv])


def test_init_generates_pin_and_prints_uri(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(home, "init", "--token", "cli-dev") == 0
    out, err = capsys.readouterr()
    uri = Pkcs11Uri.parse(out.strip())
    assert uri.token == "cli-dev"
    pin_file = home / "hsm" / "cli-dev.pin"
    assert uri.pin_source == f"file:{pin_file.resolve()}"
    for path in (pin_file, home / "hsm" / "cli-dev.so.pin"):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        assert path.read_text().strip() not in out + err  # the PIN itself is never printed
    assert str(pin_file.resolve()) in err
    assert SOFTHSM2_CONF_ENV in err
    # the printed URI opens the token as is
    with open_key_manager(out.strip()) as km:
        km.create_key("from-cli-uri", kind=KeyKind.EC_P256)


def test_init_with_pin_sources_and_json(
    home: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CLI_TEST_PIN", "cli-user-pin")
    monkeypatch.setenv("CLI_TEST_SO_PIN", "cli-so-pin")
    rc = run(home, "init", "--token", "t2", "--pin-source", "env:CLI_TEST_PIN",
             "--so-pin-source", "env:CLI_TEST_SO_PIN", "--json")
    assert rc == 0
    out, err = capsys.readouterr()
    doc = json.loads(out)
    assert doc["token"] == "t2"
    assert doc["pin_source"] == "env:CLI_TEST_PIN"
    assert Pkcs11Uri.parse(doc["uri"]).pin_source == "env:CLI_TEST_PIN"
    assert "cli-user-pin" not in out + err and "cli-so-pin" not in out + err
    assert not (home / "hsm" / "t2.pin").exists()
    with open_key_manager(doc["uri"], pin_source=PinSource.from_value("cli-user-pin")) as km:
        assert km.list_keys() == []


def test_init_refuses_existing_token(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(home, "init", "--token", "once") == 0
    pin_before = (home / "hsm" / "once.pin").read_text()
    capsys.readouterr()
    assert run(home, "init", "--token", "once") == 1  # refused: the token exists
    out, err = capsys.readouterr()
    assert out == ""
    assert err.count("\n") == 1 and "already exists" in err and "Traceback" not in err
    assert (home / "hsm" / "once.pin").read_text() == pin_before


def test_init_bad_label(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(home, "init", "--token", "../evil") == 1  # invalid label
    assert "token label" in capsys.readouterr().err


def test_keys_and_create_key(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(home, "init", "--token", "k") == 0
    assert run(home, "keys") == 0  # the only token, its PIN file
    capsys.readouterr()
    assert run(home, "create-key", "--token", "k", "--label", "root", "--kind", "rsa-2048") == 0
    assert run(home, "create-key", "--label", "ocsp", "--kind", "EC_P256", "--json") == 0
    out, _ = capsys.readouterr()
    lines = out.strip().splitlines()
    assert Pkcs11Uri.parse(lines[0]).object == "root"
    assert json.loads(lines[1])["kind"] == "ec-p256"
    assert run(home, "keys", "--token", "k", "--json") == 0
    listed = json.loads(capsys.readouterr().out)
    assert [(k["label"], k["kind"]) for k in listed] == [("ocsp", "ec-p256"), ("root", "rsa-2048")]
    for k in listed:
        assert set(k) == {"label", "id", "kind", "uri"}
        assert Pkcs11Uri.parse(k["uri"]).id == bytes.fromhex(k["id"])
    assert run(home, "keys") == 0
    table, err = capsys.readouterr()
    assert "root" in table and "rsa-2048" in table
    assert "card-key derivation on this token: aes-ecb-encrypt-data" in err
    # an existing label is an error, not a traceback
    assert run(home, "create-key", "--label", "root") == 1  # label exists
    err = capsys.readouterr().err
    assert "exists" in err and "Traceback" not in err


def test_keys_errors(home: Path, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    home.mkdir()  # a home without a token (a missing home is refused before `hsm` runs)
    assert run(home, "keys") == 2
    assert "mynacard hsm init" in capsys.readouterr().err
    assert run(home, "init", "--token", "a") == 0
    assert run(home, "init", "--token", "b") == 0
    capsys.readouterr()
    assert run(home, "keys") == 2
    assert "--token" in capsys.readouterr().err
    wrong = tmp_path / "wrong.pin"
    wrong.write_text("not-the-pin-4321\n")
    assert run(home, "keys", "--token", "a", "--pin-source", f"file:{wrong}") == 1
    err = capsys.readouterr().err
    assert "PIN incorrect" in err and "not-the-pin-4321" not in err and "Traceback" not in err
    assert run(home, "keys", "--token", "nope", "--pin-source", f"file:{wrong}") == 1
    assert "not found" in capsys.readouterr().err


def test_help_teaches(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    for argv in (["--help"], ["init", "--help"], ["keys", "--help"]):
        with pytest.raises(SystemExit) as info:
            run(home, *argv)
        assert info.value.code == 0
    out = capsys.readouterr().out
    assert "file:" in out and "env:" in out and "SOFTHSM2_CONF" in out


def test_as_a_process(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != SOFTHSM2_CONF_ENV}
    env["MYNACARD_OPERATOR"] = "key-custodian"
    home = tmp_path / "proc-home"
    cmd = [sys.executable, "-m", "issuance.cli.main", "--home", str(home), "hsm"]
    first = subprocess.run([*cmd, "init", "--token", "p"], env=env, capture_output=True,
                           text=True, timeout=60)
    assert first.returncode == 0, first.stderr
    assert first.stdout.startswith("pkcs11:token=p")
    again = subprocess.run([*cmd, "init", "--token", "p"], env=env, capture_output=True,
                           text=True, timeout=60)
    assert again.returncode == 1
    assert again.stderr.startswith("mynacard hsm: error:") and "Traceback" not in again.stderr
