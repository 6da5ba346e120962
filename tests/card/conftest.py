"""Fixtures of the card tests; readers come from the `mynacard` pytest plugin
(emulator/pytest_plugin.py): `blank_card`, `sample_card`, `mynacard_reader`."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from card_support import PROFILE, Personalised, personalise

from card.sample import SampleCa, sample_ca
from card.session import channel_for
from card.transport import PcscTransport


@pytest.fixture(scope="session")
def test_ca() -> SampleCa:
    """The throwaway CA (and integrity-record key) of this test session."""
    return sample_ca()


@pytest.fixture
def card(blank_card: str, test_ca: SampleCa) -> Iterator[Personalised]:
    """A fresh card personalised with PROFILE and PINS (express issuance): active."""
    with PcscTransport(blank_card) as transport:
        result = personalise(transport, test_ca)
        yield Personalised(blank_card, transport, channel_for(transport), result, test_ca,
                           PROFILE)
