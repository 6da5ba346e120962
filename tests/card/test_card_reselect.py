"""ISO 7816-4 ties the security status to the current DF: a SELECT of the application that
is already selected keeps a verified PIN; selecting another one or a reset clears it. Raw
SELECT APDUs over PC/SC, as independent clients send them."""

from __future__ import annotations

import pytest
from card_support import PINS, Personalised, reconnect

from card import contract
from card.errors import SecurityStatusNotSatisfied
from card.jpki import JpkiClient, Key
from card.session import select_aid_apdu, select_ef_apdu

READ_4 = bytes((0x00, 0xB0, 0x00, 0x00, 0x04))


def _read_sign_cert(card: Personalised) -> int:
    card.channel.send(select_ef_apdu(contract.JPKI_SIGN_CERT))
    return card.channel.transmit(READ_4).sw


def test_reselecting_the_current_application_keeps_the_verified_pin(card: Personalised) -> None:
    jpki = JpkiClient(card.channel)
    jpki.select(force=True)
    assert _read_sign_cert(card) == 0x6982
    jpki.verify_pin(Key.SIGN, PINS.jpki_sign or "")
    assert _read_sign_cert(card) == 0x9000

    # the same application again, twice: the PIN stays verified, no EF is current
    for _ in range(2):
        card.channel.send(select_aid_apdu(contract.AID_JPKI))
    card.channel.forget_selection()
    assert card.channel.transmit(READ_4).sw == 0x6986
    assert _read_sign_cert(card) == 0x9000
    assert len(jpki.sign_sha256(Key.SIGN, b"after a re-SELECT")) == 256

    # another application in between clears it
    card.channel.send(select_aid_apdu(contract.AID_TEXT))
    card.channel.send(select_aid_apdu(contract.AID_JPKI))
    card.channel.forget_selection()
    assert _read_sign_cert(card) == 0x6982

    # and so does a power cycle right after a re-SELECT
    jpki.select()
    jpki.verify_pin(Key.SIGN, PINS.jpki_sign or "")
    card.channel.send(select_aid_apdu(contract.AID_JPKI))
    reconnect(card.transport)
    jpki = JpkiClient(card.channel)
    jpki.select()
    assert _read_sign_cert(card) == 0x6982
    with pytest.raises(SecurityStatusNotSatisfied):
        jpki.sign_sha256(Key.SIGN, b"x")
