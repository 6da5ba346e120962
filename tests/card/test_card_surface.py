"""The card surface application as a client reads it over PC/SC: every tag of the card
face, real images, DF28 verified with the key of EF 0004, the My Number image behind
code A only, and an infant's card without a photo."""

from __future__ import annotations

import io
from dataclasses import replace
from datetime import date

import pytest
from card_support import PINS, PROFILE, Personalised, personalise
from PIL import Image

from card import contract, formats, images
from card.errors import SecurityStatusNotSatisfied
from card.sample import SampleCa
from card.surface import SurfaceClient
from card.tlv import parse_file
from card.transport import PcscTransport

pytestmark = pytest.mark.personalises


def _open(raw: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(raw))
    image.load()
    return image


def test_card_face_is_read_parsed_and_verified_after_code_a(card: Personalised) -> None:
    surface = SurfaceClient(card.transport)
    surface.verify_code_a(PROFILE.code_a)
    raw = surface.card_face_raw()
    tags = [t.tag for t in parse_file(raw, formats.TAG_FACE).children()]
    assert tags == [0xDF21, 0xDF22, 0xDF23, 0xDF24, 0xDF25, 0xDF26, 0xDF27, 0xDF28, 0xDF29,
                    0xDF2A]
    face = formats.parse_card_face_file(raw)
    name, address = _open(face.name_image), _open(face.address_image)
    assert (name.format, name.mode, address.format, address.mode) == ("PNG", "1", "PNG", "1")
    assert face.photo is not None
    photo = _open(face.photo)
    assert (photo.format, photo.mode) == ("JPEG2000", "L")
    code = _open(face.security_code_image)
    assert (code.format, code.size) == ("PNG", (24, 12))
    # the card key is the JPKI authentication key, not the key that signs
    assert face.card_public_key == card.result.auth_public_key
    cert = surface.cv_certificate()
    assert cert.self_signed_ok
    assert cert.public_key == card.ca.integrity_key.public_key()
    assert face.verify(cert.public_key)
    assert face.card_public_key is not None and not face.verify(face.card_public_key)
    basic = surface.basic_data()
    assert basic.municipality_code == PROFILE.municipality_code
    assert basic.key_id == cert.subject_key_id
    assert len(raw) <= 8192


def test_my_number_image_needs_code_a(card: Personalised) -> None:
    surface = SurfaceClient(card.transport)
    surface.verify_code_b(PROFILE.code_b)
    surface.card_face()  # code B opens the face ...
    with pytest.raises(SecurityStatusNotSatisfied) as refused:
        surface.my_number_image()  # ... and not the My Number image
    assert refused.value.sw == 0x6982
    surface.select(force=True)
    surface.verify_code_a(PROFILE.code_a)
    image = surface.my_number_image()
    assert image.image == images.my_number_image(PROFILE.my_number)
    png = _open(image.image)
    assert (png.format, png.size, png.mode) == ("PNG", (72, 12), "1")
    assert image.card_public_key == card.result.auth_public_key
    assert image.verify(surface.cv_certificate().public_key)


def test_files_a_client_reads_without_a_code_are_written(card: Personalised) -> None:
    surface = SurfaceClient(card.transport)
    assert len(surface.read_object(contract.SURFACE_CV_CERT)) == 568
    assert surface.basic_data().ap_id == bytes.fromhex("06030E01")


def test_an_infants_card_has_no_photo(blank_card: str, test_ca: SampleCa) -> None:
    infant = replace(PROFILE, facts=replace(PROFILE.facts, birth_date=date(2025, 6, 1)),
                     expiry=date(2030, 6, 1), photo=None, with_signing_certificate=False)
    with PcscTransport(blank_card) as transport:
        personalise(transport, test_ca, profile=infant,
                    pins=replace(PINS, jpki_sign=None), library=False)
        surface = SurfaceClient(transport)
        surface.verify_code_a(infant.code_a)
        raw = surface.card_face_raw()
        tags = [t.tag for t in parse_file(raw, formats.TAG_FACE).children()]
        assert 0xDF27 not in tags and 0xDF28 in tags
        face = formats.parse_card_face_file(raw)
        assert face.photo is None
        assert face.verify(surface.cv_certificate().public_key)
