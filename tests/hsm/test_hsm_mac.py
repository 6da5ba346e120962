"""HMAC keys in the HSM: made once, never readable, and the MAC checks out."""

from __future__ import annotations

import hashlib
import hmac

import pkcs11
import pytest
from pkcs11 import Attribute, ObjectClass

from hsm import KeyManager
from hsm.errors import KeyNotFound
from hsm.mac import MAC_LENGTH, HsmMac, create_mac_key, has_mac_key


def test_created_once_and_used_for_mac_only(km: KeyManager,
                                            raw_session: pkcs11.Session) -> None:
    assert not has_mac_key(km, "audit-mac")
    assert create_mac_key(km, "audit-mac") is True
    assert create_mac_key(km, "audit-mac") is False  # idempotent
    assert has_mac_key(km, "audit-mac")
    key = raw_session.get_key(object_class=ObjectClass.SECRET_KEY, label="audit-mac")
    assert key[Attribute.SENSITIVE] and not key[Attribute.EXTRACTABLE]
    assert key[Attribute.SIGN] and key[Attribute.VERIFY]
    assert not key[Attribute.ENCRYPT] and not key[Attribute.DERIVE] and not key[Attribute.WRAP]
    with pytest.raises(pkcs11.exceptions.PKCS11Error):
        key[Attribute.VALUE]  # noqa: B018 - the value can never be read out


def test_mac_verifies_and_detects_changes(km: KeyManager) -> None:
    create_mac_key(km, "audit-mac")
    mac = HsmMac(km, "audit-mac")
    tag = mac.mac(b"entry hash")
    assert len(tag) == MAC_LENGTH and tag == mac.mac(b"entry hash")
    assert mac.verify(b"entry hash", tag)
    assert not mac.verify(b"entry hasH", tag)
    assert not mac.verify(b"entry hash", bytes(MAC_LENGTH))
    assert not mac.verify(b"entry hash", tag[:16])
    # not a plain software HMAC with some guessable key
    assert tag != hmac.new(b"", b"entry hash", hashlib.sha256).digest()


def test_missing_key_is_reported(km: KeyManager) -> None:
    with pytest.raises(KeyNotFound):
        HsmMac(km, "audit-mac")
