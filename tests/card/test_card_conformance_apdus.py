"""Conformance of the emulated card with docs/card.md, command by command: raw APDUs over
PC/SC to a personalised sample card, and the status words and bytes the real card gives.

Each test failed on the applets before this change: secure-messaging CLA answered 6882 on
every instruction, `80 FC 00 00` and `80 AE` answered 6D00, EF 001E at MF level and the
JPKI, text and surface EFs the real card shows (JPKI 0009/0016, text 0006/0007/0008/0012,
surface 0006) were not found, SELECT MF inside an application answered 6A86, the card
manager answered an 8-byte AID, and the age record was a bare 14-byte date."""

from __future__ import annotations

from cryptography.hazmat.primitives.asymmetric import rsa

from card import contract, formats, tlv
from card.sample import SAMPLE_PIN_VALUES, sample_identity
from card.transport import PcscTransport

OK = 0x9000
ISD = bytes.fromhex("A0000001510000")  # the real card's GlobalPlatform ISD AID (7 bytes)
CARD_AREAS = (contract.AID_JPKI, contract.AID_TEXT, contract.AID_SURFACE, contract.AID_JUKI,
              contract.AID_COMMON)


def _tx(transport: PcscTransport, apdu: str | bytes) -> tuple[bytes, int]:
    raw = bytes.fromhex(apdu.replace(" ", "")) if isinstance(apdu, str) else apdu
    response = transport.transmit(raw)
    return response.data, response.sw


def _select(transport: PcscTransport, aid: bytes) -> None:
    assert _tx(transport, bytes((0x00, 0xA4, 0x04, 0x0C, len(aid))) + aid)[1] == OK, aid.hex()


def _select_ef(transport: PcscTransport, fid: int) -> int:
    return _tx(transport, bytes((0x00, 0xA4, 0x02, 0x0C, 0x02)) + fid.to_bytes(2, "big"))[1]


def _verify(transport: PcscTransport, p2: int, value: str) -> int:
    data = value.encode("ascii")
    return _tx(transport, bytes((0x00, 0x20, 0x00, p2, len(data))) + data)[1]


def _read_current(transport: PcscTransport, length: int) -> bytes:
    """READ BINARY of the current EF in short APDUs (256 bytes at most each)."""
    out = b""
    while len(out) < length:
        ask = min(256, length - len(out))
        data, sw = _tx(transport, bytes((0x00, 0xB0, len(out) >> 8, len(out) & 0xFF,
                                         ask & 0xFF)))
        assert sw == OK, f"READ BINARY at {len(out)}: {sw:04X}"
        assert data
        out += data
    return out


def _tlv_length(head: bytes) -> int:
    """The total length of the TLV object whose first bytes are `head`."""
    return len(tlv.parse_all(head + b"\x00" * 2048)[0].encode())


def _read_object(transport: PcscTransport) -> bytes:
    head = _read_current(transport, 8)
    return _read_current(transport, _tlv_length(head))


# --- 1. secure-messaging CLA ------------------------------------------------------------


def test_secure_messaging_cla_is_refused_with_69fc_but_6882_on_select(
        sample_card: str) -> None:
    with PcscTransport(sample_card) as t:
        _select(t, contract.AID_JPKI)
        assert _select_ef(t, contract.JPKI_TOKEN_INFO) == OK
        for cla in ("0C", "08"):
            assert _tx(t, cla + "B0000004")[1] == 0x69FC, cla  # READ BINARY
            assert _tx(t, cla + "200098")[1] == 0x69FC, cla  # VERIFY (tries left)
            assert _tx(t, cla + "20009804" + b"1234".hex())[1] == 0x69FC, cla
            assert _tx(t, cla + "A4040C0A" + contract.AID_JPKI.hex())[1] == 0x6882, cla
            assert _tx(t, cla + "A4020C020006")[1] == 0x6882, cla
        # nothing was read or spent: the plain commands still work
        assert _tx(t, "00B0000004")[1] == OK
        assert _tx(t, "00200098")[1] == 0x63C3
        for aid in CARD_AREAS[1:]:
            _select(t, aid)
            assert _tx(t, "0CB0000004")[1] == 0x69FC, aid.hex()
            assert _tx(t, "0C200080")[1] == 0x69FC, aid.hex()
        _select(t, ISD)
        assert _tx(t, "0CB0000004")[1] == 0x69FC


# --- 2. the phone token's last-command indicator ------------------------------------------


def test_last_command_indicator_answers_wrong_length(sample_card: str) -> None:
    with PcscTransport(sample_card) as t:
        _select(t, ISD)
        assert _tx(t, "80FC0000")[1] == 0x6700
        for aid in CARD_AREAS:
            _select(t, aid)
            assert _tx(t, "80FC0000")[1] == 0x6700, aid.hex()
            assert _tx(t, "00FC0000")[1] == 0x6D00, aid.hex()  # only the proprietary class


# --- 3. EF 001E at MF level ----------------------------------------------------------------


def test_mf_ef_001e_is_selectable_and_unreadable(sample_card: str) -> None:
    with PcscTransport(sample_card) as t:
        _select(t, ISD)
        for fid in (0x2F10, 0x2F11, 0x3F00):
            assert _select_ef(t, fid) == 0x6A82, f"{fid:04X}"
        assert _select_ef(t, 0x001E) == OK
        assert _tx(t, "00B0000000")[1] == 0x6981  # READ BINARY
        assert _tx(t, "00B2010400")[1] == 0x6981  # READ RECORD, current EF
        assert _tx(t, "00B20104F4")[1] == 0x6981  # READ RECORD, SFI 1E
        assert _tx(t, "00B0000000")[1] == 0x6981
        # the MF-level GET DATA objects still answer
        data, sw = _tx(t, "00CA5F5100")
        assert (data, sw) == (contract.ATR[1:], OK)


# --- 4. the card manager's AID ---------------------------------------------------------------


def test_the_card_manager_is_the_seven_byte_isd_aid(sample_card: str) -> None:
    assert contract.AID_CARD_MANAGER == ISD
    with PcscTransport(sample_card) as t:
        _select(t, contract.AID_JPKI)
        assert _tx(t, "00CA5F5100")[1] != OK  # GET DATA only at MF level
        data, sw = _tx(t, "00A4040C07" + ISD.hex())
        assert sw == OK and data == b""
        assert _tx(t, "00CA5F5100") == (contract.ATR[1:], OK)  # MF-level state restored
        # a longer AID that only starts with the ISD's is not the ISD
        assert _tx(t, "00A4040C08" + ISD.hex() + "00")[1] == 0x6A82


# --- 5. SELECT MF ----------------------------------------------------------------------------


def test_select_mf_inside_an_application_keeps_the_current_df(sample_card: str) -> None:
    with PcscTransport(sample_card) as t:
        _select(t, ISD)
        assert _tx(t, "00A40000")[1] == 0x6A86  # at MF level, as straight after reset
        _select(t, contract.AID_JPKI)
        assert _select_ef(t, contract.JPKI_TOKEN_INFO) == OK
        for apdu in ("00A40000", "00A4000C"):
            assert _tx(t, apdu) == (b"", OK), apdu
        # still in the JPKI application, its token info still the current EF
        data, sw = _tx(t, "00B0000020")
        assert sw == OK and data.rstrip(b" \0") == contract.TOKEN_INFO_LABEL
        assert _select_ef(t, contract.JPKI_AUTH_PIN) == OK
        assert _tx(t, "00200080")[1] == 0x63C3
        _select(t, contract.AID_COMMON)
        assert _tx(t, "00A40000")[1] == OK
        data, sw = _tx(t, "00B2010C00")  # 共通カードAP's record, by SFI
        assert sw == OK and data[:2] == b"\x01\x1c"


# --- 8. SET SESSION KEY ------------------------------------------------------------------------


def test_set_session_key_answers_per_application(sample_card: str) -> None:
    expected = {
        contract.AID_JPKI: 0x6982,
        contract.AID_JUKI: 0x6982,
        contract.AID_COMMON: 0x66F1,
        contract.AID_SURFACE: 0x66F1,
        contract.AID_TEXT: OK,
    }
    with PcscTransport(sample_card) as t:
        for aid, sw in expected.items():
            _select(t, aid)
            assert _tx(t, "80AE000000") == (b"", sw), aid.hex()


# --- 9. JPKI EFs 0009 and 0016 -------------------------------------------------------------------


def test_jpki_ef_0009_and_0016_exist_and_are_not_readable(sample_card: str) -> None:
    with PcscTransport(sample_card) as t:
        _select(t, contract.AID_JPKI)
        for fid in (contract.JPKI_UNKNOWN_PROTECTED, contract.JPKI_TERMINAL_KEY_REFERENCE):
            assert _select_ef(t, fid) == OK, f"{fid:04X}"
            assert _tx(t, "00B0000000")[1] == 0x6982, f"{fid:04X}"
        # not even with both JPKI PINs verified
        assert _verify(t, 0x80 | contract.JPKI_SIGN_PIN, SAMPLE_PIN_VALUES["jpki_sign"]) == OK
        assert _verify(t, 0x80 | contract.JPKI_AUTH_PIN, SAMPLE_PIN_VALUES["jpki_auth"]) == OK
        assert _tx(t, "00B0890000")[1] == 0x6982  # 0009 by SFI


# --- 10. text EFs 0006, 0007, 0008 and key 0012 ---------------------------------------------------


def test_text_key_0012_is_blocked(sample_card: str) -> None:
    with PcscTransport(sample_card) as t:
        _select(t, contract.AID_TEXT)
        assert _tx(t, "00200092") == (b"", 0x63C0)  # query by SFI
        assert _tx(t, "0020009204" + b"1111".hex())[1] == 0x6984
        assert _select_ef(t, contract.TEXT_BLOCKED_KEY) == OK
        assert _tx(t, "00200080")[1] == 0x63C0
        assert _tx(t, "0020008004" + SAMPLE_PIN_VALUES["text"].encode().hex())[1] == 0x6984
        assert _tx(t, "00B0000000")[1] == 0x6981  # a key is never read
        # the PIN next to it is untouched
        assert _tx(t, "00200091")[1] == 0x63C3


def test_text_key_files_0006_0007_and_filler_0008(sample_card: str) -> None:
    identity = sample_identity()
    with PcscTransport(sample_card) as t:
        _select(t, contract.AID_TEXT)
        assert _select_ef(t, contract.TEXT_UNKNOWN) == OK
        assert _tx(t, "00B0000000") == (b"\xff" * 16, OK)  # no credential
        for fid in (contract.TEXT_SESSION_KEY, contract.TEXT_CARD_KEY):
            assert _select_ef(t, fid) == OK, f"{fid:04X}"
            assert _tx(t, "00B0000000")[1] == 0x6982, f"{fid:04X}"
        assert _select_ef(t, contract.TEXT_CV_CERT) == OK
        cv = formats.parse_cv_certificate(_read_current(t, contract.CV_CERT_LENGTH))
        # each of the PIN, code A and code B opens both
        for pin_fid, value in ((contract.TEXT_PIN, SAMPLE_PIN_VALUES["text"]),
                               (contract.TEXT_CODE_A, identity.code_a),
                               (contract.TEXT_CODE_B, identity.code_b)):
            _select(t, contract.AID_JUKI)
            _select(t, contract.AID_TEXT)
            assert _verify(t, 0x80 | pin_fid, value) == OK
            assert _select_ef(t, contract.TEXT_SESSION_KEY) == OK
            session = _read_object(t)
            assert session[:4] == bytes.fromhex("A1820109") and len(session) == 269
            assert session[4:9] == bytes.fromhex("9003010001")
            assert session[9:13] == bytes.fromhex("91820100")
            assert _select_ef(t, contract.TEXT_CARD_KEY) == OK
            signed = _read_object(t)
            assert signed[:5] == bytes.fromhex("FF50820213") and len(signed) == 536
            assert signed[5:10] == bytes.fromhex("DF51820109")
            assert signed[275:280] == bytes.fromhex("DF52820100")
        card_key = formats.parse_signed_card_key_file(signed)
        assert isinstance(card_key.card_public_key, rsa.RSAPublicKey)
        assert card_key.verify(cv.public_key)
        assert formats.parse_session_key_file(session) is not None


# --- 11. surface EF 0006 ----------------------------------------------------------------------


def test_surface_ef_0006_opens_with_code_a_or_b(sample_card: str) -> None:
    identity = sample_identity()
    with PcscTransport(sample_card) as t:
        _select(t, contract.AID_SURFACE)
        assert _select_ef(t, contract.SURFACE_UNKNOWN) == OK
        assert _tx(t, "00B0000000")[1] == 0x6982
        assert _verify(t, 0x80 | contract.SURFACE_BIRTH_KEY, identity.birth_key) == OK
        assert _tx(t, "00B0860000")[1] == 0x6982  # the birth-date key does not open it
        for fid, value in ((contract.SURFACE_CODE_B, identity.code_b),
                           (contract.SURFACE_CODE_A, identity.code_a)):
            _select(t, contract.AID_JUKI)
            _select(t, contract.AID_SURFACE)
            assert _verify(t, 0x80 | fid, value) == OK
            assert _select_ef(t, contract.SURFACE_UNKNOWN) == OK
            assert _tx(t, "00B0000000") == (b"\xff" * 16, OK), f"{fid:04X}"


# --- 12. the surface age record ---------------------------------------------------------------


def test_surface_age_record_is_the_signed_547_byte_record(sample_card: str) -> None:
    identity = sample_identity()
    with PcscTransport(sample_card) as t:
        _select(t, contract.AID_SURFACE)
        assert _select_ef(t, contract.SURFACE_CV_CERT) == OK
        cv = formats.parse_cv_certificate(_read_current(t, contract.CV_CERT_LENGTH))
        assert _verify(t, 0x80 | contract.SURFACE_BIRTH_KEY, identity.birth_key) == OK
        assert _select_ef(t, contract.SURFACE_AGE_RECORD) == OK
        head = _read_current(t, 7)
        assert head[:5] == bytes.fromhex("FF1082021E")
        record = _read_current(t, 547)
        children = tlv.parse_file(record, formats.TAG_AGE_RECORD).children()
        assert [c.tag for c in children] == [0xDF11, 0xDF12, 0xDF13]
        assert children[0].value == identity.facts.birth_date.strftime("%Y%m%d").encode()
        assert children[1].value[:5] == bytes.fromhex("9003010001")
        assert len(children[2].value) == 256
        assert record[547 - 261:547 - 256] == bytes.fromhex("DF13820100")
        parsed = formats.parse_age_record(record)
        assert parsed.birth_date == identity.facts.birth_date
        assert parsed.verify(cv.public_key)
        # the card key is the one the card face carries (the JPKI authentication key)
        _select(t, contract.AID_SURFACE)
        assert _verify(t, 0x80 | contract.SURFACE_CODE_A, identity.code_a) == OK
        assert _select_ef(t, contract.SURFACE_FACE) == OK
        face = formats.parse_card_face_file(_read_current(t, contract.SURFACE.file(
            contract.SURFACE_FACE).size))
        assert face.card_public_key is not None and parsed.card_public_key is not None
        assert parsed.card_public_key.public_numbers() == face.card_public_key.public_numbers()
