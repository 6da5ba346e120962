"""What the issuer writes and what holders type: formats of PINs, numbers and files.

Everything here is pure (bytes and strings in, bytes and values out) so it is tested
without a card; the clients use it to parse what they read and the issuer client to
build what it writes. Validation errors are `ValueError`s that never repeat the value
(a PIN or a My Number must not end up in a log through an exception message).
"""

from __future__ import annotations

import hashlib
import hmac
import struct
from dataclasses import dataclass
from datetime import date

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from card import contract, tlv
from card.tlv import MalformedData

# --- PINs ----------------------------------------------------------------------


def validate_pin(spec: contract.PinSpec, pin: str) -> bytes:
    """The PIN as the bytes VERIFY sends, after checking it fits `spec`.

    Digits-only PINs are 0-9; `upper-alnum` is A-Z and 0-9 with at least one letter
    and one digit (the signing password rule). Lower-case letters are refused rather
    than upper-cased: the card compares bytes, so silently changing them would hide
    a typing mistake.
    """
    if not isinstance(pin, str):
        raise TypeError(f"{spec.name} must be a str")
    if not spec.min_length <= len(pin) <= spec.max_length:
        if spec.min_length == spec.max_length:
            raise ValueError(f"{spec.name} must be {spec.min_length} characters long")
        raise ValueError(
            f"{spec.name} must be {spec.min_length} to {spec.max_length} characters long"
        )
    if spec.charset == "digits":
        if not all("0" <= c <= "9" for c in pin):
            raise ValueError(f"{spec.name} must consist of digits 0-9")
    elif spec.charset == "upper-alnum":
        if not all("0" <= c <= "9" or "A" <= c <= "Z" for c in pin):
            raise ValueError(f"{spec.name} must consist of upper-case letters A-Z and digits 0-9")
        if not any(c.isdigit() for c in pin) or not any(c.isalpha() for c in pin):
            raise ValueError(f"{spec.name} must contain at least one letter and one digit")
    else:  # pragma: no cover - the contract only has the two
        raise ValueError(f"unknown PIN charset {spec.charset!r}")
    return pin.encode("ascii")


def _digits(value: str, length: int, what: str) -> str:
    if not isinstance(value, str):
        raise TypeError(f"{what} must be a str")
    if len(value) != length or not value.isascii() or not value.isdigit():
        raise ValueError(f"{what} must be {length} digits")
    return value


# --- My Number and resident code ------------------------------------------------


def _mod11_check(digits: str) -> int:
    """Modulus-11 check digit with weights 2..7 repeating from the lowest digit.

    check = 11 - (sum(P_n * Q_n) mod 11), and 0 when the remainder is 0 or 1,
    where P_n is the n-th digit counted from the least significant one and
    Q_n = n + 1 for n <= 6, n - 5 for n >= 7.
    """
    total = sum(int(d) * ((n - 1) % 6 + 2) for n, d in enumerate(reversed(digits), start=1))
    remainder = total % 11
    return 0 if remainder <= 1 else 11 - remainder


def my_number_check_digit(first11: str) -> int:
    """The check digit of a My Number (個人番号).

    The rule of 総務省令第85号 (2014) §5: for the first 11 digits the weights from
    the most significant one are 6,5,4,3,2,7,6,5,4,3,2; check = 11 - (sum mod 11),
    0 when the remainder is 0 or 1.
    """
    return _mod11_check(_digits(first11, 11, "the first part of a My Number"))


def validate_my_number(number: str) -> str:
    """A 12-digit My Number with a correct check digit, else ValueError."""
    _digits(number, 12, "a My Number")
    if my_number_check_digit(number[:11]) != int(number[11]):
        raise ValueError("a My Number's check digit does not match")
    return number


def resident_code_check_digit(first10: str) -> int:
    """The check digit of a resident code (住民票コード, 11 digits = 10 + check).

    Scheme chosen: the modulus-11 rule with weights 2..7 repeating from the lowest
    digit, check = 11 - (sum mod 11) and 0 when the remainder is 0 or 1 — the same
    published family as the My Number rule (whose 11 leading digits are derived from
    the resident code) and the 地方公共団体コード check digit.
    """
    return _mod11_check(_digits(first10, 10, "the first part of a resident code"))


def validate_resident_code(code: str) -> str:
    """An 11-digit resident code with a correct check digit, else ValueError."""
    _digits(code, 11, "a resident code")
    if resident_code_check_digit(code[:10]) != int(code[10]):
        raise ValueError("a resident code's check digit does not match")
    return code


def validate_municipality_code(code: str) -> str:
    """A 5-digit municipality code (地方公共団体コード without its check digit)."""
    return _digits(code, 5, "a municipality code")


def validate_security_code(code: str) -> str:
    """The 4-digit security code printed on the card face (part of code B)."""
    return _digits(code, 4, "a security code")


# --- Japanese eras --------------------------------------------------------------


@dataclass(frozen=True)
class Era:
    name: str
    kanji: str
    start: date  # first Gregorian day of the era


# Start dates (Gregorian). Meiji: the day of the proclamation, 1868-10-23 (明治元年
# 九月八日); the retroactive start of Meiji 1 falls before Japan used the Gregorian
# calendar, and no holder is born then.
ERAS: tuple[Era, ...] = (
    Era("reiwa", "令和", date(2019, 5, 1)),
    Era("heisei", "平成", date(1989, 1, 8)),
    Era("showa", "昭和", date(1926, 12, 25)),
    Era("taisho", "大正", date(1912, 7, 30)),
    Era("meiji", "明治", date(1868, 10, 23)),
)


def era_of(day: date) -> tuple[Era, int]:
    """The era of a Gregorian date and the year within it (1 = 元年)."""
    if not isinstance(day, date):
        raise TypeError("expected a datetime.date")
    for era in ERAS:
        if day >= era.start:
            return era, day.year - era.start.year + 1
    raise ValueError("dates before the Meiji era have no era year here")


def era_yymmdd(day: date) -> str:
    """A date as the card writes birth dates in codes: era year, month, day (6 digits)."""
    _, year = era_of(day)
    return f"{year:02d}{day.month:02d}{day.day:02d}"


def birth_date_key(birth: date) -> str:
    """The 券面AP birth-date key (EF 0011): era YYMMDD."""
    return era_yymmdd(birth)


def verification_code_a(my_number: str) -> str:
    """照合番号A is the My Number itself."""
    return validate_my_number(my_number)


def verification_code_b(birth: date, expiry: date, security_code: str) -> str:
    """照合番号B: era YYMMDD birth + Gregorian expiry year YYYY + 4-digit security code."""
    validate_security_code(security_code)
    return f"{era_yymmdd(birth)}{expiry.year:04d}{security_code}"


def yyyymmdd(day: date) -> bytes:
    return f"{day.year:04d}{day.month:02d}{day.day:02d}".encode("ascii")


def parse_yyyymmdd(raw: bytes) -> date:
    """An 8-digit ASCII Gregorian date."""
    try:
        text = raw.decode("ascii")
        if len(text) != 8 or not text.isdigit():
            raise ValueError
        return date(int(text[:4]), int(text[4:6]), int(text[6:]))
    except ValueError:
        raise MalformedData("not a YYYYMMDD date") from None


# --- Identity data --------------------------------------------------------------

SEX_CODES = {"0": "unknown", "1": "male", "2": "female", "9": "not applicable"}


@dataclass(frozen=True)
class BasicFour:
    """The basic four facts (基本4情報): name, address, birth date, sex (ISO 5218 code)."""

    name: str
    address: str
    birth_date: date
    sex: str

    def __post_init__(self) -> None:
        for attr in ("name", "address", "sex"):
            if not isinstance(getattr(self, attr), str):
                raise TypeError(f"{attr} must be a str")
        if not isinstance(self.birth_date, date):
            raise TypeError("birth_date must be a datetime.date")
        if not self.name or not self.address:
            raise ValueError("name and address must not be empty")
        if self.sex not in SEX_CODES:
            raise ValueError("sex must be one of the ISO 5218 codes 0, 1, 2, 9")


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


# --- Surface area files ---------------------------------------------------------

TAG_AGE_RECORD = 0xFF10  # surface EF 0001 (project layout: FF10 { DF11 birth })
TAG_AGE_BIRTH = 0xDF11
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
TAG_CV_CERT = 0x7F21
TAG_CV_BODY = 0x5F4E
TAG_CV_SIGNATURE = 0x5F37
SURFACE_AP_ID = bytes.fromhex("06030E01")  # spec version, extended length, vendor
SURFACE_AP_VERSION = b"\x01"
SURFACE_KEY_ID_PREFIX = b"6000023"  # test cards' key IDs start with 6; 5000023 on production
CV_CERT_LENGTH = 568


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


def surface_key_id(issuer_key: rsa.RSAPublicKey) -> bytes:
    """16-byte key ID of the key that signs the surface files (the one in EF 0004)."""
    digest = hashlib.sha256(public_key_object(issuer_key)).digest()
    return SURFACE_KEY_ID_PREFIX + digest[: 16 - len(SURFACE_KEY_ID_PREFIX)]


def surface_cv_certificate(signer: rsa.RSAPrivateKey) -> bytes:
    """Surface EF 0004: `7F21 { 5F4E (issuer ID, subject ID, 90 e, 91 n), 5F37 signature }`.

    568 bytes. mynacard's surface files are signed by the center's integrity key, so
    the certificate carries that key and is signed by it (issuer = subject): a reader
    trusts it by comparing the key with the center's published one, not by the chain.
    """
    public = signer.public_key()
    key_id = surface_key_id(public)
    body = tlv.encode(TAG_CV_BODY, key_id + key_id + public_key_object(public))
    cert = tlv.encode(TAG_CV_CERT, body + tlv.encode(TAG_CV_SIGNATURE, _sign(signer, body)))
    if len(cert) != CV_CERT_LENGTH:
        raise ValueError("the surface CV certificate is 568 bytes (an RSA-2048 key)")
    return cert


@dataclass(frozen=True)
class CvCertificate:
    issuer_key_id: bytes
    subject_key_id: bytes
    public_key: rsa.RSAPublicKey
    self_signed_ok: bool


def parse_cv_certificate(data: bytes) -> CvCertificate:
    """Surface EF 0004 read back; `self_signed_ok` says whether its signature verifies."""
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
                         _verifies(key, signature, tlv.encode(TAG_CV_BODY, body)))


def surface_basic_file(municipality_code: str, signer: rsa.RSAPrivateKey) -> bytes:
    """Surface EF 0003: `FF30 { DF31 06030E01, DF32 key ID, DF33 version, DF34 municipality,
    DF35 key ID + 256-byte signature over DF31..DF34 }` (the signature is mynacard's choice
    for the 256 bytes the real card keeps opaque)."""
    key_id = surface_key_id(signer.public_key())
    head = tlv.encode_all([
        (TAG_MY_NUMBER_HASH, SURFACE_AP_ID),  # DF31
        (TAG_FOUR_FACTS_HASH, key_id),  # DF32
        (TAG_INTEGRITY_SIGNATURE, SURFACE_AP_VERSION),  # DF33
        (0xDF34, validate_municipality_code(municipality_code).encode("ascii")),
    ])
    return tlv.encode(TAG_SURFACE_BASIC, head + tlv.encode(0xDF35, key_id + _sign(signer, head)))


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
    signed = tlv.encode_all([(TAG_MY_NUMBER_PNG, image),
                             (TAG_MY_NUMBER_CARD_KEY, public_key_object(card_public_key))])
    return tlv.encode(TAG_MY_NUMBER_IMAGE,
                      signed + tlv.encode(TAG_MY_NUMBER_SIGNATURE, _sign(signer, signed)))


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
            b"".join(tlv.encode(o.tag, o.value) for o in children
                     if o.tag in (TAG_MY_NUMBER_PNG, TAG_MY_NUMBER_CARD_KEY)))
    except KeyError as exc:
        raise MalformedData(f"My Number image file is malformed: {exc}") from None


def age_record_file(birth: date) -> bytes:
    """Surface EF 0001 (project layout): `FF10 { DF11 birth YYYYMMDD }`."""
    return tlv.encode(TAG_AGE_RECORD, tlv.encode(TAG_AGE_BIRTH, yyyymmdd(birth)))


def parse_age_record_file(data: bytes) -> date:
    items = tlv.parse_file(data, TAG_AGE_RECORD).children()
    return parse_yyyymmdd(tlv.find(items, TAG_AGE_BIRTH))


# --- Resident registry and municipal files --------------------------------------

TAG_NUMBER = 0xDF01


def resident_code_file(code: str) -> bytes:
    """Juki EF 0001: `DF 01 0B` + 11 ASCII digits."""
    validate_resident_code(code)
    return tlv.encode(TAG_NUMBER, code.encode("ascii"))


def parse_resident_code_file(data: bytes) -> str:
    value = tlv.parse_file(data, TAG_NUMBER).value
    try:
        return validate_resident_code(value.decode("ascii"))
    except (UnicodeDecodeError, ValueError):
        raise MalformedData("resident code file holds no valid resident code") from None


def library_number_file(number: str) -> bytes:
    """Municipal library EF 0001: `DF01 len` + ASCII number (1..30 printable characters)."""
    if not isinstance(number, str):
        raise TypeError("a library number is a str")
    if not 1 <= len(number) <= 30 or not number.isascii() or not number.isprintable():
        raise ValueError("a library number is 1 to 30 printable ASCII characters")
    return tlv.encode(TAG_NUMBER, number.encode("ascii"))


def parse_library_number_file(data: bytes) -> str:
    try:
        return tlv.parse_file(data, TAG_NUMBER).value.decode("ascii")
    except UnicodeDecodeError:
        raise MalformedData("library number is not ASCII") from None


# --- JPKI files -----------------------------------------------------------------

TOKEN_INFO_LENGTH = 160


def token_info(
    label: bytes = contract.TOKEN_INFO_LABEL,
    *,
    manufacturer: str = "mynacard",
    model: str = "MyNumberCard",
    serial: str = "",
) -> bytes:
    """JPKI EF 0006: a 160-byte CK_TOKEN_INFO (big-endian), label space-padded to 32.

    Only the label is read by clients (OpenSC checks it); the counters are zero.
    """

    def pad(raw: bytes, n: int) -> bytes:
        if len(raw) > n:
            raise ValueError(f"field longer than {n} bytes")
        return raw.ljust(n, b" ")

    body = (
        pad(label, 32)
        + pad(manufacturer.encode("ascii"), 32)
        + pad(model.encode("ascii"), 16)
        + pad(serial.encode("ascii"), 16)
        + bytes(11 * 4)  # flags and the ten counters
        + bytes(4)  # hardware and firmware versions
        + b" " * 16  # utcTime (none)
    )
    assert len(body) == TOKEN_INFO_LENGTH
    return body


def parse_token_label(data: bytes) -> str:
    """The label of a token info: the first 32 bytes without the padding."""
    if len(data) < 32:
        raise MalformedData("token info shorter than its label")
    return data[:32].rstrip(b" \x00\xff").decode("ascii", "replace")


CERT_PRESENT = 0x8F


@dataclass(frozen=True)
class CertAvailability:
    """JPKI EF 0008: which holder certificates the card carries."""

    sign: bool
    auth: bool


def cert_availability_file(*, sign: bool, auth: bool = True) -> bytes:
    """`8F 8F 00` with both certificates, `00 8F 00` without a signing certificate."""
    return bytes((CERT_PRESENT if sign else 0, CERT_PRESENT if auth else 0, 0))


def parse_cert_availability_file(data: bytes) -> CertAvailability:
    if len(data) < 2:
        raise MalformedData("certificate availability is 3 bytes")
    return CertAvailability(sign=data[0] == CERT_PRESENT, auth=data[1] == CERT_PRESENT)


# --- Personalisation profile ----------------------------------------------------


@dataclass(frozen=True)
class HolderPins:
    """PINs set at the counter when the holder is present (express issuance)."""

    jpki_auth: str | None  # needed only with a user-authentication certificate (rule 3.7)
    text: str
    juki: str
    jpki_sign: str | None = None  # needed only with a signing certificate

    def __repr__(self) -> str:  # PINs stay out of logs and tracebacks
        return "HolderPins(<hidden>)"


@dataclass(frozen=True)
class CardIdentity:
    """Everything the issuer writes to one card (the personalisation profile)."""

    my_number: str
    resident_code: str
    facts: BasicFour
    expiry: date
    municipality_code: str
    security_code: str
    with_signing_certificate: bool = True
    with_auth_certificate: bool = True
    photo: bytes | None = None  # the face photo as JPEG 2000; None: a card without photo

    def __post_init__(self) -> None:
        validate_my_number(self.my_number)
        if self.photo is not None and not isinstance(self.photo, bytes):
            raise TypeError("photo must be JPEG 2000 bytes or None")
        validate_resident_code(self.resident_code)
        validate_municipality_code(self.municipality_code)
        validate_security_code(self.security_code)
        if not isinstance(self.facts, BasicFour):
            raise TypeError("facts must be a BasicFour")
        if not isinstance(self.expiry, date):
            raise TypeError("expiry must be a datetime.date")
        if self.with_signing_certificate and not self.with_auth_certificate:
            raise ValueError("a card with a signing certificate has a user-authentication one")

    @property
    def code_a(self) -> str:
        return verification_code_a(self.my_number)

    @property
    def code_b(self) -> str:
        return verification_code_b(self.facts.birth_date, self.expiry, self.security_code)

    @property
    def birth_key(self) -> str:
        return birth_date_key(self.facts.birth_date)

    def __repr__(self) -> str:  # personal data stays out of logs
        return f"CardIdentity(<{self.facts.birth_date.year} holder, expiry {self.expiry}>)"
