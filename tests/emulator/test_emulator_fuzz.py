"""Random APDUs over PC/SC: every answer is an ISO status word, never 6F00, and the card
keeps working."""

from __future__ import annotations

import random

import pytest
from emulator_pcsc import RawCard, get_data, select_aid

from card import contract

PER_APPLICATION = 3000
KNOWN_INS = [0xA4, 0xB0, 0xD6, 0x20, 0x24, 0x32, 0x2C, 0x2A, 0x84, 0x82, 0xCA, 0xDA,
             0xF0, 0xC0, 0x47, 0x88, 0x8A, 0x22, 0x2B, 0x0E, 0x44, 0xE0, 0xE4]
APPLICATIONS = {"card manager": contract.AID_CARD_MANAGER, **contract.AREA_AIDS}
# SW1 values ISO/IEC 7816-4 defines for a completed or failed command
ISO_SW1 = {0x61, 0x62, 0x63, 0x64, 0x65, 0x66, 0x67, 0x68, 0x69, 0x6A, 0x6B, 0x6C, 0x6D,
           0x6E, 0x90}
SETTERS = {0x2C, 0xDA, 0xF0, 0x47, 0xD6, 0x24, 0x32}  # may change state: keep them rare


def _random_apdu(rng: random.Random) -> bytes:
    cla = rng.choice([0x00, 0x00, 0x00, 0x80, 0x80, 0x0C, 0x84, rng.randrange(256)])
    ins = rng.choice(KNOWN_INS) if rng.random() < 0.85 else rng.randrange(256)
    if ins in SETTERS and rng.random() < 0.7:
        ins = 0xB0
    p1 = rng.choice([0x00, 0x02, 0x04, 0x80, 0x81, 0x97, 0x9A, rng.randrange(256)])
    p2 = rng.choice([0x00, 0x0C, 0x80, 0x81, 0x8A, 0x97, 0x9A, rng.randrange(256)])
    head = bytes([cla, ins, p1, p2])
    shape = rng.random()
    if shape < 0.15:
        return head
    if shape < 0.35:
        return head + bytes([rng.randrange(256)])
    n = rng.choice([1, 2, 2, 4, 6, 10, 16, 17, rng.randrange(1, 256)])
    data = bytes(rng.randrange(256) for _ in range(n))
    if shape < 0.65:
        return head + bytes([n]) + data
    if shape < 0.9:
        return head + bytes([n]) + data + bytes([rng.randrange(256)])
    if shape < 0.95:  # malformed: Lc disagrees with the data
        return head + bytes([min(255, n + rng.randrange(1, 5))]) + data
    return head + b"\x00" + len(data).to_bytes(2, "big") + data  # extended length


@pytest.mark.personalises
@pytest.mark.blocks_pins
@pytest.mark.slow
def test_random_apdus_get_iso_status_words(sample_card: str) -> None:
    rng = random.Random(20261122)
    failures: list[str] = []
    sent = 0
    with RawCard(sample_card) as card:
        for area, aid in APPLICATIONS.items():
            for i in range(PER_APPLICATION):
                if i % 50 == 0:
                    assert card.sw(select_aid(aid)) == 0x9000, f"{area} no longer selectable"
                apdu = _random_apdu(rng)
                data, sw = card.send(apdu)
                sent += 1
                if sw == 0x6F00 or (sw >> 8) not in ISO_SW1:
                    failures.append(f"{area}: {apdu.hex()} -> {sw:04X}")
        assert not failures, f"{len(failures)} non-ISO answers, e.g. {failures[:10]}"
        assert sent == PER_APPLICATION * len(APPLICATIONS)
        # the card still works
        for area, aid in APPLICATIONS.items():
            assert card.sw(select_aid(aid)) == 0x9000, area
        assert card.sw(select_aid(contract.AID_CARD_MANAGER)) == 0x9000
        serial, sw = card.send(get_data(contract.Tag.CARD_SERIAL))
        assert sw == 0x9000 and serial.decode() == sample_card.serial  # type: ignore[attr-defined]
