"""Life-cycle refusals on the emulated card: blank, issued, active, terminated, and
issuer authentication."""

from __future__ import annotations

import pytest
from card_support import ISSUER, PINS, PROFILE, Personalised, personalise, reconnect

from card import contract, formats
from card.apdu import command
from card.contract import LifeCycle
from card.errors import (
    ConditionsNotSatisfied,
    PinIncorrect,
    SecurityStatusNotSatisfied,
)
from card.issuer import HostIssuerAuthenticator, IssuerClient
from card.jpki import CertKind, JpkiClient, Key
from card.sample import SampleCa
from card.session import area_client, channel_for
from card.text import TextClient
from card.transport import PcscTransport

pytestmark = pytest.mark.personalises


def test_blank_card_refuses_holder_operations_and_unauthenticated_issuers(
    blank_card: str,
) -> None:
    with PcscTransport(blank_card) as transport:
        issuer = IssuerClient(transport)
        assert issuer.life_cycle() == LifeCycle.BLANK
        assert issuer.serial() == blank_card.serial  # type: ignore[attr-defined]
        text = TextClient(transport)
        with pytest.raises(ConditionsNotSatisfied):
            text.tries_left(contract.TEXT_PIN)
        with pytest.raises(ConditionsNotSatisfied):
            JpkiClient(transport).token_info()
        with pytest.raises(SecurityStatusNotSatisfied):
            issuer.write_file(contract.TEXT, contract.TEXT_MY_NUMBER,
                              formats.my_number_file(PROFILE.my_number))
        with pytest.raises(SecurityStatusNotSatisfied):
            issuer.generate_key(contract.JPKI_AUTH_KEY)
        with pytest.raises(SecurityStatusNotSatisfied):
            issuer.set_state(LifeCycle.PERSONALISED)


def test_issuer_authentication_ends_with_a_reset(card: Personalised) -> None:
    issuer = IssuerClient(card.channel)
    issuer.authenticate(ISSUER)
    issuer.reset_pin(contract.TEXT, contract.TEXT_PIN)
    reconnect(card.transport)
    with pytest.raises(SecurityStatusNotSatisfied):
        issuer.reset_pin(contract.TEXT, contract.TEXT_PIN)


def test_issuer_authentication(blank_card: str) -> None:
    with PcscTransport(blank_card) as transport:
        channel = channel_for(transport)
        issuer = IssuerClient(transport)
        serial = issuer.serial()
        # no fresh challenge
        with pytest.raises(ConditionsNotSatisfied):
            channel.send(command(0x00, 0x82, 0x00, 0x00, bytes(16)))
        # a wrong key counts down from 10
        with pytest.raises(PinIncorrect) as info:
            issuer.authenticate(HostIssuerAuthenticator(bytes(16)))
        assert info.value.tries_left == contract.ISSUER_AUTH_TRIES - 1
        # a challenge is single use
        challenge = channel.send(command(0x00, 0x84, 0x00, 0x00, le=16))
        cryptogram = ISSUER.respond(serial, challenge)
        channel.send(command(0x00, 0x82, 0x00, 0x00, cryptogram))
        with pytest.raises(ConditionsNotSatisfied):
            channel.send(command(0x00, 0x82, 0x00, 0x00, cryptogram))
        # authenticated: personalisation commands are accepted
        issuer.put_data(contract.Tag.MUNICIPALITY_CODE, b"13101")
        assert issuer.get_data(contract.Tag.MUNICIPALITY_CODE) == b"13101"


def test_issued_card_is_locked_against_personalisation(card: Personalised,
                                                       test_ca: SampleCa) -> None:
    issuer = IssuerClient(card.channel)
    issuer.authenticate(ISSUER)
    with pytest.raises(ConditionsNotSatisfied):
        issuer.set_state(LifeCycle.PERSONALISED)
    with pytest.raises(ConditionsNotSatisfied):
        issuer.set_state(LifeCycle.ISSUED)
    with pytest.raises(ConditionsNotSatisfied):
        issuer.put_data(contract.Tag.MUNICIPALITY_CODE, b"27100")
    with pytest.raises(ConditionsNotSatisfied):
        personalise(card.transport, test_ca, library=False)


def test_after_issue_updates_need_issuer_and_holder(card: Personalised) -> None:
    issuer = IssuerClient(card.channel)
    new_facts = formats.BasicFour("試験　一郎", "大阪府大阪市北区中之島１－３－２０",
                                  PROFILE.facts.birth_date, "1")
    data = formats.basic_four_file(new_facts)
    issuer.authenticate(ISSUER)
    with pytest.raises(SecurityStatusNotSatisfied):  # issuer alone
        issuer.write_file(contract.TEXT, contract.TEXT_BASIC_FOUR, data)
    with pytest.raises(SecurityStatusNotSatisfied):  # holder credential of another area
        jpki = JpkiClient(card.channel)
        jpki.verify_pin(Key.AUTH, PINS.jpki_auth)
        issuer.write_file(contract.TEXT, contract.TEXT_BASIC_FOUR, data)
    text = TextClient(card.channel)
    text.select(force=True)
    text.verify_pin(PINS.text)
    issuer.write_file(contract.TEXT, contract.TEXT_BASIC_FOUR, data)
    assert text.basic_four() == new_facts


def test_holder_alone_cannot_write(card: Personalised) -> None:
    reconnect(card.transport)  # power cycle: the issuer authentication is gone
    text = TextClient(card.channel)
    text.verify_pin(PINS.text)
    text.select_ef(contract.TEXT_BASIC_FOUR)
    assert card.channel.transmit(command(0x00, 0xD6, 0, 0, b"\xff")).sw == 0x6982


def test_terminated_card_refuses_everything_but_select_and_get_data(
    card: Personalised,
) -> None:
    issuer = IssuerClient(card.channel)
    issuer.authenticate(ISSUER)
    issuer.terminate()
    assert issuer.life_cycle() == LifeCycle.TERMINATED
    assert issuer.serial() == card.result.serial
    jpki = JpkiClient(card.channel)
    with pytest.raises(ConditionsNotSatisfied):
        jpki.verify_pin(Key.AUTH, PINS.jpki_auth)
    with pytest.raises(ConditionsNotSatisfied):
        jpki.tries_left_for(Key.SIGN)
    with pytest.raises(ConditionsNotSatisfied):
        jpki.read_certificate(CertKind.AUTH)
    with pytest.raises(ConditionsNotSatisfied):
        jpki.sign_sha256(Key.AUTH, b"x")
    with pytest.raises(ConditionsNotSatisfied):
        jpki.public_key(Key.AUTH)
    for area in contract.AREAS[:4]:
        client = area_client(card.channel, area)
        client.select(force=True)  # SELECT still answers
        with pytest.raises(ConditionsNotSatisfied):
            client.tries_left(area.pins[0].fid)
    with pytest.raises(ConditionsNotSatisfied):  # GET CHALLENGE is refused too
        issuer.authenticate(ISSUER)
    with pytest.raises((ConditionsNotSatisfied, SecurityStatusNotSatisfied)):
        issuer.set_state(LifeCycle.ACTIVE)
