"""The 共通カードAP and the MF level over PC/SC, as jpki/myna and myna-card use them: READ
RECORD by SFI and by current EF with its status words on every area, INTERNAL AUTHENTICATE
with no credential (checked with the key MF 7F21 certifies), the two copies of the
resident-registry PIN blocked on their own, and the MF GET DATA objects at power-on."""

from __future__ import annotations

import pytest
from card_support import PINS, PROFILE, Personalised
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric import padding
from cryptography.hazmat.primitives.hashes import SHA256

from card import contract, formats
from card.common_ap import CommonClient, read_card_info, sha256_digest_info
from card.contract import SW, Tag
from card.errors import PinBlocked, PinIncorrect
from card.juki import JukiClient
from card.mf_data import read_mf_data
from card.session import select_aid_apdu, select_ef_apdu
from card.transport import PcscTransport


def test_card_info_record_by_sfi_and_by_current_ef(card: Personalised) -> None:
    info = read_card_info(card.transport)
    assert (info.serial, info.municipality_code, info.expiry) == (
        card.result.serial, PROFILE.municipality_code, PROFILE.expiry)
    channel = card.channel
    channel.select_application(contract.AID_COMMON, force=True)
    by_sfi = channel.transmit(bytes.fromhex("00B2010C00"))  # jpki/myna's command
    assert by_sfi.sw == SW.OK and by_sfi.data[:2] == b"\x01\x1c" and len(by_sfi.data) == 30
    assert by_sfi.data[2:17].decode() == card.result.serial
    channel.send(select_ef_apdu(contract.COMMON_CARD_INFO))
    assert channel.transmit(bytes.fromhex("00B2010400")).data == by_sfi.data


def test_read_record_status_words_on_every_area(card: Personalised) -> None:
    channel = card.channel
    channel.select_application(contract.AID_COMMON, force=True)
    assert channel.transmit(bytes.fromhex("00B2010400")).sw == SW.NO_CURRENT_EF
    assert channel.transmit(bytes.fromhex("00B2020C00")).sw == SW.RECORD_NOT_FOUND
    assert channel.transmit(bytes.fromhex("00B2010500")).sw == SW.INCORRECT_P1P2
    assert channel.transmit(bytes.fromhex("00B2011400")).sw == SW.COMMAND_INCOMPATIBLE
    channel.send(select_ef_apdu(contract.COMMON_CARD_INFO))
    assert channel.transmit(bytes.fromhex("00B0000000")).sw == SW.COMMAND_INCOMPATIBLE
    for area in (contract.JPKI, contract.TEXT, contract.SURFACE, contract.JUKI):
        channel.select_application(area.aid, force=True)
        for spec in area.files:  # every EF of the other areas is transparent
            p2 = ((spec.fid & 0x1F) << 3) | 0x04
            sw = channel.transmit(bytes((0x00, 0xB2, 0x01, p2, 0x00))).sw
            assert sw == SW.COMMAND_INCOMPATIBLE, f"{area.name} {spec.fid:04X}: {sw:04X}"


def test_internal_authenticate_checks_with_the_mf_certificate(card: Personalised) -> None:
    common = CommonClient(card.transport)
    signature = common.internal_authenticate(b"relying party nonce")
    mf = read_mf_data(card.transport)
    assert mf.chain.verify(card.ca.integrity_key.public_key())
    card_key = mf.chain.lower.public_key
    card_key.verify(signature, b"relying party nonce", padding.PKCS1v15(), SHA256())
    with pytest.raises(InvalidSignature):
        card_key.verify(signature, b"another nonce", padding.PKCS1v15(), SHA256())
    assert mf.chain.lower.subject_key_id == common.key_reference()
    assert JukiClient(card.transport).read_raw(contract.JUKI_KEY_REFERENCE) \
        == common.key_reference()
    # the JPKI keys are behind a PIN: INTERNAL AUTHENTICATE answers 6982
    card.channel.select_application(contract.AID_JPKI, force=True)
    apdu = bytes.fromhex("00880097") + bytes((51,)) + sha256_digest_info(b"x") + b"\x00"
    assert card.channel.transmit(apdu).sw == SW.SECURITY_STATUS_NOT_SATISFIED


def test_the_two_juki_pins_are_separate_key_references(card: Personalised) -> None:
    common, juki = CommonClient(card.transport), JukiClient(card.transport)
    assert common.tries_left(contract.COMMON_PIN) == 3
    for _ in range(2):
        with pytest.raises(PinIncorrect):
            common.verify_pin("0000")
    with pytest.raises(PinBlocked):
        common.verify_pin("0000")
    with pytest.raises(PinBlocked):
        common.verify_pin(PINS.juki)
    assert juki.tries_left(contract.JUKI_PIN) == 3  # the 住基AP's copy is untouched
    juki.verify_pin(PINS.juki)
    assert juki.resident_code() == PROFILE.resident_code
    juki.change_juki_pin(PINS.juki, "9090")  # CHANGE KEY changes one copy only
    juki.select(force=True)
    juki.verify_pin("9090")
    assert common.tries_left(contract.COMMON_PIN) == 0


def test_mf_objects_at_power_on_and_the_extended_certificates(card: Personalised) -> None:
    reader = card.reader
    card.transport.close()
    with PcscTransport(reader) as transport:  # a fresh connection resets the card
        get = transport.transmit  # no SELECT: the card manager is current at power-on
        issuer_id = get(bytes.fromhex("00CA004200"))
        assert issuer_id.sw == SW.OK and len(issuer_id.data) == contract.KEY_ID_LENGTH
        assert issuer_id.data[:7] == b"6000001"
        assert get(bytes.fromhex("00CA006600")).data == contract.CARD_RECOGNITION_DATA
        assert get(bytes.fromhex("00CA00F700")).data == issuer_id.data
        for tag in (Tag.CHAIN_UPPER, Tag.CHAIN_LOWER):
            p1p2 = int(tag).to_bytes(2, "big")
            assert get(b"\x00\xca" + p1p2 + b"\x00").sw == SW.WRONG_LENGTH  # short Le
            whole = get(b"\x00\xca" + p1p2 + b"\x00\x00\x00")  # extended Le
            assert whole.sw == SW.OK and len(whole.data) == contract.CV_CERT_LENGTH
            formats.parse_cv_certificate(whole.data)
        # GET DATA answers only at MF level; selecting the card manager again restores it
        assert get(select_aid_apdu(contract.AID_COMMON)).sw == SW.OK
        assert get(bytes.fromhex("00CA004200")).sw == SW.INS_NOT_SUPPORTED
        assert get(select_aid_apdu(contract.AID_CARD_MANAGER)).sw == SW.OK
        assert get(bytes.fromhex("00CA004200")).data == issuer_id.data
