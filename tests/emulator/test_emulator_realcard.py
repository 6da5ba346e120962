"""Real-card mode: the card tests run with `pytest --reader 0` against a card the test
session did not make — an emulated sample card started by `mynacard emulator up`, standing
in for a real card in a real reader."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from emulator.components import SOCKET_ENV

REPO = Path(__file__).resolve().parents[2]
READ_ONLY = [
    "test_info_uses_no_try_and_names_every_area",
    "test_info_command_with_a_reader_index",
    "test_certificates_chain_to_their_cas",
    "test_every_public_file_of_every_area_reads",
    "test_pin_tries_left_are_read_without_using_one",
    "test_authentication_signature_with_a_pin_source",
    "test_card_sign_command_with_a_pin_source",
    "test_info_on_the_plugin_reader",
]


def _mynacard(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != SOCKET_ENV}
    env["MYNACARD_OPERATOR"] = "bench"
    return subprocess.run([sys.executable, "-m", "issuance.cli.main", "--home", str(home), *args],
                          capture_output=True, text=True, cwd=REPO, env=env, timeout=180)


@pytest.fixture
def stand_in() -> Iterator[Path]:
    """A sample card in an emulator of its own, as `mynacard emulator up` leaves it; the
    home of that emulator (its socket is `emulator/run/pcscd/pcscd.comm` in it)."""
    home = Path(tempfile.mkdtemp(prefix="mynacard-rc-"))
    try:
        up = _mynacard(home, "emulator", "up", "--cards", "1", "--sample")
        assert up.returncode == 0, up.stderr
        yield home
    finally:
        _mynacard(home, "emulator", "down")
        shutil.rmtree(home, ignore_errors=True)


def _pytest(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    # MYNACARD_HOME: `mynacard` must not warn that the socket is another home's emulator.
    env = {**os.environ, SOCKET_ENV: str(home / "emulator" / "run" / "pcscd" / "pcscd.comm"),
           "MYNACARD_HOME": str(home),
           "RC_AUTH_PIN": "1234", "RC_SIGN_PIN": "ABC123"}
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-v", "-rs", *args],
        capture_output=True, text=True, cwd=REPO, env=env, timeout=300)


def test_card_tests_run_against_a_card_given_with_reader(
    mynacard_emulator: object, stand_in: Path
) -> None:
    run = _pytest(stand_in, "tests/card/test_card_readonly.py", "tests/card/test_card_info.py",
                  "tests/card/test_card_cms.py", "--reader", "0",
                  "--mynacard-pin-source", "auth=env:RC_AUTH_PIN",
                  "--mynacard-pin-source", "sign=env:RC_SIGN_PIN")
    out = run.stdout
    assert run.returncode == 0, out[-3000:] + run.stderr[-2000:]
    for name in READ_ONLY:
        assert re.search(rf"::{name}(\[.*\])? PASSED", out), f"{name} did not pass:\n{out}"
    # What would personalise the card or use up its PINs is left out, with the reason.
    assert re.search(r"test_info_of_a_blank_card SKIPPED", out)
    assert re.search(r"test_card_sign_command_writes_a_signature SKIPPED", out)
    assert "a real card must not be personalised" in out
    passed = int(re.search(r"(\d+) passed", out).group(1))  # type: ignore[union-attr]
    assert passed >= len(READ_ONLY) + 2
    assert "mynacard emulator could not start" not in out


def test_without_a_pin_source_the_signing_tests_are_skipped(
    mynacard_emulator: object, stand_in: Path
) -> None:
    run = _pytest(stand_in, "tests/card/test_card_readonly.py", "--reader",
                  "Virtual PCD 00 00")
    assert run.returncode == 0, run.stdout[-3000:]
    assert re.search(r"test_authentication_signature_with_a_pin_source SKIPPED", run.stdout)
    assert "--mynacard-pin-source auth=env:NAME" in run.stdout
    assert re.search(r"test_certificates_chain_to_their_cas PASSED", run.stdout)
