"""Formats written by the issuer and typed by holders (pure; no card needed)."""

from __future__ import annotations

from datetime import date

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from card import contract, formats, images, tlv
from card.formats import BasicFour, CardIdentity, HolderPins
from card.tlv import MalformedData

FACTS = BasicFour("見本　花子", "東京都千代田区千代田１－１－１", date(1985, 4, 1), "2")


@pytest.fixture(scope="module")
def issuer_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(65537, 2048)


# --- check digits -------------------------------------------------------------


@pytest.mark.parametrize("number", ["537686677188", "983205673214", "123456789018"])
def test_my_number_check_digit_accepts_valid_numbers(number: str) -> None:
    assert formats.my_number_check_digit(number[:11]) == int(number[11])
    assert formats.validate_my_number(number) == number


def test_my_number_check_digit_weights() -> None:
    # weights 6,5,4,3,2,7,6,5,4,3,2 from the most significant digit
    assert formats.my_number_check_digit("10000000000") == 11 - 6
    assert formats.my_number_check_digit("00000100000") == 11 - 7
    assert formats.my_number_check_digit("00000000001") == 11 - 2


def test_my_number_check_digit_small_remainders_give_zero() -> None:
    # sum 11 -> remainder 0 -> 0;  sum 12 -> remainder 1 -> 0
    assert formats.my_number_check_digit("00000000000") == 0
    assert formats.my_number_check_digit("00000000031") == 0  # 3*3 + 1*2 = 11
    assert formats.my_number_check_digit("00000000023") == 0  # 2*3 + 3*2 = 12
    assert formats.my_number_check_digit("00000000032") == 9  # 3*3 + 2*2 = 13
    for first in ("00000100004", "31415926535", "27182818284"):
        total = sum(int(d) * w for d, w in zip(first, (6, 5, 4, 3, 2, 7, 6, 5, 4, 3, 2),
                                               strict=True))
        expected = 0 if total % 11 <= 1 else 11 - total % 11
        assert formats.my_number_check_digit(first) == expected


@pytest.mark.parametrize("bad", ["537686677189", "53768667718", "5376866771880", "53768667718a",
                                 "５３７６８６６７７１８８"])
def test_invalid_my_numbers_are_refused_without_echo(bad: str) -> None:
    with pytest.raises(ValueError) as info:
        formats.validate_my_number(bad)
    assert bad not in str(info.value)


def test_resident_code_check_digit() -> None:
    assert formats.resident_code_check_digit("1234567890") == 3
    assert formats.validate_resident_code("12345678903") == "12345678903"
    with pytest.raises(ValueError):
        formats.validate_resident_code("12345678904")
    with pytest.raises(ValueError):
        formats.validate_resident_code("1234567890")


# --- eras -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("day", "era", "year"),
    [
        (date(1989, 1, 7), "showa", 64),
        (date(1989, 1, 8), "heisei", 1),
        (date(2019, 4, 30), "heisei", 31),
        (date(2019, 5, 1), "reiwa", 1),
        (date(1926, 12, 24), "taisho", 15),
        (date(1926, 12, 25), "showa", 1),
        (date(1912, 7, 29), "meiji", 45),
        (date(1912, 7, 30), "taisho", 1),
        (date(1985, 4, 1), "showa", 60),
    ],
)
def test_era_boundaries(day: date, era: str, year: int) -> None:
    found, found_year = formats.era_of(day)
    assert (found.name, found_year) == (era, year)


def test_era_yymmdd() -> None:
    assert formats.era_yymmdd(date(1989, 1, 7)) == "640107"
    assert formats.era_yymmdd(date(1989, 1, 8)) == "010108"
    assert formats.era_yymmdd(date(2019, 4, 30)) == "310430"
    assert formats.era_yymmdd(date(2019, 5, 1)) == "010501"
    assert formats.birth_date_key(date(1985, 4, 1)) == "600401"
    with pytest.raises(ValueError):
        formats.era_yymmdd(date(1800, 1, 1))


def test_verification_code_b_example_from_the_reference() -> None:
    # born 1980-02-17 (昭和55), expiry 2035, security code 2285
    assert formats.verification_code_b(date(1980, 2, 17), date(2035, 2, 17), "2285") \
        == "55021720352285"


def test_verification_code_b_refuses_a_bad_security_code() -> None:
    with pytest.raises(ValueError):
        formats.verification_code_b(date(1980, 2, 17), date(2035, 2, 17), "228")


# --- PINs -----------------------------------------------------------------------

AUTH = contract.JPKI.pin(contract.JPKI_AUTH_PIN)
SIGN = contract.JPKI.pin(contract.JPKI_SIGN_PIN)


@pytest.mark.parametrize(("spec", "pin"), [(AUTH, "0000"), (AUTH, "9876"), (SIGN, "ABC123"),
                                          (SIGN, "A1" * 8), (SIGN, "1A2B3C")])
def test_valid_pins(spec: contract.PinSpec, pin: str) -> None:
    assert formats.validate_pin(spec, pin) == pin.encode("ascii")


@pytest.mark.parametrize(
    ("spec", "pin"),
    [(AUTH, "123"), (AUTH, "12345"), (AUTH, "12a4"), (AUTH, "１２３４"), (AUTH, ""),
     (SIGN, "ABC12"), (SIGN, "A1" * 8 + "X"), (SIGN, "abc123"), (SIGN, "ABCDEF"),
     (SIGN, "123456"), (SIGN, "ABC 12"), (SIGN, "ÄBC123")],
)
def test_invalid_pins_raise_without_echoing(spec: contract.PinSpec, pin: str) -> None:
    with pytest.raises(ValueError) as info:
        formats.validate_pin(spec, pin)
    message = str(info.value)
    assert spec.name in message
    if pin:
        assert pin not in message


def test_pin_must_be_str() -> None:
    with pytest.raises(TypeError):
        formats.validate_pin(AUTH, b"1234")  # type: ignore[arg-type]


def test_every_contract_pin_accepts_a_value_of_its_format() -> None:
    for area in contract.AREAS:
        for spec in area.pins:
            value = ("A" + "1" * (spec.min_length - 1)) if spec.charset == "upper-alnum" \
                else "1" * spec.min_length
            assert formats.validate_pin(spec, value)


# --- files ---------------------------------------------------------------------


def test_my_number_file() -> None:
    raw = formats.my_number_file("537686677188")
    assert raw == bytes.fromhex("FF100C353337363836363737313838FFFF")
    assert formats.parse_my_number_file(raw) == "537686677188"
    with pytest.raises(ValueError):
        formats.my_number_file("537686677189")
    with pytest.raises(MalformedData):
        formats.parse_my_number_file(b"\xff" * 17)


def test_basic_four_file_matches_the_test_card_layout() -> None:
    # name 15 UTF-8 bytes and address 54 bytes as on the dumped test card
    facts = BasicFour("黒桐　幹也", "東" * 18, date(1980, 2, 17), "1")
    raw = formats.basic_four_file(facts)
    assert raw[:14] == bytes.fromhex("FF2065DF2108000E0020005900 64".replace(" ", ""))
    assert len(raw) == 3 + 0x65
    assert formats.parse_basic_four_file(raw + b"\xff" * 50) == facts


def test_basic_four_file_long_values_use_the_81_form() -> None:
    facts = BasicFour("見本　花子" * 4, "東京都千代田区" * 6, date(1985, 4, 1), "2")
    raw = formats.basic_four_file(facts)
    assert raw[:3] == b"\xff\x20\x81"
    assert formats.parse_basic_four_file(raw) == facts


def test_basic_four_offsets_are_checked() -> None:
    raw = bytearray(formats.basic_four_file(FACTS))
    raw[6] ^= 0x01  # corrupt the first offset
    with pytest.raises(MalformedData):
        formats.parse_basic_four_file(bytes(raw))


def test_basic_four_validation() -> None:
    with pytest.raises(ValueError):
        BasicFour("a", "b", date(2000, 1, 1), "3")
    with pytest.raises(TypeError):
        BasicFour("a", "b", "2000-01-01", "1")  # type: ignore[arg-type]


def test_integrity_record_round_trip(issuer_key: rsa.RSAPrivateKey) -> None:
    mn = formats.my_number_file("123456789018")
    bf = formats.basic_four_file(FACTS)
    record = formats.integrity_record(mn, bf, issuer_key)
    assert record[:4] == b"\xff\x30\x82\x01"
    assert len(record) <= contract.TEXT.file(contract.TEXT_INTEGRITY).size
    check = formats.check_integrity_record(record + b"\xff" * 3, mn, bf + b"\xff" * 10,
                                           issuer_key.public_key())
    assert check == formats.IntegrityCheck(True, True, True)
    assert check.ok
    assert formats.check_integrity_record(record, mn, bf).signature_ok is None


def test_integrity_record_detects_tampering(issuer_key: rsa.RSAPrivateKey) -> None:
    mn = formats.my_number_file("123456789018")
    bf = formats.basic_four_file(FACTS)
    record = formats.integrity_record(mn, bf, issuer_key)
    other = BasicFour("見本　太郎", FACTS.address, FACTS.birth_date, "1")
    other_bf = formats.basic_four_file(other)
    check = formats.check_integrity_record(record, mn, other_bf, issuer_key.public_key())
    assert check.my_number_hash_ok and not check.basic_four_hash_ok and check.signature_ok
    assert not check.ok
    other_key = rsa.generate_private_key(65537, 2048)
    assert formats.check_integrity_record(record, mn, bf, other_key.public_key()).signature_ok \
        is False


def test_integrity_record_only_hashes_from_df22(issuer_key: rsa.RSAPrivateKey) -> None:
    import hashlib

    bf = formats.basic_four_file(FACTS)
    part = formats.basic_four_hashed_part(bf)
    assert part.startswith(b"\xdf\x22")
    assert bf.endswith(part)
    record = formats.integrity_record(formats.my_number_file("123456789018"), bf, issuer_key)
    assert hashlib.sha256(part).digest() in record


def test_integrity_signer_must_be_an_rsa_private_key() -> None:
    with pytest.raises(TypeError):
        formats.integrity_record(bytes(17), b"", object())  # type: ignore[arg-type]


def _face(issuer_key: rsa.RSAPrivateKey, photo: bytes | None, expiry: date) -> bytes:
    return formats.card_face_file(
        FACTS, expiry, name_image=images.name_image(FACTS.name),
        address_image=images.address_image(FACTS.address), photo=photo,
        security_code_image=images.security_code_image("2468"),
        card_public_key=issuer_key.public_key(), signer=issuer_key)


def test_card_face_and_age_record(issuer_key: rsa.RSAPrivateKey) -> None:
    expiry = date(2036, 4, 1)
    photo = images.generated_portrait("12345678903")
    raw = _face(issuer_key, photo, expiry)
    assert raw[:2] == b"\xff\x20"
    face = formats.parse_card_face_file(raw + b"\xff" * 100)
    assert (face.birth_date, face.sex, face.expiry) == (FACTS.birth_date, "2", expiry)
    assert face.name_image == images.name_image(FACTS.name)
    assert face.address_image == images.address_image(FACTS.address)
    assert face.photo == photo
    assert face.security_code_image == images.security_code_image("2468")
    assert face.card_public_key == issuer_key.public_key()
    assert face.verify(issuer_key.public_key())
    # DF29 and DF2A come after DF28 and are not signed; the tags are in the real order
    tags = [t.tag for t in tlv.parse_file(raw, formats.TAG_FACE).children()]
    assert tags == [0xDF21, 0xDF22, 0xDF23, 0xDF24, 0xDF25, 0xDF26, 0xDF27, 0xDF28, 0xDF29,
                    0xDF2A]
    assert formats.parse_age_record_file(formats.age_record_file(FACTS.birth_date)) \
        == FACTS.birth_date


def test_card_face_signature_covers_the_facts_and_photo_only(
        issuer_key: rsa.RSAPrivateKey) -> None:
    raw = _face(issuer_key, images.generated_portrait("1"), date(2036, 4, 1))
    other = rsa.generate_private_key(65537, 2048)
    cert = formats.surface_cv_certificate(issuer_key)
    assert len(cert) == 568 and formats.parse_cv_certificate(cert).self_signed_ok
    assert formats.verify_card_face(raw, cert)
    assert not formats.verify_card_face(raw, formats.surface_cv_certificate(other))
    # a changed birth date breaks the signature; a changed expiry (after DF28) does not
    birth = raw.index(b"19850401")
    assert not formats.verify_card_face(raw[:birth] + b"19860401" + raw[birth + 8:], cert)
    exp = raw.rindex(b"20360401")
    assert formats.verify_card_face(raw[:exp] + b"20370401" + raw[exp + 8:], cert)
    # a touched photo breaks it too
    face = formats.parse_card_face_file(raw)
    assert face.photo is not None
    at = raw.index(face.photo) + len(face.photo) // 2
    assert not formats.verify_card_face(raw[:at] + bytes([raw[at] ^ 1]) + raw[at + 1:], cert)


def test_card_face_without_photo_and_offset_table(issuer_key: rsa.RSAPrivateKey) -> None:
    raw = _face(issuer_key, None, date(2029, 4, 1))
    face = formats.parse_card_face_file(raw)
    assert face.photo is None and face.verify(issuer_key.public_key())
    tags = [t.tag for t in tlv.parse_file(raw, formats.TAG_FACE).children()]
    assert 0xDF27 not in tags
    # the offset table points at each object; a table that lies is refused
    table = raw.index(b"\xdf\x21") + 3
    broken = raw[:table] + b"\x00\x07" + raw[table + 2:]
    with pytest.raises(MalformedData, match="offset table"):
        formats.parse_card_face_file(broken)


def test_card_face_rewrite_keeps_photo_key_and_code(issuer_key: rsa.RSAPrivateKey) -> None:
    photo = images.generated_portrait("12345678903")
    old = _face(issuer_key, photo, date(2036, 4, 1))
    moved = BasicFour(FACTS.name, "大阪府大阪市北区中之島１－３－２０", FACTS.birth_date, "2")
    new = formats.parse_card_face_file(formats.rewrite_card_face(
        old, moved, date(2036, 4, 1), name_image=images.name_image(moved.name),
        address_image=images.address_image(moved.address), signer=issuer_key))
    assert new.address_image == images.address_image(moved.address)
    assert new.photo == photo and new.card_public_key == issuer_key.public_key()
    assert new.security_code_image == images.security_code_image("2468")
    assert new.verify(issuer_key.public_key())


def test_surface_basic_data_and_my_number_image(issuer_key: rsa.RSAPrivateKey) -> None:
    basic = formats.parse_surface_basic_file(formats.surface_basic_file("13101", issuer_key))
    assert basic.ap_id == bytes.fromhex("06030E01") and basic.municipality_code == "13101"
    assert basic.key_id == formats.surface_key_id(issuer_key.public_key())
    assert basic.key_id.startswith(b"6000023") and len(basic.key_id) == 16
    png = images.my_number_image("123456789018")
    mn = formats.parse_my_number_image_file(
        formats.my_number_image_file(png, None, issuer_key))
    assert mn.image == png and mn.card_public_key is None
    assert mn.verify(issuer_key.public_key())
    assert not mn.verify(rsa.generate_private_key(65537, 2048).public_key())


def test_resident_code_file() -> None:
    raw = formats.resident_code_file("12345678903")
    assert raw == b"\xdf\x01\x0b12345678903"
    assert formats.parse_resident_code_file(raw + b"\xff" * 19) == "12345678903"


def test_library_number_file() -> None:
    raw = formats.library_number_file("LIB-1")
    assert formats.parse_library_number_file(raw + b"\xff" * 10) == "LIB-1"
    with pytest.raises(ValueError):
        formats.library_number_file("x" * 31)


def test_token_info() -> None:
    raw = formats.token_info(serial="123456789012345")
    assert len(raw) == 160
    assert raw[:32] == b"JPKIAPICCTOKEN2".ljust(32, b" ")
    assert formats.parse_token_label(raw) == "JPKIAPICCTOKEN2"


def test_cert_availability() -> None:
    assert formats.cert_availability_file(sign=True) == b"\x8f\x8f\x00"
    assert formats.cert_availability_file(sign=False) == b"\x00\x8f\x00"
    assert formats.parse_cert_availability_file(b"\x00\x8f\x00") \
        == formats.CertAvailability(sign=False, auth=True)


def test_card_identity_validates_and_hides_personal_data() -> None:
    identity = CardIdentity("123456789018", "12345678903", FACTS, date(2036, 4, 1), "13101",
                            "2468")
    assert identity.code_a == "123456789018"
    assert identity.code_b == "60040120362468"
    assert identity.birth_key == "600401"
    assert "123456789018" not in repr(identity)
    assert FACTS.name not in repr(identity)
    with pytest.raises(ValueError):
        CardIdentity("123456789019", "12345678903", FACTS, date(2036, 4, 1), "13101", "2468")
    with pytest.raises(ValueError):
        CardIdentity("123456789018", "12345678903", FACTS, date(2036, 4, 1), "1310", "2468")


def test_holder_pins_repr_hides_values() -> None:
    assert "1234" not in repr(HolderPins("1234", "2345", "3456", "ABC123"))
