"""The fixed DER of a JPKI TBSCertificate, encoded once: extensions, the issuer's values,
and just enough DER to splice the variable parts in (issuance speed: `pki.profiles`'
builders assemble a TBSCertificate from these parts instead of re-encoding it whole)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
import hashlib
from typing import Any, NamedTuple

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from cryptography.x509.oid import ExtensionOID, NameOID

from pki.errors import ProfileError


class Der:  # noqa: N801 - a namespace of small DER encoders
    """Just enough DER for a TBSCertificate (definite lengths, positive INTEGERs)."""

    @staticmethod
    def length(n: int) -> bytes:
        if n < 0x80:
            return bytes((n,))
        b = n.to_bytes((n.bit_length() + 7) // 8, "big")
        return bytes((0x80 | len(b),)) + b

    @staticmethod
    def tlv(tag: int, content: bytes) -> bytes:
        return bytes((tag,)) + Der.length(len(content)) + content

    @staticmethod
    def integer(value: int) -> bytes:
        return Der.tlv(0x02, value.to_bytes(value.bit_length() // 8 + 1, "big"))

    @staticmethod
    def time(t: dt.datetime) -> bytes:
        """RFC 5280 4.1.2.5: UTCTime through 2049, GeneralizedTime from 2050; whole seconds."""
        t = t.astimezone(dt.UTC)
        hms = f"{t.month:02d}{t.day:02d}{t.hour:02d}{t.minute:02d}{t.second:02d}Z"
        if 1950 <= t.year < 2050:
            return b"\x17\x0d" + f"{t.year % 100:02d}{hms}".encode("ascii")
        return b"\x18\x0f" + f"{t.year:04d}{hms}".encode("ascii")

    @staticmethod
    def oid(oid: x509.ObjectIdentifier) -> bytes:
        arcs = [int(a) for a in oid.dotted_string.split(".")]
        out = bytearray((40 * arcs[0] + arcs[1],))
        for arc in arcs[2:]:
            chunk = [arc & 0x7F]
            arc >>= 7
            while arc:
                chunk.append(0x80 | (arc & 0x7F))
                arc >>= 7
            out += bytes(reversed(chunk))
        return Der.tlv(0x06, bytes(out))


TBS_VERSION_3 = bytes.fromhex("a003020102")  # [0] EXPLICIT INTEGER 2
SHA256_WITH_RSA = bytes.fromhex("300d06092a864886f70d01010b0500")  # with NULL parameters


def subject_template() -> tuple[bytes, bytes]:
    """The holder subject (C=JP, CN=<40 hex digits of the serial>) as cryptography encodes
    it, split around the CN value (its length is fixed, so the prefix never changes)."""
    marker = "Q" * 40
    der = x509.Name([x509.NameAttribute(NameOID.COUNTRY_NAME, "JP"),
                     x509.NameAttribute(NameOID.COMMON_NAME, marker)]).public_bytes()
    at = der.index(marker.encode("ascii"))
    return der[:at], der[at + 40:]


SUBJECT_PREFIX, SUBJECT_SUFFIX = subject_template()


class Encoded(NamedTuple):
    """An extension and its DER (Extension ::= SEQUENCE { extnID, critical, extnValue })."""

    extension: x509.Extension[Any]
    der: bytes


def encoded(ext: x509.Extension[Any]) -> Encoded:
    """The extension DER-encoded once: certificates copy the bytes instead of re-encoding
    the Python objects every time (issuance speed). The certificate's DER is the same;
    parsing it gives back the typed extension."""
    value = ext.value
    raw = value.value if isinstance(value, x509.UnrecognizedExtension) else value.public_bytes()
    der = Der.tlv(0x30, Der.oid(ext.oid) + (b"\x01\x01\xff" if ext.critical else b"")
                   + Der.tlv(0x04, raw))
    return Encoded(x509.Extension(ext.oid, ext.critical,
                                   x509.UnrecognizedExtension(ext.oid, raw)), der)


def extension(value: x509.ExtensionType, *, critical: bool = False) -> x509.Extension[Any]:
    return x509.Extension(value.oid, critical, value)


def key_usage(*, non_repudiation: bool) -> Encoded:
    return encoded(extension(x509.KeyUsage(
        digital_signature=True, content_commitment=non_repudiation, key_encipherment=False,
        data_encipherment=False, key_agreement=False, key_cert_sign=False, crl_sign=False,
        encipher_only=False, decipher_only=False,
    ), critical=True))


EXT_NOT_CA = encoded(extension(x509.BasicConstraints(ca=False, path_length=None), critical=True))
KU_SIGNING = key_usage(non_repudiation=True)
KU_USER_AUTH = key_usage(non_repudiation=False)


@dataclasses.dataclass(frozen=True)
class IssuerValues:
    """What every certificate of one issuer shares: its name and the AKI extension."""

    name: x509.Name
    name_der: bytes
    authority_key_identifier: Encoded


@functools.lru_cache(maxsize=64)
def issuer_values(issuer: x509.Certificate) -> IssuerValues:
    try:
        ski = issuer.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    except x509.ExtensionNotFound:
        raise ProfileError("the issuer certificate has no subjectKeyIdentifier") from None
    return IssuerValues(issuer.subject, issuer.subject.public_bytes(), encoded(
        extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski))))


def subject_key_identifier(key: rsa.RSAPublicKey) -> Encoded:
    """RFC 5280 4.2.1.2 method 1 (SHA-1 of the subjectPublicKey bits), as
    `x509.SubjectKeyIdentifier.from_public_key` computes it, encoded directly."""
    digest = hashlib.sha1(key.public_bytes(Encoding.DER, PublicFormat.PKCS1)).digest()
    oid = ExtensionOID.SUBJECT_KEY_IDENTIFIER
    value = x509.UnrecognizedExtension(oid, b"\x04\x14" + digest)
    return Encoded(x509.Extension(oid, False, value), SKI_PREFIX + digest)


SKI_PREFIX = encoded(extension(x509.SubjectKeyIdentifier(bytes(20)))).der[:-20]


@functools.lru_cache(maxsize=4096)
def distribution_extensions(crl_url: str) -> Encoded:
    return encoded(extension(x509.CRLDistributionPoints([
        x509.DistributionPoint(full_name=[x509.UniformResourceIdentifier(crl_url)],
                               relative_name=None, reasons=None, crl_issuer=None)
    ])))


@functools.lru_cache(maxsize=16)
def ocsp_extension(ocsp_url: str) -> Encoded:
    return encoded(extension(x509.AuthorityInformationAccess([
        x509.AccessDescription(x509.oid.AuthorityInformationAccessOID.OCSP,
                               x509.UniformResourceIdentifier(ocsp_url))
    ])))
