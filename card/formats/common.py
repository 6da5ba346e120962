"""Files of the 共通カードAP (common card application) and the key reference it shares with
the 住基AP: record 1 of EF 0001 (serial, municipality code, expiry) and the 16-byte key
reference of EF 0002, which names the card's internal-authentication key (EF 0019)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from cryptography.hazmat.primitives.asymmetric import rsa

from card import contract
from card.formats.signing import key_id
from card.formats.values import parse_yyyymmdd, validate_municipality_code, yyyymmdd
from card.tlv import MalformedData

TAG_CARD_INFO = 0x01  # simple-TLV tag of record 1
CARD_INFO_VALUE_LENGTH = 28
CARD_KEY_ID_PREFIX = b"6000019"  # project choice: the card's EF 0019 key


def card_info_record(serial: str, municipality_code: str, expiry: date) -> bytes:
    """Record 1 of EF 0001: `01 1C` + serial (15) + municipality code (5) + YYYYMMDD."""
    if len(serial) != contract.SERIAL_LENGTH or not serial.isdigit():
        raise ValueError("a card serial is 15 digits")
    value = (serial + validate_municipality_code(municipality_code)).encode("ascii") \
        + yyyymmdd(expiry)
    record = bytes((TAG_CARD_INFO, len(value))) + value
    assert len(record) == contract.COMMON_CARD_INFO_RECORD_LENGTH
    return record


@dataclass(frozen=True)
class CardInfo:
    """What the card says about itself in the common card application."""

    serial: str
    municipality_code: str
    expiry: date

    @property
    def prefecture_code(self) -> str:
        return self.municipality_code[:2]


def parse_card_info_record(record: bytes) -> CardInfo:
    """Record 1 read back (simple-TLV: one tag byte, one length byte, 28 ASCII digits)."""
    if len(record) < 2 or record[0] != TAG_CARD_INFO or record[1] != CARD_INFO_VALUE_LENGTH \
            or len(record) < 2 + CARD_INFO_VALUE_LENGTH:
        raise MalformedData("card-info record is not 01 1C + 28 digits")
    value = record[2 : 2 + CARD_INFO_VALUE_LENGTH]
    if not value.isdigit():
        raise MalformedData("card-info record is not all digits")
    text = value.decode("ascii")
    try:
        municipality = validate_municipality_code(text[15:20])
    except ValueError:
        raise MalformedData("card-info record has no valid municipality code") from None
    return CardInfo(text[:15], municipality, parse_yyyymmdd(value[20:]))


def key_reference(card_key: rsa.RSAPublicKey) -> bytes:
    """EF 0002 of the 住基AP and the 共通カードAP: the key ID of the EF 0019 key (16 bytes)."""
    return key_id(CARD_KEY_ID_PREFIX, card_key)
