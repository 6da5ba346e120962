"""The holder's basic four facts (基本4情報) and the date rules that depend on them.

Encodings (also used in the signing certificate's subjectAltName, see `pki.profiles`):

* ``name`` / ``address``: Unicode text as on the resident register.
* ``name_substitute`` / ``address_substitute``: substitute-character flags. Either empty
  (no character was replaced) or a string of ``0``/``1``, one per character of the
  name/address, where ``1`` marks a character that was replaced by a substitute
  character (代替文字) because the card's character set lacks it.
* ``sex``: ISO/IEC 5218 code: 1 male, 2 female, 9 not applicable, 0 not known.
* ``birth_date``: a Gregorian date, written ``YYYYMMDD``.

Dates: a holder born on 29 February has the birthday on 1 March in common years
(under the Japanese Act on Calculation of Age a year of age is completed at the end of
the day before the birthday, i.e. at the end of 28 February, so the new age starts
on 1 March).
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

SEX_CODES = frozenset({0, 1, 2, 9})
_FLAGS = re.compile(r"[01]*")
# C0 and C1 control characters, DEL, and lone surrogates (not characters; no UTF-8
# encoder takes them): never in a name or an address
_NOT_TEXT = re.compile(r"[\x00-\x1f\x7f-\x9f\ud800-\udfff]")


@dataclass(frozen=True, slots=True, kw_only=True)
class Identity:
    """The basic four facts of one holder; validated on construction."""

    name: str
    birth_date: dt.date
    sex: int
    address: str
    name_substitute: str = ""
    address_substitute: str = ""

    def __post_init__(self) -> None:
        for attr in ("name", "address", "name_substitute", "address_substitute"):
            if not isinstance(getattr(self, attr), str):
                raise TypeError(f"{attr} must be a str")
        if not isinstance(self.birth_date, dt.date) or isinstance(self.birth_date, dt.datetime):
            raise TypeError("birth_date must be a datetime.date")
        if not isinstance(self.sex, int) or isinstance(self.sex, bool):
            raise TypeError("sex must be an int (ISO/IEC 5218 code)")
        if self.sex not in SEX_CODES:
            raise ValueError(f"sex must be one of 1, 2, 9, 0 (ISO/IEC 5218), not {self.sex}")
        if not self.name.strip():
            raise ValueError("name must not be empty")
        if not self.address.strip():
            raise ValueError("address must not be empty")
        for attr, text in (("name", self.name), ("address", self.address)):
            bad = _NOT_TEXT.search(text)
            if bad is not None:
                raise ValueError(f"{attr} contains a control character or lone surrogate "
                                 f"(U+{ord(bad.group()):04X})")
            flags = getattr(self, f"{attr}_substitute")
            if not _FLAGS.fullmatch(flags):
                raise ValueError(f"{attr}_substitute must contain only '0' and '1'")
            if flags and len(flags) != len(text):
                raise ValueError(
                    f"{attr}_substitute must be empty or have one flag per character of {attr}"
                )

    def age_on(self, day: dt.date) -> int:
        """Age in completed years on `day`."""
        return age_on(self.birth_date, day)

    def to_json(self) -> dict[str, object]:
        """A JSON-ready dict (birth date as ISO 8601)."""
        return {
            "name": self.name,
            "name_substitute": self.name_substitute,
            "sex": self.sex,
            "birth_date": self.birth_date.isoformat(),
            "address": self.address,
            "address_substitute": self.address_substitute,
        }

    @classmethod
    def from_json(cls, data: dict[str, object]) -> Identity:
        """Inverse of `to_json`; raises TypeError/ValueError on bad input."""
        if not isinstance(data, dict):
            raise TypeError("identity must be a JSON object")
        unknown = set(data) - {
            "name", "name_substitute", "sex", "birth_date", "address", "address_substitute"
        }
        if unknown:
            raise ValueError(f"unknown identity fields: {', '.join(sorted(unknown))}")
        birth = data.get("birth_date")
        if not isinstance(birth, str):
            raise TypeError("birth_date must be an ISO date string (YYYY-MM-DD)")
        return cls(
            name=data.get("name"),  # type: ignore[arg-type]
            name_substitute=data.get("name_substitute", ""),  # type: ignore[arg-type]
            sex=data.get("sex"),  # type: ignore[arg-type]
            birth_date=dt.date.fromisoformat(birth),
            address=data.get("address"),  # type: ignore[arg-type]
            address_substitute=data.get("address_substitute", ""),  # type: ignore[arg-type]
        )


def birthday_in_year(birth_date: dt.date, year: int) -> dt.date:
    """The birthday in `year`; 29 February becomes 1 March in common years."""
    try:
        return birth_date.replace(year=year)
    except ValueError:  # 29 February in a common year
        return dt.date(year, 3, 1)


def age_on(birth_date: dt.date, day: dt.date) -> int:
    """Completed years of age on `day` (0 before the first birthday)."""
    if day < birth_date:
        raise ValueError("day is before the birth date")
    age = day.year - birth_date.year
    if day < birthday_in_year(birth_date, day.year):
        age -= 1
    return age


def nth_birthday_after(birth_date: dt.date, day: dt.date, n: int) -> dt.date:
    """The `n`-th birthday strictly after `day` (n >= 1)."""
    if n < 1:
        raise ValueError("n must be at least 1")
    first = birthday_in_year(birth_date, day.year)
    year = day.year if first > day else day.year + 1
    return birthday_in_year(birth_date, year + n - 1)
