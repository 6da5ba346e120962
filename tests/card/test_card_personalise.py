"""Personalise a blank emulated card with IssuerClient.personalise and read everything
back with each client, over PC/SC."""

from __future__ import annotations

import pytest
from card_support import (
    ISSUER,
    LIBRARY_NUMBER,
    LIBRARY_PIN,
    PINS,
    PROFILE,
    Personalised,
    personalise,
    reconnect,
)
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding

from card import contract, images
from card.common_ap import CommonClient
from card.contract import LifeCycle, PinBit
from card.errors import ConditionsNotSatisfied, SecurityStatusNotSatisfied
from card.formats import CardFace, CertAvailability
from card.issuer import IssuerClient
from card.jpki import CertKind, JpkiClient, Key
from card.juki import JukiClient
from card.municipal import LibraryClient
from card.sample import AUTH_POLICY, SIGN_POLICY, SampleCa
from card.surface import SurfaceClient
from card.text import TextClient
from card.transport import PcscTransport

pytestmark = pytest.mark.personalises


def _policies(cert: x509.Certificate) -> list[x509.ObjectIdentifier]:
    ext = cert.extensions.get_extension_for_class(x509.CertificatePolicies).value
    return [p.policy_identifier for p in ext]


def test_personalised_card_is_active_with_every_pin_set(card: Personalised) -> None:
    issuer = IssuerClient(card.transport)
    assert card.result.life_cycle == LifeCycle.ACTIVE
    assert issuer.life_cycle() == LifeCycle.ACTIVE
    assert issuer.serial() == card.result.serial
    status = issuer.pin_status()
    assert status.required == set(PinBit)
    assert status.set == set(PinBit)
    assert issuer.get_data(contract.Tag.MUNICIPALITY_CODE) == b"13101"
    assert issuer.get_data(contract.Tag.EXPIRY) == b"20340108"


def test_jpki_reads_back(card: Personalised) -> None:
    jpki = JpkiClient(card.transport)
    assert jpki.token_label() == "JPKIAPICCTOKEN2"
    assert jpki.cert_availability() == CertAvailability(sign=True, auth=True)
    auth = jpki.read_certificate(CertKind.AUTH)
    assert auth == card.result.auth_certificate
    assert auth.public_key() == jpki.public_key(Key.AUTH) == card.result.auth_public_key
    usage = auth.extensions.get_extension_for_class(x509.KeyUsage)
    assert usage.critical and usage.value.digital_signature
    assert not usage.value.content_commitment
    assert jpki.read_certificate(CertKind.AUTH_CA) == card.ca.auth_root
    assert jpki.read_certificate(CertKind.SIGN_CA) == card.ca.sign_root
    assert _policies(auth) == [AUTH_POLICY]

    with pytest.raises(SecurityStatusNotSatisfied):
        jpki.read_certificate(CertKind.SIGN)
    jpki.verify_pin(Key.SIGN, PINS.jpki_sign or "")
    sign = jpki.read_certificate(CertKind.SIGN)
    assert sign == card.result.sign_certificate
    assert sign.public_key() == jpki.public_key(Key.SIGN)
    assert _policies(sign) == [SIGN_POLICY]
    sign_usage = sign.extensions.get_extension_for_class(x509.KeyUsage)
    assert sign_usage.critical and sign_usage.value.content_commitment
    assert jpki.tries_left_for(Key.AUTH) == 3
    assert jpki.tries_left_for(Key.SIGN) == 5


@pytest.mark.parametrize("key", [Key.AUTH, Key.SIGN])
def test_sign_with_each_key_verifies_against_its_certificate(card: Personalised,
                                                             key: Key) -> None:
    jpki = JpkiClient(card.transport)
    jpki.select(force=True)
    with pytest.raises(SecurityStatusNotSatisfied):
        jpki.sign_sha256(key, b"hello")
    pin = PINS.jpki_auth if key is Key.AUTH else PINS.jpki_sign
    jpki.verify_pin(key, pin or "")
    cert = (card.result.auth_certificate if key is Key.AUTH
            else card.result.sign_certificate)
    assert cert is not None
    for message in (b"hello", b"", bytes(range(256)) * 4):
        signature = jpki.sign_sha256(key, message)
        assert len(signature) == 256
        cert.public_key().verify(signature, message, padding.PKCS1v15(), hashes.SHA256())
    # the security status holds across signatures, and is cleared by reselecting
    jpki.select(force=True)
    with pytest.raises(SecurityStatusNotSatisfied):
        jpki.sign_sha256(key, b"again")


def test_the_two_keys_differ(card: Personalised) -> None:
    jpki = JpkiClient(card.transport)
    assert jpki.public_key(Key.AUTH) != jpki.public_key(Key.SIGN)


def test_text_reads_back_and_the_integrity_record_checks(card: Personalised) -> None:
    text = TextClient(card.transport)
    text.verify_pin(PINS.text)
    assert text.my_number() == PROFILE.my_number
    assert text.basic_four() == PROFILE.facts
    check = text.check_integrity(card.ca.integrity_key.public_key())
    assert check.ok and check.signature_ok
    assert text.check_integrity().signature_ok is None


def test_text_codes_a_and_b(card: Personalised) -> None:
    text = TextClient(card.transport)
    text.select(force=True)
    text.verify_code_a(PROFILE.code_a)
    assert text.my_number() == PROFILE.my_number
    with pytest.raises(SecurityStatusNotSatisfied):
        text.basic_four()
    text.select(force=True)
    text.verify_code_b(PROFILE.code_b)
    assert text.basic_four() == PROFILE.facts
    with pytest.raises(SecurityStatusNotSatisfied):
        text.my_number()


def _face_matches(face: CardFace) -> None:
    assert (face.birth_date, face.sex, face.expiry) == (PROFILE.facts.birth_date,
                                                         PROFILE.facts.sex, PROFILE.expiry)
    assert face.name_image == images.name_image(PROFILE.facts.name)
    assert face.address_image == images.address_image(PROFILE.facts.address)
    assert face.photo == PROFILE.photo
    assert face.security_code_image == images.security_code_image(PROFILE.security_code)


def test_surface_reads_back(card: Personalised) -> None:
    surface = SurfaceClient(card.transport)
    surface.verify_code_a(PROFILE.code_a)
    _face_matches(surface.card_face())
    surface.select(force=True)
    surface.verify_code_b(PROFILE.code_b)
    _face_matches(surface.card_face())
    with pytest.raises(SecurityStatusNotSatisfied):
        surface.age_record()
    surface.select(force=True)
    assert PROFILE.birth_key == "010108"  # Heisei 1
    surface.verify_birth_key(PROFILE.birth_key)
    assert surface.age_record() == PROFILE.facts.birth_date


def test_a_reconnect_resets_the_security_status(card: Personalised) -> None:
    text = TextClient(card.transport)
    text.verify_pin(PINS.text)
    assert text.my_number() == PROFILE.my_number
    reconnect(card.transport)
    with pytest.raises(SecurityStatusNotSatisfied):
        text.my_number()  # the text area is reselected after the power cycle
    text.verify_pin(PINS.text)
    assert text.my_number() == PROFILE.my_number


def test_juki_and_library_read_back(card: Personalised) -> None:
    juki = JukiClient(card.transport)
    with pytest.raises(SecurityStatusNotSatisfied):
        juki.resident_code()
    juki.verify_pin(PINS.juki)
    assert juki.resident_code() == PROFILE.resident_code
    library = LibraryClient(card.transport)
    library.verify_pin(LIBRARY_PIN)
    assert library.library_number() == LIBRARY_NUMBER


def test_without_holder_pins_the_card_waits_for_the_holder(blank_card: str,
                                                           test_ca: SampleCa) -> None:
    with PcscTransport(blank_card) as transport:
        result = personalise(transport, test_ca, pins=None)
        assert result.life_cycle == LifeCycle.ISSUED
        issuer = IssuerClient(transport)
        assert issuer.pin_status().set == frozenset()
        text = TextClient(transport)
        with pytest.raises(ConditionsNotSatisfied):
            text.verify_pin(PINS.text)
        with pytest.raises(ConditionsNotSatisfied):
            JpkiClient(transport).token_label()
        # the holder sets the PINs one by one; the last one activates the card
        JpkiClient(transport).set_pin(contract.JPKI_AUTH_PIN, PINS.jpki_auth)
        JpkiClient(transport).set_pin(contract.JPKI_SIGN_PIN, PINS.jpki_sign or "")
        text.set_pin(contract.TEXT_PIN, PINS.text)
        assert issuer.life_cycle() == LifeCycle.ISSUED
        JukiClient(transport).set_pin(contract.JUKI_PIN, PINS.juki)
        assert issuer.life_cycle() == LifeCycle.ISSUED  # the juki PIN has a second copy
        CommonClient(transport).set_pin(contract.COMMON_PIN, PINS.juki)
        assert issuer.life_cycle() == LifeCycle.ACTIVE
        text.verify_pin(PINS.text)
        assert text.my_number() == PROFILE.my_number


def test_without_a_signing_certificate(blank_card: str, test_ca: SampleCa) -> None:
    from dataclasses import replace

    profile = replace(PROFILE, with_signing_certificate=False)
    pins = replace(PINS, jpki_sign=None)
    with PcscTransport(blank_card) as transport:
        result = personalise(transport, test_ca, profile=profile, pins=pins)
        assert result.sign_certificate is None and result.sign_public_key is None
        assert result.life_cycle == LifeCycle.ACTIVE
        status = IssuerClient(transport).pin_status()
        assert PinBit.JPKI_SIGN not in status.required
        jpki = JpkiClient(transport)
        assert jpki.cert_availability() == CertAvailability(sign=False, auth=True)
        assert jpki.read_certificate(CertKind.AUTH) == result.auth_certificate
        assert jpki.read_certificate(CertKind.SIGN_CA) == test_ca.sign_root


def test_sample_card(sample_card: str) -> None:
    summary = sample_card.summary  # type: ignore[attr-defined]
    assert summary["serial"] == sample_card.serial  # type: ignore[attr-defined]
    assert summary["life_cycle"] == "active"
    pins = summary["pins"]
    with PcscTransport(sample_card) as transport:
        text = TextClient(transport)
        text.verify_pin(pins["card-info input support PIN"])
        assert text.my_number() == summary["my_number"]
        assert text.basic_four().name == "見本　花子"
        assert text.check_integrity().ok
        jpki = JpkiClient(transport)
        jpki.verify_pin(Key.SIGN, pins["signing password"])
        sign = jpki.read_certificate(CertKind.SIGN)
        assert format(sign.serial_number, "x") == summary["sign_cert_serial"]
        juki = JukiClient(transport)
        juki.verify_pin(pins["resident-registry PIN"])
        assert juki.resident_code() == summary["resident_code"]
        library = LibraryClient(transport)
        library.verify_pin(pins["library PIN"])
        assert library.library_number() == summary["library_number"]


def test_two_cards_never_share_a_key(card: Personalised, sample_card: str) -> None:
    with PcscTransport(sample_card) as other:
        sample = JpkiClient(other)
        other_moduli = {sample.public_key(k).public_numbers().n for k in Key}
    mine = [card.result.auth_public_key, card.result.sign_public_key]
    assert all(key is not None and key.public_numbers().n not in other_moduli for key in mine)


def test_regenerating_a_key_after_issue_needs_the_holder_and_gives_a_new_key(
    card: Personalised,
) -> None:
    issuer = IssuerClient(card.channel)
    issuer.authenticate(ISSUER)
    with pytest.raises(SecurityStatusNotSatisfied):
        issuer.generate_key(contract.JPKI_AUTH_KEY)
    jpki = JpkiClient(card.channel)
    jpki.verify_pin(Key.AUTH, PINS.jpki_auth)
    new_key = issuer.generate_key(contract.JPKI_AUTH_KEY)
    assert new_key != card.result.auth_public_key
    assert jpki.public_key(Key.AUTH) == new_key
