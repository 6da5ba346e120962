"""The key manager against a real SoftHSM2 token: generation, attributes, lookups, errors."""

from __future__ import annotations

from pathlib import Path

import pkcs11
import pkcs11.exceptions as p11e
import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from hsmtest_consts import SO_PIN, TOKEN, USER_PIN  # type: ignore[import-not-found]
from pkcs11 import Attribute, KeyType, Mechanism, ObjectClass

from hsm import (
    HsmError,
    KeyExists,
    KeyInfo,
    KeyKind,
    KeyManager,
    KeyNotExportable,
    KeyNotFound,
    ModuleNotFound,
    PinIncorrect,
    PinSource,
    Pkcs11Uri,
    TokenExists,
    TokenNotFound,
    open_key_manager,
)
from hsm.module import load_module
from hsm.softhsm import init_token

SIGNING_KINDS = [KeyKind.RSA_2048, KeyKind.EC_P256, KeyKind.EC_P384]


def test_open_key_manager_uri_and_repr(km: KeyManager, token_uri: str) -> None:
    assert km.token_label == TOKEN
    assert Pkcs11Uri.parse(km.uri).token == TOKEN
    assert Pkcs11Uri.parse(token_uri).module_path is not None
    assert USER_PIN not in repr(km)


@pytest.mark.parametrize("kind", SIGNING_KINDS)
def test_create_key_attributes_read_back(
    km: KeyManager, raw_session: pkcs11.Session, kind: KeyKind
) -> None:
    info = km.create_key("ca-" + kind.value, kind=kind)
    assert isinstance(info, KeyInfo)
    assert info.label == "ca-" + kind.value and info.kind is kind and len(info.id) == 16
    uri = Pkcs11Uri.parse(info.uri)
    assert (uri.token, uri.object, uri.id, uri.type) == (TOKEN, info.label, info.id, "private")

    priv = raw_session.get_key(object_class=ObjectClass.PRIVATE_KEY, label=info.label)
    attrs = priv.get_attributes(
        [Attribute.TOKEN, Attribute.SENSITIVE, Attribute.EXTRACTABLE, Attribute.PRIVATE,
         Attribute.SIGN, Attribute.DECRYPT, Attribute.UNWRAP, Attribute.DERIVE, Attribute.ID,
         Attribute.ALWAYS_SENSITIVE, Attribute.NEVER_EXTRACTABLE, Attribute.LOCAL]
    )
    assert attrs[Attribute.TOKEN] is True
    assert attrs[Attribute.SENSITIVE] is True
    assert attrs[Attribute.EXTRACTABLE] is False
    assert attrs[Attribute.PRIVATE] is True
    assert attrs[Attribute.SIGN] is True
    assert attrs[Attribute.DECRYPT] is False
    assert attrs[Attribute.UNWRAP] is False
    assert attrs[Attribute.DERIVE] is False
    assert attrs[Attribute.ALWAYS_SENSITIVE] is True
    assert attrs[Attribute.NEVER_EXTRACTABLE] is True
    assert attrs[Attribute.LOCAL] is True  # generated inside the token
    assert attrs[Attribute.ID] == info.id

    pub = raw_session.get_key(object_class=ObjectClass.PUBLIC_KEY, label=info.label)
    assert pub[Attribute.ID] == info.id
    assert pub[Attribute.TOKEN] is True
    assert pub[Attribute.VERIFY] is True


@pytest.mark.parametrize("kind", [KeyKind.RSA_2048, KeyKind.EC_P256])
def test_private_key_cannot_be_exported(
    km: KeyManager, raw_session: pkcs11.Session, kind: KeyKind
) -> None:
    info = km.create_key("secret", kind=kind)
    priv = raw_session.get_key(object_class=ObjectClass.PRIVATE_KEY, label=info.label)
    secret_attrs = [Attribute.VALUE] if kind.is_ec else [
        Attribute.PRIVATE_EXPONENT, Attribute.PRIME_1, Attribute.PRIME_2,
        Attribute.EXPONENT_1, Attribute.EXPONENT_2, Attribute.COEFFICIENT,
    ]
    for attr in secret_attrs:
        with pytest.raises((p11e.AttributeSensitive, p11e.AttributeTypeInvalid)):
            priv[attr]
    # and no wrapping key can take it out
    wrapper = raw_session.generate_key(
        KeyType.AES, 256, label="wrapper", store=False,
        template={Attribute.WRAP: True, Attribute.ENCRYPT: True},
    )
    with pytest.raises(p11e.PKCS11Error):
        wrapper.wrap_key(priv, mechanism=Mechanism.AES_KEY_WRAP_PAD)
    # and the signer refuses too
    signer = km.signer(info.label)
    with pytest.raises(KeyNotExportable):
        signer.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    with pytest.raises(TypeError):
        signer.private_numbers()


def test_create_existing_label(km: KeyManager) -> None:
    km.create_key("dup", kind=KeyKind.EC_P256)
    with pytest.raises(KeyExists):
        km.create_key("dup", kind=KeyKind.RSA_2048)
    assert [k.label for k in km.list_keys()] == ["dup"]


def test_create_argument_checks(km: KeyManager) -> None:
    with pytest.raises(TypeError):
        km.create_key("x", kind="rsa-2048")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        km.create_key("", kind=KeyKind.EC_P256)
    with pytest.raises(ValueError):
        km.create_key("x", kind=KeyKind.AES_128)


def test_find_and_list(km: KeyManager) -> None:
    a = km.create_key("b-key", kind=KeyKind.EC_P256)
    b = km.create_key("a-key", kind=KeyKind.RSA_2048)
    assert km.find_key("b-key") == a
    assert km.find_key(a.uri) == a
    assert km.find_key(Pkcs11Uri(id=b.id).format()) == b
    assert km.list_keys() == [b, a]
    with pytest.raises(KeyNotFound):
        km.find_key("nope")
    with pytest.raises(KeyNotFound):
        km.signer("nope")
    with pytest.raises(KeyNotFound):
        km.find_key(Pkcs11Uri(token="other-token", object="b-key").format())
    # nothing secret in what is listed
    for info in km.list_keys():
        assert set(info.__dataclass_fields__) == {"label", "id", "kind", "uri"}


@pytest.mark.parametrize("kind", [KeyKind.RSA_2048, KeyKind.EC_P384])
def test_public_key_matches_signer(km: KeyManager, kind: KeyKind) -> None:
    km.create_key("k", kind=kind)
    pub = km.public_key("k")
    signer = km.signer("k")
    der = serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    assert pub.public_bytes(*der) == signer.public_key().public_bytes(*der)
    if kind.is_rsa:
        assert isinstance(pub, rsa.RSAPublicKey) and pub.key_size == 2048
        assert pub.public_numbers().e == 65537
    else:
        assert isinstance(pub, ec.EllipticCurvePublicKey)
        assert isinstance(pub.curve, ec.SECP384R1)


def test_keys_persist_across_managers(token_uri: str) -> None:
    with open_key_manager(token_uri, pin_source=PinSource.from_value(USER_PIN)) as km1:
        info = km1.create_key("persist", kind=KeyKind.EC_P256)
    with open_key_manager(token_uri, pin_source=PinSource.from_value(USER_PIN)) as km2:
        assert km2.find_key("persist") == info
        sig = km2.signer("persist").sign(b"x", ec.ECDSA(hashes.SHA256()))
        km2.public_key("persist").verify(sig, b"x", ec.ECDSA(hashes.SHA256()))  # type: ignore[call-arg, arg-type]


def test_two_managers_share_the_login(token_uri: str) -> None:
    km1 = open_key_manager(token_uri, pin_source=PinSource.from_value(USER_PIN))
    km2 = open_key_manager(token_uri, pin_source=PinSource.from_value(USER_PIN))
    km1.create_key("shared", kind=KeyKind.EC_P256)
    km1.close()  # must not log km2 out
    sig = km2.signer("shared").sign(b"x", ec.ECDSA(hashes.SHA256()))
    assert sig
    km2.close()


def test_wrong_pin(token_uri: str) -> None:
    wrong = "wrong-pin-98765"
    with pytest.raises(PinIncorrect) as info:
        open_key_manager(token_uri, pin_source=PinSource.from_value(wrong))
    assert wrong not in str(info.value) and USER_PIN not in str(info.value)
    assert isinstance(info.value, HsmError)


def test_wrong_pin_while_logged_in(km: KeyManager, token_uri: str) -> None:
    wrong = "wrong-pin-98765"
    with pytest.raises(PinIncorrect) as info:
        open_key_manager(token_uri, pin_source=PinSource.from_value(wrong))
    assert wrong not in str(info.value)


def test_pin_from_uri_pin_source(token_uri: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HSM_TEST_URI_PIN", USER_PIN)
    uri = Pkcs11Uri.parse(token_uri).replace(pin_source="env:HSM_TEST_URI_PIN").format()
    with open_key_manager(uri) as km:
        assert km.list_keys() == []
    with pytest.raises(HsmError):
        open_key_manager(token_uri)  # no PIN source at all


def test_token_and_module_not_found(token_uri: str, tmp_path: Path) -> None:
    with pytest.raises(TokenNotFound):
        open_key_manager("pkcs11:token=no-such-token", pin_source=PinSource.from_value(USER_PIN))
    with pytest.raises(ModuleNotFound):
        open_key_manager(
            f"pkcs11:token={TOKEN}?module-path={tmp_path / 'nope.so'}",
            pin_source=PinSource.from_value(USER_PIN),
        )


def test_init_token_refuses_existing_label(hsm_home: Path, token_uri: str) -> None:
    with pytest.raises(TokenExists):
        init_token(hsm_home, TOKEN, SO_PIN, USER_PIN)
    other = init_token(hsm_home, "second", SO_PIN, USER_PIN)
    assert Pkcs11Uri.parse(other).token == "second"
    assert (hsm_home / "hsm" / "softhsm2.conf").is_file()
    assert any((hsm_home / "hsm" / "tokens").iterdir())


def test_closed_manager_refuses(token_uri: str) -> None:
    km = open_key_manager(token_uri, pin_source=PinSource.from_value(USER_PIN))
    km.create_key("k", kind=KeyKind.EC_P256)
    signer = km.signer("k")
    km.close()
    km.close()  # idempotent
    with pytest.raises(HsmError):
        signer.sign(b"x", ec.ECDSA(hashes.SHA256()))
    with pytest.raises(HsmError):
        km.list_keys()


def test_rsa_signer_is_not_a_decrypter(km: KeyManager) -> None:
    km.create_key("k", kind=KeyKind.RSA_2048)
    with pytest.raises(HsmError):
        km.signer("k").decrypt(b"\x00" * 256, padding.PKCS1v15())


def test_two_state_directories_side_by_side(
    km: KeyManager, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A second SoftHSM2 configuration while a key manager is open on the first."""
    km.create_key("first", kind=KeyKind.EC_P256)
    other_home = tmp_path / "other-home"
    uri = init_token(other_home, "other", SO_PIN, USER_PIN)  # switches SOFTHSM2_CONF
    with open_key_manager(uri, pin_source=PinSource.from_value(USER_PIN)) as km2:
        km2.create_key("second", kind=KeyKind.EC_P256)
        assert [k.label for k in km2.list_keys()] == ["second"]
        assert [k.label for k in km.list_keys()] == ["first"]
        for manager, label in ((km, "first"), (km2, "second")):
            sig = manager.signer(label).sign(b"x", ec.ECDSA(hashes.SHA256()))
            manager.public_key(label).verify(sig, b"x", ec.ECDSA(hashes.SHA256()))  # type: ignore[call-arg, arg-type]


def test_already_logged_in_counts_as_success(token_uri: str) -> None:
    """Someone else in the process logged in first: CKR_USER_ALREADY_LOGGED_IN is fine."""
    module = load_module()
    lib, _ = module.current()
    other = lib.get_token(token_label=TOKEN).open(rw=True, user_pin=USER_PIN)
    try:
        with open_key_manager(
            Pkcs11Uri.parse(token_uri), pin_source=PinSource.from_value(USER_PIN)
        ) as km:
            km.create_key("after-login", kind=KeyKind.EC_P256)
            sig = km.signer("after-login").sign(b"x", ec.ECDSA(hashes.SHA256()))
            km.public_key("after-login").verify(sig, b"x", ec.ECDSA(hashes.SHA256()))  # type: ignore[call-arg, arg-type]
    finally:
        other.close()
