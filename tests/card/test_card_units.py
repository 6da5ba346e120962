"""Host-side pieces that need no card: issuer-key derivation, the sample CA's
certificate shapes, CLI registration, and whole-file reading over a fake transport
(parsing only; behaviour is tested against the emulated card)."""

from __future__ import annotations

import argparse
from datetime import date

import pytest
from asn1crypto import core as asn1
from cryptography import x509
from cryptography.hazmat.primitives import cmac
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.ciphers import algorithms

from card import cli, contract
from card.apdu import Response
from card.attestation import (
    AttestationFailed,
    KeyAttestation,
    KeyAttestor,
    attestation_message,
    derive_card_auth_key,
)
from card.issuer import (
    HostIssuerAuthenticator,
    PinStatus,
    derive_card_key,
    issuer_cryptogram,
)
from card.jpki import CertKind, JpkiClient, rsa_public_key
from card.sample import (
    AUTH_POLICY,
    SIGN_POLICY,
    SampleCa,
    _fifth_birthday_after,
    sample_identity,
)
from card.session import FileEmpty


def test_aes_cmac_rfc4493_vector() -> None:
    key = bytes.fromhex("2b7e151628aed2a6abf7158809cf4f3c")
    msg = bytes.fromhex("6bc1bee22e409f96e93d7e117393172a")
    assert issuer_cryptogram(key, msg).hex() == "070a16b46b4d4144f79bdd9dd04a287c"


def test_card_key_derivation_matches_the_emulator_factory() -> None:
    from emulator.factory_keys import derive_card_key as factory

    serial = "123456789012345"
    assert derive_card_key(contract.TEST_ISSUER_MASTER_KEY, serial) == factory(
        contract.TEST_ISSUER_MASTER_KEY, serial)


def test_host_authenticator() -> None:
    auth = HostIssuerAuthenticator(contract.TEST_ISSUER_MASTER_KEY)
    challenge = bytes(range(16))
    card_key = derive_card_key(contract.TEST_ISSUER_MASTER_KEY, "000000000000001")
    assert auth.respond("000000000000001", challenge) == issuer_cryptogram(card_key, challenge)
    assert "40" not in repr(auth)
    with pytest.raises(ValueError):
        HostIssuerAuthenticator(b"short")
    with pytest.raises(ValueError):
        auth.respond("12345", challenge)
    with pytest.raises(ValueError):
        auth.respond("000000000000001", b"x")


def test_pin_status() -> None:
    status = PinStatus.from_bytes(bytes((0x1F, 0x05)))
    assert status.required == set(contract.PinBit)
    assert status.set == {contract.PinBit.JPKI_AUTH, contract.PinBit.TEXT}


def test_rsa_public_key_from_modulus() -> None:
    key = rsa.generate_private_key(65537, 2048).public_key()
    modulus = key.public_numbers().n.to_bytes(256, "big")
    assert rsa_public_key(modulus) == key
    with pytest.raises(ValueError):
        rsa_public_key(modulus[:128])


class FakeFileCard:
    """Answers SELECT and READ BINARY for one file, like the card's READ BINARY rules."""

    def __init__(self, content: bytes, size: int) -> None:
        self.file = content + b"\xff" * (size - len(content))
        self.reads: list[tuple[int, int]] = []

    @property
    def atr(self) -> bytes:
        return contract.ATR

    def transmit(self, apdu: bytes) -> Response:
        if apdu[1] == 0xA4:
            return Response(b"", 0x9000)
        assert apdu[1] == 0xB0
        offset = (apdu[2] << 8) | apdu[3]
        le = apdu[4] or 256
        self.reads.append((offset, le))
        if offset >= len(self.file):
            return Response(b"", 0x6B00)
        return Response(self.file[offset : offset + le], 0x9000)


def test_read_object_learns_the_length_from_the_header() -> None:
    der = b"\x30\x82\x03\x00" + bytes(0x300)  # 772 bytes
    fake = FakeFileCard(der, 3072)
    assert JpkiClient(fake).read_certificate_der(CertKind.AUTH_CA) == der
    assert fake.reads == [(0, 256), (256, 256), (512, 256), (768, 4)]


def test_read_object_of_an_empty_file() -> None:
    with pytest.raises(FileEmpty):
        JpkiClient(FakeFileCard(b"", 3072)).read_certificate_der(CertKind.AUTH)


def test_read_raw_stops_at_the_end() -> None:
    fake = FakeFileCard(b"\x8f\x8f\x00", 3)
    client = JpkiClient(fake)
    assert client.read_raw(contract.JPKI_CERT_AVAILABILITY) == b"\x8f\x8f\x00"
    fake512 = FakeFileCard(b"", 512)
    assert len(JpkiClient(fake512).read_raw(0x0002)) == 512
    assert fake512.reads[-1] == (512, 256)  # answered 6B00


def _genuine_attestor(serial: str, keys: dict[int, rsa.RSAPublicKey]) -> KeyAttestor:
    """What a genuine card with these keys answers (the MAC made with the test master key)."""
    card_auth_key = derive_card_auth_key(contract.TEST_ISSUER_MASTER_KEY, serial)

    def attest(fid: int, challenge: bytes) -> KeyAttestation:
        message = attestation_message(serial, contract.AID_JPKI, fid, keys[fid], challenge)
        mac = cmac.CMAC(algorithms.AES(card_auth_key))
        mac.update(message)
        return KeyAttestation(serial, contract.AID_JPKI, fid, keys[fid], challenge,
                              mac.finalize())

    return attest


def test_sample_ca_certifies_only_attested_keys() -> None:
    ca = SampleCa.create()
    profile = sample_identity(date(2026, 1, 1))
    serial = "400000000000123"
    card_pub = rsa.generate_private_key(65537, 2048).public_key()
    off_card = rsa.generate_private_key(65537, 2048).public_key()
    attest = _genuine_attestor(serial, {contract.JPKI_AUTH_KEY: card_pub,
                                        contract.JPKI_SIGN_KEY: card_pub})
    issue = ca.certificate_issuer(profile, serial=serial)
    with pytest.raises(AttestationFailed, match="not the key to be certified"):
        issue(off_card, None, attest)
    with pytest.raises(AttestationFailed, match="not for card"):
        ca.certificate_issuer(profile, serial="400000000000999")(card_pub, None, attest)
    sign, auth, _, _ = issue(card_pub, None, attest)
    assert sign is None and auth is not None and auth.public_key() == card_pub


def test_sample_ca_certificates_are_shaped_like_jpki() -> None:
    ca = SampleCa.create()
    profile = sample_identity(date(2026, 1, 1))
    sign_pub = rsa.generate_private_key(65537, 2048).public_key()
    auth_pub = rsa.generate_private_key(65537, 2048).public_key()
    serial = "400000000000124"
    attest = _genuine_attestor(serial, {contract.JPKI_AUTH_KEY: auth_pub,
                                        contract.JPKI_SIGN_KEY: sign_pub})
    sign, auth, sign_ca, auth_ca = ca.certificate_issuer(profile, serial=serial)(
        auth_pub, sign_pub, attest)
    assert sign is not None and auth is not None
    assert sign_ca == ca.sign_root and auth_ca == ca.auth_root
    assert sign.issuer == ca.sign_root.subject and auth.issuer == ca.auth_root.subject

    usage = sign.extensions.get_extension_for_class(x509.KeyUsage)
    assert usage.critical and usage.value.digital_signature and usage.value.content_commitment
    policies = sign.extensions.get_extension_for_class(x509.CertificatePolicies).value
    assert [p.policy_identifier for p in policies] == [SIGN_POLICY]
    san = sign.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    others = {o.type_id.dotted_string: asn1.UTF8String.load(o.value).native
              for o in san.get_values_for_type(x509.OtherName)}
    assert others == {
        "1.2.392.200149.8.5.5.1": "見本　花子",
        "1.2.392.200149.8.5.5.2": "0",
        "1.2.392.200149.8.5.5.3": "2",
        "1.2.392.200149.8.5.5.4": "19850401",
        "1.2.392.200149.8.5.5.5": profile.facts.address,
        "1.2.392.200149.8.5.5.6": "0",
    }

    usage = auth.extensions.get_extension_for_class(x509.KeyUsage)
    assert usage.critical and usage.value.digital_signature
    assert not usage.value.content_commitment
    policies = auth.extensions.get_extension_for_class(x509.CertificatePolicies).value
    assert [p.policy_identifier for p in policies] == [AUTH_POLICY]
    with pytest.raises(x509.ExtensionNotFound):
        auth.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    assert auth.public_key() == auth_pub and sign.public_key() == sign_pub


def test_fifth_birthday_after_issuance() -> None:
    birth = date(1985, 4, 1)
    assert _fifth_birthday_after(birth, date(2026, 3, 1)) == date(2030, 4, 1)
    assert _fifth_birthday_after(birth, date(2026, 4, 1)) == date(2031, 4, 1)
    assert _fifth_birthday_after(date(2000, 2, 29), date(2026, 3, 1)) == date(2031, 3, 1)


def test_sample_identity_is_valid() -> None:
    profile = sample_identity(date(2026, 11, 22))
    assert profile.expiry == date(2036, 4, 1)
    assert profile.code_b == "60040120362468"


def test_cli_registers_card_info_and_readers() -> None:
    parser = argparse.ArgumentParser()
    cli.register(parser.add_subparsers())
    args = parser.parse_args(["card", "info", "--reader", "R", "--json"])
    assert args.func is cli.cmd_info and args.reader == "R" and args.json
    args = parser.parse_args(["card", "readers"])
    assert args.func is cli.cmd_readers


class RecordingTransport:
    """Answers SELECT with 9000, anything else with a fixed status word; records APDUs."""

    def __init__(self, sw: int = 0x9000) -> None:
        self.sent: list[bytes] = []
        self.sw = sw
        self.connection_count = 1

    @property
    def atr(self) -> bytes:
        return contract.ATR

    def transmit(self, apdu: bytes) -> Response:
        self.sent.append(apdu)
        return Response(b"", 0x9000 if apdu[1] == 0xA4 else self.sw)


def test_channel_selects_once_and_again_after_a_reconnect() -> None:
    from card.session import channel_for
    from card.text import TextClient

    transport = RecordingTransport()
    text = TextClient(transport)
    text.select()
    text.select()
    assert TextClient(transport).channel is channel_for(transport)
    assert sum(1 for a in transport.sent if a[1:3] == b"\xa4\x04") == 1
    transport.connection_count += 1  # a new connection: the card was reset
    text.select()
    assert sum(1 for a in transport.sent if a[1:3] == b"\xa4\x04") == 2


def test_tries_left_interprets_the_status_word() -> None:
    from card.text import TextClient

    for sw, tries in ((0x63C2, 2), (0x63C0, 0), (0x6984, 0), (0x9000, 3)):
        assert TextClient(RecordingTransport(sw)).tries_left(contract.TEXT_PIN) == tries
