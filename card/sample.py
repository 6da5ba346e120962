"""The built-in sample card: a fictional adult, a throwaway test CA, fixed public PINs.

`personalise_sample(reader)` is the `mynacard.personalisers` entry point `sample`,
used by `mynacard emulator up --sample` and the emulator's pytest plugin. Nothing
here is secret: the CA keys are made on the fly and the PINs are published sample
values, so a sample card proves nothing to a real relying party. Even the throwaway CA
certifies a key only after the card attested it (test master key, host verifier).
"""

from __future__ import annotations

import functools
import secrets
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from asn1crypto import core as asn1
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from card import contract, images
from card.attestation import AttestationGate, HostAttestationVerifier, KeyAttestor
from card.formats import BasicFour, CardIdentity, HolderPins
from card.issuer import CertificateIssuer, HostIssuerAuthenticator, IssuerClient
from card.municipal import TEST_MUNICIPAL_MASTER_KEY, LibraryIssuer
from card.session import Channel
from card.transport import PcscTransport, Transport

SIGN_POLICY = x509.ObjectIdentifier("1.2.392.200149.8.5.1.1.20")
AUTH_POLICY = x509.ObjectIdentifier("1.2.392.200149.8.5.1.3.30")
OID_NAME = "1.2.392.200149.8.5.5.1"
OID_NAME_SUBSTITUTE = "1.2.392.200149.8.5.5.2"
OID_SEX = "1.2.392.200149.8.5.5.3"
OID_BIRTH = "1.2.392.200149.8.5.5.4"
OID_ADDRESS = "1.2.392.200149.8.5.5.5"
OID_ADDRESS_SUBSTITUTE = "1.2.392.200149.8.5.5.6"

SAMPLE_PINS = HolderPins(jpki_auth="1234", text="2345", juki="3456", jpki_sign="ABC123")
SAMPLE_PIN_VALUES = {
    "jpki_auth": "1234",  # user-authentication PIN
    "text": "2345",  # card-info input support PIN
    "juki": "3456",  # resident-registry PIN
    "jpki_sign": "ABC123",  # signing password
    "library": "4567",  # municipal library-card PIN
}
SAMPLE_LIBRARY_NUMBER = "LIB-0001-2345"


def sample_identity(today: date | None = None) -> CardIdentity:
    """見本 花子, born 1985-04-01 in 千代田区; the card expires on her birthday 10 years on."""
    today = today or date.today()
    birth = date(1985, 4, 1)
    return CardIdentity(
        my_number="123456789018",
        resident_code="12345678903",
        facts=BasicFour(
            name="見本　花子",
            address="東京都千代田区千代田１－１－１",
            birth_date=birth,
            sex="2",
        ),
        expiry=date(today.year + 10, birth.month, birth.day),
        municipality_code="13101",
        security_code="2468",
        photo=images.generated_portrait("12345678903"),
    )


def _birthday_in(birth: date, year: int) -> date:
    try:
        return birth.replace(year=year)
    except ValueError:  # 29 February in a common year
        return date(year, 3, 1)


def _fifth_birthday_after(birth: date, issued: date) -> date:
    first = _birthday_in(birth, issued.year)
    if first <= issued:
        first = _birthday_in(birth, issued.year + 1)
    return _birthday_in(birth, first.year + 4)


def _name(*parts: tuple[x509.ObjectIdentifier, str]) -> x509.Name:
    return x509.Name([x509.NameAttribute(oid, value) for oid, value in parts])


def _other_name(oid: str, text: str) -> x509.OtherName:
    return x509.OtherName(x509.ObjectIdentifier(oid), asn1.UTF8String(text).dump())


@dataclass(frozen=True)
class SampleCa:
    """Two self-signed roots (signing, user authentication) and an integrity-record key."""

    sign_key: rsa.RSAPrivateKey
    sign_root: x509.Certificate
    auth_key: rsa.RSAPrivateKey
    auth_root: x509.Certificate
    integrity_key: rsa.RSAPrivateKey

    @classmethod
    def create(cls, now: datetime | None = None) -> SampleCa:
        now = now or datetime.now(UTC)

        def root(ou: str) -> tuple[rsa.RSAPrivateKey, x509.Certificate]:
            key = rsa.generate_private_key(65537, 2048)
            name = _name(
                (NameOID.COUNTRY_NAME, "JP"),
                (NameOID.ORGANIZATION_NAME, "mynacard sample CA (not JPKI)"),
                (NameOID.ORGANIZATIONAL_UNIT_NAME, ou),
            )
            cert = (
                x509.CertificateBuilder()
                .subject_name(name)
                .issuer_name(name)
                .public_key(key.public_key())
                .serial_number(x509.random_serial_number())
                .not_valid_before(now - timedelta(days=1))
                .not_valid_after(now + timedelta(days=365 * 20))
                .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
                .add_extension(
                    x509.KeyUsage(False, False, False, False, False, True, True, False, False),
                    critical=True,
                )
                .add_extension(
                    x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False
                )
                .sign(key, hashes.SHA256())
            )
            return key, cert

        sign_key, sign_root = root("JPKI for digital signature")
        auth_key, auth_root = root("JPKI for user authentication")
        return cls(sign_key, sign_root, auth_key, auth_root, rsa.generate_private_key(65537, 2048))

    def certificate_issuer(
        self, profile: CardIdentity, now: datetime | None = None, *, serial: str,
        gate: AttestationGate | None = None,
    ) -> CertificateIssuer:
        """A callback for `IssuerClient.personalise` certifying the keys of card `serial`
        once the card attested them (`gate`: by default the test master key's)."""
        now = now or datetime.now(UTC)
        gate = gate or sample_attestation_gate()
        facts = profile.facts
        # Valid until the earlier of the fifth birthday after issuance and the card's expiry.
        fifth = _fifth_birthday_after(facts.birth_date, now.date())
        end_day = min(fifth, profile.expiry)
        not_after = datetime(end_day.year, end_day.month, end_day.day, 14, 59, 59, tzinfo=UTC)

        def leaf(
            pub: rsa.RSAPublicKey, ca_key: rsa.RSAPrivateKey, ca: x509.Certificate,
            subject: x509.Name, policy: x509.ObjectIdentifier, sign: bool,
        ) -> x509.Certificate:
            builder = (
                x509.CertificateBuilder()
                .subject_name(subject)
                .issuer_name(ca.subject)
                .public_key(pub)
                .serial_number(x509.random_serial_number())
                .not_valid_before(now - timedelta(minutes=5))
                .not_valid_after(not_after)
                .add_extension(
                    x509.KeyUsage(True, sign, False, False, False, False, False, False, False),
                    critical=True,
                )
                .add_extension(
                    x509.CertificatePolicies([x509.PolicyInformation(policy, None)]),
                    critical=False,
                )
                .add_extension(
                    x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
                    critical=False,
                )
                .add_extension(x509.SubjectKeyIdentifier.from_public_key(pub), critical=False)
            )
            if sign:
                builder = builder.add_extension(
                    x509.SubjectAlternativeName([
                        _other_name(OID_NAME, facts.name),
                        _other_name(OID_NAME_SUBSTITUTE, "0"),
                        _other_name(OID_SEX, facts.sex),
                        _other_name(OID_BIRTH, facts.birth_date.strftime("%Y%m%d")),
                        _other_name(OID_ADDRESS, facts.address),
                        _other_name(OID_ADDRESS_SUBSTITUTE, "0"),
                    ]),
                    critical=False,
                )
            return builder.sign(ca_key, hashes.SHA256())

        def issue(
            auth_pub: rsa.RSAPublicKey | None, sign_pub: rsa.RSAPublicKey | None,
            attest: KeyAttestor,
        ) -> tuple[x509.Certificate | None, x509.Certificate | None,
                   x509.Certificate, x509.Certificate]:
            for fid, pub in ((contract.JPKI_AUTH_KEY, auth_pub),
                             (contract.JPKI_SIGN_KEY, sign_pub)):
                if pub is not None:
                    gate.require(attest, serial=serial, key_fid=fid, public_key=pub)
            sign_cert = auth_cert = None
            if sign_pub is not None:
                sign_cert = leaf(
                    sign_pub, self.sign_key, self.sign_root,
                    _name((NameOID.COUNTRY_NAME, "JP"), (NameOID.LOCALITY_NAME, "Tokyo-to"),
                          (NameOID.LOCALITY_NAME, "Chiyoda-ku"),
                          (NameOID.COMMON_NAME, secrets.token_hex(10).upper())),
                    SIGN_POLICY, True,
                )
            if auth_pub is not None:
                auth_cert = leaf(
                    auth_pub, self.auth_key, self.auth_root,
                    _name((NameOID.COUNTRY_NAME, "JP"),
                          (NameOID.COMMON_NAME, secrets.token_hex(10).upper())),
                    AUTH_POLICY, False,
                )
            return sign_cert, auth_cert, self.sign_root, self.auth_root

        return issue


def sample_attestation_gate() -> AttestationGate:
    """A gate checking attestations with the emulator's test master key (on the host)."""
    return AttestationGate(HostAttestationVerifier(contract.TEST_ISSUER_MASTER_KEY))


@functools.cache
def sample_ca() -> SampleCa:
    """One throwaway CA per process (RSA key generation is the slow part)."""
    return SampleCa.create()


def personalise_sample_on(transport: Transport | Channel) -> dict[str, Any]:
    """Personalise the blank card on `transport` as the sample; a printable summary."""
    profile = sample_identity()
    ca = sample_ca()
    client = IssuerClient(transport)
    result = client.personalise(
        profile,
        authenticator=HostIssuerAuthenticator(contract.TEST_ISSUER_MASTER_KEY),
        issue_certificates=ca.certificate_issuer(profile, serial=client.serial()),
        integrity_signer=ca.integrity_key,
        holder_pins=SAMPLE_PINS,
    )
    LibraryIssuer(transport).personalise(
        SAMPLE_LIBRARY_NUMBER,
        authenticator=HostIssuerAuthenticator(TEST_MUNICIPAL_MASTER_KEY),
        pin=SAMPLE_PIN_VALUES["library"],
    )
    return {
        "serial": result.serial,
        "life_cycle": result.life_cycle.name.lower(),
        "my_number": profile.my_number,
        "resident_code": profile.resident_code,
        "name": profile.facts.name,
        "birth_date": profile.facts.birth_date.isoformat(),
        "expiry": profile.expiry.isoformat(),
        "verification_code_b": profile.code_b,
        "pins": {
            "user-authentication PIN": SAMPLE_PIN_VALUES["jpki_auth"],
            "signing password": SAMPLE_PIN_VALUES["jpki_sign"],
            "card-info input support PIN": SAMPLE_PIN_VALUES["text"],
            "resident-registry PIN": SAMPLE_PIN_VALUES["juki"],
            "library PIN": SAMPLE_PIN_VALUES["library"],
        },
        "library_number": SAMPLE_LIBRARY_NUMBER,
        "sign_cert_serial": format(result.sign_certificate.serial_number, "x")
        if result.sign_certificate else None,
        "auth_cert_serial": format(result.auth_certificate.serial_number, "x")
        if result.auth_certificate else None,
    }


def personalise_sample(reader: str) -> dict[str, Any]:
    """Entry point `mynacard.personalisers: sample`: personalise the blank card in `reader`."""
    with PcscTransport(reader) as transport:
        return personalise_sample_on(transport)
