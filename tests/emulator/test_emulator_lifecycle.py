"""Card removal, pcscd going away, and resets clearing the security status."""

from __future__ import annotations

import os
import shutil
import signal
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from emulator_pcsc import RawCard, select_aid, select_ef
from smartcard.scard import SCARD_RESET_CARD, SCARD_UNPOWER_CARD

from card import contract
from card.transport import reader_has_card
from emulator.components import find_components
from emulator.errors import EmulatorError
from emulator.launcher import Emulator
from emulator.processes import pid_alive

READ_MY_NUMBER = bytes.fromhex("00B0000000")


def _wait_until(predicate, timeout: float = 5.0) -> bool:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return predicate()


@pytest.fixture
def short_dir() -> Iterator[Path]:
    # AF_UNIX socket paths are limited to 108 bytes: keep the runtime dir short.
    d = Path(tempfile.mkdtemp(prefix="mynacard-t-"))
    yield d
    shutil.rmtree(d, ignore_errors=True)


def test_card_is_removed_when_its_process_dies(
    mynacard_emulator: Emulator, blank_card: str
) -> None:
    card = next(c for c in mynacard_emulator.state.cards if c.reader == blank_card)
    assert reader_has_card(blank_card)
    os.kill(card.pid, signal.SIGKILL)
    assert _wait_until(lambda: not reader_has_card(blank_card)), "card still shown"
    # the reader takes a fresh card again
    mynacard_emulator.replace_card(blank_card)
    assert reader_has_card(blank_card)


def test_bridge_exits_when_pcscd_goes_away(
    mynacard_emulator: Emulator, short_dir: Path
) -> None:
    # (mynacard_emulator: this process's PC/SC belongs to the session's pcscd)
    with Emulator(short_dir, 1, linger=False) as emulator:
        state = emulator.state
        assert state is not None
        card = state.cards[0]
        assert pid_alive(card.pid, card.start_time)
        os.kill(state.pcscd_pid, signal.SIGTERM)
        assert _wait_until(lambda: not pid_alive(card.pid, card.start_time), 10), (
            "the card process outlived pcscd"
        )
        log = Path(card.log).read_text()
        assert "exiting" in log


def test_missing_bridge_jar_names_the_fix(tmp_path: Path) -> None:
    with pytest.raises(EmulatorError, match="make setup"):
        find_components(bridge_jar=tmp_path / "missing.jar")


def test_config_files_are_private(mynacard_emulator: Emulator) -> None:
    for card in mynacard_emulator.state.cards:
        mode = Path(card.config).stat().st_mode & 0o777
        assert mode == 0o600
        assert contract.TEST_ISSUER_MASTER_KEY.hex() not in Path(card.log).read_text()


@pytest.mark.parametrize("disposition", [SCARD_RESET_CARD, SCARD_UNPOWER_CARD],
                         ids=["warm-reset", "power-cycle"])
def test_reset_clears_security_status(sample_card: str, disposition: int) -> None:
    text_pin = b"2345"
    with RawCard(sample_card) as card:
        assert card.sw(select_aid(contract.AID_TEXT)) == 0x9000
        assert card.sw(select_ef(contract.TEXT_MY_NUMBER)) == 0x9000
        assert card.sw(READ_MY_NUMBER) == 0x6982
        assert card.sw(select_ef(contract.TEXT_PIN)) == 0x9000
        assert card.sw(bytes.fromhex("00200080") + bytes([len(text_pin)]) + text_pin) == 0x9000
        assert card.sw(select_ef(contract.TEXT_MY_NUMBER)) == 0x9000
        data, sw = card.send(READ_MY_NUMBER)
        assert sw == 0x9000 and len(data) == 17

        card.reconnect(disposition)

        assert card.sw(select_aid(contract.AID_TEXT)) == 0x9000
        assert card.sw(select_ef(contract.TEXT_MY_NUMBER)) == 0x9000
        assert card.sw(READ_MY_NUMBER) == 0x6982


def test_replace_card_manufactures_a_fresh_card_in_the_same_bridge(
    mynacard_emulator: Emulator, sample_card: str
) -> None:
    from card.contract import LifeCycle
    from card.issuer import IssuerClient
    from card.transport import PcscTransport

    state = mynacard_emulator.state
    assert state is not None
    old = next(c for c in state.cards if c.reader == sample_card)
    with PcscTransport(sample_card) as transport:
        assert IssuerClient(transport).life_cycle() != LifeCycle.BLANK
    new = mynacard_emulator.replace_card(sample_card)
    # the reader's JVM is reused (warm JIT), the card in it is brand new
    assert (new.pid, new.start_time) == (old.pid, old.start_time)
    assert pid_alive(new.pid, new.start_time)
    assert new.serial != old.serial
    with PcscTransport(sample_card) as transport:
        client = IssuerClient(transport)
        assert client.serial() == new.serial
        assert client.life_cycle() == LifeCycle.BLANK
    assert Path(new.config).stat().st_mode & 0o777 == 0o600
    log = Path(new.log).read_text()
    assert f"card {old.serial} removed" in log
    assert contract.TEST_ISSUER_MASTER_KEY.hex() not in log


def test_a_card_pcscd_does_not_show_is_pulled_and_inserted_again(
    mynacard_emulator: Emulator, blank_card: str, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """pcscd can miss an insertion right after a removal (under load, after a client died
    holding the old card); the emulator then inserts a fresh card again. The miss is
    simulated by the first wait for the card; the second insertion is real."""
    from card.issuer import IssuerClient
    from card.transport import PcscTransport
    from emulator import launcher

    real = launcher.wait_readers
    missed: list[str] = []

    def miss_once(sock, readers, *, present, timeout, alive=None):  # type: ignore[no-untyped-def]
        if present and not missed:
            missed.extend(readers)
            return list(readers)
        return real(sock, readers, present=present, timeout=timeout, alive=alive)

    monkeypatch.setattr(launcher, "wait_readers", miss_once)
    state = mynacard_emulator.state
    assert state is not None
    old = next(c for c in state.cards if c.reader == blank_card)
    new = mynacard_emulator.replace_card(blank_card)
    assert missed == [blank_card]
    assert "inserting it again" in capsys.readouterr().err
    log = Path(new.log).read_text()
    first = [ln.split()[3] for ln in log.splitlines() if "manufactured" in ln][-2]
    assert len({old.serial, first, new.serial}) == 3  # two new cards, the second kept
    assert f"card {first} removed" in log
    with PcscTransport(blank_card) as transport:
        assert IssuerClient(transport).serial() == new.serial
    saved = mynacard_emulator.state
    assert saved is not None
    assert next(c for c in saved.cards if c.reader == blank_card).serial == new.serial
