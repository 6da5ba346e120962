"""DigestInfo built on the host for the card's PKCS#1 v1.5 signature."""

from __future__ import annotations

import hashlib

import pytest
from asn1crypto import algos

from card.jpki import digest_info


@pytest.mark.parametrize("name", ["sha1", "sha256", "sha384", "sha512"])
def test_digest_info_is_the_der_structure(name: str) -> None:
    digest = hashlib.new(name, b"abc").digest()
    der = digest_info(name, digest)
    parsed = algos.DigestInfo.load(der)
    assert parsed["digest_algorithm"]["algorithm"].native == name
    assert parsed["digest"].native == digest
    assert parsed.dump(force=True) == der


def test_sha256_digest_info_is_51_bytes() -> None:
    assert len(digest_info("sha256", bytes(32))) == 51


def test_wrong_digest_size_or_hash() -> None:
    with pytest.raises(ValueError):
        digest_info("sha256", bytes(20))
    with pytest.raises(ValueError):
        digest_info("md5", bytes(16))
