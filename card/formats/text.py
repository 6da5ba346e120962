"""Files of the card-info input support application (券面事項入力補助AP): My Number,
the four facts, the integrity record."""

from __future__ import annotations

import hashlib
import hmac
import struct
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from card import tlv
from card.formats.identity import BasicFour
from card.formats.signing import (
    KEY_ID_LENGTH,
    _verifies,
    key_id,
    parse_cv_certificate,
    parse_public_key_object,
    public_key_object,
    self_signed_cv_certificate,
    signed_object,
)
from card.formats.values import (
    parse_yyyymmdd,
    validate_my_number,
    yyyymmdd,
)
from card.tlv import MalformedData

# --- Text area files --------------------------------------------------------------

TAG_MY_NUMBER = 0xFF10
MY_NUMBER_FILE_LENGTH = 17


def my_number_file(number: str) -> bytes:
    """Text EF 0001: `FF 10 0C` + 12 ASCII digits + `FF FF` (17 bytes)."""
    validate_my_number(number)
    return tlv.encode(TAG_MY_NUMBER, number.encode("ascii")) + b"\xff\xff"


def parse_my_number_file(data: bytes) -> str:
    value = tlv.parse_file(data, TAG_MY_NUMBER).value
    try:
        number = value.decode("ascii")
        return validate_my_number(number)
    except (UnicodeDecodeError, ValueError):
        raise MalformedData("My Number file holds no valid My Number") from None


TAG_FOUR_FACTS = 0xFF20
TAG_OFFSETS = 0xDF21
TAG_NAME = 0xDF22
TAG_ADDRESS = 0xDF23
TAG_BIRTH = 0xDF24
TAG_SEX = 0xDF25


def basic_four_file(facts: BasicFour) -> bytes:
    """Text EF 0002: `FF20 { DF21 offsets, DF22 name, DF23 address, DF24 birth, DF25 sex }`.

    DF21 holds four big-endian u16 offsets, counted from the start of the file, of
    the DF22..DF25 objects, as the real card does.
    """
    facts_tlvs = [
        tlv.encode(TAG_NAME, facts.name.encode("utf-8")),
        tlv.encode(TAG_ADDRESS, facts.address.encode("utf-8")),
        tlv.encode(TAG_BIRTH, yyyymmdd(facts.birth_date)),
        tlv.encode(TAG_SEX, facts.sex.encode("ascii")),
    ]
    offsets_tlv_len = 2 + 1 + 8
    value_len = offsets_tlv_len + sum(len(t) for t in facts_tlvs)
    header_len = len(tlv.tag_bytes(TAG_FOUR_FACTS)) + len(tlv.encode_length(value_len))
    position = header_len + offsets_tlv_len
    offsets = []
    for t in facts_tlvs:
        offsets.append(position)
        position += len(t)
    table = tlv.encode(TAG_OFFSETS, struct.pack(">4H", *offsets))
    return tlv.encode(TAG_FOUR_FACTS, table + b"".join(facts_tlvs))


def _basic_four_objects(data: bytes) -> tuple[tlv.Tlv, dict[int, bytes]]:
    outer = tlv.parse_file(data, TAG_FOUR_FACTS)
    return outer, tlv.to_dict(outer.children())


def parse_basic_four_file(data: bytes) -> BasicFour:
    """The basic four facts from text EF 0002 (offset table checked against the data)."""
    outer, items = _basic_four_objects(data)
    try:
        facts = BasicFour(
            name=tlv.find(outer.children(), TAG_NAME).decode("utf-8"),
            address=items[TAG_ADDRESS].decode("utf-8"),
            birth_date=parse_yyyymmdd(items[TAG_BIRTH]),
            sex=items[TAG_SEX].decode("ascii"),
        )
    except (KeyError, UnicodeDecodeError, ValueError, TypeError) as exc:
        raise MalformedData(f"basic four facts file is malformed: {exc}") from None
    if TAG_OFFSETS in items:
        offsets = struct.unpack(">4H", items[TAG_OFFSETS][:8])
        for offset, tag in zip(offsets, (TAG_NAME, TAG_ADDRESS, TAG_BIRTH, TAG_SEX), strict=True):
            if data[offset : offset + 2] != tlv.tag_bytes(tag):
                raise MalformedData(f"offset table does not point at {tag:X}")
    return facts


def basic_four_hashed_part(data: bytes) -> bytes:
    """The FF20 value from DF22 to its end: what DF32 of the integrity record hashes."""
    outer = tlv.parse_file(data, TAG_FOUR_FACTS)
    value = outer.value
    if value[:2] == tlv.tag_bytes(TAG_OFFSETS):
        _, end = tlv.parse_one(value)
        return value[end:]
    return value


TAG_INTEGRITY = 0xFF30
TAG_MY_NUMBER_HASH = 0xDF31
TAG_FOUR_FACTS_HASH = 0xDF32
TAG_INTEGRITY_SIGNATURE = 0xDF33


def _integrity_signed_part(my_number_file_bytes: bytes, basic_four_file_bytes: bytes) -> bytes:
    return tlv.encode(
        TAG_MY_NUMBER_HASH, hashlib.sha256(my_number_file_bytes).digest()
    ) + tlv.encode(
        TAG_FOUR_FACTS_HASH, hashlib.sha256(basic_four_hashed_part(basic_four_file_bytes)).digest()
    )


def integrity_record(
    my_number_file_bytes: bytes, basic_four_file_bytes: bytes, signer: rsa.RSAPrivateKey
) -> bytes:
    """Text EF 0003: `FF30 { DF31 sha256(0001), DF32 sha256(0002 from DF22), DF33 sig }`.

    The signature is RSA PKCS#1 v1.5 with SHA-256 over the DF31 and DF32 TLVs. `signer`
    is anything implementing cryptography's RSAPrivateKey, so an HSM key plugs in.
    """
    if not isinstance(signer, rsa.RSAPrivateKey):
        raise TypeError("signer must implement cryptography's RSAPrivateKey")
    if len(my_number_file_bytes) != MY_NUMBER_FILE_LENGTH:
        raise ValueError("the My Number file is 17 bytes")
    signed = _integrity_signed_part(my_number_file_bytes, basic_four_file_bytes)
    signature = signer.sign(signed, padding.PKCS1v15(), hashes.SHA256())
    return tlv.encode(TAG_INTEGRITY, signed + tlv.encode(TAG_INTEGRITY_SIGNATURE, signature))


@dataclass(frozen=True)
class IntegrityCheck:
    """Outcome of checking text EF 0003 against 0001 and 0002."""

    my_number_hash_ok: bool
    basic_four_hash_ok: bool
    signature_ok: bool | None  # None: no issuer public key was given

    @property
    def ok(self) -> bool:
        return (
            self.my_number_hash_ok and self.basic_four_hash_ok and self.signature_ok is not False
        )


def check_integrity_record(
    record: bytes,
    my_number_file_bytes: bytes,
    basic_four_file_bytes: bytes,
    issuer_public_key: rsa.RSAPublicKey | None = None,
) -> IntegrityCheck:
    """Check the hashes always, the signature when the issuer's public key is given."""
    outer = tlv.parse_file(record, TAG_INTEGRITY)
    items = outer.children()
    mn_hash = tlv.find(items, TAG_MY_NUMBER_HASH)
    bf_hash = tlv.find(items, TAG_FOUR_FACTS_HASH)
    signature = tlv.find(items, TAG_INTEGRITY_SIGNATURE)
    mn_ok = hmac.compare_digest(mn_hash, hashlib.sha256(my_number_file_bytes).digest())
    bf_ok = hmac.compare_digest(
        bf_hash, hashlib.sha256(basic_four_hashed_part(basic_four_file_bytes)).digest()
    )
    sig_ok: bool | None = None
    if issuer_public_key is not None:
        signed = tlv.encode(TAG_MY_NUMBER_HASH, mn_hash) + tlv.encode(TAG_FOUR_FACTS_HASH, bf_hash)
        try:
            issuer_public_key.verify(signature, signed, padding.PKCS1v15(), hashes.SHA256())
            sig_ok = True
        except InvalidSignature:
            sig_ok = False
    return IntegrityCheck(mn_ok, bf_ok, sig_ok)


# --- Text EF 0004 and 0005 -------------------------------------------------------------

TEXT_KEY_ID_PREFIX = b"6000033"  # test cards' key IDs start with 6; 5000033 on production
TEXT_AP_ID = bytes.fromhex("01030E01")  # spec version, extended length, vendor ID, vendor byte
TAG_TEXT_BASIC = 0xFF40
TAG_TEXT_AP_ID = 0xDF41
TAG_TEXT_KEY_ID = 0xDF42
TAG_TEXT_BASIC_DATA = 0xDF43
TEXT_BASIC_DATA_LENGTH = 128  # 32 bytes of data, 96 of FF


def text_key_id(issuer_key: rsa.RSAPublicKey) -> bytes:
    """16-byte key ID of the key that signs the integrity record (the one text EF 0004 holds)."""
    return key_id(TEXT_KEY_ID_PREFIX, issuer_key)


def text_cv_certificate(signer: rsa.RSAPrivateKey) -> bytes:
    """Text EF 0004: the 568-byte CV certificate of the key that signs EF 0003.

    As on the surface, that key is the center's integrity key and the certificate is
    self-signed: a reader compares the key with the center's published one.
    """
    return self_signed_cv_certificate(signer, TEXT_KEY_ID_PREFIX)


def text_basic_file(cv_certificate_bytes: bytes) -> bytes:
    """Text EF 0005: `FF40 { DF41 01030E01, DF42 key ID, DF43 81 80 (32 bytes + 96 FF) }`.

    The real card's 32 data bytes are not public; mynacard puts the SHA-256 of EF 0004
    there, so the basic data names the certificate it goes with.
    """
    cert = parse_cv_certificate(cv_certificate_bytes)
    data = hashlib.sha256(cv_certificate_bytes).digest().ljust(TEXT_BASIC_DATA_LENGTH, b"\xff")
    return tlv.encode(TAG_TEXT_BASIC, tlv.encode_all([
        (TAG_TEXT_AP_ID, TEXT_AP_ID), (TAG_TEXT_KEY_ID, cert.subject_key_id),
        (TAG_TEXT_BASIC_DATA, data)]))


@dataclass(frozen=True)
class TextBasic:
    ap_id: bytes
    key_id: bytes
    data: bytes  # 128 bytes


def parse_text_basic_file(data: bytes) -> TextBasic:
    items = tlv.to_dict(tlv.parse_file(data, TAG_TEXT_BASIC).children())
    try:
        basic = TextBasic(items[TAG_TEXT_AP_ID], items[TAG_TEXT_KEY_ID],
                          items[TAG_TEXT_BASIC_DATA])
    except KeyError as exc:
        raise MalformedData(f"text basic data is malformed: {exc}") from None
    if (len(basic.ap_id) != 4 or len(basic.key_id) != KEY_ID_LENGTH
            or len(basic.data) != TEXT_BASIC_DATA_LENGTH):
        raise MalformedData("text basic data has fields of the wrong size")
    return basic


# --- The text area's key files (EF 0006, EF 0007) ------------------------------------

TAG_SESSION_KEY = 0xA1  # EF 0006: A1 { 90 e, 91 n }
TAG_SIGNED_CARD_KEY = 0xFF50  # EF 0007: FF50 { DF51 key, DF52 signature }
TAG_SIGNED_CARD_KEY_KEY = 0xDF51
TAG_SIGNED_CARD_KEY_SIGNATURE = 0xDF52


def session_key_file(key: rsa.RSAPublicKey) -> bytes:
    """Text EF 0006: the session-key encryption key `A1 { 90 03 e, 91 82 01 00 n }`
    (269 bytes with RSA-2048)."""
    return tlv.encode(TAG_SESSION_KEY, public_key_object(key))


def parse_session_key_file(data: bytes) -> rsa.RSAPublicKey | None:
    return parse_public_key_object(tlv.parse_file(data, TAG_SESSION_KEY).value)


def signed_card_key_file(card_key: rsa.RSAPublicKey, signer: rsa.RSAPrivateKey) -> bytes:
    """Text EF 0007: `FF50 82 02 13 { DF51 82 01 09 key, DF52 82 01 00 signature }` (536
    bytes): the card's public key, signed (PKCS#1 v1.5 SHA-256 over the DF51 object) by
    `signer`, the key text EF 0004 certifies."""
    return signed_object(TAG_SIGNED_CARD_KEY,
                         [(TAG_SIGNED_CARD_KEY_KEY, public_key_object(card_key))],
                         TAG_SIGNED_CARD_KEY_SIGNATURE, signer)


@dataclass(frozen=True)
class SignedCardKey:
    card_public_key: rsa.RSAPublicKey | None
    signature: bytes
    signed_part: bytes

    def verify(self, issuer_key: rsa.RSAPublicKey) -> bool:
        return _verifies(issuer_key, self.signature, self.signed_part)


def parse_signed_card_key_file(data: bytes) -> SignedCardKey:
    items = tlv.to_dict(tlv.parse_file(data, TAG_SIGNED_CARD_KEY).children())
    try:
        key = items[TAG_SIGNED_CARD_KEY_KEY]
        return SignedCardKey(parse_public_key_object(key), items[TAG_SIGNED_CARD_KEY_SIGNATURE],
                             tlv.encode(TAG_SIGNED_CARD_KEY_KEY, key))
    except KeyError as exc:
        raise MalformedData(f"signed card key is malformed: {exc}") from None
