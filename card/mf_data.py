"""MF-level GET DATA on the card manager (selected at power-on): the objects a reader can
ask for with no application selected, as myna-card found them on the real card.

`00 CA P1 P2 00` for the short ones; the two card-verifiable certificates (568 bytes) answer
a short Le with 6700 and need the extended form `00 CA P1 P2 00 00 00`.
"""

from __future__ import annotations

from dataclasses import dataclass

from card import contract
from card.apdu import command, extended_command
from card.contract import Ins, Tag
from card.formats import CvChain, parse_card_recognition_data, parse_chain
from card.session import Channel, channel_for
from card.transport import Transport

LARGE_OBJECTS = frozenset({Tag.CHAIN_UPPER, Tag.CHAIN_LOWER})


def get_data_apdu(tag: int) -> bytes:
    """GET DATA for an MF object: short Le, or extended for the CV certificates."""
    if int(tag) in LARGE_OBJECTS:
        return extended_command(contract.CLA_ISO, Ins.GET_DATA, tag >> 8, tag & 0xFF,
                                le=0x10000)
    return command(contract.CLA_ISO, Ins.GET_DATA, tag >> 8, tag & 0xFF, le=256)


def get_data(transport: Transport | Channel, tag: int) -> bytes:
    """One MF-level object (selects the card manager first)."""
    channel = channel_for(transport)
    channel.select_application(contract.AID_CARD_MANAGER)
    return channel.send(get_data_apdu(tag))


@dataclass(frozen=True)
class MfData:
    issuer_id: bytes
    card_recognition: dict[int, bytes]
    intermediate_key_id: bytes
    chain: CvChain


def read_mf_data(transport: Transport | Channel) -> MfData:
    """Every MF object of a personalised card, parsed (MalformedData if one does not parse)."""
    channel = channel_for(transport)
    raw = {tag: get_data(channel, tag) for tag in (
        Tag.ISSUER_ID, Tag.CARD_RECOGNITION, Tag.INTERMEDIATE_KEY_ID, Tag.CHAIN_UPPER,
        Tag.CHAIN_LOWER)}
    return MfData(raw[Tag.ISSUER_ID], parse_card_recognition_data(raw[Tag.CARD_RECOGNITION]),
                  raw[Tag.INTERMEDIATE_KEY_ID],
                  parse_chain(raw[Tag.CHAIN_UPPER], raw[Tag.CHAIN_LOWER]))


