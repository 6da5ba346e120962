"""AES-CMAC assembled from cipher blocks (for tokens without CKM_AES_CMAC) is AES-CMAC."""

from __future__ import annotations

import os

import pytest
from cryptography.hazmat.primitives import cmac
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from hsm.cmac import cmac_from_blocks, cmac_matches


def _blocks(key: bytes) -> dict[str, object]:
    def ecb(block: bytes) -> bytes:
        enc = Cipher(algorithms.AES(key), modes.ECB()).encryptor()
        return enc.update(block) + enc.finalize()

    def cbc(data: bytes) -> bytes:
        enc = Cipher(algorithms.AES(key), modes.CBC(bytes(16))).encryptor()
        return enc.update(data) + enc.finalize()

    return {"encrypt_block": ecb, "encrypt_cbc": cbc}


def _reference(key: bytes, message: bytes) -> bytes:
    mac = cmac.CMAC(algorithms.AES(key))
    mac.update(message)
    return mac.finalize()


@pytest.mark.parametrize("length", [0, 1, 15, 16, 17, 31, 32, 33, 64, 200])
def test_equals_aes_cmac_for_every_length(length: int) -> None:
    key, message = os.urandom(16), os.urandom(length)
    got = cmac_from_blocks(message, **_blocks(key))  # type: ignore[arg-type]
    assert got == _reference(key, message)


def test_sp800_38b_example_vector() -> None:
    # NIST SP 800-38B, D.1 AES-128, Example 2 (one complete block)
    key = bytes.fromhex("2b7e151628aed2a6abf7158809cf4f3c")
    message = bytes.fromhex("6bc1bee22e409f96e93d7e117393172a")
    got = cmac_from_blocks(message, **_blocks(key))  # type: ignore[arg-type]
    assert got.hex() == "070a16b46b4d4144f79bdd9dd04a287c"


def test_a_short_answer_from_the_hsm_is_refused() -> None:
    with pytest.raises(ValueError, match="wrong length"):
        cmac_from_blocks(b"m", encrypt_block=lambda b: b[:8], encrypt_cbc=lambda d: d)
    with pytest.raises(ValueError, match="wrong length"):
        cmac_from_blocks(b"m", encrypt_block=lambda b: b, encrypt_cbc=lambda d: d[:8])


def test_comparison() -> None:
    assert cmac_matches(b"a" * 16, b"a" * 16)
    assert not cmac_matches(b"a" * 16, b"b" * 16)
