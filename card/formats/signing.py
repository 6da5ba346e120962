"""Signatures and keys the card files carry: RSA PKCS#1 v1.5 SHA-256 by an issuer key,
card public-key objects (`90 e`, `91 n`), 16-byte key IDs and card-verifiable certificates
(`7F21`), shared by the text, surface and MF-level files."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from card import tlv
from card.tlv import MalformedData

TAG_CV_CERT = 0x7F21
TAG_CV_BODY = 0x5F4E
TAG_CV_SIGNATURE = 0x5F37

CV_CERT_LENGTH = 568
KEY_ID_LENGTH = 16


def _sign(signer: rsa.RSAPrivateKey, data: bytes) -> bytes:
    if not isinstance(signer, rsa.RSAPrivateKey):
        raise TypeError("signer must implement cryptography's RSAPrivateKey")
    return signer.sign(data, padding.PKCS1v15(), hashes.SHA256())


def _verifies(key: rsa.RSAPublicKey, signature: bytes, data: bytes) -> bool:
    try:
        key.verify(signature, data, padding.PKCS1v15(), hashes.SHA256())
    except InvalidSignature:
        return False
    return True


def signed_object(tag: int, parts: Iterable[tuple[int, bytes]], signature_tag: int,
                  signer: rsa.RSAPrivateKey) -> bytes:
    """`tag { parts…, signature_tag signature }`, the signature PKCS#1 v1.5 SHA-256 by
    `signer` over the encoded parts: the card's signed files (surface EF 0001 and 0005,
    text EF 0007) are all built so."""
    signed = tlv.encode_all(parts)
    return tlv.encode(tag, signed + tlv.encode(signature_tag, _sign(signer, signed)))


def signed_part(children: Iterable[tlv.Tlv], tags: Iterable[int]) -> bytes:
    """What a signed file's signature covers: its objects with these tags, encoded again."""
    wanted = set(tags)
    return b"".join(tlv.encode(o.tag, o.value) for o in children if o.tag in wanted)


def public_key_object(key: rsa.RSAPublicKey | None) -> bytes:
    """A card public key as the surface files carry it: `90 03 e` + `91 82 01 00 n` (or empty)."""
    if key is None:
        return b""
    numbers = key.public_numbers()
    size = (key.key_size + 7) // 8
    return (tlv.encode(0x90, numbers.e.to_bytes(3, "big"))
            + tlv.encode(0x91, numbers.n.to_bytes(size, "big")))


def parse_public_key_object(raw: bytes) -> rsa.RSAPublicKey | None:
    if not raw:
        return None
    items = tlv.to_dict(tlv.parse_all(raw))
    try:
        return rsa.RSAPublicNumbers(int.from_bytes(items[0x90], "big"),
                                    int.from_bytes(items[0x91], "big")).public_key()
    except (KeyError, ValueError) as exc:
        raise MalformedData(f"card public key object is malformed: {exc}") from None


def key_id(prefix: bytes, key: rsa.RSAPublicKey) -> bytes:
    """A 16-byte key ID: a 7-digit ASCII prefix naming the key's role (test cards' IDs start
    with 6, production ones with 5) + the first 9 bytes of SHA-256 of the key object."""
    if len(prefix) != 7 or not prefix.isdigit():
        raise ValueError("a key ID prefix is 7 ASCII digits")
    return prefix + hashlib.sha256(public_key_object(key)).digest()[:9]


def cv_certificate(signer: rsa.RSAPrivateKey, *, issuer_key_id: bytes, subject_key_id: bytes,
                   subject_key: rsa.RSAPublicKey) -> bytes:
    """`7F21 { 5F4E (issuer key ID 16, subject key ID 16, 90 e, 91 n), 5F37 signature }`.

    568 bytes with an RSA-2048 subject key; the signature is RSA PKCS#1 v1.5 SHA-256 by
    `signer` over the 5F4E object.
    """
    if len(issuer_key_id) != KEY_ID_LENGTH or len(subject_key_id) != KEY_ID_LENGTH:
        raise ValueError("key IDs are 16 bytes")
    body = tlv.encode(TAG_CV_BODY, issuer_key_id + subject_key_id + public_key_object(subject_key))
    cert = tlv.encode(TAG_CV_CERT, body + tlv.encode(TAG_CV_SIGNATURE, _sign(signer, body)))
    if len(cert) != CV_CERT_LENGTH:
        raise ValueError("a CV certificate is 568 bytes (an RSA-2048 key)")
    return cert


def self_signed_cv_certificate(signer: rsa.RSAPrivateKey, prefix: bytes) -> bytes:
    """The CV certificate of `signer`'s own key, signed by it (issuer = subject)."""
    public = signer.public_key()
    kid = key_id(prefix, public)
    return cv_certificate(signer, issuer_key_id=kid, subject_key_id=kid, subject_key=public)


@dataclass(frozen=True)
class CvCertificate:
    issuer_key_id: bytes
    subject_key_id: bytes
    public_key: rsa.RSAPublicKey
    self_signed_ok: bool
    body: bytes = b""  # the 5F4E value
    signature: bytes = b""

    def signed_by(self, issuer_key: rsa.RSAPublicKey) -> bool:
        """Whether the 5F37 signature verifies with `issuer_key`."""
        return _verifies(issuer_key, self.signature, tlv.encode(TAG_CV_BODY, self.body))


def parse_cv_certificate(data: bytes) -> CvCertificate:
    """A CV certificate read back; `self_signed_ok` says whether its own key verifies it."""
    outer = tlv.parse_file(data, TAG_CV_CERT)
    items = tlv.to_dict(outer.children())
    try:
        body = items[TAG_CV_BODY]
        signature = items[TAG_CV_SIGNATURE]
    except KeyError as exc:
        raise MalformedData(f"CV certificate is malformed: {exc}") from None
    key = parse_public_key_object(body[32:])
    if key is None:
        raise MalformedData("CV certificate has no public key")
    return CvCertificate(body[:16], body[16:32], key,
                         _verifies(key, signature, tlv.encode(TAG_CV_BODY, body)), body, signature)
