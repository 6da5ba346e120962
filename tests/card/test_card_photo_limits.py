"""An applicant's photo is read defensively: its declared size is checked before anything
is decoded, so a small file cannot make the console decode a giant image."""

from __future__ import annotations

import struct
import time
import zlib

import pytest

from card import images


def _png_header_only(width: int, height: int) -> bytes:
    """A PNG that declares `width` × `height` 8-bit grey pixels and carries almost none."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr)
            + chunk(b"IDAT", zlib.compress(b"\x00" * 64)) + chunk(b"IEND", b""))


def test_a_photo_declaring_more_than_40_megapixels_is_refused_before_decoding() -> None:
    raw = _png_header_only(9000, 5000)  # 45 MP, under Pillow's own bomb limits
    started = time.monotonic()
    with pytest.raises(ValueError, match="9000×5000 pixels; at most 40 megapixels"):
        images.photo_from_file(raw)
    assert time.monotonic() - started < 1.0  # nothing was decoded


def test_an_ordinary_photo_still_becomes_the_cards_jp2() -> None:
    import io

    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (600, 800), (200, 180, 160)).save(buf, format="JPEG")
    out = images.photo_from_file(buf.getvalue())
    with Image.open(io.BytesIO(out)) as photo:
        assert photo.format == "JPEG2000" and photo.size == images.PHOTO_SIZE
