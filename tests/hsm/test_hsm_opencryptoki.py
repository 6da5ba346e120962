"""The hsm package on a second vendor's module: opencryptoki's software token.

opencryptoki keeps one token store at a fixed path, so the token is reset (every object
destroyed) once for this module and each test uses labels of its own. What opencryptoki
3.8's software token offers differs from SoftHSM2's: RSA and HMAC yes; no EC, no
CKM_AES_CMAC, no CKM_AES_*_ENCRYPT_DATA. Keys, signatures and the audit MAC work; card
keys are unwrapped (CKM_AES_ECB) and their CMACs assembled from AES blocks.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pkcs11.exceptions as p11e
import pytest
from cryptography.hazmat.primitives import cmac, hashes
from cryptography.hazmat.primitives.asymmetric import padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from pkcs11 import Attribute, KeyType, Mechanism, MechanismFlag, ObjectClass

from hsm import HsmError, KeyKind, KeyManager, PinIncorrect, PinSource, open_key_manager
from hsm.derive import (
    KEY_ATTESTATION_LABEL,
    HsmAttestationVerifier,
    HsmIssuerAuthenticator,
    import_master_key,
)
from hsm.mac import HsmMac, create_mac_key
from hsm.mechanisms import CardMacMethod, DerivationMethod, MechanismMissing, TokenMechanisms
from hsm.opencryptoki import reset_token

USER_PIN = "ock-1234"  # opencryptoki PINs are 4 to 8 bytes
MASTER = bytes.fromhex("404142434445464748494A4B4C4D4E4F")


def card_key(serial: str, domain: int) -> bytes:
    """What a card made for an unwrap center holds: AES-ECB-decrypt(master, serial||d)."""
    dec = Cipher(algorithms.AES(MASTER), modes.ECB()).decryptor()
    return dec.update(serial.encode("ascii") + bytes([domain])) + dec.finalize()


def reference_mac(key: bytes, message: bytes) -> bytes:
    mac = cmac.CMAC(algorithms.AES(key))
    mac.update(message)
    return mac.finalize()


@pytest.fixture(scope="module")
def ock_uri() -> str:
    return reset_token("mynacard-test", USER_PIN)


@pytest.fixture
def ock(ock_uri: str) -> Iterator[KeyManager]:
    with open_key_manager(ock_uri, pin_source=PinSource.from_value(USER_PIN)) as km:
        yield km


def label(what: str) -> str:
    return f"{what}-{uuid.uuid4().hex[:8]}"


def test_mechanisms_are_read_from_the_module(ock: KeyManager) -> None:
    offered = ock.mechanisms()
    assert offered.offers(Mechanism.RSA_PKCS_KEY_PAIR_GEN, MechanismFlag.GENERATE_KEY_PAIR)
    assert offered.offers(Mechanism.SHA256_HMAC, MechanismFlag.SIGN)
    assert not offered.offers(Mechanism.AES_ECB_ENCRYPT_DATA)
    offered.hmac()


def test_card_keys_are_unwrapped_and_macs_built_from_blocks(ock: KeyManager) -> None:
    """No CKM_AES_*_ENCRYPT_DATA and no CKM_AES_CMAC here: the card key is unwrapped with
    CKM_AES_ECB (AES-ECB-decrypt of the block) and the CMAC assembled from AES blocks."""
    offered = ock.mechanisms()
    assert offered.derivation() is DerivationMethod.AES_ECB_UNWRAP
    assert offered.card_mac() is CardMacMethod.CMAC_FROM_BLOCKS
    name = label("master")
    import_master_key(ock, name, MASTER)
    auth = HsmIssuerAuthenticator(ock, name)
    for serial in ("000000000000001", "123456789012345"):
        challenge = os.urandom(16)
        assert auth.respond(serial, challenge) == reference_mac(
            card_key(serial, 0x80), challenge)


def test_attestation_is_checked_on_this_token(ock: KeyManager) -> None:
    name = label("master")
    import_master_key(ock, name, MASTER)
    verifier = HsmAttestationVerifier(ock, name)
    serial = "123456789012345"
    message = KEY_ATTESTATION_LABEL + serial.encode() + os.urandom(40)
    good = reference_mac(card_key(serial, 0x81), message)
    assert verifier.verify(serial, message, good)
    assert not verifier.verify(serial, message, bytes(16))
    # the issuer key (domain 0x80) does not make an attestation
    assert not verifier.verify(serial, message, reference_mac(card_key(serial, 0x80), message))


def test_no_card_key_is_left_behind_nor_readable(ock: KeyManager) -> None:
    name = label("master")
    import_master_key(ock, name, MASTER)
    auth = HsmIssuerAuthenticator(ock, name)
    with ock._pool.session() as ps:
        before = len(list(ps.session.get_objects({Attribute.CLASS: ObjectClass.SECRET_KEY})))
    auth.respond("123456789012345", bytes(16))
    with ock._pool.session() as ps:
        keys = list(ps.session.get_objects({Attribute.CLASS: ObjectClass.SECRET_KEY}))
        assert len(keys) == before
        master = next(k for k in keys if k.label == name)
        assert master[Attribute.SENSITIVE] and not master[Attribute.EXTRACTABLE]
        assert master[Attribute.UNWRAP] and not master[Attribute.DERIVE]
        assert not master[Attribute.ENCRYPT] and not master[Attribute.DECRYPT]


def test_an_unwrapped_key_is_made_sensitive_before_use(ock: KeyManager) -> None:
    """opencryptoki 3.8 ignores CKA_SENSITIVE/CKA_EXTRACTABLE in C_UnwrapKey's template;
    the derivation sets them afterwards and reads them back."""
    name = label("master")
    import_master_key(ock, name, MASTER)
    auth = HsmIssuerAuthenticator(ock, name)
    seen: list[tuple[bool, bool]] = []

    def inspect(key: object) -> bytes:
        seen.append((key[Attribute.SENSITIVE], key[Attribute.EXTRACTABLE]))  # type: ignore[index]
        with pytest.raises(p11e.AttributeSensitive):
            key[Attribute.VALUE]  # type: ignore[index]  # noqa: B018
        return bytes(16)

    auth._with_card_key("probe", "123456789012345", 0x80, Attribute.SIGN, inspect)
    assert seen == [(True, False)]


def test_a_token_with_nothing_usable_is_refused_naming_all() -> None:
    bare = TokenMechanisms.of([(int(Mechanism.AES_KEY_GEN), MechanismFlag.GENERATE)])
    with pytest.raises(MechanismMissing) as err:
        bare.derivation()
    text = str(err.value)
    for name in ("CKM_AES_ECB_ENCRYPT_DATA", "CKM_AES_CBC_ENCRYPT_DATA", "CKM_AES_ECB",
                 "C_UnwrapKey", "CKM_AES_CMAC", "CKM_AES_CBC"):
        assert name in text


def test_rsa_keys_sign_and_verify(ock: KeyManager) -> None:
    name = label("ca")
    info = ock.create_key(name, KeyKind.RSA_2048)
    assert info.kind is KeyKind.RSA_2048
    assert "module-path=" in info.uri
    signer = ock.signer(name)
    public = ock.public_key(name)
    sig = signer.sign(b"tbs", padding.PKCS1v15(), hashes.SHA256())
    public.verify(sig, b"tbs", padding.PKCS1v15(), hashes.SHA256())  # type: ignore[call-arg]
    pss = padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=32)
    sig = signer.sign(b"tbs", pss, hashes.SHA256())
    public.verify(sig, b"tbs", pss, hashes.SHA256())  # type: ignore[call-arg]


def test_ec_keys_are_refused_clearly(ock: KeyManager) -> None:
    with pytest.raises(HsmError, match="mechanism not supported"):
        ock.create_key(label("ec"), KeyKind.parse("ec-p256"))


def test_audit_mac_in_the_hsm(ock: KeyManager) -> None:
    name = label("audit-mac")
    assert create_mac_key(ock, name) is True
    assert create_mac_key(ock, name) is False
    mac = HsmMac(ock, name)
    tag = mac.mac(b"record")
    assert len(tag) == 32
    assert mac.verify(b"record", tag)
    assert not mac.verify(b"other", tag)


def test_wrong_pin_is_refused(ock_uri: str) -> None:
    with pytest.raises(PinIncorrect):
        open_key_manager(ock_uri, pin_source=PinSource.from_value("wrong-12"))


def test_issuer_authenticator_refuses_on_this_token(ock: KeyManager) -> None:
    with pytest.raises(HsmError):
        HsmIssuerAuthenticator(ock, label("absent"))


def test_allowed_mechanisms_is_unknown_here(ock: KeyManager) -> None:
    """opencryptoki 3.8 rejects CKA_ALLOWED_MECHANISMS (and has no CKA_DERIVE_TEMPLATE):
    the master-key templates fall back to the rest of the template on such a token."""
    with ock._pool.session() as ps, pytest.raises(p11e.AttributeTypeInvalid):
        ps.session.generate_key(KeyType.AES, 128, store=False, label=label("probe"),
                                template={Attribute.ALLOWED_MECHANISMS: (Mechanism.AES_ECB,)})
