"""The factory keys and serials of emulated cards (PROTOCOL.md): what the launcher writes into a
card's configuration. The test master keys are public; a real center gives its own key files."""

from __future__ import annotations

import secrets
from pathlib import Path

from card.contract import SERIAL_LENGTH, TEST_ISSUER_MASTER_KEY  # noqa: F401  (re-exported)
from emulator.errors import EmulatorError

TEST_MUNICIPAL_MASTER_KEY = bytes(range(0x50, 0x60))


def derive_card_key(master: bytes, serial: str, domain: int = 0x80) -> bytes:
    """AES-128-ECB(master, serial || domain), the factory keys of PROTOCOL.md: 0x80 the
    issuer key, 0x81 the card-authentication key (key attestation)."""
    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

    if not isinstance(master, bytes) or len(master) != 16:
        raise ValueError("a master key is 16 bytes")
    if len(serial) != SERIAL_LENGTH or not serial.isdigit():
        raise ValueError("a serial is 15 digits")
    enc = Cipher(algorithms.AES(master), modes.ECB()).encryptor()
    return enc.update(serial.encode("ascii") + bytes([domain])) + enc.finalize()


def random_serial() -> str:
    return str(1 + secrets.randbelow(9)) + "".join(
        str(secrets.randbelow(10)) for _ in range(SERIAL_LENGTH - 1)
    )


def read_master_key(path: Path) -> bytes:
    """A master key file: 16 raw bytes or 32 hex digits. The value is never echoed."""
    raw = Path(path).read_bytes()
    if len(raw) == 16:
        return raw
    try:
        key = bytes.fromhex(raw.decode("ascii").strip())
    except (UnicodeDecodeError, ValueError):
        raise EmulatorError(f"{path}: not a master key (16 bytes or 32 hex digits)") from None
    if len(key) != 16:
        raise EmulatorError(f"{path}: not a master key (16 bytes or 32 hex digits)")
    return key
