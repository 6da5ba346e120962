"""Formats of what holders type and cards print: PINs, My Number and resident-code check
digits, municipality and security codes, Japanese eras, the verification codes and dates.

Errors are `ValueError`s that never repeat the value (a PIN or a My Number must not end up
in a log through an exception message).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from card import contract
from card.tlv import MalformedData

# --- PINs ----------------------------------------------------------------------


def validate_pin(spec: contract.PinSpec, pin: str) -> bytes:
    """The PIN as the bytes VERIFY sends, after checking it fits `spec`.

    Digits-only PINs are 0-9; `upper-alnum` is A-Z and 0-9 with at least one letter
    and one digit (the signing password rule). Lower-case letters are refused rather
    than upper-cased: the card compares bytes, so silently changing them would hide
    a typing mistake.
    """
    if not isinstance(pin, str):
        raise TypeError(f"{spec.name} must be a str")
    if not spec.min_length <= len(pin) <= spec.max_length:
        if spec.min_length == spec.max_length:
            raise ValueError(f"{spec.name} must be {spec.min_length} characters long")
        raise ValueError(
            f"{spec.name} must be {spec.min_length} to {spec.max_length} characters long"
        )
    if spec.charset == "digits":
        if not all("0" <= c <= "9" for c in pin):
            raise ValueError(f"{spec.name} must consist of digits 0-9")
    elif spec.charset == "upper-alnum":
        if not all("0" <= c <= "9" or "A" <= c <= "Z" for c in pin):
            raise ValueError(f"{spec.name} must consist of upper-case letters A-Z and digits 0-9")
        if not any(c.isdigit() for c in pin) or not any(c.isalpha() for c in pin):
            raise ValueError(f"{spec.name} must contain at least one letter and one digit")
    else:  # pragma: no cover - the contract only has the two
        raise ValueError(f"unknown PIN charset {spec.charset!r}")
    return pin.encode("ascii")


def _digits(value: str, length: int, what: str) -> str:
    if not isinstance(value, str):
        raise TypeError(f"{what} must be a str")
    if len(value) != length or not value.isascii() or not value.isdigit():
        raise ValueError(f"{what} must be {length} digits")
    return value


# --- My Number and resident code ------------------------------------------------


def _mod11_check(digits: str) -> int:
    """Modulus-11 check digit with weights 2..7 repeating from the lowest digit.

    check = 11 - (sum(P_n * Q_n) mod 11), and 0 when the remainder is 0 or 1,
    where P_n is the n-th digit counted from the least significant one and
    Q_n = n + 1 for n <= 6, n - 5 for n >= 7.
    """
    total = sum(int(d) * ((n - 1) % 6 + 2) for n, d in enumerate(reversed(digits), start=1))
    remainder = total % 11
    return 0 if remainder <= 1 else 11 - remainder


def my_number_check_digit(first11: str) -> int:
    """The check digit of a My Number (個人番号).

    The rule of 総務省令第85号 (2014) §5: for the first 11 digits the weights from
    the most significant one are 6,5,4,3,2,7,6,5,4,3,2; check = 11 - (sum mod 11),
    0 when the remainder is 0 or 1.
    """
    return _mod11_check(_digits(first11, 11, "the first part of a My Number"))


def validate_my_number(number: str) -> str:
    """A 12-digit My Number with a correct check digit, else ValueError."""
    _digits(number, 12, "a My Number")
    if my_number_check_digit(number[:11]) != int(number[11]):
        raise ValueError("a My Number's check digit does not match")
    return number


def resident_code_check_digit(first10: str) -> int:
    """The check digit of a resident code (住民票コード, 11 digits = 10 + check).

    Scheme chosen: the modulus-11 rule with weights 2..7 repeating from the lowest
    digit, check = 11 - (sum mod 11) and 0 when the remainder is 0 or 1 — the same
    published family as the My Number rule (whose 11 leading digits are derived from
    the resident code) and the 地方公共団体コード check digit.
    """
    return _mod11_check(_digits(first10, 10, "the first part of a resident code"))


def validate_resident_code(code: str) -> str:
    """An 11-digit resident code with a correct check digit, else ValueError."""
    _digits(code, 11, "a resident code")
    if resident_code_check_digit(code[:10]) != int(code[10]):
        raise ValueError("a resident code's check digit does not match")
    return code


def validate_municipality_code(code: str) -> str:
    """A 5-digit municipality code (地方公共団体コード without its check digit)."""
    return _digits(code, 5, "a municipality code")


def validate_security_code(code: str) -> str:
    """The 4-digit security code printed on the card face (part of code B)."""
    return _digits(code, 4, "a security code")


# --- Japanese eras --------------------------------------------------------------


@dataclass(frozen=True)
class Era:
    name: str
    kanji: str
    start: date  # first Gregorian day of the era


# Start dates (Gregorian). Meiji: the day of the proclamation, 1868-10-23 (明治元年
# 九月八日); the retroactive start of Meiji 1 falls before Japan used the Gregorian
# calendar, and no holder is born then.
ERAS: tuple[Era, ...] = (
    Era("reiwa", "令和", date(2019, 5, 1)),
    Era("heisei", "平成", date(1989, 1, 8)),
    Era("showa", "昭和", date(1926, 12, 25)),
    Era("taisho", "大正", date(1912, 7, 30)),
    Era("meiji", "明治", date(1868, 10, 23)),
)


def era_of(day: date) -> tuple[Era, int]:
    """The era of a Gregorian date and the year within it (1 = 元年)."""
    if not isinstance(day, date):
        raise TypeError("expected a datetime.date")
    for era in ERAS:
        if day >= era.start:
            return era, day.year - era.start.year + 1
    raise ValueError("dates before the Meiji era have no era year here")


def era_yymmdd(day: date) -> str:
    """A date as the card writes birth dates in codes: era year, month, day (6 digits)."""
    _, year = era_of(day)
    return f"{year:02d}{day.month:02d}{day.day:02d}"


def birth_date_key(birth: date) -> str:
    """The 券面AP birth-date key (EF 0011): era YYMMDD."""
    return era_yymmdd(birth)


def verification_code_a(my_number: str) -> str:
    """照合番号A is the My Number itself."""
    return validate_my_number(my_number)


def verification_code_b(birth: date, expiry: date, security_code: str) -> str:
    """照合番号B: era YYMMDD birth + Gregorian expiry year YYYY + 4-digit security code."""
    validate_security_code(security_code)
    return f"{era_yymmdd(birth)}{expiry.year:04d}{security_code}"


def yyyymmdd(day: date) -> bytes:
    return f"{day.year:04d}{day.month:02d}{day.day:02d}".encode("ascii")


def parse_yyyymmdd(raw: bytes) -> date:
    """An 8-digit ASCII Gregorian date."""
    try:
        text = raw.decode("ascii")
        if len(text) != 8 or not text.isdigit():
            raise ValueError
        return date(int(text[:4]), int(text[4:6]), int(text[6:]))
    except ValueError:
        raise MalformedData("not a YYYYMMDD date") from None
