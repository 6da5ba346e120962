"""Extended-length APDUs over PC/SC (pcscd, vpcd, the bridge, jCardSim): READ BINARY with
an extended Le returns the whole rest of a file; GET CHALLENGE refuses the extended form."""

from __future__ import annotations

from card_support import Personalised

from card import contract
from card.jpki import JpkiClient
from card.session import select_ef_apdu


def test_extended_read_binary_returns_the_whole_file(card: Personalised) -> None:
    jpki = JpkiClient(card.transport)
    jpki.select()
    card.channel.send(select_ef_apdu(contract.JPKI_AUTH_CERT))
    size = contract.JPKI.file(contract.JPKI_AUTH_CERT).size
    assert size > 256
    short = card.channel.transmit(bytes.fromhex("00B0000000"))
    assert short.sw == 0x9000 and len(short.data) == 256
    whole = card.channel.transmit(bytes.fromhex("00B00000" + "000000"))
    assert whole.sw == 0x9000
    assert len(whole.data) == size
    assert whole.data[:256] == short.data
    assert whole.data == jpki.read_raw(contract.JPKI_AUTH_CERT, size)
    bounded = card.channel.transmit(bytes.fromhex("00B00100" + "00012C"))
    assert bounded.sw == 0x9000 and bounded.data == whole.data[256 : 256 + 300]


def test_get_challenge_refuses_the_extended_form(card: Personalised) -> None:
    JpkiClient(card.transport).select()
    assert card.channel.transmit(bytes.fromhex("00840000" + "000008")).sw == 0x6985
    short = card.channel.transmit(bytes.fromhex("0084000008"))
    assert short.sw == 0x9000 and len(short.data) == 8
