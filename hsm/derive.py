"""Per-card issuer keys, derived and used inside the HSM.

The card personalisation key of a card is

    card_key   = AES-128-ECB(master, serial15_ascii || 0x80)
    cryptogram = AES-CMAC(card_key, challenge16)

The master key is an AES-128 secret key object in the HSM (sensitive, not
extractable, usable only for derivation). `card_key` is derived with
CKM_AES_ECB_ENCRYPT_DATA into a non-extractable session key that only signs
(CKM_AES_CMAC) and is destroyed right after; neither key ever leaves the HSM.
"""

from __future__ import annotations

from typing import Any

import pkcs11.exceptions as p11e
from pkcs11 import Attribute, KeyType, Mechanism, ObjectClass

from hsm.errors import HsmError, KeyExists, translate
from hsm.keys import KeyInfo, KeyKind, KeyManager
from hsm.session import PooledSession

SERIAL_LENGTH = 15
CHALLENGE_LENGTH = 16


def _master_template(label: str, key_id: bytes) -> dict[Attribute, Any]:
    return {
        Attribute.CLASS: ObjectClass.SECRET_KEY,
        Attribute.KEY_TYPE: KeyType.AES,
        Attribute.TOKEN: True,
        Attribute.PRIVATE: True,
        Attribute.SENSITIVE: True,
        Attribute.EXTRACTABLE: False,
        Attribute.DERIVE: True,
        Attribute.ENCRYPT: False,
        Attribute.DECRYPT: False,
        Attribute.SIGN: False,
        Attribute.VERIFY: False,
        Attribute.WRAP: False,
        Attribute.UNWRAP: False,
        Attribute.LABEL: label,
        Attribute.ID: key_id,
    }


def _check_label(km: KeyManager, label: str) -> None:
    if not isinstance(km, KeyManager):
        raise TypeError("km must be a KeyManager")
    if not isinstance(label, str):
        raise TypeError("label must be a str")
    if not label:
        raise ValueError("label must not be empty")


def create_master_key(km: KeyManager, label: str) -> KeyInfo:
    """Generate an AES-128 master key inside the HSM (it can never be read out)."""
    _check_label(km, label)

    def gen(ps: PooledSession) -> KeyInfo:
        if km._label_taken(ps, label):
            raise KeyExists(f"a key labelled {label!r} exists on token {km.token_label!r}")
        key_id = km._new_id()
        template = _master_template(label, key_id)
        del template[Attribute.CLASS], template[Attribute.KEY_TYPE]
        ps.session.generate_key(
            KeyType.AES, 128, id=key_id, label=label, store=True, template=template
        )
        return KeyInfo(label, key_id, KeyKind.AES_128, km.key_uri(label, key_id, KeyKind.AES_128))

    with km._create_lock:
        return km._run(f"creating master key {label!r}", gen)


def import_master_key(km: KeyManager, label: str, value: bytes) -> KeyInfo:
    """Import a known AES-128 master key (development and tests) as a sensitive object."""
    _check_label(km, label)
    if not isinstance(value, bytes):
        raise TypeError("master key value must be bytes")
    if len(value) != 16:
        raise ValueError("master key value must be 16 bytes (AES-128)")

    def imp(ps: PooledSession) -> KeyInfo:
        if km._label_taken(ps, label):
            raise KeyExists(f"a key labelled {label!r} exists on token {km.token_label!r}")
        key_id = km._new_id()
        template = _master_template(label, key_id)
        template[Attribute.VALUE] = value
        ps.session.create_object(template)
        return KeyInfo(label, key_id, KeyKind.AES_128, km.key_uri(label, key_id, KeyKind.AES_128))

    with km._create_lock:
        return km._run(f"importing master key {label!r}", imp)


class HsmIssuerAuthenticator:
    """Answers a card's issuer challenge with the per-card key derived in the HSM."""

    def __init__(self, km: KeyManager, master_label: str) -> None:
        _check_label(km, master_label)
        info = km.find_key(master_label)
        if info.kind is not KeyKind.AES_128:
            raise HsmError(f"key {master_label!r} is not an AES-128 master key")
        self._km = km
        self._label = info.label
        self._id = info.id

    def __repr__(self) -> str:
        return f"<HsmIssuerAuthenticator master={self._label!r}>"

    def _master(self, ps: PooledSession) -> Any:
        cache_key = (int(ObjectClass.SECRET_KEY), self._id)
        obj = ps.objects.get(cache_key)
        if obj is None:
            obj = ps.session.get_key(
                object_class=ObjectClass.SECRET_KEY, id=self._id, label=self._label
            )
            ps.objects[cache_key] = obj
        return obj

    def respond(self, serial: str, challenge: bytes) -> bytes:
        """AES-CMAC(AES-ECB(master, serial || 0x80), challenge): 16 bytes."""
        if not isinstance(serial, str):
            raise TypeError("serial must be a str")
        if not isinstance(challenge, bytes):
            raise TypeError("challenge must be bytes")
        if len(serial) != SERIAL_LENGTH or not serial.isascii() or not serial.isprintable():
            raise ValueError(f"serial must be {SERIAL_LENGTH} printable ASCII characters")
        if len(challenge) != CHALLENGE_LENGTH:
            raise ValueError(f"challenge must be {CHALLENGE_LENGTH} bytes")
        data = serial.encode("ascii") + b"\x80"

        def run(ps: PooledSession) -> bytes:
            master = self._master(ps)
            card_key = master.derive_key(
                KeyType.AES,
                128,
                mechanism=Mechanism.AES_ECB_ENCRYPT_DATA,
                mechanism_param=data,
                store=False,
                template={
                    Attribute.TOKEN: False,
                    Attribute.SENSITIVE: True,
                    Attribute.EXTRACTABLE: False,
                    Attribute.SIGN: True,
                    Attribute.VERIFY: False,
                    Attribute.ENCRYPT: False,
                    Attribute.DECRYPT: False,
                    Attribute.WRAP: False,
                    Attribute.UNWRAP: False,
                    Attribute.DERIVE: False,
                },
            )
            try:
                return bytes(card_key.sign(challenge, mechanism=Mechanism.AES_CMAC))
            finally:
                try:
                    card_key.destroy()
                except p11e.PKCS11Error:
                    pass

        try:
            return self._km._run("deriving the card key", run)
        except p11e.PKCS11Error as exc:  # pragma: no cover - _run translates already
            raise translate(exc, "deriving the card key") from None
