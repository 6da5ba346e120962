"""Per-card keys, derived and used inside the HSM.

Two keys per card come from the issuer master key, separated by the byte after the serial:

    card_key      = AES-128-ECB(master, serial15_ascii || 0x80)   issuer authentication
    cryptogram    = AES-CMAC(card_key, challenge16)
    card_auth_key = AES-128-ECB(master, serial15_ascii || 0x81)   key attestation
    attestation   = AES-CMAC(card_auth_key, message)              (card/PROTOCOL.md)

The master key is an AES-128 secret key object in the HSM (sensitive, not extractable,
usable only for derivation; new master keys also carry CKA_ALLOWED_MECHANISMS = the
center's one mechanism, which SoftHSM2 enforces). Each per-card key is derived with the
center's method (hsm.mechanisms: CKM_AES_ECB_ENCRYPT_DATA, CKM_AES_CBC_ENCRYPT_DATA, or
C_UnwrapKey with CKM_AES_ECB for a center whose cards hold AES-ECB-decrypt keys) into a
sensitive, non-extractable session key that can only sign (issuer key) or only verify
(card-auth key) with CKM_AES_CMAC, and is destroyed right after: no per-card key ever
leaves the HSM, and the HSM never MACs anything with the card-auth key, so it cannot be
made to forge a card's attestation. On a token without CKM_AES_CMAC the per-card key can
only encrypt, and the CMAC is assembled from the blocks it encrypts (hsm.cmac): the key
still stays inside, but the one-way use of the card-auth key is then this code's rule,
not the token's.

What the HSM cannot enforce (SoftHSM2 2.6.1): it has no CKA_DERIVE_TEMPLATE (creating a
master key with one fails with CKR_ATTRIBUTE_TYPE_INVALID) and lets C_DeriveKey make an
extractable, non-sensitive key from a sensitive master key. Whoever holds the token's user
PIN can therefore still derive and read a per-card key (or, with a crafted 16-byte block,
any AES-ECB block under the master key). The templates here are what this code uses; the
token PIN is what keeps others out (tests/hsm/test_hsm_attest.py records both facts).
Master keys created before CKA_ALLOWED_MECHANISMS was set here keep working but stay
unrestricted: SoftHSM2 refuses to add the attribute later (CKR_ATTRIBUTE_READ_ONLY), and a
generated master key cannot be copied, so only a new master key closes that.
"""

from __future__ import annotations

import struct
from typing import Any

import pkcs11.attributes
import pkcs11.exceptions as p11e
from pkcs11 import Attribute, KeyType, Mechanism, ObjectClass

from hsm.cmac import cmac_from_blocks, cmac_matches
from hsm.errors import HsmError, KeyExists, translate
from hsm.keys import KeyInfo, KeyKind, KeyManager
from hsm.mechanisms import ZERO_IV, CardMacMethod, DerivationMethod
from hsm.session import PooledSession
from hsm.templates import secret_key_template

SERIAL_LENGTH = 15
CHALLENGE_LENGTH = 16
MAC_LENGTH = 16
ISSUER_KEY_DOMAIN = 0x80
CARD_AUTH_KEY_DOMAIN = 0x81
# The first bytes of every attested message (card.contract.KEY_ATTESTATION_LABEL; hsm may
# not import card: tests/hsm/test_hsm_attest.py checks the two are equal).
KEY_ATTESTATION_LABEL = b"MYNACARD-KEY-ATTEST-1"
MASTER_MECHANISMS = (Mechanism.AES_ECB_ENCRYPT_DATA,)


def _pack_mechanisms(value: Any) -> bytes:
    return b"".join(struct.pack("L", int(m)) for m in value)


def _unpack_mechanisms(raw: bytes) -> list[int]:
    size = struct.calcsize("L")
    return [struct.unpack_from("L", raw, i)[0] for i in range(0, len(raw) - size + 1, size)]


# python-pkcs11 0.10 cannot pack CKA_ALLOWED_MECHANISMS (an array of CK_MECHANISM_TYPE);
# every session opened after this import can (hsm/__init__ imports this module).
pkcs11.attributes.ATTRIBUTE_TYPES.setdefault(
    Attribute.ALLOWED_MECHANISMS, (_pack_mechanisms, _unpack_mechanisms))


def _derived_template(use: Attribute, mac: CardMacMethod) -> dict[Attribute, Any]:
    """A session key that never leaves the HSM and only signs or only verifies (`use`) --
    or, on a token without CKM_AES_CMAC, only encrypts blocks for `hsm.cmac`."""
    may = (use,) if mac is CardMacMethod.AES_CMAC else (Attribute.ENCRYPT,)
    return secret_key_template(may=may, token=False)


def _master_template(label: str, key_id: bytes,
                     method: DerivationMethod = DerivationMethod.AES_ECB_ENCRYPT_DATA,
                     ) -> dict[Attribute, Any]:
    return {
        Attribute.CLASS: ObjectClass.SECRET_KEY,
        Attribute.KEY_TYPE: KeyType.AES,
        **secret_key_template(may=(method.master_usage,), label=label, key_id=key_id),
        Attribute.ALLOWED_MECHANISMS: (method.mechanism,),
    }


def _without_mechanism_list(template: dict[Attribute, Any]) -> dict[Attribute, Any]:
    """For a token that rejects CKA_ALLOWED_MECHANISMS: the rest of the template."""
    return {k: v for k, v in template.items() if k is not Attribute.ALLOWED_MECHANISMS}


def _check_label(km: KeyManager, label: str) -> None:
    if not isinstance(km, KeyManager):
        raise TypeError("km must be a KeyManager")
    if not isinstance(label, str):
        raise TypeError("label must be a str")
    if not label:
        raise ValueError("label must not be empty")


# Tokens that do not know CKA_ALLOWED_MECHANISMS answer with one of these.
_UNKNOWN_ATTRIBUTE = (p11e.AttributeTypeInvalid, p11e.AttributeValueInvalid)


def create_master_key(km: KeyManager, label: str,
                      method: DerivationMethod | None = None) -> KeyInfo:
    """Generate an AES-128 master key inside the HSM (it can never be read out).

    Its CKA_ALLOWED_MECHANISMS names the derivation `method` (by default the one the
    token offers first, see hsm.mechanisms)."""
    _check_label(km, label)
    method = method or km.mechanisms().derivation()

    def gen(ps: PooledSession) -> KeyInfo:
        if km._label_taken(ps, label):
            raise KeyExists(f"a key labelled {label!r} exists on token {km.token_label!r}")
        key_id = km._new_id()
        template = _master_template(label, key_id, method)
        del template[Attribute.CLASS], template[Attribute.KEY_TYPE]
        try:
            ps.session.generate_key(
                KeyType.AES, 128, id=key_id, label=label, store=True, template=template
            )
        except _UNKNOWN_ATTRIBUTE:
            ps.session.generate_key(KeyType.AES, 128, id=key_id, label=label, store=True,
                                    template=_without_mechanism_list(template))
        return KeyInfo(label, key_id, KeyKind.AES_128, km.key_uri(label, key_id, KeyKind.AES_128))

    with km._create_lock:
        return km._run(f"creating master key {label!r}", gen)


def import_master_key(km: KeyManager, label: str, value: bytes,
                      method: DerivationMethod | None = None) -> KeyInfo:
    """Import a known AES-128 master key (development and tests) as a sensitive object."""
    _check_label(km, label)
    method = method or km.mechanisms().derivation()
    if not isinstance(value, bytes):
        raise TypeError("master key value must be bytes")
    if len(value) != 16:
        raise ValueError("master key value must be 16 bytes (AES-128)")

    def imp(ps: PooledSession) -> KeyInfo:
        if km._label_taken(ps, label):
            raise KeyExists(f"a key labelled {label!r} exists on token {km.token_label!r}")
        key_id = km._new_id()
        template = _master_template(label, key_id, method)
        template[Attribute.VALUE] = value
        try:
            ps.session.create_object(template)
        except _UNKNOWN_ATTRIBUTE:
            ps.session.create_object(_without_mechanism_list(template))
        return KeyInfo(label, key_id, KeyKind.AES_128, km.key_uri(label, key_id, KeyKind.AES_128))

    with km._create_lock:
        return km._run(f"importing master key {label!r}", imp)


class _PerCardKeys:
    """Derives a per-card key from the master key in a session, uses it, destroys it.

    `method` is the center's recorded derivation method; without one, the first the
    token offers. Either way the token is asked first, so a token lacking it is refused
    here with the mechanism named, not at the first card."""

    def __init__(self, km: KeyManager, master_label: str,
                 method: DerivationMethod | None = None) -> None:
        _check_label(km, master_label)
        offered = km.mechanisms()
        if method is None:
            method = offered.derivation()
        else:
            offered.check_derivation(method)
        self.method = method
        self.mac = offered.card_mac()
        info = km.find_key(master_label)
        if info.kind is not KeyKind.AES_128:
            raise HsmError(f"key {master_label!r} is not an AES-128 master key")
        self._km = km
        self._label = info.label
        self._id = info.id

    def _master(self, ps: PooledSession) -> Any:
        cache_key = (int(ObjectClass.SECRET_KEY), self._id)
        obj = ps.objects.get(cache_key)
        if obj is None:
            obj = ps.session.get_key(
                object_class=ObjectClass.SECRET_KEY, id=self._id, label=self._label
            )
            ps.objects[cache_key] = obj
        return obj

    def _with_card_key(self, what: str, serial: str, domain: int, use: Attribute,
                       run_with: Any) -> Any:
        data = _check_serial(serial) + bytes([domain])
        template = _derived_template(use, self.mac)

        def run(ps: PooledSession) -> Any:
            card_key = self._derive(ps, data, template)
            try:
                return run_with(card_key)
            finally:
                try:
                    card_key.destroy()
                except p11e.PKCS11Error:
                    pass

        try:
            return self._km._run(what, run)
        except p11e.PKCS11Error as exc:  # pragma: no cover - _run translates already
            raise translate(exc, what) from None

    def _derive(self, ps: PooledSession, data: bytes, template: dict[Attribute, Any]) -> Any:
        master = self._master(ps)
        if self.method is not DerivationMethod.AES_ECB_UNWRAP:
            return master.derive_key(
                KeyType.AES, 128, mechanism=self.method.mechanism,
                mechanism_param=self.method.parameter(data), store=False, template=template)
        card_key = master.unwrap_key(ObjectClass.SECRET_KEY, KeyType.AES, data,
                                     mechanism=Mechanism.AES_ECB, store=False,
                                     template={**template, Attribute.VALUE_LEN: 16})
        try:
            _keep_inside(card_key)
        except BaseException:
            card_key.destroy()
            raise
        return card_key

    def _cmac(self, key: Any, message: bytes) -> bytes:
        """AES-CMAC(key, message) with the key inside the HSM."""
        if self.mac is CardMacMethod.AES_CMAC:
            return bytes(key.sign(message, mechanism=Mechanism.AES_CMAC))
        return cmac_from_blocks(
            message,
            encrypt_block=lambda block: bytes(key.encrypt(block, mechanism=Mechanism.AES_ECB)),
            encrypt_cbc=lambda blocks: bytes(key.encrypt(blocks, mechanism=Mechanism.AES_CBC,
                                                         mechanism_param=ZERO_IV)))


def _keep_inside(key: Any) -> None:
    """Make an unwrapped key sensitive and non-extractable, and check that it is.

    Some modules (opencryptoki 3.8) ignore those attributes in C_UnwrapKey's template; both
    may still be set, one way, with C_SetAttributeValue."""
    if not key[Attribute.SENSITIVE]:
        key[Attribute.SENSITIVE] = True
    if key[Attribute.EXTRACTABLE]:
        key[Attribute.EXTRACTABLE] = False
    if not key[Attribute.SENSITIVE] or key[Attribute.EXTRACTABLE]:
        raise HsmError("the token made the card key readable and would not make it "
                       "sensitive: refusing to use it")


def _check_serial(serial: str) -> bytes:
    if not isinstance(serial, str):
        raise TypeError("serial must be a str")
    if len(serial) != SERIAL_LENGTH or not serial.isascii() or not serial.isprintable():
        raise ValueError(f"serial must be {SERIAL_LENGTH} printable ASCII characters")
    return serial.encode("ascii")


class HsmIssuerAuthenticator(_PerCardKeys):
    """Answers a card's issuer challenge with the per-card key derived in the HSM."""

    def __repr__(self) -> str:
        return f"<HsmIssuerAuthenticator master={self._label!r}>"

    def respond(self, serial: str, challenge: bytes) -> bytes:
        """AES-CMAC(AES-ECB(master, serial || 0x80), challenge): 16 bytes."""
        _check_serial(serial)
        if not isinstance(challenge, bytes):
            raise TypeError("challenge must be bytes")
        if len(challenge) != CHALLENGE_LENGTH:
            raise ValueError(f"challenge must be {CHALLENGE_LENGTH} bytes")
        return bytes(self._with_card_key(
            "deriving the card key", serial, ISSUER_KEY_DOMAIN, Attribute.SIGN,
            lambda key: self._cmac(key, challenge)))


class HsmAttestationVerifier(_PerCardKeys):
    """Checks a card's key attestation with its card-auth key derived in the HSM.

    The derived key can only verify (C_Verify, CKM_AES_CMAC): the HSM never produces an
    attestation MAC, and the key never leaves it. `random` draws fresh challenges from
    the HSM's generator (C_GenerateRandom).
    """

    def __repr__(self) -> str:
        return f"<HsmAttestationVerifier master={self._label!r}>"

    def verify(self, serial: str, message: bytes, mac: bytes) -> bool:
        """Whether `mac` is AES-CMAC(AES-ECB(master, serial || 0x81), message).

        `message` must start with the attestation label and `serial` (the key is derived
        for the card the message names, never for another)."""
        prefix = KEY_ATTESTATION_LABEL + _check_serial(serial)
        if not isinstance(message, bytes) or not isinstance(mac, bytes):
            raise TypeError("message and mac must be bytes")
        if not message.startswith(prefix) or len(mac) != MAC_LENGTH:
            return False
        return bool(self._with_card_key(
            "verifying a key attestation", serial, CARD_AUTH_KEY_DOMAIN, Attribute.VERIFY,
            lambda key: self._verify(key, message, mac)))

    def _verify(self, key: Any, message: bytes, mac: bytes) -> bool:
        if self.mac is CardMacMethod.AES_CMAC:
            return bool(key.verify(message, mac, mechanism=Mechanism.AES_CMAC))
        return cmac_matches(self._cmac(key, message), mac)

    def random(self, length: int) -> bytes:
        """`length` random bytes from the HSM."""
        if not 0 < length <= 256:
            raise ValueError("1 to 256 random bytes")
        return bytes(self._km._run("drawing random bytes",
                                   lambda ps: ps.session.generate_random(8 * length)))
