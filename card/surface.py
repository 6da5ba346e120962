"""Card surface application (券面AP): the card face and the age record.

Code A (the My Number) opens the card face and the My Number image; code B (era
birth date + expiry year + security code) the card face only; the birth-date key
(era YYMMDD) only the age record.
"""

from __future__ import annotations

from datetime import date

from card import contract
from card.formats import (
    CardFace,
    CvCertificate,
    MyNumberImage,
    SurfaceBasic,
    parse_age_record_file,
    parse_card_face_file,
    parse_cv_certificate,
    parse_my_number_image_file,
    parse_surface_basic_file,
)
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

    def card_face_raw(self) -> bytes:
        """EF 0002 as stored (code A or B): what a verifier of DF28 needs."""
        return self.read_object(contract.SURFACE_FACE)

    def my_number_image(self) -> MyNumberImage:
        """EF 0005, the My Number image (code A only)."""
        return parse_my_number_image_file(self.read_object(contract.SURFACE_MY_NUMBER_IMAGE))

    def basic_data(self) -> SurfaceBasic:
        return parse_surface_basic_file(self.read_object(contract.SURFACE_AP_BASIC))

    def cv_certificate(self) -> CvCertificate:
        """EF 0004: the certificate of the key that signs the face and the My Number image."""
        return parse_cv_certificate(self.read_object(contract.SURFACE_CV_CERT))

    def age_record(self) -> date:
        """The birth date in the age record (opened by the birth-date key)."""
        return parse_age_record_file(self.read_object(contract.SURFACE_AGE_RECORD))
