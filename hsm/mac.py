"""HMAC keys that live in the HSM: CKM_SHA256_HMAC over a generic secret.

The key is a CKK_GENERIC_SECRET token object (256 bits), sensitive, not extractable,
usable only to sign and verify: whoever holds the database but not the HSM cannot
compute a valid MAC. The operator audit log keys its chain with one (`audit-mac`).
"""

from __future__ import annotations

from typing import Any

import pkcs11.exceptions as p11e
from pkcs11 import Attribute, KeyType, Mechanism, ObjectClass

from hsm.errors import HsmError, KeyExists, KeyNotFound
from hsm.keys import KeyManager
from hsm.mechanisms import TokenMechanisms
from hsm.session import PooledSession
from hsm.templates import secret_key_template

MAC_KEY_BITS = 256
MAC_LENGTH = 32  # SHA-256


def _find(ps: PooledSession, label: str) -> Any:
    found = list(ps.session.get_objects({Attribute.CLASS: ObjectClass.SECRET_KEY,
                                         Attribute.LABEL: label}))
    if not found:
        raise KeyNotFound(f"MAC key {label!r} not found")
    if len(found) > 1:
        raise HsmError(f"MAC key {label!r} is ambiguous")
    if found[0][Attribute.KEY_TYPE] != KeyType.GENERIC_SECRET:
        raise HsmError(f"key {label!r} is not a generic secret (HMAC) key")
    return found[0]


def create_mac_key(km: KeyManager, label: str) -> bool:
    """Generate the HMAC key `label` unless it exists; True when it was created."""

    def gen(ps: PooledSession) -> bool:
        try:
            _find(ps, label)
            return False
        except KeyNotFound:
            pass
        if km._label_taken(ps, label):
            raise KeyExists(f"an object labelled {label!r} exists and is not a MAC key")
        TokenMechanisms.of_slot(ps.session.token.slot).hmac()  # names what is lacking
        key_id = km._new_id()
        ps.session.generate_key(KeyType.GENERIC_SECRET, MAC_KEY_BITS, id=key_id, label=label,
                                store=True, mechanism=Mechanism.GENERIC_SECRET_KEY_GEN,
                                template=secret_key_template(
                                    may=(Attribute.SIGN, Attribute.VERIFY),
                                    label=label, key_id=key_id))
        return True

    with km._create_lock:
        return km._run(f"creating MAC key {label!r}", gen)


def has_mac_key(km: KeyManager, label: str) -> bool:
    def look(ps: PooledSession) -> bool:
        try:
            _find(ps, label)
        except KeyNotFound:
            return False
        return True

    return km._run(f"finding MAC key {label!r}", look)


class HsmMac:
    """HMAC-SHA256 computed and checked inside the HSM with one named key."""

    def __init__(self, km: KeyManager, label: str) -> None:
        self._km = km
        self.label = label
        km._run(f"finding MAC key {label!r}", lambda ps: _find(ps, label))

    def __repr__(self) -> str:
        return f"<HsmMac {self.label!r} on {self._km.token_label!r}>"

    def _key(self, ps: PooledSession) -> Any:
        cache_key = (int(ObjectClass.SECRET_KEY), b"hmac:" + self.label.encode())
        obj = ps.objects.get(cache_key)
        if obj is None:
            obj = _find(ps, self.label)
            ps.objects[cache_key] = obj
        return obj

    def mac(self, data: bytes) -> bytes:
        return self._km._run(
            f"MAC with {self.label!r}",
            lambda ps: bytes(self._key(ps).sign(data, mechanism=Mechanism.SHA256_HMAC)))

    def verify(self, data: bytes, mac: bytes) -> bool:
        def check(ps: PooledSession) -> bool:
            try:
                return bool(self._key(ps).verify(data, mac, mechanism=Mechanism.SHA256_HMAC))
            except (p11e.SignatureInvalid, p11e.SignatureLenRange):
                return False

        return self._km._run(f"checking a MAC with {self.label!r}", check)
