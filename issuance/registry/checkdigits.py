"""Check digits of the identifiers in the registry view.

My Number (個人番号, 12 digits) — the official scheme (番号法施行令 §8):
    check = 11 − (Σ_{n=1..11} P_n × Q_n mod 11), and 0 when the remainder is 0 or 1,
    where P_n is the n-th of the first 11 digits counted from the least significant
    (P_1 is the 11th digit), Q_n = n + 1 for 1 ≤ n ≤ 6 and Q_n = n − 5 for 7 ≤ n ≤ 11.

Resident code (住民票コード, 11 digits) — the official check-digit formula is not public
in the sources we hold, so mynacard fixes its own modulus-11 scheme and uses it
everywhere (generator, loader, tests):
    the last digit checks the first 10; weights 2, 3, 4, 5, 6, 7, 2, 3, 4, 5 are applied
    from the least significant of those 10 digits; check = 11 − (Σ mod 11), and 0 when
    the remainder is 0 or 1.

Municipality code (全国地方公共団体コード, 6 digits) — the official scheme:
    weights 6, 5, 4, 3, 2 on the first five digits; check = last digit of
    11 − (Σ mod 11). For example 13101 (千代田区) → 131016.
"""

from __future__ import annotations

_RESIDENT_WEIGHTS = (2, 3, 4, 5, 6, 7, 2, 3, 4, 5)


def _digits(value: str, length: int, what: str) -> list[int]:
    if not isinstance(value, str):
        raise TypeError(f"{what} must be a str")
    if len(value) != length or not value.isascii() or not value.isdigit():
        raise ValueError(f"{what} must be {length} ASCII digits")
    return [int(c) for c in value]


def my_number_check_digit(first11: str) -> int:
    """The check digit for the first 11 digits of a My Number."""
    digits = _digits(first11, 11, "My Number body")
    total = 0
    for n in range(1, 12):
        p = digits[11 - n]
        q = n + 1 if n <= 6 else n - 5
        total += p * q
    remainder = total % 11
    return 0 if remainder <= 1 else 11 - remainder


def resident_code_check_digit(first10: str) -> int:
    """The check digit for the first 10 digits of a resident code (mynacard's scheme)."""
    digits = _digits(first10, 10, "resident code body")
    total = sum(d * w for d, w in zip(reversed(digits), _RESIDENT_WEIGHTS, strict=True))
    remainder = total % 11
    return 0 if remainder <= 1 else 11 - remainder


def municipality_check_digit(first5: str) -> int:
    """The check digit for a five-digit local-government code."""
    digits = _digits(first5, 5, "municipality code body")
    total = sum(d * w for d, w in zip(digits, (6, 5, 4, 3, 2), strict=True))
    return (11 - total % 11) % 10


def _valid(value: object, length: int, check: object) -> bool:
    if not isinstance(value, str) or len(value) != length:
        return False
    if not value.isascii() or not value.isdigit():
        return False
    return check(value[:-1]) == int(value[-1])  # type: ignore[operator]


def is_valid_my_number(value: object) -> bool:
    return _valid(value, 12, my_number_check_digit)


def is_valid_resident_code(value: object) -> bool:
    return _valid(value, 11, resident_code_check_digit)


def is_valid_municipality_code(value: object) -> bool:
    return _valid(value, 6, municipality_check_digit)


def complete_my_number(first11: str) -> str:
    return first11 + str(my_number_check_digit(first11))


def complete_resident_code(first10: str) -> str:
    return first10 + str(resident_code_check_digit(first10))


def complete_municipality_code(first5: str) -> str:
    return first5 + str(municipality_check_digit(first5))
