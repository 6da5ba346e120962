"""Card surface application (券面AP): the card face and the age record.

Code A (the My Number) opens the card face and the My Number image; code B (era
birth date + expiry year + security code) the card face only; the birth-date key
(era YYMMDD) only the age record.
"""

from __future__ import annotations

from datetime import date

from card import contract
from card.formats import CardFace, parse_age_record_file, parse_card_face_file
from card.session import AreaClient


class SurfaceClient(AreaClient):
    """Reader operations of the card surface application."""

    area = contract.SURFACE

    def verify_code_a(self, my_number: str) -> None:
        self.verify(contract.SURFACE_CODE_A, my_number)

    def verify_code_b(self, code: str) -> None:
        self.verify(contract.SURFACE_CODE_B, code)

    def verify_birth_key(self, era_yymmdd: str) -> None:
        self.verify(contract.SURFACE_BIRTH_KEY, era_yymmdd)

    def card_face(self) -> CardFace:
        return parse_card_face_file(self.read_object(contract.SURFACE_FACE))

    def age_record(self) -> date:
        """The birth date in the age record (opened by the birth-date key)."""
        return parse_age_record_file(self.read_object(contract.SURFACE_AGE_RECORD))
