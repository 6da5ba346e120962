"""What the command line shows on a terminal only: progress with counts and rate, and
colour for OK/REFUSED/INVALID. Off when the stream is not a terminal, with --quiet, or
(colour) when $NO_COLOR is set, so scripts and logs read plain text.

In hsm, the lowest package every command group may import.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Iterable, Iterator
from typing import TextIO, TypeVar

T = TypeVar("T")

_COLOURS = {"OK": "32", "VALID": "32", "DONE": "32", "REFUSED": "33", "INVALID": "31",
            "FAILED": "31", "UNCHECKED": "33"}


def colour_on(stream: TextIO) -> bool:
    return "NO_COLOR" not in os.environ and bool(getattr(stream, "isatty", lambda: False)())


def paint(word: str, stream: TextIO | None = None) -> str:
    """`word` in its colour when `stream` (stdout) is a terminal and NO_COLOR is unset."""
    code = _COLOURS.get(word.upper())
    if code is None or not colour_on(stream or sys.stdout):
        return word
    return f"\033[{code}m{word}\033[0m"


class Progress:
    """`label: N done (R/s)` rewritten in place on stderr, at most ~5 times a second."""

    def __init__(self, label: str, *, total: int | None = None, quiet: bool = False,
                 stream: TextIO | None = None) -> None:
        self.stream = stream or sys.stderr
        self.on = not quiet and bool(getattr(self.stream, "isatty", lambda: False)())
        self.label, self.total, self.n = label, total, 0
        self.started = self.last = time.monotonic()

    def line(self) -> str:
        elapsed = max(time.monotonic() - self.started, 1e-9)
        of = f"/{self.total}" if self.total is not None else ""
        return f"{self.label}: {self.n}{of} ({self.n / elapsed:.0f}/s)"

    def add(self, n: int = 1) -> None:
        self.n += n
        now = time.monotonic()
        if self.on and now - self.last >= 0.2:
            self.last = now
            print("\r" + self.line(), end="", file=self.stream, flush=True)

    def done(self) -> None:
        if self.on:
            print("\r" + self.line(), file=self.stream, flush=True)

    def over(self, items: Iterable[T]) -> Iterator[T]:
        for item in items:
            yield item
            self.add()
        self.done()
