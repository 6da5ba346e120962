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
TAG_FACE_BIRTH = 0xDF22
TAG_FACE_SEX = 0xDF23
TAG_FACE_NAME = 0xDF25
TAG_FACE_ADDRESS = 0xDF26
TAG_FACE_EXPIRY = 0xDF29


@dataclass(frozen=True)
class CardFace:
    """What the card surface application says is printed on the card."""

    name: str
    address: str
    birth_date: date
    sex: str
    expiry: date


def card_face_file(facts: BasicFour, expiry: date) -> bytes:
    """Surface EF 0002: `FF20 { DF22 birth, DF23 sex, DF25 name, DF26 address, DF29 expiry }`.

    Dates are Gregorian YYYYMMDD in ASCII; no images are written.
    """
    return tlv.encode(
        TAG_FACE,
        tlv.encode_all(
            [
                (TAG_FACE_BIRTH, yyyymmdd(facts.birth_date)),
                (TAG_FACE_SEX, facts.sex.encode("ascii")),
                (TAG_FACE_NAME, facts.name.encode("utf-8")),
                (TAG_FACE_ADDRESS, facts.address.encode("utf-8")),
                (TAG_FACE_EXPIRY, yyyymmdd(expiry)),
            ]
        ),
    )


def parse_card_face_file(data: bytes) -> CardFace:
    items = tlv.to_dict(tlv.parse_file(data, TAG_FACE).children())
    try:
        return CardFace(
            name=items[TAG_FACE_NAME].decode("utf-8"),
            address=items[TAG_FACE_ADDRESS].decode("utf-8"),
            birth_date=parse_yyyymmdd(items[TAG_FACE_BIRTH]),
            sex=items[TAG_FACE_SEX].decode("ascii"),
            expiry=parse_yyyymmdd(items[TAG_FACE_EXPIRY]),
        )
    except (KeyError, UnicodeDecodeError) as exc:
        raise MalformedData(f"card face file is malformed: {exc}") from None


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

    jpki_auth: str
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

    def __post_init__(self) -> None:
        validate_my_number(self.my_number)
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
