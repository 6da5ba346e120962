"""The emulated readers as PC/SC shows them: cards, ATR, applications, independence."""

from __future__ import annotations

import pytest
from emulator_pcsc import RawCard, get_data, select_aid

from card import contract
from card.transport import PcscTransport, reader_has_card
from emulator.launcher import Emulator

ALL_AIDS = {"card manager": contract.AID_CARD_MANAGER, **contract.AREA_AIDS}


def test_every_reader_has_a_card_with_the_contract_atr(mynacard_emulator: Emulator) -> None:
    assert len(mynacard_emulator.readers) >= 2
    for reader in mynacard_emulator.readers:
        assert reader_has_card(reader)
        with PcscTransport(reader) as t:
            assert t.atr == contract.ATR


def test_first_reader_is_the_usual_virtual_pcd(mynacard_emulator: Emulator) -> None:
    assert mynacard_emulator.readers[0] == "Virtual PCD 00 00"


@pytest.mark.parametrize("area", sorted(ALL_AIDS))
def test_select_each_application(mynacard_reader: str, area: str) -> None:
    with RawCard(mynacard_reader) as card:
        assert card.sw(select_aid(ALL_AIDS[area])) == 0x9000


def test_select_unknown_application_is_6a82(mynacard_reader: str) -> None:
    with RawCard(mynacard_reader) as card:
        assert card.sw(select_aid(bytes.fromhex("D392F0002601000000FF"))) == 0x6A82
        assert card.sw(select_aid(bytes.fromhex("A0000000031010"))) == 0x6A82
        # the card still answers afterwards
        assert card.sw(select_aid(contract.AID_JPKI)) == 0x9000


def test_readers_hold_independent_cards(mynacard_emulator: Emulator) -> None:
    serials = {}
    for reader in mynacard_emulator.readers:
        with RawCard(reader) as card:
            assert card.sw(select_aid(contract.AID_CARD_MANAGER)) == 0x9000
            data, sw = card.send(get_data(contract.Tag.CARD_SERIAL))
            assert sw == 0x9000
            serials[reader] = data.decode("ascii")
            assert serials[reader] == mynacard_emulator.serial(reader)
            assert len(data) == contract.SERIAL_LENGTH and data.isdigit()
    assert len(set(serials.values())) == len(serials)


def test_challenges_are_random_across_cards_and_resets(mynacard_emulator: Emulator) -> None:
    seen = set()
    for reader in mynacard_emulator.readers:
        for _ in range(2):
            with RawCard(reader) as card:
                card.sw(select_aid(contract.AID_CARD_MANAGER))
                data, sw = card.send(bytes.fromhex("0084000010"))
                assert sw == 0x9000 and len(data) == 16
                seen.add(data)
                from smartcard.scard import SCARD_RESET_CARD

                card.reconnect(SCARD_RESET_CARD)
    assert len(seen) == 2 * len(mynacard_emulator.readers)


def test_card_manager_is_selected_at_power_on(mynacard_emulator: Emulator) -> None:
    from smartcard.scard import SCARD_RESET_CARD, SCARD_UNPOWER_CARD

    reader = mynacard_emulator.readers[-1]
    with RawCard(reader) as card:
        for disposition in (SCARD_UNPOWER_CARD, SCARD_RESET_CARD):
            assert card.sw(select_aid(contract.AID_JPKI)) == 0x9000
            card.reconnect(disposition)
            data, sw = card.send(get_data(contract.Tag.CARD_SERIAL))  # no SELECT first
            assert sw == 0x9000 and data.decode() == mynacard_emulator.serial(reader)
