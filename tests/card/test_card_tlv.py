"""BER-TLV: multi-byte tags, the three length forms, FF filler."""

from __future__ import annotations

import pytest

from card import tlv
from card.tlv import MalformedData


@pytest.mark.parametrize(
    ("tag", "encoded"),
    [(0x30, b"\x30"), (0xDF22, b"\xdf\x22"), (0xFF20, b"\xff\x20"), (0x5F51, b"\x5f\x51"),
     (0x7F21, b"\x7f\x21")],
)
def test_multi_byte_tags_round_trip(tag: int, encoded: bytes) -> None:
    raw = tlv.encode(tag, b"\x01\x02")
    assert raw.startswith(encoded)
    parsed, end = tlv.parse_one(raw)
    assert parsed == tlv.Tlv(tag, b"\x01\x02")
    assert end == len(raw)


@pytest.mark.parametrize(
    ("length", "header"),
    [(0, b"\x00"), (0x7F, b"\x7f"), (0x80, b"\x81\x80"), (0xFF, b"\x81\xff"),
     (0x100, b"\x82\x01\x00"), (0x14B, b"\x82\x01\x4b"), (0xFFFF, b"\x82\xff\xff")],
)
def test_length_forms(length: int, header: bytes) -> None:
    assert tlv.encode_length(length) == header
    raw = tlv.encode(0xDF33, bytes(length))
    tag, value_length, header_length = tlv.parse_header(raw)
    assert (tag, value_length, header_length) == (0xDF33, length, 2 + len(header))


def test_parse_header_needs_only_the_header() -> None:
    assert tlv.parse_header(b"\x30\x82\x04\x00") == (0x30, 0x400, 4)


def test_filler_after_the_object_is_ignored() -> None:
    body = tlv.encode(0xDF01, b"12345678903")
    assert tlv.parse_all(body + b"\xff" * 19) == [tlv.Tlv(0xDF01, b"12345678903")]
    assert tlv.parse_file(body + b"\xff" * 19, 0xDF01).value == b"12345678903"


def test_my_number_file_layout_from_a_test_card() -> None:
    raw = bytes.fromhex("FF100C353337363836363737313838FFFF")
    assert tlv.parse_file(raw, 0xFF10).value == b"537686677188"


def test_constructed_children() -> None:
    inner = tlv.encode_all([(0xDF22, "名".encode()), (0xDF25, b"1")])
    outer = tlv.parse_file(tlv.encode(0xFF20, inner), 0xFF20)
    assert outer.constructed
    assert tlv.to_dict(outer.children()) == {0xDF22: "名".encode(), 0xDF25: b"1"}
    assert tlv.find(outer.children(), 0xDF25) == b"1"
    with pytest.raises(MalformedData):
        tlv.find(outer.children(), 0xDF23)


@pytest.mark.parametrize(
    "raw",
    [b"", b"\xff" * 17, b"\xdf", b"\xdf\x22", b"\xdf\x22\x05ab", b"\xdf\x22\x84\x00\x00\x00\x01",
     b"\x30\x82\x01"],
)
def test_malformed_input_raises(raw: bytes) -> None:
    with pytest.raises(MalformedData):
        tlv.parse_file(raw, 0xDF22)


def test_wrong_tag_in_file() -> None:
    with pytest.raises(MalformedData, match="expected data object FF20"):
        tlv.parse_file(tlv.encode(0xFF10, b"x"), 0xFF20)


def test_malformed_data_is_a_card_error_and_a_value_error() -> None:
    from card.errors import CardError

    assert issubclass(MalformedData, CardError)
    assert issubclass(MalformedData, ValueError)


def test_encode_rejects_non_bytes() -> None:
    with pytest.raises(TypeError):
        tlv.encode(0xDF22, "text")  # type: ignore[arg-type]
