"""BER-TLV as the card uses it: multi-byte tags (DF22, FF20, 5F51, 7F21), lengths in
the 1-byte, 81 and 82 forms, and FF filler after the object (files have fixed sizes
and unwritten bytes read as FF).

Tags are handled as integers of their encoded bytes (``0xDF22``), the way every
source about the card writes them.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from card.errors import CardError


class MalformedData(CardError, ValueError):
    """Bytes read from a card or given to a parser do not have the expected format."""


@dataclass(frozen=True)
class Tlv:
    """One data object: its tag (encoded bytes as an int) and its value."""

    tag: int
    value: bytes

    @property
    def constructed(self) -> bool:
        return bool(tag_bytes(self.tag)[0] & 0x20)

    def children(self) -> list[Tlv]:
        """The objects inside a constructed value."""
        return parse_all(self.value)

    def encode(self) -> bytes:
        return encode(self.tag, self.value)


def tag_bytes(tag: int) -> bytes:
    """The encoded bytes of a tag number such as 0xDF22."""
    if tag < 0:
        raise ValueError("a tag is not negative")
    return tag.to_bytes(max(1, (tag.bit_length() + 7) // 8), "big")


def encode_length(length: int) -> bytes:
    """The shortest BER length: one byte below 0x80, else 81 xx, 82 xx xx, 83 xx xx xx."""
    if length < 0:
        raise ValueError("a length is not negative")
    if length < 0x80:
        return bytes((length,))
    body = length.to_bytes((length.bit_length() + 7) // 8, "big")
    if len(body) > 3:
        raise ValueError("length too large for a card file")
    return bytes((0x80 | len(body),)) + body


def encode(tag: int, value: bytes) -> bytes:
    """Encode one TLV."""
    if not isinstance(value, (bytes, bytearray)):
        raise TypeError("a TLV value is bytes")
    return tag_bytes(tag) + encode_length(len(value)) + bytes(value)


def encode_all(items: Iterable[tuple[int, bytes]]) -> bytes:
    """Concatenate the TLVs of (tag, value) pairs."""
    return b"".join(encode(tag, value) for tag, value in items)


def parse_header(data: bytes, offset: int = 0) -> tuple[int, int, int]:
    """(tag, value length, header length) of the object at `offset`.

    Needs only the header bytes, so a reader can learn an object's size from its
    first few bytes.
    """
    end = len(data)
    if offset >= end:
        raise MalformedData("no data object: input ends")
    pos = offset
    first = data[pos]
    pos += 1
    tag = first
    if first & 0x1F == 0x1F:
        while True:
            if pos >= end:
                raise MalformedData("tag runs past the end of the input")
            b = data[pos]
            pos += 1
            tag = (tag << 8) | b
            if not b & 0x80:
                break
            if pos - offset > 4:
                raise MalformedData("tag longer than four bytes")
    if pos >= end:
        raise MalformedData("length missing")
    lb = data[pos]
    pos += 1
    if lb < 0x80:
        length = lb
    elif lb in (0x81, 0x82, 0x83):
        n = lb & 0x7F
        if pos + n > end:
            raise MalformedData("length runs past the end of the input")
        length = int.from_bytes(data[pos : pos + n], "big")
        pos += n
    else:
        raise MalformedData(f"unsupported length byte {lb:02X}")
    return tag, length, pos - offset


def parse_one(data: bytes, offset: int = 0) -> tuple[Tlv, int]:
    """The object at `offset` and the offset just after it."""
    tag, length, header = parse_header(data, offset)
    start = offset + header
    if start + length > len(data):
        raise MalformedData(f"object {tag:X} is longer than the input")
    return Tlv(tag, bytes(data[start : start + length])), start + length


def _is_filler(rest: bytes) -> bool:
    return all(b == 0xFF for b in rest) or all(b == 0x00 for b in rest)


def iter_tlvs(data: bytes) -> Iterator[Tlv]:
    """The objects in `data`, stopping at trailing FF (or 00) filler."""
    offset = 0
    while offset < len(data) and not _is_filler(data[offset:]):
        tlv, offset = parse_one(data, offset)
        yield tlv


def parse_all(data: bytes) -> list[Tlv]:
    """Every object in `data` (filler after the last one is ignored)."""
    return list(iter_tlvs(data))


def parse_file(data: bytes, tag: int) -> Tlv:
    """The single object a card file holds, which must have `tag`."""
    if not data or _is_filler(data):
        raise MalformedData(f"file holds no data object (expected {tag:X})")
    tlv, _ = parse_one(data)
    if tlv.tag != tag:
        raise MalformedData(f"expected data object {tag:X}, found {tlv.tag:X}")
    return tlv


def find(items: Iterable[Tlv], tag: int) -> bytes:
    """The value of the first object with `tag`; MalformedData if absent."""
    for item in items:
        if item.tag == tag:
            return item.value
    raise MalformedData(f"data object {tag:X} missing")


def to_dict(items: Iterable[Tlv]) -> dict[int, bytes]:
    """Tag → value of the first occurrence of each tag."""
    out: dict[int, bytes] = {}
    for item in items:
        out.setdefault(item.tag, item.value)
    return out
