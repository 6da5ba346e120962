"""card.readers.resolve_reader: a reader given by name or by index."""

from __future__ import annotations

import pytest

from card.errors import ReaderNotFound
from card.readers import resolve_reader

NAMES = ["Virtual PCD 00 00", "Virtual PCD 00 01", "7"]


def listing() -> list[str]:
    return list(NAMES)


def asked() -> list[str]:
    raise AssertionError("a reader name must not ask PC/SC")


def test_index_picks_from_pcsc_list() -> None:
    assert resolve_reader("0", listing) == "Virtual PCD 00 00"
    assert resolve_reader("1", listing) == "Virtual PCD 00 01"
    assert resolve_reader(" 1 ", listing) == "Virtual PCD 00 01"


def test_a_reader_named_by_digits_wins_over_the_index() -> None:
    assert resolve_reader("7", listing) == "7"


def test_a_name_is_returned_without_asking_pcsc() -> None:
    assert resolve_reader("Virtual PCD 00 00", asked) == "Virtual PCD 00 00"
    assert resolve_reader("Some Reader 0", asked) == "Some Reader 0"
    assert resolve_reader("٣", asked) == "٣"  # not an ASCII index


def test_index_out_of_range_lists_the_readers() -> None:
    with pytest.raises(ReaderNotFound, match=r"no reader 3: there are 3 \(0 'Virtual PCD 00 00'"):
        resolve_reader("3", listing)
    with pytest.raises(ReaderNotFound, match="knows no reader"):
        resolve_reader("0", lambda: [])
