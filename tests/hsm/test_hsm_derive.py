"""Per-card issuer key derivation inside the HSM, checked against pure cryptography."""

from __future__ import annotations

import os

import pkcs11
import pkcs11.exceptions as p11e
import pytest
from cryptography.hazmat.primitives import cmac
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from pkcs11 import Attribute, Mechanism, MechanismFlag, ObjectClass

from hsm import HsmError, KeyExists, KeyKind, KeyManager, KeyNotFound, Pkcs11Uri
from hsm.derive import (
    KEY_ATTESTATION_LABEL,
    HsmAttestationVerifier,
    HsmIssuerAuthenticator,
    create_master_key,
    import_master_key,
)
from hsm.mechanisms import CardMacMethod, DerivationMethod

MASTER = bytes.fromhex("404142434445464748494A4B4C4D4E4F")


def reference(master: bytes, serial: str, challenge: bytes) -> bytes:
    enc = Cipher(algorithms.AES(master), modes.ECB()).encryptor()
    card_key = enc.update(serial.encode("ascii") + b"\x80") + enc.finalize()
    mac = cmac.CMAC(algorithms.AES(card_key))
    mac.update(challenge)
    return mac.finalize()


def test_matches_pure_cryptography(km: KeyManager) -> None:
    info = import_master_key(km, "issuer-master", MASTER)
    assert info.kind is KeyKind.AES_128
    assert Pkcs11Uri.parse(info.uri).type == "secret-key"
    auth = HsmIssuerAuthenticator(km, "issuer-master")
    for serial in ("000000000000001", "AB1234567890123", "999999999999999"):
        challenge = os.urandom(16)
        assert auth.respond(serial, challenge) == reference(MASTER, serial, challenge)
    # a fixed vector, so a change in either side shows up
    fixed = auth.respond("123456789012345", bytes(range(16)))
    assert fixed == reference(MASTER, "123456789012345", bytes(range(16)))
    assert len(fixed) == 16


def test_master_key_is_sensitive(km: KeyManager, raw_session: pkcs11.Session) -> None:
    import_master_key(km, "imported", MASTER)
    create_master_key(km, "generated")
    for label in ("imported", "generated"):
        key = raw_session.get_key(object_class=ObjectClass.SECRET_KEY, label=label)
        attrs = key.get_attributes(
            [Attribute.SENSITIVE, Attribute.EXTRACTABLE, Attribute.TOKEN, Attribute.PRIVATE,
             Attribute.DERIVE, Attribute.ENCRYPT, Attribute.SIGN]
        )
        assert attrs[Attribute.SENSITIVE] is True
        assert attrs[Attribute.EXTRACTABLE] is False
        assert attrs[Attribute.TOKEN] is True
        assert attrs[Attribute.PRIVATE] is True
        assert attrs[Attribute.DERIVE] is True
        assert attrs[Attribute.ENCRYPT] is False
        assert attrs[Attribute.SIGN] is False
        with pytest.raises(p11e.AttributeSensitive):
            key[Attribute.VALUE]
    # derivation leaves no session keys behind
    auth = HsmIssuerAuthenticator(km, "imported")
    auth.respond("000000000000001", bytes(16))
    secret = list(raw_session.get_objects({Attribute.CLASS: ObjectClass.SECRET_KEY}))
    assert sorted(str(k.label) for k in secret) == ["generated", "imported"]


def test_generated_master_is_deterministic_per_card(km: KeyManager) -> None:
    create_master_key(km, "m")
    auth = HsmIssuerAuthenticator(km, "m")
    a = auth.respond("000000000000001", bytes(16))
    assert auth.respond("000000000000001", bytes(16)) == a
    assert auth.respond("000000000000002", bytes(16)) != a
    assert auth.respond("000000000000001", b"\x01" * 16) != a
    assert [k.label for k in km.list_keys()] == ["m"]


def test_errors(km: KeyManager) -> None:
    import_master_key(km, "m", MASTER)
    with pytest.raises(KeyExists):
        import_master_key(km, "m", MASTER)
    with pytest.raises(KeyExists):
        create_master_key(km, "m")
    with pytest.raises(ValueError):
        import_master_key(km, "short", MASTER[:15])
    with pytest.raises(TypeError):
        import_master_key(km, "str", MASTER.hex())  # type: ignore[arg-type]
    with pytest.raises(KeyNotFound):
        HsmIssuerAuthenticator(km, "absent")
    km.create_key("rsa", kind=KeyKind.EC_P256)
    with pytest.raises(HsmError):
        HsmIssuerAuthenticator(km, "rsa")
    auth = HsmIssuerAuthenticator(km, "m")
    with pytest.raises(ValueError):
        auth.respond("12345", bytes(16))
    with pytest.raises(ValueError):
        auth.respond("000000000000001", bytes(15))
    with pytest.raises(ValueError):
        auth.respond("00000000000000\u00e9", bytes(16))
    with pytest.raises(TypeError):
        auth.respond(b"000000000000001", bytes(16))  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        auth.respond("000000000000001", bytearray(16))  # type: ignore[arg-type]


def _card_key(master: bytes, serial: str, domain: int, function: str) -> bytes:
    cipher = Cipher(algorithms.AES(master), modes.ECB())
    ctx = cipher.encryptor() if function == "encrypt" else cipher.decryptor()
    return ctx.update(serial.encode("ascii") + bytes([domain])) + ctx.finalize()


SOFTHSM_METHODS = [DerivationMethod.AES_ECB_ENCRYPT_DATA, DerivationMethod.AES_CBC_ENCRYPT_DATA]


def test_softhsm_offers_no_aes_ecb_unwrap(km: KeyManager) -> None:
    """SoftHSM2 2.6 does not unwrap with CKM_AES_ECB: the unwrap derivation runs on
    opencryptoki (tests/hsm/test_hsm_opencryptoki.py), the others run here."""
    offered = km.mechanisms()
    assert not offered.offers(Mechanism.AES_ECB, MechanismFlag.UNWRAP)
    assert offered.derivation() is DerivationMethod.AES_ECB_ENCRYPT_DATA
    assert offered.card_mac() is CardMacMethod.AES_CMAC


@pytest.mark.parametrize("method", SOFTHSM_METHODS, ids=lambda m: m.value)
@pytest.mark.parametrize("mac", list(CardMacMethod), ids=lambda m: m.value)
def test_every_method_computes_what_its_cards_hold(km: KeyManager, method: DerivationMethod,
                                                   mac: CardMacMethod) -> None:
    """Each derivation SoftHSM2 has and each way of computing the CMAC, forced on it (the
    second module, opencryptoki, runs unwrap and blocks in test_hsm_opencryptoki.py)."""
    offered = km.mechanisms()
    assert offered.offers(method.mechanism, method.flag)
    label = f"master-{method.value}-{mac.value}"
    import_master_key(km, label, MASTER, method)
    auth = HsmIssuerAuthenticator(km, label, method)
    auth.mac = mac
    serial, challenge = "123456789012345", os.urandom(16)
    expected = cmac.CMAC(algorithms.AES(_card_key(MASTER, serial, 0x80, method.card_function)))
    expected.update(challenge)
    assert auth.respond(serial, challenge) == expected.finalize()
    verifier = HsmAttestationVerifier(km, label, method)
    verifier.mac = mac
    message = KEY_ATTESTATION_LABEL + serial.encode() + os.urandom(33)
    good = cmac.CMAC(algorithms.AES(_card_key(MASTER, serial, 0x81, method.card_function)))
    good.update(message)
    tag = good.finalize()
    assert verifier.verify(serial, message, tag)
    assert not verifier.verify(serial, message, bytes(16))


def test_a_master_key_serves_only_its_method(km: KeyManager,
                                             raw_session: pkcs11.Session) -> None:
    import_master_key(km, "ecb-master", MASTER, DerivationMethod.AES_ECB_ENCRYPT_DATA)
    key = raw_session.get_key(object_class=ObjectClass.SECRET_KEY, label="ecb-master")
    assert key[Attribute.DERIVE] and not key[Attribute.UNWRAP]
    # SoftHSM2 enforces CKA_ALLOWED_MECHANISMS: the CBC variant is refused for this key
    with pytest.raises(HsmError):
        HsmIssuerAuthenticator(km, "ecb-master", DerivationMethod.AES_CBC_ENCRYPT_DATA).respond(
            "123456789012345", bytes(16))
