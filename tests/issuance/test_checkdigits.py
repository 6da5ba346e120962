"""Check digits of My Numbers, resident codes and municipality codes."""

from __future__ import annotations

import random

import pytest

from issuance.registry.checkdigits import (
    complete_my_number,
    complete_resident_code,
    is_valid_municipality_code,
    is_valid_my_number,
    is_valid_resident_code,
    my_number_check_digit,
    resident_code_check_digit,
)


def test_my_number_published_example() -> None:
    # The example used throughout the My Number documentation.
    assert my_number_check_digit("12345678901") == 8
    assert is_valid_my_number("123456789018")
    assert not is_valid_my_number("123456789017")


def test_my_number_formula_by_hand() -> None:
    body = "98765432109"
    p = [int(c) for c in reversed(body)]  # P_1 is the least significant
    q = [n + 1 if n <= 6 else n - 5 for n in range(1, 12)]
    remainder = sum(a * b for a, b in zip(p, q, strict=True)) % 11
    expected = 0 if remainder <= 1 else 11 - remainder
    assert my_number_check_digit(body) == expected


def test_remainder_zero_or_one_gives_zero() -> None:
    seen = set()
    rng = random.Random(5)
    for _ in range(2000):
        body = f"{rng.randrange(10**11):011d}"
        p = [int(c) for c in reversed(body)]
        q = [n + 1 if n <= 6 else n - 5 for n in range(1, 12)]
        r = sum(a * b for a, b in zip(p, q, strict=True)) % 11
        if r <= 1:
            seen.add(r)
            assert my_number_check_digit(body) == 0
    assert seen == {0, 1}


@pytest.mark.parametrize("complete,valid,length", [
    (complete_my_number, is_valid_my_number, 12),
    (complete_resident_code, is_valid_resident_code, 11),
])
def test_every_single_digit_error_is_caught(complete, valid, length) -> None:  # type: ignore[no-untyped-def]
    rng = random.Random(1)
    for _ in range(200):
        value = complete(f"{rng.randrange(10 ** (length - 1)):0{length - 1}d}")
        assert valid(value)
        pos = rng.randrange(length)
        wrong = str((int(value[pos]) + rng.randrange(1, 10)) % 10)
        bad = value[:pos] + wrong + value[pos + 1:]
        # modulus 11 catches every single-digit substitution except where the check
        # digit folds 10 and 11 to 0
        if valid(bad):
            assert value[-1] == "0" or bad[-1] == "0"


def test_resident_code_scheme() -> None:
    body = "1234567890"
    weights = [2, 3, 4, 5, 6, 7, 2, 3, 4, 5]
    r = sum(int(d) * w for d, w in zip(reversed(body), weights, strict=True)) % 11
    assert resident_code_check_digit(body) == (0 if r <= 1 else 11 - r)


@pytest.mark.parametrize("code", ["131016", "011002", "271004", "131130", "472018"])
def test_real_municipality_codes(code: str) -> None:
    assert is_valid_municipality_code(code)


@pytest.mark.parametrize("value", ["12345678901", "1234567890189", "12345678901a", "",
                                   "１２３４５６７８９０１８", 123456789018])
def test_malformed_my_numbers(value: object) -> None:
    assert not is_valid_my_number(value)


def test_wrong_types_and_lengths_raise() -> None:
    with pytest.raises(TypeError):
        my_number_check_digit(12345678901)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        my_number_check_digit("123")
