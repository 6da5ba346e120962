"""The 共通カードAP (common card application, `D3 92 10 00 31 00 01 01 01 00`): the
card-info record (serial, municipality code, expiry) read with READ RECORD, the key
reference it shares with the 住基AP, INTERNAL AUTHENTICATE with the EF 0019 key (no
credential), and its own copy of the resident-registry PIN.

`read_card_info(transport)` is what jpki/myna does to get the 製造番号: select the
application, `00 B2 01 0C 00` (record 1 of SFI 1), parse the simple-TLV record.
"""

from __future__ import annotations

import hashlib

from card import contract
from card.apdu import command
from card.formats import CardInfo, parse_card_info_record
from card.session import AreaClient, Channel
from card.transport import Transport

SHA256_DIGEST_INFO_PREFIX = bytes.fromhex("3031300D060960864801650304020105000420")


def read_record_apdu(number: int, sfi: int = 0) -> bytes:
    """`00 B2 number (SFI<<3 | 4) 00`: record `number` of the current EF (sfi 0) or of SFI."""
    if not 1 <= number <= 0xFF or not 0 <= sfi <= 0x1E:
        raise ValueError("a record number is 1..255 and an SFI 0..30")
    return command(contract.CLA_ISO, contract.Ins.READ_RECORD, number,
                   (sfi << 3) | contract.RECORD_P2_BY_NUMBER, le=256)


def sha256_digest_info(message: bytes) -> bytes:
    """The DER DigestInfo of SHA-256(message), what INTERNAL AUTHENTICATE signs."""
    return SHA256_DIGEST_INFO_PREFIX + hashlib.sha256(message).digest()


class CommonClient(AreaClient):
    """Holder-side operations of the common card application."""

    area = contract.COMMON

    def read_record(self, fid: int, number: int = 1) -> bytes:
        """READ RECORD `number` of a record EF, named by its SFI (as jpki/myna does)."""
        self.select()
        return self.channel.send(read_record_apdu(number, fid & 0x1F))

    def card_info(self) -> CardInfo:
        """Record 1 of EF 0001: serial, municipality code, expiry (no credential)."""
        return parse_card_info_record(self.read_record(contract.COMMON_CARD_INFO, 1))

    def key_reference(self) -> bytes:
        """EF 0002: the 16-byte key reference (the same bytes as the 住基AP's EF 0002)."""
        return self.read_raw(contract.COMMON_KEY_REFERENCE, contract.KEY_ID_LENGTH)

    def internal_authenticate(self, challenge: bytes) -> bytes:
        """The card's RSA PKCS#1 v1.5 signature of SHA-256(challenge) with the EF 0019 key
        (`00 88 00 99 Lc DigestInfo 00`); no credential is needed."""
        if not 1 <= len(challenge) <= 1024:
            raise ValueError("a challenge is 1..1024 bytes")
        self.select()
        return self.channel.send(command(
            contract.CLA_ISO, contract.Ins.INTERNAL_AUTHENTICATE, 0,
            contract.P2_CURRENT_KEY | (contract.COMMON_AUTH_KEY & 0x1F),
            sha256_digest_info(challenge), le=256))

    def verify_pin(self, pin: str) -> None:
        self.verify(contract.COMMON_PIN, pin)

    def change_common_pin(self, old: str, new: str) -> None:
        """Change this copy of the resident-registry PIN (JICSAP CHANGE KEY); the 住基AP's copy
        is a separate key reference and keeps its value."""
        self.change_pin(contract.COMMON_PIN, old, new, jicsap=True)


def read_card_info(transport: Transport | Channel) -> CardInfo:
    """The card-info record of the common card application."""
    return CommonClient(transport).card_info()

