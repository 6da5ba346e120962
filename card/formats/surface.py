"""Files of the card surface application (券面AP): age record, card face, My Number
image, basic data; the images come from card/images.py."""

from __future__ import annotations

import struct
from dataclasses import dataclass
from datetime import date

from cryptography.hazmat.primitives.asymmetric import rsa

from card import tlv
from card.formats.identity import BasicFour
from card.formats.signing import (
    _sign,
    _verifies,
    key_id,
    parse_cv_certificate,
    parse_public_key_object,
    public_key_object,
    self_signed_cv_certificate,
    signed_object,
    signed_part,
)
from card.formats.values import (
    parse_yyyymmdd,
    validate_municipality_code,
    yyyymmdd,
)
from card.tlv import MalformedData

# --- Surface area files ---------------------------------------------------------

SURFACE_KEY_ID_PREFIX = b"6000023"  # test cards' key IDs start with 6; 5000023 on production


def surface_key_id(issuer_key: rsa.RSAPublicKey) -> bytes:
    """16-byte key ID of the key that signs the surface files (the one in EF 0004)."""
    return key_id(SURFACE_KEY_ID_PREFIX, issuer_key)


def surface_cv_certificate(signer: rsa.RSAPrivateKey) -> bytes:
    """Surface EF 0004: the CV certificate of the key that signs the surface files.

    568 bytes. mynacard's surface files are signed by the center's integrity key, so
    the certificate carries that key and is signed by it (issuer = subject): a reader
    trusts it by comparing the key with the center's published one, not by the chain.
    """
    return self_signed_cv_certificate(signer, SURFACE_KEY_ID_PREFIX)

TAG_AGE_RECORD = 0xFF10  # surface EF 0001: FF10 { DF11 birth, DF12 card key, DF13 signature }
TAG_AGE_BIRTH = 0xDF11
TAG_AGE_CARD_KEY = 0xDF12
TAG_AGE_SIGNATURE = 0xDF13
TAG_FACE = 0xFF20
TAG_FACE_OFFSETS = 0xDF21
TAG_FACE_BIRTH = 0xDF22
TAG_FACE_SEX = 0xDF23
TAG_FACE_CARD_KEY = 0xDF24
TAG_FACE_NAME = 0xDF25
TAG_FACE_ADDRESS = 0xDF26
TAG_FACE_PHOTO = 0xDF27
TAG_FACE_SIGNATURE = 0xDF28
TAG_FACE_EXPIRY = 0xDF29
TAG_FACE_SECURITY_CODE = 0xDF2A
_FACE_SIGNED_TAGS = (TAG_FACE_BIRTH, TAG_FACE_SEX, TAG_FACE_CARD_KEY, TAG_FACE_NAME,
                     TAG_FACE_ADDRESS, TAG_FACE_PHOTO)
_FACE_TAGS = (*_FACE_SIGNED_TAGS, TAG_FACE_SIGNATURE, TAG_FACE_EXPIRY, TAG_FACE_SECURITY_CODE)
TAG_MY_NUMBER_IMAGE = 0xFF40
TAG_MY_NUMBER_PNG = 0xDF41
TAG_MY_NUMBER_CARD_KEY = 0xDF42
TAG_MY_NUMBER_SIGNATURE = 0xDF43
TAG_SURFACE_BASIC = 0xFF30

SURFACE_AP_ID = bytes.fromhex("06030E01")  # spec version, extended length, vendor
SURFACE_AP_VERSION = b"\x01"
SURFACE_KEY_ID_PREFIX = b"6000023"  # test cards' key IDs start with 6; 5000023 on production

def surface_basic_file(municipality_code: str, signer: rsa.RSAPrivateKey) -> bytes:
    """Surface EF 0003: `FF30 { DF31 06030E01, DF32 key ID, DF33 version, DF34 municipality,
    DF35 key ID + 256-byte signature over DF31..DF34 }` (the signature is mynacard's choice
    for the 256 bytes the real card keeps opaque)."""
    kid = surface_key_id(signer.public_key())
    head = tlv.encode_all([
        (0xDF31, SURFACE_AP_ID),
        (0xDF32, kid),
        (0xDF33, SURFACE_AP_VERSION),
        (0xDF34, validate_municipality_code(municipality_code).encode("ascii")),
    ])
    return tlv.encode(TAG_SURFACE_BASIC, head + tlv.encode(0xDF35, kid + _sign(signer, head)))


@dataclass(frozen=True)
class SurfaceBasic:
    ap_id: bytes
    key_id: bytes
    version: bytes
    municipality_code: str


def parse_surface_basic_file(data: bytes) -> SurfaceBasic:
    items = tlv.to_dict(tlv.parse_file(data, TAG_SURFACE_BASIC).children())
    try:
        return SurfaceBasic(items[0xDF31], items[0xDF32], items[0xDF33],
                            validate_municipality_code(items[0xDF34].decode("ascii")))
    except (KeyError, UnicodeDecodeError, ValueError) as exc:
        raise MalformedData(f"surface basic data is malformed: {exc}") from None


@dataclass(frozen=True)
class CardFace:
    """The card face the card surface application holds (images, not text, as on the card)."""

    birth_date: date
    sex: str
    card_public_key: rsa.RSAPublicKey | None
    name_image: bytes  # PNG, 1-bit
    address_image: bytes  # PNG, 1-bit
    photo: bytes | None  # JPEG 2000; none on an infant's card
    signature: bytes
    expiry: date
    security_code_image: bytes  # PNG 24×12
    signed_part: bytes  # the DF22..DF27 objects DF28 signs

    def verify(self, issuer_key: rsa.RSAPublicKey) -> bool:
        """Whether DF28 is the signature of `issuer_key` (the key in surface EF 0004)."""
        return _verifies(issuer_key, self.signature, self.signed_part)


def card_face_file(
    facts: BasicFour,
    expiry: date,
    *,
    name_image: bytes,
    address_image: bytes,
    photo: bytes | None,
    security_code_image: bytes,
    card_public_key: rsa.RSAPublicKey | None,
    signer: rsa.RSAPrivateKey,
) -> bytes:
    """Surface EF 0002: `FF20 { DF21 offsets, DF22 birth, DF23 sex, DF24 card key, DF25 name,
    DF26 address, [DF27 photo], DF28 signature, DF29 expiry, DF2A security-code image }`.

    DF21 holds big-endian u16 offsets, from the start of the file, of each object that
    follows (0 for an absent photo). DF28 is RSA PKCS#1 v1.5 SHA-256 by `signer` (the key
    in surface EF 0004) over the DF22..DF27 objects as written; DF29 and DF2A follow the
    signature and are not covered by it, as on the real card.
    """
    signed = tlv.encode_all([
        (TAG_FACE_BIRTH, yyyymmdd(facts.birth_date)),
        (TAG_FACE_SEX, facts.sex.encode("ascii")),
        (TAG_FACE_CARD_KEY, public_key_object(card_public_key)),
        (TAG_FACE_NAME, name_image),
        (TAG_FACE_ADDRESS, address_image),
    ]) + (tlv.encode(TAG_FACE_PHOTO, photo) if photo is not None else b"")
    return _face_from_signed(signed, _sign(signer, signed), expiry, security_code_image)


def _face_from_signed(signed: bytes, signature: bytes, expiry: date,
                      security_code_image: bytes) -> bytes:
    objects = tlv.parse_all(signed) + tlv.parse_all(tlv.encode_all([
        (TAG_FACE_SIGNATURE, signature),
        (TAG_FACE_EXPIRY, yyyymmdd(expiry)),
        (TAG_FACE_SECURITY_CODE, security_code_image),
    ]))
    encoded = {o.tag: tlv.encode(o.tag, o.value) for o in objects}
    table_len = 3 + 2 * len(_FACE_TAGS)  # DF21, one length byte, a u16 per object
    value_len = table_len + sum(len(v) for v in encoded.values())
    position = len(tlv.tag_bytes(TAG_FACE)) + len(tlv.encode_length(value_len)) + table_len
    offsets = []
    for tag in _FACE_TAGS:
        if tag in encoded:
            offsets.append(position)
            position += len(encoded[tag])
        else:
            offsets.append(0)
    table = tlv.encode(TAG_FACE_OFFSETS, struct.pack(f">{len(_FACE_TAGS)}H", *offsets))
    body = b"".join(encoded[t] for t in _FACE_TAGS if t in encoded)
    return tlv.encode(TAG_FACE, table + body)


def rewrite_card_face(old: bytes, facts: BasicFour, expiry: date, *, name_image: bytes,
                      address_image: bytes, signer: rsa.RSAPrivateKey) -> bytes:
    """A card face with new facts that keeps the card key, photo and security code of `old`."""
    face = parse_card_face_file(old)
    signed = tlv.encode_all([
        (TAG_FACE_BIRTH, yyyymmdd(facts.birth_date)),
        (TAG_FACE_SEX, facts.sex.encode("ascii")),
        (TAG_FACE_CARD_KEY, public_key_object(face.card_public_key)),
        (TAG_FACE_NAME, name_image),
        (TAG_FACE_ADDRESS, address_image),
    ]) + (tlv.encode(TAG_FACE_PHOTO, face.photo) if face.photo is not None else b"")
    return _face_from_signed(signed, _sign(signer, signed), expiry, face.security_code_image)


def parse_card_face_file(data: bytes) -> CardFace:
    """Surface EF 0002 read back: every object, the offset table checked against the data."""
    outer = tlv.parse_file(data, TAG_FACE)
    children = outer.children()
    items = tlv.to_dict(children)
    try:
        signed = b"".join(tlv.encode(o.tag, o.value) for o in children
                          if o.tag in _FACE_SIGNED_TAGS)
        face = CardFace(
            birth_date=parse_yyyymmdd(items[TAG_FACE_BIRTH]),
            sex=items[TAG_FACE_SEX].decode("ascii"),
            card_public_key=parse_public_key_object(items[TAG_FACE_CARD_KEY]),
            name_image=items[TAG_FACE_NAME],
            address_image=items[TAG_FACE_ADDRESS],
            photo=items.get(TAG_FACE_PHOTO),
            signature=items[TAG_FACE_SIGNATURE],
            expiry=parse_yyyymmdd(items[TAG_FACE_EXPIRY]),
            security_code_image=items[TAG_FACE_SECURITY_CODE],
            signed_part=signed,
        )
    except (KeyError, UnicodeDecodeError) as exc:
        raise MalformedData(f"card face file is malformed: {exc}") from None
    offsets = struct.unpack(f">{len(_FACE_TAGS)}H", items.get(TAG_FACE_OFFSETS, b"")[
        : 2 * len(_FACE_TAGS)].ljust(2 * len(_FACE_TAGS), b"\0"))
    if TAG_FACE_OFFSETS in items:
        for offset, tag in zip(offsets, _FACE_TAGS, strict=True):
            if offset and data[offset : offset + 2] != tlv.tag_bytes(tag):
                raise MalformedData(f"offset table does not point at {tag:X}")
    return face


def verify_card_face(face_file: bytes, cv_certificate: bytes) -> bool:
    """Whether surface EF 0002's DF28 verifies with the key of surface EF 0004."""
    return parse_card_face_file(face_file).verify(
        parse_cv_certificate(cv_certificate).public_key)


def my_number_image_file(image: bytes, card_public_key: rsa.RSAPublicKey | None,
                         signer: rsa.RSAPrivateKey) -> bytes:
    """Surface EF 0005: `FF40 { DF41 PNG 72×12, DF42 card key, DF43 signature over DF41 DF42 }`."""
    return signed_object(TAG_MY_NUMBER_IMAGE, [
        (TAG_MY_NUMBER_PNG, image), (TAG_MY_NUMBER_CARD_KEY, public_key_object(card_public_key))],
        TAG_MY_NUMBER_SIGNATURE, signer)


@dataclass(frozen=True)
class MyNumberImage:
    image: bytes
    card_public_key: rsa.RSAPublicKey | None
    signature: bytes
    signed_part: bytes

    def verify(self, issuer_key: rsa.RSAPublicKey) -> bool:
        return _verifies(issuer_key, self.signature, self.signed_part)


def parse_my_number_image_file(data: bytes) -> MyNumberImage:
    children = tlv.parse_file(data, TAG_MY_NUMBER_IMAGE).children()
    items = tlv.to_dict(children)
    try:
        return MyNumberImage(
            items[TAG_MY_NUMBER_PNG], parse_public_key_object(items[TAG_MY_NUMBER_CARD_KEY]),
            items[TAG_MY_NUMBER_SIGNATURE],
            signed_part(children, (TAG_MY_NUMBER_PNG, TAG_MY_NUMBER_CARD_KEY)))
    except KeyError as exc:
        raise MalformedData(f"My Number image file is malformed: {exc}") from None


def age_record_file(birth: date, card_public_key: rsa.RSAPublicKey | None = None,
                    signer: rsa.RSAPrivateKey | None = None) -> bytes:
    """Surface EF 0001: `FF10 { DF11 birth YYYYMMDD, DF12 card key, DF13 signature }`, as on
    the real card (547 bytes with RSA-2048 keys: `FF10 82 02 1E`).

    DF13 is RSA PKCS#1 v1.5 SHA-256 by `signer` (the key in surface EF 0004) over the DF11
    and DF12 objects; DF12 is the card's own public key (as in DF24 and DF42), not the
    signing key. Without a signer only DF11 is written (a bare date for format tests; the
    issuer always signs)."""
    if signer is None:
        return tlv.encode(TAG_AGE_RECORD, tlv.encode(TAG_AGE_BIRTH, yyyymmdd(birth)))
    return signed_object(TAG_AGE_RECORD, [
        (TAG_AGE_BIRTH, yyyymmdd(birth)), (TAG_AGE_CARD_KEY, public_key_object(card_public_key))],
        TAG_AGE_SIGNATURE, signer)


@dataclass(frozen=True)
class AgeRecord:
    birth_date: date
    card_public_key: rsa.RSAPublicKey | None
    signature: bytes | None
    signed_part: bytes

    def verify(self, issuer_key: rsa.RSAPublicKey) -> bool:
        """Whether DF13 is the signature of `issuer_key` (the key in surface EF 0004)."""
        return self.signature is not None and _verifies(issuer_key, self.signature,
                                                        self.signed_part)


def parse_age_record(data: bytes) -> AgeRecord:
    """Surface EF 0001 read back (its filler ignored)."""
    children = tlv.parse_file(data, TAG_AGE_RECORD).children()
    items = tlv.to_dict(children)
    try:
        return AgeRecord(
            parse_yyyymmdd(items[TAG_AGE_BIRTH]),
            parse_public_key_object(items.get(TAG_AGE_CARD_KEY, b"")),
            items.get(TAG_AGE_SIGNATURE),
            signed_part(children, (TAG_AGE_BIRTH, TAG_AGE_CARD_KEY)))
    except KeyError as exc:
        raise MalformedData(f"age record is malformed: {exc}") from None


def parse_age_record_file(data: bytes) -> date:
    """The birth date of surface EF 0001."""
    return parse_age_record(data).birth_date
