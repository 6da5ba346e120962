"""Pure encoders and parsers of the files issue 10 fills: the 共通カードAP record, text EF 0004
and 0005, the MF-level objects and their CV-certificate chain (no card)."""

from __future__ import annotations

from datetime import date

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from card import contract, formats
from card.tlv import MalformedData

CENTER = rsa.generate_private_key(65537, 2048)
CARD_KEY = rsa.generate_private_key(65537, 2048).public_key()


def test_card_info_record_round_trip_and_refusals() -> None:
    record = formats.card_info_record("400000012719843", "13221", date(2035, 2, 17))
    assert record == b"\x01\x1c" + b"4000000127198431322120350217"  # myna-card's test card
    info = formats.parse_card_info_record(record)
    assert (info.serial, info.municipality_code, info.prefecture_code, info.expiry) == (
        "400000012719843", "13221", "13", date(2035, 2, 17))
    for bad in (b"\x02" + record[1:], record[:1] + b"\x1b" + record[2:29],
                record[:28] + b"XX", b"\xff" * 30, b""):
        with pytest.raises(MalformedData):
            formats.parse_card_info_record(bad)
    with pytest.raises(ValueError):
        formats.card_info_record("12345", "13221", date(2035, 2, 17))


def test_text_cv_certificate_and_basic_data() -> None:
    cert = formats.text_cv_certificate(CENTER)
    assert len(cert) == contract.CV_CERT_LENGTH and cert[:5] == bytes.fromhex("7F21820233")
    parsed = formats.parse_cv_certificate(cert)
    assert parsed.self_signed_ok and parsed.subject_key_id[:7] == b"6000033"
    assert parsed.issuer_key_id == parsed.subject_key_id
    basic = formats.text_basic_file(cert)
    assert basic[:3] == bytes.fromhex("FF4081")
    fields = formats.parse_text_basic_file(basic)
    assert fields.ap_id == bytes.fromhex("01030E01")
    assert fields.key_id == parsed.subject_key_id
    assert fields.data[32:] == b"\xff" * 96
    with pytest.raises(MalformedData):
        formats.parse_text_basic_file(basic[:20])


def test_mf_chain_verifies_only_with_the_center_key() -> None:
    objects = formats.mf_objects(CENTER, CARD_KEY)
    assert objects.issuer_id == objects.intermediate_key_id
    assert objects.issuer_id[:7] == b"6000001" and len(objects.issuer_id) == 16
    chain = formats.parse_chain(objects.chain_upper, objects.chain_lower)
    assert chain.verify(CENTER.public_key())
    assert chain.lower.subject_key_id == formats.key_reference(CARD_KEY)
    assert chain.lower.public_key.public_numbers() == CARD_KEY.public_numbers()
    other = rsa.generate_private_key(65537, 2048)
    assert not chain.verify(other.public_key())
    forged = formats.mf_objects(other, CARD_KEY)  # a chain under another root
    assert not formats.parse_chain(objects.chain_upper, forged.chain_lower).verify(
        CENTER.public_key())
    tampered = bytearray(objects.chain_lower)
    tampered[40] ^= 1
    assert not formats.parse_chain(objects.chain_upper, bytes(tampered)).verify(
        CENTER.public_key())


def test_card_recognition_data_is_globalplatform() -> None:
    items = formats.parse_card_recognition_data(contract.CARD_RECOGNITION_DATA)
    assert items[0x06] == formats.GP_OID
    with pytest.raises(MalformedData):
        formats.parse_card_recognition_data(bytes.fromhex("6609730706052A03040506"))
