"""The images of the card surface application: what the real card carries instead of text.

The name and the address are 1-bit PNGs rendered with a Japanese font (IPA Gothic from
Debian's `fonts-ipafont-gothic`), the face photo a greyscale JPEG 2000 (JP2), the My
Number (72×12) and the security code (24×12) small 1-bit PNGs. Rendering is
deterministic: the same facts give the same bytes, so a test can compare what a card
holds with a fresh rendering, and the card face signature is reproducible.
"""

from __future__ import annotations

import io
import random
from functools import lru_cache
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

from card.errors import CardError

FONT_PATHS = (
    Path("/usr/share/fonts/opentype/ipafont-gothic/ipag.ttf"),
    Path("/usr/share/fonts/truetype/fonts-japanese-gothic.ttf"),
)
NAME_HEIGHT = 24
ADDRESS_HEIGHT = 18
ADDRESS_LINE_CHARS = 20
MY_NUMBER_SIZE = (72, 12)
SECURITY_CODE_SIZE = (24, 12)
PHOTO_SIZE = (72, 90)
PHOTO_RATE = 4.0  # JPEG 2000 compression ratio: a 72×90 grey photo in about 1.6 KB


class FontMissing(CardError):
    """No Japanese font is installed (Debian: fonts-ipafont-gothic; `make setup`)."""


@lru_cache(maxsize=8)
def _font(size: int) -> ImageFont.FreeTypeFont:
    for path in FONT_PATHS:
        if path.is_file():
            return ImageFont.truetype(str(path), size)
    raise FontMissing("no Japanese font: install fonts-ipafont-gothic (make setup)")


def _png(image: Image.Image) -> bytes:
    out = io.BytesIO()
    image.save(out, "PNG", optimize=True)
    return out.getvalue()


def _text_lines(lines: list[str], height: int) -> bytes:
    font = _font(height - 2)
    width = max(1, max(int(font.getlength(line)) for line in lines) + 4)
    image = Image.new("1", (width, height * len(lines)), 1)
    draw = ImageDraw.Draw(image)
    for i, line in enumerate(lines):
        draw.text((2, i * height + 1), line, font=font, fill=0)
    return _png(image)


def name_image(name: str) -> bytes:
    """The holder's name as printed: one line, 1-bit PNG."""
    if not name:
        raise ValueError("the name is empty")
    return _text_lines([name], NAME_HEIGHT)


def address_image(address: str) -> bytes:
    """The address as printed: lines of at most 20 characters, 1-bit PNG."""
    if not address:
        raise ValueError("the address is empty")
    lines = [address[i:i + ADDRESS_LINE_CHARS]
             for i in range(0, len(address), ADDRESS_LINE_CHARS)]
    return _text_lines(lines, ADDRESS_HEIGHT)


def _digits_image(digits: str, size: tuple[int, int]) -> bytes:
    if not digits.isascii() or not digits.isdigit():
        raise ValueError("digits only")
    font = _font(size[1])
    image = Image.new("1", size, 1)
    draw = ImageDraw.Draw(image)
    step = size[0] / len(digits)
    for i, digit in enumerate(digits):
        draw.text((int(i * step), 0), digit, font=font, fill=0)
    return _png(image)


def my_number_image(my_number: str) -> bytes:
    """The 12-digit My Number as printed on the back: 72×12 1-bit PNG."""
    if len(my_number) != 12:
        raise ValueError("a My Number has 12 digits")
    return _digits_image(my_number, MY_NUMBER_SIZE)


def security_code_image(code: str) -> bytes:
    """The 4-digit security code as printed on the front: 24×12 1-bit PNG."""
    if len(code) != 4:
        raise ValueError("a security code has 4 digits")
    return _digits_image(code, SECURITY_CODE_SIZE)


def jp2(image: Image.Image) -> bytes:
    """A greyscale JPEG 2000 (JP2) of `image`, scaled to the card's photo size."""
    grey = image.convert("L")
    if grey.size != PHOTO_SIZE:
        grey = grey.resize(PHOTO_SIZE, Image.Resampling.LANCZOS)
    out = io.BytesIO()
    grey.save(out, "JPEG2000", irreversible=True, quality_mode="rates",
              quality_layers=[PHOTO_RATE], no_jp2=False)
    return out.getvalue()


MAX_PHOTO_PIXELS = 40_000_000  # a 40-megapixel camera's frame; decoding more is a DoS


def photo_from_file(raw: bytes) -> bytes:
    """An applicant's photo (any format Pillow reads) as the card's JP2. The size is read
    from the header first: a small file can declare a huge image, whose decoding would
    take seconds and hundreds of MB."""
    too_large = None
    try:
        with Image.open(io.BytesIO(raw)) as image:
            width, height = image.size
            if width * height > MAX_PHOTO_PIXELS:
                too_large = f"{width}×{height}"
            elif image.format == "JPEG2000" and image.mode == "L" \
                    and image.size == PHOTO_SIZE:
                return bytes(raw)  # already the card's photo: no second lossy pass
            else:
                return jp2(image)
    except (OSError, ValueError, Image.DecompressionBombError) as exc:
        raise ValueError(f"the photo is not an image Pillow can read: {exc}") from None
    raise ValueError(f"the photo is {too_large} pixels; at most "
                     f"{MAX_PHOTO_PIXELS // 1_000_000} megapixels")


def generated_portrait(seed: str) -> bytes:
    """A deterministic drawn portrait for synthetic residents, seeded by e.g. the resident code.

    Not a likeness of anyone: a background, shoulders, a head, hair, eyes and a mouth,
    with shades and proportions drawn from `seed`.
    """
    rnd = random.Random(seed)
    w, h = PHOTO_SIZE
    image = Image.new("L", PHOTO_SIZE, rnd.randint(170, 230))
    draw = ImageDraw.Draw(image)
    draw.ellipse((w * 0.1, h * 0.72, w * 0.9, h * 1.3), fill=rnd.randint(40, 110))
    head_w, head_h = w * rnd.uniform(0.42, 0.52), h * rnd.uniform(0.45, 0.55)
    left, top = (w - head_w) / 2, h * 0.18
    draw.rectangle((w * 0.42, top + head_h * 0.8, w * 0.58, h * 0.8), fill=rnd.randint(140, 190))
    draw.ellipse((left, top, left + head_w, top + head_h), fill=rnd.randint(150, 200))
    hair = rnd.randint(10, 80)
    draw.chord((left - 2, top - 4, left + head_w + 2, top + head_h * rnd.uniform(0.5, 0.8)),
               180, 360, fill=hair)
    eye_y = top + head_h * 0.48
    for ex in (left + head_w * 0.3, left + head_w * 0.7):
        draw.ellipse((ex - 2, eye_y - 1.5, ex + 2, eye_y + 1.5), fill=20)
    mouth_y = top + head_h * 0.75
    draw.line((left + head_w * 0.38, mouth_y, left + head_w * 0.62, mouth_y), fill=60, width=1)
    return jp2(image)
