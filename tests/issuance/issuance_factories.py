"""Building registry records for the issuance tests."""

from __future__ import annotations

import itertools
from dataclasses import replace
from datetime import UTC, date, datetime
from typing import Any

from issuance.registry.checkdigits import complete_my_number, complete_resident_code
from issuance.registry.model import FuhyoEntry, Nationality, Resident, ResidentStatus, Sex

_counter = itertools.count(1)


def resident(**changes: Any) -> Resident:
    n = next(_counter)
    base = Resident(
        resident_code=complete_resident_code(f"{n:010d}"),
        my_number=complete_my_number(f"{n + 50_000_000_000:011d}"),
        name="山田 太郎",
        name_kana="ヤマダ タロウ",
        address="東京都千代田区千代田1丁目1番1号",
        birth_date=date(1980, 5, 15),
        sex=Sex.MALE,
        nationality=Nationality.JAPANESE,
        status=ResidentStatus.RESIDENT,
        municipality_code="131016",
    )
    return replace(base, **changes)


def emigrant(*, fuhyo: bool = True, **changes: Any) -> Resident:
    entry = FuhyoEntry("131016", "アメリカ合衆国 カリフォルニア州", True) if fuhyo else None
    return resident(status=ResidentStatus.EMIGRATED, status_date=date(2025, 1, 10),
                    fuhyo=entry, **changes)


def fixed_clock(day: date, hour: int = 3) -> Any:
    """A clock pinned to `day` in Japan (03:00 UTC is noon JST)."""
    moment = datetime(day.year, day.month, day.day, hour, tzinfo=UTC)
    return lambda: moment
