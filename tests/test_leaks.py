"""The test helper that looks for secrets: it finds them written, not inside other values."""

from __future__ import annotations

import pytest
from leaks import shows


@pytest.mark.parametrize(("text", "secret"), [
    ("pin=9137", "9137"), ('{"pin": "9137"}', "9137"), ("PIN 9137.", "9137"),
    ("9137", "9137"), ("(9137)", "9137"), ("a\n9137\nb", "9137"),
    ("pw: TEST-2026!", "TEST-2026"), ("a+b.c", "+b.")])
def test_a_secret_written_as_a_value_shows(text: str, secret: str) -> None:
    assert shows(text, secret)


@pytest.mark.parametrize("text", ["7e076bd4c227ce9137214bcd", "serial 091370000000001",
                                  "x9137", "9137a", ""])
def test_a_secret_inside_a_longer_value_does_not(text: str) -> None:
    assert not shows(text, "9137")


def test_an_empty_secret_is_refused() -> None:
    with pytest.raises(ValueError):
        shows("anything", "")
