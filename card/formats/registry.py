"""Resident-registry and municipal files: the resident code, the library-card number."""

from __future__ import annotations

from card import tlv
from card.formats.values import (
    validate_resident_code,
)
from card.tlv import MalformedData

# --- Resident registry and municipal files --------------------------------------

TAG_NUMBER = 0xDF01


def resident_code_file(code: str) -> bytes:
    """Juki EF 0001: `DF 01 0B` + 11 ASCII digits."""
    validate_resident_code(code)
    return tlv.encode(TAG_NUMBER, code.encode("ascii"))


def parse_resident_code_file(data: bytes) -> str:
    value = tlv.parse_file(data, TAG_NUMBER).value
    try:
        return validate_resident_code(value.decode("ascii"))
    except (UnicodeDecodeError, ValueError):
        raise MalformedData("resident code file holds no valid resident code") from None


def library_number_file(number: str) -> bytes:
    """Municipal library EF 0001: `DF01 len` + ASCII number (1..30 printable characters)."""
    if not isinstance(number, str):
        raise TypeError("a library number is a str")
    if not 1 <= len(number) <= 30 or not number.isascii() or not number.isprintable():
        raise ValueError("a library number is 1 to 30 printable ASCII characters")
    return tlv.encode(TAG_NUMBER, number.encode("ascii"))


def parse_library_number_file(data: bytes) -> str:
    try:
        return tlv.parse_file(data, TAG_NUMBER).value.decode("ascii")
    except UnicodeDecodeError:
        raise MalformedData("library number is not ASCII") from None
