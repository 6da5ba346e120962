"""AES-CMAC (NIST SP 800-38B) assembled from cipher blocks an HSM computes.

For a token without CKM_AES_CMAC: the subkey L = AES(K, 0^128) and the CBC chain over the
(tweaked) message are computed by the HSM with the key inside it (CKM_AES_ECB and
CKM_AES_CBC with a zero IV); only cipher blocks come out, from which the host takes the
last. The key itself never leaves the HSM.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable

BLOCK = 16
_RB = 0x87  # the constant R_128 of SP 800-38B


def _double(block: bytes) -> bytes:
    """Multiplication by x in GF(2^128), the subkey step of SP 800-38B."""
    value = int.from_bytes(block, "big") << 1
    if value >> 128:
        value = (value & ((1 << 128) - 1)) ^ _RB
    return value.to_bytes(BLOCK, "big")


def _xor(a: bytes, b: bytes) -> bytes:
    return bytes(x ^ y for x, y in zip(a, b, strict=True))


def cmac_from_blocks(message: bytes, *, encrypt_block: Callable[[bytes], bytes],
                     encrypt_cbc: Callable[[bytes], bytes]) -> bytes:
    """AES-CMAC(K, message) where `encrypt_block` is AES-ECB under K of one block and
    `encrypt_cbc` AES-CBC under K with a zero IV of whole blocks."""
    l_block = encrypt_block(bytes(BLOCK))
    if len(l_block) != BLOCK:
        raise ValueError("the HSM returned a block of the wrong length")
    k1 = _double(l_block)
    k2 = _double(k1)
    if message and len(message) % BLOCK == 0:
        head, last = message[:-BLOCK], _xor(message[-BLOCK:], k1)
    else:
        cut = len(message) - len(message) % BLOCK
        tail = message[cut:] + b"\x80"
        head, last = message[:cut], _xor(tail + bytes(BLOCK - len(tail)), k2)
    chain = encrypt_cbc(head + last)
    if len(chain) != len(head) + BLOCK:
        raise ValueError("the HSM returned a CBC chain of the wrong length")
    return chain[-BLOCK:]


def cmac_matches(expected: bytes, given: bytes) -> bool:
    """Constant-time comparison of two MACs."""
    return hmac.compare_digest(expected, given)
