"""APDUs as bytes: short-form command encoding and response splitting (ISO/IEC 7816-4)."""

from __future__ import annotations

from dataclasses import dataclass

from card.errors import raise_for_status


def command(
    cla: int, ins: int, p1: int, p2: int, data: bytes = b"", le: int | None = None
) -> bytes:
    """Encode a short command APDU (cases 1–4). `le` 256 is encoded as 00."""
    for name, value in (("cla", cla), ("ins", ins), ("p1", p1), ("p2", p2)):
        if not 0 <= value <= 0xFF:
            raise ValueError(f"{name} must be a byte, got {value}")
    if not isinstance(data, (bytes, bytearray)):
        raise TypeError("data must be bytes")
    if len(data) > 255:
        raise ValueError("short APDUs carry at most 255 data bytes")
    apdu = bytes((cla, ins, p1, p2))
    if data:
        apdu += bytes((len(data),)) + bytes(data)
    if le is not None:
        if not 1 <= le <= 256:
            raise ValueError("le must be 1..256")
        apdu += bytes((le & 0xFF,))
    return apdu


@dataclass(frozen=True)
class Response:
    """A response APDU: data and the status word."""

    data: bytes
    sw: int

    @classmethod
    def from_bytes(cls, raw: bytes) -> Response:
        if len(raw) < 2:
            raise ValueError("a response has at least the two status bytes")
        return cls(bytes(raw[:-2]), (raw[-2] << 8) | raw[-1])

    @property
    def ok(self) -> bool:
        return self.sw == 0x9000

    def check(self) -> bytes:
        """The data, or the status word's exception."""
        raise_for_status(self.sw)
        return self.data


def extended_command(
    cla: int, ins: int, p1: int, p2: int, data: bytes = b"", le: int | None = None
) -> bytes:
    """Encode an extended command APDU: `00 Lc(2)` before the data, `Le(2)` after it (or
    `00 Le(2)` with no data); `le` 65536 is encoded as 0000. Only the card manager's large
    MF objects need it (ISO/IEC 7816-4 5.1)."""
    head = command(cla, ins, p1, p2)
    if len(data) > 0xFFFF:
        raise ValueError("extended APDUs carry at most 65535 data bytes")
    out = head
    if data:
        out += b"\x00" + len(data).to_bytes(2, "big") + bytes(data)
    if le is not None:
        if not 1 <= le <= 0x10000:
            raise ValueError("le must be 1..65536")
        out += (b"" if data else b"\x00") + (le & 0xFFFF).to_bytes(2, "big")
    return out
