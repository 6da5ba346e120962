"""Files of the JPKI application besides the certificates: token info and certificate
availability."""

from __future__ import annotations

from dataclasses import dataclass

from card import contract
from card.tlv import MalformedData

# --- JPKI files -----------------------------------------------------------------

TOKEN_INFO_LENGTH = 160


def token_info(
    label: bytes = contract.TOKEN_INFO_LABEL,
    *,
    manufacturer: str = "mynacard",
    model: str = "MyNumberCard",
    serial: str = "",
) -> bytes:
    """JPKI EF 0006: a 160-byte CK_TOKEN_INFO (big-endian), label space-padded to 32.

    Only the label is read by clients (OpenSC checks it); the counters are zero.
    """

    def pad(raw: bytes, n: int) -> bytes:
        if len(raw) > n:
            raise ValueError(f"field longer than {n} bytes")
        return raw.ljust(n, b" ")

    body = (
        pad(label, 32)
        + pad(manufacturer.encode("ascii"), 32)
        + pad(model.encode("ascii"), 16)
        + pad(serial.encode("ascii"), 16)
        + bytes(11 * 4)  # flags and the ten counters
        + bytes(4)  # hardware and firmware versions
        + b" " * 16  # utcTime (none)
    )
    assert len(body) == TOKEN_INFO_LENGTH
    return body


def parse_token_label(data: bytes) -> str:
    """The label of a token info: the first 32 bytes without the padding."""
    if len(data) < 32:
        raise MalformedData("token info shorter than its label")
    return data[:32].rstrip(b" \x00\xff").decode("ascii", "replace")


CERT_PRESENT = 0x8F


@dataclass(frozen=True)
class CertAvailability:
    """JPKI EF 0008: which holder certificates the card carries."""

    sign: bool
    auth: bool


def cert_availability_file(*, sign: bool, auth: bool = True) -> bytes:
    """`8F 8F 00` with both certificates, `00 8F 00` without a signing certificate."""
    return bytes((CERT_PRESENT if sign else 0, CERT_PRESENT if auth else 0, 0))


def parse_cert_availability_file(data: bytes) -> CertAvailability:
    if len(data) < 2:
        raise MalformedData("certificate availability is 3 bytes")
    return CertAvailability(sign=data[0] == CERT_PRESENT, auth=data[1] == CERT_PRESENT)
