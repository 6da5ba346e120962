"""Synthetic residents for demos and benchmarks (Faker's `ja_JP` locale).

Names come with their katakana readings, addresses are real municipalities with the
matching local-government code, and My Numbers and resident codes carry valid check
digits and are unique within one run. The population roughly follows Japan's age
pyramid and includes babies under 1, children under 15, adult wards, foreign
residents with a period of stay, emigrants with and without a 附票 entry, and deceased
and deleted records. The same seed and reference date give the same residents.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import date, timedelta

from faker import Faker

from issuance.registry.checkdigits import (
    complete_municipality_code,
    complete_my_number,
    complete_resident_code,
)
from issuance.registry.dates import birthday_in
from issuance.registry.model import (
    FuhyoEntry,
    Nationality,
    Resident,
    ResidentStatus,
    Sex,
)

# (five-digit local-government code, prefecture, municipality)
MUNICIPALITIES: tuple[tuple[str, str, str], ...] = (
    ("01100", "北海道", "札幌市"),
    ("04100", "宮城県", "仙台市"),
    ("11100", "埼玉県", "さいたま市"),
    ("12100", "千葉県", "千葉市"),
    ("13101", "東京都", "千代田区"),
    ("13104", "東京都", "新宿区"),
    ("13112", "東京都", "世田谷区"),
    ("13113", "東京都", "渋谷区"),
    ("13201", "東京都", "八王子市"),
    ("14100", "神奈川県", "横浜市"),
    ("14130", "神奈川県", "川崎市"),
    ("15100", "新潟県", "新潟市"),
    ("22100", "静岡県", "静岡市"),
    ("23100", "愛知県", "名古屋市"),
    ("26100", "京都府", "京都市"),
    ("27100", "大阪府", "大阪市"),
    ("28100", "兵庫県", "神戸市"),
    ("34100", "広島県", "広島市"),
    ("40130", "福岡県", "福岡市"),
    ("47201", "沖縄県", "那覇市"),
)

# (lowest age, highest age, weight): roughly Japan's 2020s age pyramid
AGE_BANDS: tuple[tuple[int, int, float], ...] = (
    (0, 0, 0.8),
    (1, 14, 10.5),
    (15, 17, 2.6),
    (18, 39, 22.0),
    (40, 64, 33.0),
    (65, 74, 13.5),
    (75, 99, 16.0),
    (100, 105, 0.1),
)

ABROAD = ("アメリカ合衆国 カリフォルニア州", "連合王国 ロンドン", "オーストラリア シドニー",
          "タイ バンコク", "ドイツ ベルリン", "シンガポール")


class ResidentGenerator:
    """Deterministic given `seed` and `as_of` (the date ages are counted on)."""

    def __init__(self, *, seed: int | None = None, as_of: date) -> None:
        self.as_of = as_of
        self._rng = random.Random(seed)
        self._faker = Faker("ja_JP")
        self._faker.seed_instance(seed if seed is not None else self._rng.getrandbits(64))
        self._codes: set[str] = set()
        self._numbers: set[str] = set()

    def _unique(self, seen: set[str], width: int, complete: object) -> str:
        while True:
            body = f"{self._rng.randrange(10**width):0{width}d}"
            value: str = complete(body)  # type: ignore[operator]
            if value not in seen:
                seen.add(value)
                return value

    def _birth_date(self) -> date:
        lo, hi, _ = self._rng.choices(AGE_BANDS, weights=[b[2] for b in AGE_BANDS])[0]
        age = self._rng.randint(lo, hi)
        latest = birthday_in(self.as_of, self.as_of.year - age)
        return latest - timedelta(days=self._rng.randrange(0, 365))

    def _address(self, prefecture: str, city: str) -> str:
        f = self._faker
        rng = self._rng
        address = (f"{prefecture}{city}{f.town()}{rng.randint(1, 9)}丁目"
                   f"{rng.randint(1, 30)}番{rng.randint(1, 25)}号")
        if self._rng.random() < 0.35:
            address += f" {f.building_name()}{rng.randint(1, 15)}{rng.randint(1, 9):02d}"
        return address

    def resident(self) -> Resident:
        rng, f = self._rng, self._faker
        sex = Sex.MALE if rng.random() < 0.487 else Sex.FEMALE
        last, last_kana, _ = f.last_name_pair()
        first, first_kana, _ = (
            f.first_name_male_pair() if sex is Sex.MALE else f.first_name_female_pair()
        )
        code5, prefecture, city = rng.choice(MUNICIPALITIES)
        birth = self._birth_date()
        age_days = (self.as_of - birth).days
        foreign = rng.random() < 0.025
        nationality = Nationality.FOREIGN if foreign else Nationality.JAPANESE
        if foreign:
            family = f.last_kana_name()
            name, kana = f"{family} {f.first_kana_name()}", None
        else:
            name, kana = f"{last} {first}", f"{last_kana} {first_kana}"
        adult_ward = age_days > 18 * 365 and rng.random() < 0.005
        status = ResidentStatus.RESIDENT
        status_date: date | None = None
        fuhyo: FuhyoEntry | None = None
        roll = rng.random()
        if age_days > 365 and roll < 0.02:
            status = ResidentStatus.EMIGRATED
            status_date = self.as_of - timedelta(days=rng.randrange(1, min(age_days, 3650)))
            if not foreign and rng.random() < 0.7:
                fuhyo = FuhyoEntry(
                    complete_municipality_code(rng.choice(MUNICIPALITIES)[0]),
                    rng.choice(ABROAD),
                    rng.random() < 0.5,
                )
        elif roll < 0.03:
            status = ResidentStatus.DECEASED
            status_date = self.as_of - timedelta(days=rng.randrange(0, min(age_days, 3650) + 1))
        elif roll < 0.033:
            status = ResidentStatus.DELETED
            status_date = self.as_of - timedelta(days=rng.randrange(0, min(age_days, 3650) + 1))
        residence_expiry = None
        if foreign and status is ResidentStatus.RESIDENT and rng.random() < 0.8:
            residence_expiry = self.as_of + timedelta(days=rng.randrange(30, 5 * 365))
        return Resident(
            resident_code=self._unique(self._codes, 10, complete_resident_code),
            my_number=self._unique(self._numbers, 11, complete_my_number),
            name=name,
            name_kana=kana,
            address=self._address(prefecture, city),
            birth_date=birth,
            sex=sex,
            nationality=nationality,
            status=status,
            status_date=status_date,
            adult_ward=adult_ward,
            municipality_code=complete_municipality_code(code5),
            residence_expiry=residence_expiry,
            fuhyo=fuhyo,
        )

    def generate(self, count: int) -> Iterator[Resident]:
        if count < 0:
            raise ValueError("count must not be negative")
        for _ in range(count):
            yield self.resident()
