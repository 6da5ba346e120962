"""Letters as PDF: the hand-over notice (交付通知書) and the expiry notices.

Japanese text is set in the CID fonts every PDF reader carries (HeiseiMin-W3 for the
body, HeiseiKakuGo-W5 for headings), so no font file is embedded or shipped. Those
fonts cover JIS X 0208, which is why names and addresses are printed in their
certificate form (代替文字 replaced, `pki.substitutes`). The PDF is built in memory;
the caller writes it with `hsm.files` (exclusive, 0600).
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

from reportlab.lib.pagesizes import A4
from reportlab.lib.units import mm
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.cidfonts import UnicodeCIDFont
from reportlab.pdfgen import canvas

BODY = "HeiseiMin-W3"
HEADING = "HeiseiKakuGo-W5"
ISSUER = "地方公共団体情報システム機構（J-LIS）"


def _fonts() -> None:
    for name in (BODY, HEADING):
        if name not in pdfmetrics.getRegisteredFontNames():
            pdfmetrics.registerFont(UnicodeCIDFont(name))


def wareki(day: date) -> str:
    """A date as letters write it: 令和 era for dates from 2019-05-01, else Gregorian."""
    if day >= date(2019, 5, 1):
        year = day.year - 2018
        return f"令和{'元' if year == 1 else year}年{day.month}月{day.day}日"
    return f"{day.year}年{day.month}月{day.day}日"


@dataclass(frozen=True)
class Letter:
    """One letter: the addressee block, a title, paragraphs and a table of lines."""

    address: str
    name: str
    date: date
    sender: str
    title: str
    paragraphs: Sequence[str]
    table: Sequence[tuple[str, str]] = ()
    footer: Sequence[str] = ()


def _wrap(text: str, width: float, font: str, size: float) -> list[str]:
    lines: list[str] = []
    current = ""
    for char in text:
        if pdfmetrics.stringWidth(current + char, font, size) > width:
            lines.append(current)
            current = char
        else:
            current += char
    if current:
        lines.append(current)
    return lines or [""]


def _draw(c: canvas.Canvas, letter: Letter) -> None:
    width, height = A4
    left, right = 25 * mm, width - 25 * mm
    y = height - 30 * mm
    c.setFont(BODY, 11)
    for line in _wrap(letter.address, 100 * mm, BODY, 11):
        c.drawString(left, y, line)
        y -= 6 * mm
    c.setFont(BODY, 14)
    c.drawString(left, y - 2 * mm, f"{letter.name}　様")
    c.setFont(BODY, 10.5)
    c.drawRightString(right, height - 30 * mm, wareki(letter.date))
    c.drawRightString(right, height - 36 * mm, letter.sender)
    y -= 24 * mm
    c.setFont(HEADING, 16)
    c.drawCentredString(width / 2, y, letter.title)
    y -= 14 * mm
    c.setFont(BODY, 10.5)
    for paragraph in letter.paragraphs:
        for line in _wrap(paragraph, right - left, BODY, 10.5):
            c.drawString(left, y, line)
            y -= 6 * mm
        y -= 2 * mm
    if letter.table:
        y -= 2 * mm
        for label, value in letter.table:
            c.setFont(HEADING, 10.5)
            c.drawString(left + 5 * mm, y, label)
            c.setFont(BODY, 10.5)
            c.drawString(left + 75 * mm, y, value)
            c.line(left, y - 2 * mm, right, y - 2 * mm)
            y -= 8 * mm
    c.setFont(BODY, 9)
    y = 30 * mm + 5 * mm * len(letter.footer)
    for line in letter.footer:
        c.drawString(left, y, line)
        y -= 5 * mm


def render(letters: Sequence[Letter], *, title: str) -> bytes:
    """The letters as one PDF, one page each."""
    _fonts()
    out = io.BytesIO()
    c = canvas.Canvas(out, pagesize=A4, invariant=True, pageCompression=0)
    c.setTitle(title)
    c.setAuthor(ISSUER)
    for letter in letters:
        _draw(c, letter)
        c.showPage()
    c.save()
    return out.getvalue()
