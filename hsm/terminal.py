"""What the command line shows on a terminal only: progress with counts and rate, and
colour for OK/REFUSED/INVALID. Off when the stream is not a terminal, with --quiet
(every command takes it; the root command calls `set_quiet`), under --json, or (colour)
when $NO_COLOR is set, so scripts and logs read plain text.

In hsm, the lowest package every command group may import.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Iterable, Iterator
from typing import TextIO, TypeVar

T = TypeVar("T")

_quiet = False


_live: list[Progress] = []  # shown and not finished: ended by `finish_all`


def set_quiet(quiet: bool = True) -> None:
    """--quiet for the whole command: no Progress shows, whoever made it."""
    global _quiet
    _quiet = quiet


def finish_all() -> None:
    """End every progress line still open (the root command calls it after a command,
    so what it prints next starts on a line of its own)."""
    while _live:
        _live.pop().done()


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
        self.on = not (quiet or _quiet) and \
            bool(getattr(self.stream, "isatty", lambda: False)())
        self.label, self.total, self.n, self.note = label, total, 0, ""
        self.started = self.last = time.monotonic()
        self.finished = False

    def line(self) -> str:
        elapsed = max(time.monotonic() - self.started, 1e-9)
        of = f"/{self.total}" if self.total is not None else ""
        note = f" {self.note}" if self.note else ""
        return f"{self.label}: {self.n}{of} ({self.n / elapsed:.0f}/s){note}"

    def add(self, n: int = 1, note: str | None = None) -> None:
        self.update(self.n + n, note)

    def update(self, n: int, note: str | None = None, *, force: bool = False) -> None:
        """Set the count (and what is being done); shown at most ~5 times a second."""
        self.n = n
        if note is not None:
            self.note = note
        now = time.monotonic()
        if self.on and (force or now - self.last >= 0.2):
            self.last = now
            if self not in _live:
                _live.append(self)
            print("\r\033[K" + self.line(), end="", file=self.stream, flush=True)

    def done(self) -> None:
        if self in _live:
            _live.remove(self)
        if self.on and not self.finished:
            self.finished = True
            print("\r\033[K" + self.line(), file=self.stream, flush=True)

    def over(self, items: Iterable[T]) -> Iterator[T]:
        for item in items:
            yield item
            self.add()
        self.done()
