"""`mynacard emulator up | status | down` round trip, as a user runs it (subprocess)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from emulator.components import SOCKET_ENV
from emulator.processes import pid_alive

REPO = Path(__file__).resolve().parents[2]


def mynacard(home: Path, *args: str, env: dict[str, str] | None = None,
             timeout: float = 120) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if k != SOCKET_ENV}
    base["MYNACARD_OPERATOR"] = "bench"  # up and down change things: they need an operator
    return subprocess.run(
        [sys.executable, "-m", "issuance.cli.main", "--home", str(home), *args],
        capture_output=True, text=True, cwd=REPO, env={**base, **(env or {})}, timeout=timeout,
    )


@pytest.fixture
def home() -> Iterator[Path]:
    d = Path(tempfile.mkdtemp(prefix="mynacard-h-"))  # short: the socket path must fit
    yield d
    mynacard(d, "emulator", "down")
    shutil.rmtree(d, ignore_errors=True)


def test_up_status_down(mynacard_emulator: object, home: Path) -> None:
    up = mynacard(home, "emulator", "up", "--cards", "2")
    assert up.returncode == 0, up.stderr
    readers = up.stdout.splitlines()
    assert readers == ["Virtual PCD 00 00", "Virtual PCD 00 01"]
    sock = home / "emulator" / "run" / "pcscd" / "pcscd.comm"
    assert f"export {SOCKET_ENV}={sock}" in up.stderr
    assert (home / "emulator" / "pcscd.env").read_text() == f"{SOCKET_ENV}={sock}\n"

    again = mynacard(home, "emulator", "up", "--cards", "1")
    assert again.returncode == 1  # refused: already running
    assert len(again.stderr.strip().splitlines()) == 1 and "already running" in again.stderr

    status = mynacard(home, "emulator", "status", "--json")
    assert status.returncode == 0, status.stderr
    doc = json.loads(status.stdout)
    assert doc["running"] is True
    assert [r["reader"] for r in doc["readers"]] == readers
    assert all(r["card_present"] and r["alive"] for r in doc["readers"])
    pids = [doc["pcscd"]["pid"], *(r["pid"] for r in doc["readers"])]

    down = mynacard(home, "emulator", "down")
    assert down.returncode == 0, down.stderr
    assert not any(pid_alive(p) for p in pids)
    assert not (home / "emulator" / "pcscd.env").exists()
    assert not list((home / "emulator").glob("*.properties"))
    status = mynacard(home, "emulator", "status", "--json")
    assert json.loads(status.stdout)["running"] is False


def test_up_json_with_sample(mynacard_emulator: object, home: Path) -> None:
    up = mynacard(home, "emulator", "up", "--cards", "1", "--sample", "--json")
    assert up.returncode == 0, up.stderr
    doc = json.loads(up.stdout)
    assert doc["env"][SOCKET_ENV].endswith("pcscd.comm")
    (reader,) = doc["readers"]
    assert reader["reader"] == "Virtual PCD 00 00"
    assert reader["sample"]["serial"] == reader["serial"]
    for pin in ("1234", "2345", "3456", "ABC123"):
        assert pin in up.stderr


def test_missing_part_is_one_clear_line(mynacard_emulator: object, home: Path) -> None:
    up = mynacard(home, "emulator", "up", env={"MYNACARD_BRIDGE_JAR": str(home / "no.jar")})
    assert up.returncode == 3  # a part is missing
    lines = up.stderr.strip().splitlines()
    assert len(lines) == 1 and "make setup" in lines[0] and "no.jar" in lines[0]


def test_eject_insert_replace_by_name_and_index(mynacard_emulator: object, home: Path) -> None:
    up = mynacard(home, "emulator", "up", "--cards", "2", "--json")
    assert up.returncode == 0, up.stderr
    serials = {r["reader"]: r["serial"] for r in json.loads(up.stdout)["readers"]}
    second = "Virtual PCD 00 01"

    eject = mynacard(home, "emulator", "eject", "--reader", "1", "--json")
    assert eject.returncode == 0, eject.stderr
    assert json.loads(eject.stdout) == {"reader": second, "action": "eject",
                                        "ejected": serials[second], "serial": None}
    status = json.loads(mynacard(home, "emulator", "status", "--json").stdout)
    present = {r["reader"]: r["card_present"] for r in status["readers"]}
    assert present == {"Virtual PCD 00 00": True, second: False}
    again = mynacard(home, "emulator", "eject", "--reader", second)
    assert again.returncode == 1 and "holds no card" in again.stderr
    assert len(again.stderr.strip().splitlines()) == 1

    insert = mynacard(home, "emulator", "insert", "--reader", second, "--json")
    assert insert.returncode == 0, insert.stderr
    new_serial = json.loads(insert.stdout)["serial"]
    assert new_serial and new_serial != serials[second]
    full = mynacard(home, "emulator", "insert", "--reader", "0")
    assert full.returncode == 1 and "already holds a card" in full.stderr

    replaced = mynacard(home, "emulator", "replace", "--reader", "0", "--sample", "--json")
    assert replaced.returncode == 0, replaced.stderr
    doc = json.loads(replaced.stdout)
    assert doc["ejected"] == serials["Virtual PCD 00 00"]
    assert doc["sample"]["serial"] == doc["serial"] != doc["ejected"]
    # The other commands take the index too, and reach the home's emulator.
    info = mynacard(home, "card", "info", "--reader", "0", "--json")
    assert info.returncode == 0, info.stderr
    assert json.loads(info.stdout)["reader"] == "Virtual PCD 00 00"

    unknown = mynacard(home, "emulator", "replace", "--reader", "7")
    assert unknown.returncode == 1 and "no emulated reader '7'" in unknown.stderr

    down = mynacard(home, "emulator", "down")
    assert down.returncode == 0, down.stderr
    assert "discarded 2 card(s)" in down.stderr


def test_down_counts_only_cards_present(mynacard_emulator: object, home: Path) -> None:
    assert mynacard(home, "emulator", "up", "--cards", "1").returncode == 0
    assert mynacard(home, "emulator", "eject", "--reader", "0").returncode == 0
    down = mynacard(home, "emulator", "down")
    assert down.returncode == 0, down.stderr
    assert "discarded 0 card(s)" in down.stderr and "1 reader(s)" in down.stderr


def test_card_commands_resolve_a_reader_index(mynacard_emulator: object, home: Path) -> None:
    up = mynacard(home, "emulator", "up", "--cards", "2", "--sample")
    assert up.returncode == 0, up.stderr
    info = mynacard(home, "card", "info", "--reader", "1", "--json")
    assert info.returncode == 0, info.stderr
    assert json.loads(info.stdout)["reader"] == "Virtual PCD 00 01"
    beyond = mynacard(home, "card", "info", "--reader", "5")
    assert beyond.returncode == 3  # no such reader: the reader part, as for every command
    lines = beyond.stderr.strip().splitlines()
    assert len(lines) == 1 and "no reader 5: there are 2" in lines[0]
    assert "'Virtual PCD 00 00'" in lines[0]
    # Every command with --reader resolves an index the same way, before anything else.
    for argv in (["issue", "APP-1", "--reader", "5"], ["activate", "--reader", "5"],
                 ["pin", "reset", "--reader", "5", "--pin", "auth", "--keep-value",
                  "--identity-checked", "X"],
                 ["card", "update", "--reader", "5", "--identity-checked", "X",
                  "--pin-source", "text=env:AUDIT_T_NONE"],
                 ["issue", "--batch", "APP-1", "--readers", "0,5"]):
        run = mynacard(home, *argv)
        assert run.returncode == 3, (argv, run.stderr)
        assert "no reader 5: there are 2" in run.stderr, (argv, run.stderr)
