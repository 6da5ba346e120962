"""JPKI application (公的個人認証AP): certificates, PINs and signing with the card's keys.

The signing password (EF 001B) protects the signing key and certificate; the
user-authentication PIN (EF 0018) protects the user-authentication key. The
authentication certificate and both CA certificates are free to read.
"""

from __future__ import annotations

import hashlib
from enum import Enum

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import rsa

from card import contract
from card.apdu import command
from card.contract import Ins
from card.formats import CertAvailability, parse_cert_availability_file, parse_token_label
from card.session import AreaClient

# DER prefixes of DigestInfo (RFC 8017 §9.2, note 1) by hash name.
DIGEST_INFO_PREFIXES: dict[str, bytes] = {
    "sha1": bytes.fromhex("3021300906052b0e03021a05000414"),
    "sha256": bytes.fromhex("3031300d060960864801650304020105000420"),
    "sha384": bytes.fromhex("3041300d060960864801650304020205000430"),
    "sha512": bytes.fromhex("3051300d060960864801650304020305000440"),
}
_DIGEST_SIZES = {"sha1": 20, "sha256": 32, "sha384": 48, "sha512": 64}


def digest_info(hash_name: str, digest: bytes) -> bytes:
    """The DER DigestInfo the card signs (it adds only the PKCS#1 v1.5 padding)."""
    try:
        prefix = DIGEST_INFO_PREFIXES[hash_name]
    except KeyError:
        raise ValueError(f"unsupported hash {hash_name!r}") from None
    if len(digest) != _DIGEST_SIZES[hash_name]:
        raise ValueError(f"a {hash_name} digest is {_DIGEST_SIZES[hash_name]} bytes")
    return prefix + bytes(digest)


class Key(Enum):
    """The two holder keys, with the files that belong to each."""

    AUTH = "auth"
    SIGN = "sign"

    @property
    def key_fid(self) -> int:
        return contract.JPKI_AUTH_KEY if self is Key.AUTH else contract.JPKI_SIGN_KEY

    @property
    def pin_fid(self) -> int:
        return contract.JPKI_AUTH_PIN if self is Key.AUTH else contract.JPKI_SIGN_PIN

    @property
    def cert(self) -> CertKind:
        return CertKind.AUTH if self is Key.AUTH else CertKind.SIGN


class CertKind(Enum):
    """The four certificates of the JPKI area, by file."""

    SIGN = contract.JPKI_SIGN_CERT
    SIGN_CA = contract.JPKI_SIGN_CA_CERT
    AUTH = contract.JPKI_AUTH_CERT
    AUTH_CA = contract.JPKI_AUTH_CA_CERT

    @property
    def fid(self) -> int:
        return int(self.value)


class JpkiClient(AreaClient):
    """Holder operations of the JPKI application."""

    area = contract.JPKI

    def read_certificate_der(self, kind: CertKind) -> bytes:
        """A certificate's DER (the signing certificate needs the signing password)."""
        return self.read_object(kind.fid)

    def read_certificate(self, kind: CertKind) -> x509.Certificate:
        return x509.load_der_x509_certificate(self.read_certificate_der(kind))

    def token_info(self) -> bytes:
        return self.read_raw(contract.JPKI_TOKEN_INFO, 160)

    def token_label(self) -> str:
        """The token label OpenSC checks (`JPKIAPICCTOKEN2` on a contact card)."""
        return parse_token_label(self.token_info())

    def cert_availability(self) -> CertAvailability:
        return parse_cert_availability_file(self.read_raw(contract.JPKI_CERT_AVAILABILITY, 3))

    def tries_left_for(self, key: Key) -> int:
        return self.tries_left(key.pin_fid)

    def verify_pin(self, key: Key, pin: str) -> None:
        """VERIFY the PIN of `key`: the user-authentication PIN or the signing password."""
        self.verify(key.pin_fid, pin)

    def change_key_pin(self, key: Key, old: str, new: str) -> None:
        self.change_pin(key.pin_fid, old, new)

    def public_key(self, key: Key) -> rsa.RSAPublicKey:
        """The public key of a holder key (`00 47 81 00 00`), no PIN needed."""
        self.select_ef(key.key_fid)
        modulus = self.channel.send(
            command(contract.CLA_ISO, Ins.GENERATE_KEY, contract.GENERATE_P1_READ_PUBLIC, 0x00,
                    le=256)
        )
        return rsa_public_key(modulus)

    def sign(self, key: Key, digest_info_der: bytes) -> bytes:
        """Sign a DigestInfo with PKCS#1 v1.5 on the card (`80 2A 00 80`).

        The key's PIN must have been verified since this application was selected.
        """
        if not isinstance(digest_info_der, (bytes, bytearray)):
            raise TypeError("a DigestInfo is bytes")
        if not 1 <= len(digest_info_der) <= contract.SIGN_MAX_INPUT:
            raise ValueError(f"the card signs 1 to {contract.SIGN_MAX_INPUT} bytes")
        self.select_ef(key.key_fid)
        return self.channel.send(
            command(contract.CLA_PROPRIETARY, Ins.SIGN, contract.SIGN_P1_PKCS1_V15,
                    contract.P2_CURRENT_KEY, bytes(digest_info_der), le=256)
        )

    def sign_sha256(self, key: Key, data: bytes) -> bytes:
        """Hash `data` with SHA-256 on the host and sign its DigestInfo on the card."""
        return self.sign(key, digest_info("sha256", hashlib.sha256(data).digest()))


def rsa_public_key(modulus: bytes) -> rsa.RSAPublicKey:
    """An RSA public key from the card's modulus (the exponent is always 65537)."""
    if len(modulus) != contract.RSA_MODULUS_BYTES:
        raise ValueError("the card returns a 256-byte modulus")
    return rsa.RSAPublicNumbers(
        contract.RSA_PUBLIC_EXPONENT, int.from_bytes(modulus, "big")
    ).public_key()
