"""The hsm package on a second vendor's module: opencryptoki's software token.

opencryptoki keeps one token store at a fixed path, so the token is reset (every object
destroyed) once for this module and each test uses labels of its own. What opencryptoki
3.8's software token offers differs from SoftHSM2's: RSA and HMAC yes; no EC, no
CKM_AES_CMAC, no CKM_AES_*_ENCRYPT_DATA. Keys, signatures and the audit MAC work;
card-key derivation is refused once, naming the mechanisms the token lacks.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pkcs11.exceptions as p11e
import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding
from pkcs11 import Attribute, KeyType, Mechanism, MechanismFlag

from hsm import HsmError, KeyKind, KeyManager, PinIncorrect, PinSource, open_key_manager
from hsm.derive import HsmIssuerAuthenticator, create_master_key
from hsm.mac import HsmMac, create_mac_key
from hsm.mechanisms import MechanismMissing
from hsm.opencryptoki import reset_token

USER_PIN = "ock-1234"  # opencryptoki PINs are 4 to 8 bytes


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


def test_card_key_derivation_is_refused_naming_what_lacks(ock: KeyManager) -> None:
    with pytest.raises(MechanismMissing) as err:
        ock.mechanisms().derivation()
    text = str(err.value)
    for name in ("CKM_AES_ECB_ENCRYPT_DATA", "CKM_AES_CBC_ENCRYPT_DATA", "CKM_AES_CMAC"):
        assert name in text
    with pytest.raises(MechanismMissing):
        create_master_key(ock, label("master"))
    assert not [k for k in ock.list_keys() if k.kind is KeyKind.AES_128]


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
