"""The notice validator's fast path never accepts what the published schema rejects: the
fast check and jsonschema are compared on valid notices and on many mutations of them."""

from __future__ import annotations

import copy
import json
import random
from typing import Any

import pytest

from issuance.notices.model import _surely_valid, _validator, notice_from_stored, parse_notice
from issuance.registry.checkdigits import complete_resident_code

CODE = complete_resident_code("0000012345")
BASES: list[dict[str, Any]] = [
    {"id": "N-1", "source": "juki", "kind": "death", "resident_code": CODE,
     "effective_date": "2026-06-01"},
    {"id": "N-2", "source": "fuhyo", "kind": "address_change", "resident_code": CODE,
     "effective_date": "2026-06-01", "facts": {"address": "大阪府大阪市北区"},
     "sent_at": "2026-06-01T09:00:00+09:00"},
    {"id": "N-3", "source": "juki", "kind": "emigration_continued_use", "resident_code": CODE,
     "effective_date": "2026-06-01", "nationality": "japanese",
     "facts": {"address": "France", "fuhyo_municipality_code": "131016"}},
    {"id": "N-4", "source": "juki", "kind": "correction", "resident_code": CODE,
     "effective_date": "2026-06-01", "facts": {"sex": 2, "birth_date": "1980-01-02"}},
    {"id": "N-5", "source": "juki", "kind": "sex_change", "resident_code": CODE,
     "effective_date": "2026-06-01", "facts": {"sex": 9}},
]
VALUES: list[Any] = [None, True, False, 0, 1, 2, 9, 1.0, -1, "", " ", "x", "juki", "fuhyo",
                     "death", "name_change", "2026-06-01", "2026-6-1", CODE, CODE + "\n",
                     "12345", "131016", "N-1\n", "a b", "\u3042", "x" * 129, "x" * 201, [],
                     {}, {"name": "a"}, {"fuhyo_municipality_code": "131016"},
                     {"address": ""}, {"sex": True}, {"extra": 1}, "japanese", "foreign"]
KEYS = ["id", "source", "kind", "resident_code", "effective_date", "facts", "nationality",
        "sent_at", "unknown"]
FACT_KEYS = ["name", "address", "birth_date", "sex", "fuhyo_municipality_code", "other"]


def _schema_ok(obj: Any) -> bool:
    return not any(True for _ in _validator().iter_errors(obj))


def _mutations(rnd: random.Random, n: int) -> list[Any]:
    out: list[Any] = []
    for _ in range(n):
        obj = copy.deepcopy(rnd.choice(BASES))
        for _ in range(rnd.randint(1, 3)):
            op = rnd.random()
            if op < 0.4:
                obj[rnd.choice(KEYS)] = rnd.choice(VALUES)
            elif op < 0.55:
                obj.pop(rnd.choice(KEYS), None)
            elif op < 0.9:
                facts = obj.setdefault("facts", {})
                if isinstance(facts, dict):
                    facts[rnd.choice(FACT_KEYS)] = rnd.choice(VALUES)
            else:
                obj = rnd.choice(VALUES)
                break
        out.append(obj)
    return out


def test_bases_are_valid_both_ways() -> None:
    for base in BASES:
        assert _surely_valid(base) and _schema_ok(base)


def test_fast_path_is_never_more_lenient_than_the_schema() -> None:
    rnd = random.Random(20261122)
    checked = 0
    for obj in _mutations(rnd, 20_000):
        if _surely_valid(obj):
            assert _schema_ok(obj), obj
            checked += 1
    assert checked > 500  # the fast path does accept plenty of mutated notices


@pytest.mark.parametrize("base", BASES)
def test_stored_payload_round_trip(base: dict[str, Any]) -> None:
    notice = parse_notice(json.dumps(base, ensure_ascii=False))
    assert notice_from_stored(notice.canonical()) == notice
