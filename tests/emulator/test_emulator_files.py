"""The emulator's files: its runtime directory is never a symlink, every file it writes
(pcscd.env, state.json, card configurations, vpcd's reader.conf, logs) is created 0600
without following a symlink planted there."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from emulator.components import SOCKET_ENV
from emulator.errors import EmulatorError
from emulator.processes import reap, spawn
from emulator.state import EmulatorState, load_state, save_state

REPO = Path(__file__).resolve().parents[2]


def mynacard(home: Path, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != SOCKET_ENV}
    env["MYNACARD_OPERATOR"] = "bench"
    env["MYNACARD_DEVELOPMENT"] = "1"
    res = subprocess.run(
        [sys.executable, "-m", "issuance.cli.main", "--home", str(home), *args],
        capture_output=True, text=True, cwd=REPO, env=env, timeout=timeout,
    )
    assert "Traceback" not in res.stderr, res.stderr
    return res


def _mode(path: Path) -> int:
    return os.lstat(path).st_mode & 0o777


def _victim(where: Path, name: str) -> Path:
    victim = where / name
    victim.write_text("precious")
    victim.chmod(0o644)
    return victim


@pytest.fixture
def elsewhere() -> Iterator[Path]:
    """Where planted symlinks point (outside the home)."""
    d = Path(tempfile.mkdtemp(prefix="mynacard-v-"))
    yield d
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture
def home(elsewhere: Path) -> Iterator[Path]:
    d = Path(tempfile.mkdtemp(prefix="mynacard-f-"))  # short: the socket path must fit
    yield d
    mynacard(d, "emulator", "down")  # before `elsewhere` goes
    shutil.rmtree(d, ignore_errors=True)


def _state(rt: Path) -> EmulatorState:
    return EmulatorState(runtime_dir=str(rt), socket=str(rt / "run" / "pcscd" / "pcscd.comm"),
                         pcscd_pid=1, pcscd_start_time=None, pcscd_log=str(rt / "pcscd.log"),
                         base_port=20000)


# --- function level ----------------------------------------------------------------------


def test_save_state_never_writes_through_a_symlink(tmp_path: Path) -> None:
    rt = tmp_path / "rt"
    rt.mkdir(mode=0o700)
    victim = _victim(tmp_path, "victim")
    other = _victim(tmp_path, "other")
    (rt / "state.tmp").symlink_to(victim)  # the old temporary name
    (rt / "state.json").symlink_to(other)
    save_state(rt, _state(rt))
    assert victim.read_text() == "precious" and _mode(victim) == 0o644
    assert other.read_text() == "precious" and _mode(other) == 0o644
    state_file = rt / "state.json"
    assert not state_file.is_symlink() and _mode(state_file) == 0o600
    assert load_state(rt) == _state(rt)
    assert sorted(p.name for p in rt.iterdir()) == ["state.json", "state.tmp"]


def _wait_for(path: Path, text: str) -> None:
    deadline = time.monotonic() + 10
    while text not in path.read_text() and time.monotonic() < deadline:
        time.sleep(0.02)
    reap()


def test_logs_are_private_and_never_written_through_a_symlink(tmp_path: Path) -> None:
    victim = _victim(tmp_path, "victim")
    link = tmp_path / "card-0.log"
    link.symlink_to(victim)
    with pytest.raises(EmulatorError, match=r"card-0\.log is a symlink"):
        spawn(["sh", "-c", "echo leaked"], link)
    assert victim.read_text() == "precious" and _mode(victim) == 0o644 and link.is_symlink()

    new = tmp_path / "pcscd.log"
    spawn(["sh", "-c", "echo first"], new)
    _wait_for(new, "first")
    assert _mode(new) == 0o600
    old = tmp_path / "card-1.log"  # a log left 0644 by an earlier version: tightened
    old.write_text("earlier\n")
    old.chmod(0o644)
    spawn(["sh", "-c", "echo later"], old)
    _wait_for(old, "later")
    assert old.read_text() == "earlier\nlater\n" and _mode(old) == 0o600


# --- through `mynacard emulator up` --------------------------------------------------------


def test_up_replaces_planted_symlinks_and_keeps_its_files_private(home: Path,
                                                                 elsewhere: Path) -> None:
    rt = home / "emulator"
    rt.mkdir(mode=0o755)
    env_victim = _victim(elsewhere, "env-victim")
    state_victim = _victim(elsewhere, "state-victim")
    (rt / "pcscd.env").symlink_to(env_victim)
    (rt / "state.tmp").symlink_to(state_victim)
    up = mynacard(home, "emulator", "up", "--cards", "1", "--json")
    assert up.returncode == 0, up.stderr
    assert env_victim.read_text() == "precious" and _mode(env_victim) == 0o644
    assert state_victim.read_text() == "precious" and _mode(state_victim) == 0o644
    env_file = rt / "pcscd.env"
    sock = json.loads(up.stdout)["env"][SOCKET_ENV]
    assert not env_file.is_symlink() and env_file.read_text() == f"{SOCKET_ENV}={sock}\n"
    assert _mode(rt) == 0o700
    for name in ("pcscd.env", "state.json", "card-0.properties", "card-0.log", "pcscd.log",
                 "reader.conf.d/vpcd", "drivers/libifdvpcd-0.so"):
        assert _mode(rt / name) == 0o600, name
    for name in ("reader.conf.d", "drivers", "no-drivers", "run"):  # (pcscd makes its own
        assert _mode(rt / name) == 0o700, name                     # run/pcscd 0755)
    down = mynacard(home, "emulator", "down")
    assert down.returncode == 0, down.stderr


def test_up_refuses_a_symlinked_card_log(home: Path, elsewhere: Path) -> None:
    rt = home / "emulator"
    rt.mkdir(mode=0o700)
    victim = _victim(elsewhere, "log-victim")
    (rt / "card-0.log").symlink_to(victim)
    up = mynacard(home, "emulator", "up", "--cards", "1")
    assert up.returncode == 3
    assert "card-0.log is a symlink" in up.stderr
    assert victim.read_text() == "precious" and _mode(victim) == 0o644
    status = mynacard(home, "emulator", "status", "--json")
    assert json.loads(status.stdout)["running"] is False  # nothing left running
    assert not list(rt.glob("*.properties"))  # no card key left behind


def test_up_refuses_a_symlinked_runtime_directory(home: Path, elsewhere: Path) -> None:
    other = elsewhere / "other"
    other.mkdir()
    other.chmod(0o755)
    (home / "emulator").symlink_to(other)
    up = mynacard(home, "emulator", "up", "--cards", "1")
    assert up.returncode == 3
    assert "emulator is a symlink or not a directory" in up.stderr
    assert _mode(other) == 0o755 and list(other.iterdir()) == []
    assert (home / "emulator").is_symlink()
