"""Area separation on the emulated card: every credential against every protected file
of every area, driven by contract.AREAS so the matrix stays complete."""

from __future__ import annotations

import pytest
from card_support import Personalised, credential_values

from card import contract
from card.contract import Access
from card.errors import CommandIncompatible, SecurityStatusNotSatisfied
from card.session import area_client, channel_for

pytestmark = pytest.mark.personalises

PROTECTED = [(area, f) for area in contract.AREAS for f in area.files
             if f.read == Access.CREDENTIAL]
FREE = [(area, f) for area in contract.AREAS for f in area.files if f.read == Access.FREE]
CREDENTIALS = [(area, pin) for area in contract.AREAS for pin in area.pins]


def _opens(card: Personalised, area: contract.AreaSpec, fid: int) -> bool:
    client = area_client(card.channel, area)
    try:
        client.read_raw(fid, 1)
    except SecurityStatusNotSatisfied:
        return False
    return True


def test_only_the_listed_credentials_open_each_file(card: Personalised) -> None:
    values = credential_values()
    channel = channel_for(card.transport)
    observed: dict[tuple[str, str, str, str], bool] = {}
    expected: dict[tuple[str, str, str, str], bool] = {}
    for cred_area, pin in CREDENTIALS:
        for file_area, spec in PROTECTED:
            verifier = area_client(channel, cred_area)
            verifier.select(force=True)  # nothing verified in this area any more
            verifier.verify(pin.fid, values[(cred_area.name, pin.fid)])
            key = (cred_area.name, f"{pin.fid:04X}", file_area.name, f"{spec.fid:04X}")
            observed[key] = _opens(card, file_area, spec.fid)
            expected[key] = cred_area is file_area and pin.fid in spec.credentials
    wrong = {k: v for k, v in observed.items() if v != expected[k]}
    assert not wrong, f"credential (area, PIN) → file (area, EF) opened={wrong}"
    assert len(observed) == len(CREDENTIALS) * len(PROTECTED)


def test_protected_files_refuse_without_a_credential(card: Personalised) -> None:
    for area, spec in PROTECTED:
        area_client(card.channel, area).select(force=True)
        assert not _opens(card, area, spec.fid), f"{area.name} {spec.fid:04X}"


def test_free_files_open_without_a_credential(card: Personalised) -> None:
    for area, spec in FREE:
        client = area_client(card.channel, area)
        client.select(force=True)
        client.select_ef(spec.fid)  # an unwritten free file answers FF filler
        if spec.record_length:  # a record file: READ RECORD, and READ BINARY is refused
            response = card.channel.transmit(bytes((0x00, 0xB2, 0x01, 0x04, 0x00)))
            assert response.sw == 0x9000 and len(response.data) == spec.record_length
            assert card.channel.transmit(bytes((0x00, 0xB0, 0x00, 0x00, 0x01))).sw == 0x6981
            continue
        response = card.channel.transmit(bytes((0x00, 0xB0, 0x00, 0x00, 0x01)))
        assert response.sw == 0x9000, f"{area.name} {spec.fid:04X}: {response.sw:04X}"


def test_key_and_pin_files_are_never_read(card: Personalised) -> None:
    for area in contract.AREAS:
        client = area_client(card.channel, area)
        for fid in [k.fid for k in area.keys] + [p.fid for p in area.pins]:
            with pytest.raises(CommandIncompatible):
                client.read_raw(fid, 1)


def test_the_resident_code_is_readable_only_in_the_juki_area(card: Personalised) -> None:
    values = credential_values()
    for area, pin in CREDENTIALS:
        client = area_client(card.channel, area)
        client.select(force=True)
        client.verify(pin.fid, values[(area.name, pin.fid)])
        opened = _opens(card, contract.JUKI, contract.JUKI_RESIDENT_CODE)
        assert opened == (area is contract.JUKI), f"{area.name} {pin.fid:04X}"
