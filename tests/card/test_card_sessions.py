"""A card's PIN and issuer-authentication state belongs to one session.

Process A is this library in a separate process (tests/card/session_worker.py); process
B is a separate process that talks pyscard's raw API and tries `80 2A` (or an issuer
command) without verifying or authenticating. B must never get a signature.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from card import contract
from card.errors import SecurityStatusNotSatisfied
from card.jpki import JpkiClient, Key, digest_info
from card.sample import SAMPLE_PIN_VALUES
from card.transport import PcscTransport, SessionConflict

WORKER = str(Path(__file__).with_name("session_worker.py"))
REPO = str(Path(__file__).resolve().parents[2])
DENIED = "SW 6982 0"  # security status not satisfied, no data


def _denied(out: str) -> None:
    """B's two tries (on the card as left, then after selecting the application): no
    success either time, and the second is the plain `6982` of a card without state."""
    first, second = out.strip().split(" | ")
    assert not first.startswith("SW 9000"), f"B used state left on the card: {out}"
    assert second == DENIED, out


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": os.pathsep.join(
        p for p in (REPO, os.environ.get("PYTHONPATH")) if p)}


def _run(mode: str, reader: str, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, WORKER, mode, reader, *extra], env=_env(),
                          capture_output=True, text=True, timeout=60)


def _start(mode: str, reader: str, *extra: str) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, WORKER, mode, reader, *extra], env=_env(),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


@pytest.fixture
def bystander(request: pytest.FixtureRequest) -> Iterator[None]:
    """A third process keeps an idle shared connection to the test's card, so pcscd never
    powers the card down between A and B (which would hide state A left behind)."""
    reader = request.getfixturevalue("sample_card" if "sample_card" in request.fixturenames
                                     else "blank_card")
    c = _start("raw-idle", reader, "--hold", "120")
    try:
        assert c.stdout is not None and c.stdout.readline().strip() == "connected"
        yield
    finally:
        c.kill()
        c.wait()


def _ok(proc: subprocess.CompletedProcess[str]) -> str:
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.strip()


@pytest.mark.timeout(120)
def test_without_a_session_another_process_signs_with_a_verified_pin(
    sample_card: str,
) -> None:
    # The control: A verifies through raw PC/SC (no transaction) and stays connected;
    # B then signs with A's PIN. This is what the library's sessions prevent, so the
    # tests below would catch a library that does not hold one.
    a = _start("raw-verify", sample_card, "--hold", "30")
    try:
        assert a.stdout is not None
        assert a.stdout.readline().strip() == "verified"
        assert a.stdout.readline().strip() == "holding"
        assert _ok(_run("raw-sign", sample_card)).split(" | ")[0] == "SW 9000 256"
    finally:
        a.kill()
        a.wait()


def test_a_pin_verified_by_a_finished_process_does_not_sign_for_another(
    sample_card: str, bystander: None
) -> None:
    assert _ok(_run("library-sign", sample_card)) == "signed 256"
    _denied(_ok(_run("raw-sign", sample_card)))


@pytest.mark.timeout(120)
def test_a_killed_process_leaves_no_verified_pin(sample_card: str, bystander: None) -> None:
    a = _run("library-sign", sample_card, "--die")
    assert a.returncode == -9 and a.stdout.strip() == "signed 256", a.stderr
    _denied(_ok(_run("raw-sign", sample_card)))


@pytest.mark.timeout(120)
def test_another_process_waits_while_a_session_is_held_and_never_signs(
    sample_card: str,
) -> None:
    a = _start("library-sign", sample_card, "--hold", "3")
    try:
        assert a.stdout is not None
        assert a.stdout.readline().strip() == "signed 256"
        assert a.stdout.readline().strip() == "holding"  # verified, inside its session
        held_since = time.monotonic()  # A keeps its session 3 s from here
        b = _start("raw-sign", sample_card)
        try:
            with pytest.raises(subprocess.TimeoutExpired):
                b.wait(timeout=1.0)  # kept off the card while A holds the session
            out, err = b.communicate(timeout=30)
        finally:
            if b.poll() is None:
                b.kill()
        assert b.returncode == 0, err
        assert time.monotonic() - held_since > 2.5, "B reached the card inside A's session"
        _denied(out)
    finally:
        if a.poll() is None:
            a.kill()
        a.wait()
    assert a.returncode == 0


@pytest.mark.personalises
@pytest.mark.parametrize("die", [False, True], ids=["exits", "killed"])
def test_issuer_authentication_ends_with_the_issuing_process(
    blank_card: str, bystander: None, die: bool
) -> None:
    a = _run("library-issuer", blank_card, *(["--die"] if die else []))
    assert a.stdout.strip() == "authenticated", a.stderr
    assert a.returncode == (-9 if die else 0)
    _denied(_ok(_run("raw-issuer", blank_card)))


def test_a_session_ends_with_a_reset_inside_one_connection(sample_card: str) -> None:
    di = digest_info("sha256", bytes(32))
    with PcscTransport(sample_card) as t:
        jpki = JpkiClient(t)
        with t.session():
            jpki.verify_pin(Key.SIGN, SAMPLE_PIN_VALUES["jpki_sign"])
            assert len(jpki.sign(Key.SIGN, di)) == 256
            assert t.in_session
        assert not t.in_session
        with pytest.raises(SecurityStatusNotSatisfied):
            jpki.sign(Key.SIGN, di)  # the reset took the verified password
        jpki.verify_pin(Key.SIGN, SAMPLE_PIN_VALUES["jpki_sign"])  # begins a new session
        assert t.in_session
        assert len(jpki.sign(Key.SIGN, di)) == 256


def test_a_second_connection_of_the_same_process_is_refused_not_deadlocked(
    sample_card: str,
) -> None:
    started = time.monotonic()
    with PcscTransport(sample_card) as second:  # connected before the session began
        with PcscTransport(sample_card) as first:
            JpkiClient(first).verify_pin(Key.SIGN, SAMPLE_PIN_VALUES["jpki_sign"])
            with pytest.raises(SessionConflict):
                JpkiClient(second).select()
            with pytest.raises(SessionConflict):
                second.begin_session()
            with pytest.raises(SessionConflict):
                PcscTransport(sample_card).connect()
    assert time.monotonic() - started < 10
    # once the first is closed, the card is free again (and reset)
    with PcscTransport(sample_card) as again:
        jpki = JpkiClient(again)
        jpki.select_ef(contract.JPKI_SIGN_KEY)
        with pytest.raises(SecurityStatusNotSatisfied):
            jpki.sign(Key.SIGN, digest_info("sha256", bytes(32)))
