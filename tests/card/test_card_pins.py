"""PIN rules through the clients on the emulated card: the 63Cx countdown, 63C0 on the
try that blocks, 6984 afterwards, reset by the issuer, change, format checks.
Every PIN and code of every area of contract.AREAS is exercised."""

from __future__ import annotations

import pytest
from card_support import (
    ISSUER,
    LIBRARY_PIN,
    PINS,
    Personalised,
    credential_values,
    reconnect,
)

from card import contract
from card.apdu import command
from card.errors import (
    IncorrectData,
    PinBlocked,
    PinIncorrect,
    SecurityStatusNotSatisfied,
)
from card.issuer import IssuerClient
from card.jpki import JpkiClient, Key
from card.juki import JukiClient
from card.municipal import LibraryClient
from card.session import AreaClient, area_client
from card.text import TextClient

pytestmark = [pytest.mark.personalises, pytest.mark.blocks_pins]

ALL_PINS = [(area, pin) for area in contract.AREAS for pin in area.pins]


def wrong_value(spec: contract.PinSpec, right: str) -> str:
    """A value of the right format that is not the PIN."""
    last = right[-1]
    if spec.charset == "upper-alnum" and last.isalpha():
        replacement = "B" if last != "B" else "C"
    else:
        replacement = "1" if last != "1" else "2"
    return right[:-1] + replacement


def opened_file(area: contract.AreaSpec, pin: contract.PinSpec) -> int | None:
    for spec in area.files:
        if pin.fid in spec.credentials:
            return spec.fid
    return None


def test_wrong_values_count_down_block_and_the_issuer_resets(card: Personalised) -> None:
    values = credential_values()
    for area, pin in ALL_PINS:
        where = f"{area.name} {pin.fid:04X}"
        right = values[(area.name, pin.fid)]
        wrong = wrong_value(pin, right)
        client = area_client(card.channel, area)
        client.select(force=True)
        assert client.tries_left(pin.fid) == pin.tries, where

        # countdown, then a right value restores the counter
        for used in range(1, pin.tries):
            with pytest.raises(PinIncorrect) as info:
                client.verify(pin.fid, wrong)
            assert info.value.tries_left == pin.tries - used, where
            assert client.tries_left(pin.fid) == pin.tries - used, where
        client.verify(pin.fid, right)
        assert client.tries_left(pin.fid) == pin.tries, where

        # block: 63C0 on the last try, 6984 afterwards even for the right value
        client.select(force=True)
        for _ in range(pin.tries - 1):
            with pytest.raises(PinIncorrect):
                client.verify(pin.fid, wrong)
        with pytest.raises(PinBlocked) as blocked:
            client.verify(pin.fid, wrong)
        assert blocked.value.sw == 0x63C0, where
        with pytest.raises(PinBlocked) as after:
            client.verify(pin.fid, right)
        assert after.value.sw == 0x6984, where
        assert client.tries_left(pin.fid) == 0, where
        fid = opened_file(area, pin)
        if fid is not None:
            with pytest.raises(SecurityStatusNotSatisfied):
                client.read_raw(fid, 1)

        if area is contract.MUNICIPAL_LIBRARY:
            continue  # the library applet's reset is the municipality's, not in the contract
        # the issuer resets the counter at the counter, keeping the value
        issuer = IssuerClient(card.channel)
        issuer.authenticate(ISSUER)
        issuer.reset_pin(area, pin.fid)
        client.select(force=True)
        assert client.tries_left(pin.fid) == pin.tries, where
        client.verify(pin.fid, right)
        if fid is not None:
            assert client.read_raw(fid, 1), where


def test_issuer_reset_with_a_new_value(card: Personalised) -> None:
    issuer = IssuerClient(card.channel)
    issuer.authenticate(ISSUER)
    issuer.reset_pin(contract.JPKI, contract.JPKI_AUTH_PIN, "9876")
    jpki = JpkiClient(card.channel)
    jpki.select(force=True)
    with pytest.raises(PinIncorrect):
        jpki.verify_pin(Key.AUTH, PINS.jpki_auth)
    jpki.verify_pin(Key.AUTH, "9876")
    assert jpki.tries_left_for(Key.AUTH) == 3


def test_reset_needs_issuer_authentication(card: Personalised) -> None:
    reconnect(card.transport)  # power cycle: the issuer authentication is gone
    text = TextClient(card.channel)
    text.select_ef(contract.TEXT_PIN)
    response = card.channel.transmit(command(0x00, 0x2C, 0x03, 0x80))
    assert response.sw == 0x6982


@pytest.mark.parametrize(
    ("make", "fid", "old", "new", "jicsap"),
    [
        (JpkiClient, contract.JPKI_AUTH_PIN, PINS.jpki_auth, "8642", False),
        (JpkiClient, contract.JPKI_SIGN_PIN, PINS.jpki_sign, "NEWPASS9", False),
        (TextClient, contract.TEXT_PIN, PINS.text, "7531", False),
        (JukiClient, contract.JUKI_PIN, PINS.juki, "1470", True),
        (LibraryClient, contract.LIBRARY_PIN, LIBRARY_PIN, "2580", False),
    ],
)
def test_change_pin(card: Personalised, make: type[AreaClient], fid: int, old: str, new: str,
                    jicsap: bool) -> None:
    client = make(card.channel)
    client.select(force=True)
    client.change_pin(fid, old, new, jicsap=jicsap)
    client.select(force=True)
    with pytest.raises(PinIncorrect):
        client.verify(fid, old)
    client.verify(fid, new)
    assert client.tries_left(fid) == client.pin_spec(fid).tries


def test_change_needs_the_old_pin_verified_and_a_valid_new_one(card: Personalised) -> None:
    jpki = JpkiClient(card.channel)
    jpki.select(force=True)
    jpki.select_ef(contract.JPKI_AUTH_PIN)
    assert card.channel.transmit(command(0x00, 0x24, 0x01, 0x80, b"5555")).sw == 0x6982
    jpki.verify_pin(Key.AUTH, PINS.jpki_auth)
    jpki.select_ef(contract.JPKI_AUTH_PIN)
    with pytest.raises(IncorrectData):
        card.channel.send(command(0x00, 0x24, 0x01, 0x80, b"12a4"))
    with pytest.raises(ValueError):  # the client refuses before sending
        jpki.change_pin(contract.JPKI_AUTH_PIN, PINS.jpki_auth, "12345")
    jpki.select_ef(contract.JPKI_SIGN_PIN)
    jpki.verify_pin(Key.SIGN, PINS.jpki_sign or "")
    jpki.select_ef(contract.JPKI_SIGN_PIN)
    for bad in (b"ABCDEF", b"123456", b"abc123", b"AB12"):
        with pytest.raises(IncorrectData):
            card.channel.send(command(0x00, 0x24, 0x01, 0x80, bad))


def test_pins_never_appear_in_errors(card: Personalised) -> None:
    jpki = JpkiClient(card.channel)
    jpki.select(force=True)
    with pytest.raises(PinIncorrect) as info:
        jpki.verify_pin(Key.SIGN, "WRONG999")
    assert "WRONG999" not in str(info.value) and "WRONG999" not in repr(info.value)
    jpki.verify_pin(Key.SIGN, PINS.jpki_sign or "")  # restore the counter
