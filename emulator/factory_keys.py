"""The factory keys and serials of emulated cards (PROTOCOL.md): what the launcher writes into a
card's configuration. The test master keys are public; a real center gives its own key files."""

from __future__ import annotations

import secrets
from pathlib import Path

from card.contract import SERIAL_LENGTH, TEST_ISSUER_MASTER_KEY  # noqa: F401  (re-exported)
from emulator.errors import EmulatorError

TEST_MUNICIPAL_MASTER_KEY = bytes(range(0x50, 0x60))


# The center's card-key derivation (hsm.mechanisms.DerivationMethod values) and what the
# cards made for it hold: AES-ECB-encrypt or -decrypt(master, serial || domain).
DERIVATIONS = {"aes-ecb-encrypt-data": "encrypt", "aes-cbc-encrypt-data": "encrypt",
               "aes-ecb-unwrap": "decrypt"}
DEFAULT_DERIVATION = "aes-ecb-encrypt-data"
CENTER_FILE = "center.json"  # where a center in the same home records its derivation


def derive_card_key(master: bytes, serial: str, domain: int = 0x80,
                    derivation: str = DEFAULT_DERIVATION) -> bytes:
    """The factory keys of PROTOCOL.md: AES-128-ECB(master, serial || domain), encrypting
    (or decrypting, for a center whose HSM unwraps: `aes-ecb-unwrap`); domain 0x80 the
    issuer key, 0x81 the card-authentication key (key attestation)."""
    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

    if not isinstance(master, bytes) or len(master) != 16:
        raise ValueError("a master key is 16 bytes")
    if len(serial) != SERIAL_LENGTH or not serial.isdigit():
        raise ValueError("a serial is 15 digits")
    function = check_derivation(derivation)
    cipher = Cipher(algorithms.AES(master), modes.ECB())
    ctx = cipher.encryptor() if function == "encrypt" else cipher.decryptor()
    return ctx.update(serial.encode("ascii") + bytes([domain])) + ctx.finalize()


def check_derivation(derivation: str) -> str:
    """`encrypt` or `decrypt` for a known derivation; EmulatorError naming the known ones."""
    try:
        return DERIVATIONS[derivation]
    except KeyError:
        raise EmulatorError(f"unknown card-key derivation {derivation!r} (one of "
                            f"{', '.join(DERIVATIONS)})") from None


def center_derivation(home: Path) -> str | None:
    """The derivation a center in `home` recorded (its cards must hold such keys)."""
    import json

    try:
        recorded = json.loads((Path(home) / CENTER_FILE).read_text()).get("derivation")
    except (OSError, ValueError, AttributeError):
        return None
    return recorded if isinstance(recorded, str) else None


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
