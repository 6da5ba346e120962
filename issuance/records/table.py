"""Rows printed as an aligned table, counting East Asian wide characters as two columns."""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence
from typing import TextIO


def width(text: str) -> int:
    return sum(2 if unicodedata.east_asian_width(c) in ("W", "F") else 1 for c in text)


def _pad(text: str, columns: int) -> str:
    return text + " " * (columns - width(text))


def print_table(out: TextIO, headers: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
    """`rows` under `headers`, columns separated by two spaces; nothing but the header
    line when there are no rows."""
    widths = [width(h) for h in headers]
    for row in rows:
        widths = [max(w, width(cell)) for w, cell in zip(widths, row, strict=True)]
    for line in (headers, *rows):
        out.write("  ".join(_pad(cell, w) for cell, w in zip(line, widths, strict=True))
                  .rstrip() + "\n")
