"""Every file a client reads is written at personalisation: a sample card is personalised,
then EVERY file of every application in docs/card.md (and every MF-level GET DATA object) is
read over PC/SC, and none may be all filler (FF) or all zero; each must parse as its
documented structure and the signatures in it must check.

On main before issue 10 (3) text EF 0004/0005 and 住基 EF 0002 read as 568/256/16 bytes of FF
and the MF objects 0042, 0066, 00F7, 00F8, 7F21 answered 6A88: this test failed there.
"""

from __future__ import annotations

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import padding
from cryptography.hazmat.primitives.hashes import SHA256

from card import contract, formats
from card.common_ap import CommonClient
from card.contract import Tag
from card.mf_data import get_data, read_mf_data
from card.sample import SAMPLE_LIBRARY_NUMBER, SAMPLE_PIN_VALUES, sample_identity
from card.session import AreaClient, area_client
from card.transport import PcscTransport
from emulator.pytest_plugin import CardReader

PROFILE = sample_identity()
# credentials to verify before reading an area's files (every file is opened by one of them)
OPENERS: dict[str, list[tuple[int, str]]] = {
    "jpki": [(contract.JPKI_SIGN_PIN, SAMPLE_PIN_VALUES["jpki_sign"])],
    "text": [(contract.TEXT_PIN, SAMPLE_PIN_VALUES["text"])],
    "surface": [(contract.SURFACE_BIRTH_KEY, PROFILE.birth_key),
                (contract.SURFACE_CODE_A, PROFILE.code_a)],
    "juki": [(contract.JUKI_PIN, SAMPLE_PIN_VALUES["juki"])],
    "common": [],
    "municipal-library": [(contract.LIBRARY_PIN, SAMPLE_PIN_VALUES["library"])],
}
MF_TAGS = (Tag.ISSUER_ID, Tag.CARD_SERIAL, Tag.CARD_RECOGNITION, Tag.MUNICIPALITY_CODE,
           Tag.EXPIRY, Tag.INTERMEDIATE_KEY_ID, Tag.CHAIN_UPPER, Tag.CHAIN_LOWER,
           Tag.CONTACT_ATR)


def _not_filler(what: str, data: bytes) -> None:
    assert data, f"{what} is empty"
    assert any(b != 0xFF for b in data), f"{what} is all FF filler"
    assert any(b != 0x00 for b in data), f"{what} is all zero"


def _read_every_file(transport: PcscTransport) -> dict[tuple[str, int], bytes]:
    files: dict[tuple[str, int], bytes] = {}
    for area in contract.AREAS:
        client: AreaClient = (CommonClient(transport) if area is contract.COMMON
                              else area_client(transport, area))
        client.select(force=True)
        for fid, value in OPENERS[area.name]:  # KeyError: a new area needs its opener here
            client.verify(fid, value)
        for spec in area.files:
            if spec.record_length:
                data = b"".join(CommonClient(transport).read_record(spec.fid, n)
                                for n in range(1, spec.size // spec.record_length + 1))
            else:
                data = client.read_raw(spec.fid, spec.size)
            assert len(data) == spec.size, f"{area.name} {spec.fid:04X}"
            _not_filler(f"{area.name} EF {spec.fid:04X} ({spec.name})", data)
            files[(area.name, spec.fid)] = data
    return files


def test_every_file_and_mf_object_is_written_and_parses(sample_card: CardReader) -> None:
    with PcscTransport(sample_card) as transport:
        mf = {tag: get_data(transport, tag) for tag in MF_TAGS}
        for tag, value in mf.items():
            _not_filler(f"MF object {int(tag):04X}", value)
        files = _read_every_file(transport)
        internal_auth = CommonClient(transport).internal_authenticate(b"every file")
        mf_data = read_mf_data(transport)
    f = files

    # JPKI: four X.509 certificates, token info, availability
    certs = {fid: x509.load_der_x509_certificate(formats_der(f[("jpki", fid)]))
             for fid in (contract.JPKI_SIGN_CERT, contract.JPKI_SIGN_CA_CERT,
                         contract.JPKI_AUTH_CERT, contract.JPKI_AUTH_CA_CERT)}
    assert certs[contract.JPKI_AUTH_CERT].issuer == certs[contract.JPKI_AUTH_CA_CERT].subject
    assert formats.parse_token_label(f[("jpki", contract.JPKI_TOKEN_INFO)]) == "JPKIAPICCTOKEN2"
    availability = formats.parse_cert_availability_file(
        f[("jpki", contract.JPKI_CERT_AVAILABILITY)])
    assert availability.sign and availability.auth

    # text: My Number, four facts, integrity record signed by the key of EF 0004, EF 0005
    mn, bf = f[("text", contract.TEXT_MY_NUMBER)], f[("text", contract.TEXT_BASIC_FOUR)]
    assert formats.parse_my_number_file(mn) == PROFILE.my_number
    assert formats.parse_basic_four_file(bf) == PROFILE.facts
    text_cv = formats.parse_cv_certificate(f[("text", contract.TEXT_CV_CERT)])
    assert text_cv.self_signed_ok and text_cv.subject_key_id.startswith(b"6000033")
    check = formats.check_integrity_record(f[("text", contract.TEXT_INTEGRITY)], mn, bf,
                                           text_cv.public_key)
    assert check.my_number_hash_ok and check.basic_four_hash_ok and check.signature_ok
    basic = formats.parse_text_basic_file(f[("text", contract.TEXT_AP_BASIC)])
    assert basic.ap_id == bytes.fromhex("01030E01")
    assert basic.key_id == text_cv.subject_key_id
    assert basic.data[32:] == b"\xff" * 96 and basic.data[:32] != b"\xff" * 32

    # surface: age record, card face and My Number image signed by the key of EF 0004
    surface_cv = formats.parse_cv_certificate(f[("surface", contract.SURFACE_CV_CERT)])
    assert surface_cv.self_signed_ok
    assert formats.parse_age_record_file(f[("surface", contract.SURFACE_AGE_RECORD)]) \
        == PROFILE.facts.birth_date
    assert formats.verify_card_face(f[("surface", contract.SURFACE_FACE)],
                                    f[("surface", contract.SURFACE_CV_CERT)])
    assert formats.parse_surface_basic_file(
        f[("surface", contract.SURFACE_AP_BASIC)]).municipality_code == PROFILE.municipality_code
    assert formats.parse_my_number_image_file(
        f[("surface", contract.SURFACE_MY_NUMBER_IMAGE)]).verify(surface_cv.public_key)

    # 住基AP and 共通カードAP: resident code, the shared key reference, the card-info record
    assert formats.parse_resident_code_file(f[("juki", contract.JUKI_RESIDENT_CODE)]) \
        == PROFILE.resident_code
    reference = f[("juki", contract.JUKI_KEY_REFERENCE)]
    assert reference == f[("common", contract.COMMON_KEY_REFERENCE)]
    info = formats.parse_card_info_record(f[("common", contract.COMMON_CARD_INFO)])
    assert info.serial == sample_card.serial
    assert info.municipality_code == PROFILE.municipality_code
    assert info.expiry == PROFILE.expiry
    assert formats.parse_library_number_file(f[("municipal-library", contract.LIBRARY_NUMBER)]) \
        == SAMPLE_LIBRARY_NUMBER

    # MF: issuer ID = intermediate key ID = the center key's ID; the chain 00F8 → 7F21 checks
    # with the center key (the one that certifies text and surface), and 7F21 certifies the key
    # that answers INTERNAL AUTHENTICATE, whose key ID is the key reference of EF 0002.
    assert mf[Tag.CARD_SERIAL].decode() == sample_card.serial
    assert mf[Tag.CONTACT_ATR] == contract.ATR[1:]
    assert mf_data.issuer_id == mf_data.intermediate_key_id == mf_data.chain.upper.subject_key_id
    assert len(mf[Tag.CHAIN_UPPER]) == len(mf[Tag.CHAIN_LOWER]) == contract.CV_CERT_LENGTH
    center_key = text_cv.public_key
    assert surface_cv.public_key.public_numbers() == center_key.public_numbers()
    assert mf_data.chain.verify(center_key)
    assert mf_data.chain.lower.subject_key_id == reference
    mf_data.chain.lower.public_key.verify(internal_auth, b"every file", padding.PKCS1v15(),
                                          SHA256())
    assert mf_data.card_recognition[0x06] == formats.GP_OID


def formats_der(data: bytes) -> bytes:
    """The DER certificate at the start of a certificate file (its filler cut off)."""
    length = int.from_bytes(data[2:4], "big") + 4
    assert data[:2] == b"\x30\x82"
    return data[:length]

