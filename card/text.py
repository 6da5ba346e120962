"""Card-info input support application (券面事項入力補助AP): My Number and the basic four facts.

The holder's 4-digit PIN opens everything; verification code A (the My Number) opens
the My Number and the integrity record, code B the basic four facts and the record.
"""

from __future__ import annotations

from cryptography.hazmat.primitives.asymmetric import rsa

from card import contract
from card.formats import (
    BasicFour,
    IntegrityCheck,
    check_integrity_record,
    parse_basic_four_file,
    parse_my_number_file,
)
from card.session import AreaClient


class TextClient(AreaClient):
    """Holder operations of the card-info input support application."""

    area = contract.TEXT

    def verify_pin(self, pin: str) -> None:
        self.verify(contract.TEXT_PIN, pin)

    def verify_code_a(self, my_number: str) -> None:
        self.verify(contract.TEXT_CODE_A, my_number)

    def verify_code_b(self, code: str) -> None:
        self.verify(contract.TEXT_CODE_B, code)

    def my_number_file(self) -> bytes:
        """EF 0001 as stored: 17 bytes, filler included (what the integrity record hashes)."""
        return self.read_raw(contract.TEXT_MY_NUMBER, 17)

    def my_number(self) -> str:
        return parse_my_number_file(self.my_number_file())

    def basic_four_file(self) -> bytes:
        return self.read_object(contract.TEXT_BASIC_FOUR)

    def basic_four(self) -> BasicFour:
        return parse_basic_four_file(self.basic_four_file())

    def integrity_record(self) -> bytes:
        return self.read_object(contract.TEXT_INTEGRITY)

    def check_integrity(self, issuer_public_key: rsa.RSAPublicKey | None = None) -> IntegrityCheck:
        """Read 0001, 0002 and 0003 and check the record: hashes always, the signature
        when the issuer's public key is given. Needs the PIN (or codes A and B)."""
        return check_integrity_record(
            self.integrity_record(), self.my_number_file(), self.basic_four_file(),
            issuer_public_key,
        )
