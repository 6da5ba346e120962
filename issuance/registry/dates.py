"""Ages and birthdays as Japanese law counts them.

Age (年齢計算ニ関スル法律 and 民法 §143): a year of life ends at the end of the day
before the birthday, so a person is one year older *on* the birthday. For someone born
on 29 February, in a year without that day the year ends at the end of 28 February
(民法 §143(2): the last day of the month), so the new age starts on 1 March.

Birthday as a date (for card expiry, "the 10th birthday after issuance"): the same
month and day; for a 29 February birth in a year without 29 February, mynacard takes
28 February, so a card never outlives the period the rule grants.
"""

from __future__ import annotations

import calendar
from datetime import UTC, date, datetime, timedelta, timezone


def birthday_in(birth: date, year: int) -> date:
    """The birthday falling in `year` (28 February for leap-day births in common years)."""
    if birth.month == 2 and birth.day == 29 and not calendar.isleap(year):
        return date(year, 2, 28)
    return birth.replace(year=year)


def age_on(birth: date, on: date) -> int:
    """Completed years of life on `on` (0 before the first birthday)."""
    if on < birth:
        raise ValueError("date before birth")
    years = on.year - birth.year
    if birth.month == 2 and birth.day == 29 and not calendar.isleap(on.year):
        anniversary = date(on.year, 3, 1)
    else:
        anniversary = birth.replace(year=on.year)
    return years if on >= anniversary else years - 1


def nth_birthday_after(birth: date, after: date, n: int) -> date:
    """The `n`-th birthday strictly after `after` (n ≥ 1)."""
    if n < 1:
        raise ValueError("n must be at least 1")
    first_year = after.year if birthday_in(birth, after.year) > after else after.year + 1
    return birthday_in(birth, first_year + n - 1)


def day_before_birthday(birth: date, years: int) -> date:
    """The last day on which a person is younger than `years`."""
    year = birth.year + years
    if birth.month == 2 and birth.day == 29 and not calendar.isleap(year):
        return date(year, 2, 28)
    return birth.replace(year=year) - timedelta(days=1)


JST = timezone(timedelta(hours=9), "JST")


def japan_date(moment: datetime) -> date:
    """The calendar date in Japan at `moment` (which must be timezone-aware)."""
    if moment.tzinfo is None:
        raise ValueError("moment must be timezone-aware")
    return moment.astimezone(JST).date()


def utc_now() -> datetime:
    return datetime.now(UTC)
