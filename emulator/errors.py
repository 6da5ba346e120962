"""The emulator's one exception root."""

from __future__ import annotations


class EmulatorError(Exception):
    """The emulator cannot start, or lost a part while running."""


class ReaderStateError(EmulatorError):
    """The request does not fit the reader: no such reader, a card to eject from an empty
    reader, or one to insert into a full one (invalid input, not a failed part)."""
