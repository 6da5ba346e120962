"""The operator certificate: the center's own hierarchy for operator IC cards (who the card
belongs to, nothing of any resident), beside the two JPKI profiles of `pki.profiles`."""

from __future__ import annotations

import datetime as dt

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from pki.certificate_der import (
    EXT_NOT_CA,
    KU_USER_AUTH,
    distribution_extensions,
    extension,
    issuer_values,
    ocsp_extension,
)
from pki.errors import ProfileError
from pki.profiles import POLICY_EXTENSIONS, Profile, check_card_key

OPERATOR_VALIDITY = dt.timedelta(days=2 * 365)
MAX_OPERATOR_NAME = 64  # an X.520 commonName is at most 64 characters


def operator_subject(operator: str, center: str) -> x509.Name:
    """C=JP, O=<center>, OU=Operators, CN=<operator>: who the card belongs to, nothing of
    any resident."""
    if not isinstance(operator, str) or not 0 < len(operator) <= MAX_OPERATOR_NAME:
        raise ProfileError(f"an operator name is 1 to {MAX_OPERATOR_NAME} characters")
    if not isinstance(center, str) or not 0 < len(center) <= 64:
        raise ProfileError("a center name is 1 to 64 characters")
    return x509.Name([
        x509.NameAttribute(NameOID.COUNTRY_NAME, "JP"),
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, center),
        x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, "Operators"),
        x509.NameAttribute(NameOID.COMMON_NAME, operator),
    ])


def operator_name_of(cert: x509.Certificate) -> str:
    """The operator an operator certificate names (its subject commonName)."""
    names = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    if len(names) != 1 or not isinstance(names[0].value, str):
        raise ProfileError("an operator certificate names exactly one operator (CN)")
    return names[0].value


def operator_certificate_builder(
    *, public_key: rsa.RSAPublicKey, operator: str, center: str, issuer: x509.Certificate,
    serial: int, now: dt.datetime, crl_url: str, ocsp_url: str,
    validity: dt.timedelta = OPERATOR_VALIDITY,
) -> x509.CertificateBuilder:
    """An operator certificate (to be signed by the operator root): keyUsage
    digitalSignature, extendedKeyUsage clientAuth, the operator policy, CRL and OCSP
    pointers like a JPKI certificate; valid `validity` (2 years) but never beyond the
    root. The key is the card's (RSA-2048, e = 65537)."""
    check_card_key(public_key)
    if not dt.timedelta(0) < validity <= dt.timedelta(days=5 * 365):
        raise ProfileError("an operator certificate is valid for more than 0 and at most"
                           " 5 years")
    iv = issuer_values(issuer)
    not_before = now.astimezone(dt.UTC).replace(microsecond=0)
    not_after = min(not_before + validity, issuer.not_valid_after_utc)
    if not_after <= not_before:
        raise ProfileError("the operator root has expired")
    return x509.CertificateBuilder(
        issuer_name=iv.name, subject_name=operator_subject(operator, center),
        public_key=public_key, serial_number=serial, not_valid_before=not_before,
        not_valid_after=not_after, extensions=[
            EXT_NOT_CA.extension,
            KU_USER_AUTH.extension,
            extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.CLIENT_AUTH])),
            POLICY_EXTENSIONS[Profile.OPERATOR].extension,
            iv.authority_key_identifier.extension,
            extension(x509.SubjectKeyIdentifier.from_public_key(public_key)),
            distribution_extensions(crl_url).extension,
            ocsp_extension(ocsp_url).extension,
        ])
