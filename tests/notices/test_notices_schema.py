"""The published notice schema and the semantic checks on top of it."""

from __future__ import annotations

import json

import jsonschema
import pytest
from notices_support import FACTS_FOR, line, notice, resident

from issuance.notices.model import SCHEMA_PATH, Kind, NoticeError, Source, parse_notice

CODE = resident().resident_code


def test_schema_is_valid_draft_2020_12() -> None:
    schema = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
    jsonschema.Draft202012Validator.check_schema(schema)
    assert set(schema["properties"]["kind"]["enum"]) == {k.value for k in Kind}


@pytest.mark.parametrize("kind", [k.value for k in Kind])
@pytest.mark.parametrize("source", ["juki", "fuhyo"])
def test_every_kind_from_both_sources_parses(kind: str, source: str) -> None:
    parsed = parse_notice(line(notice(kind, CODE, source=source,
                                      sent_at="2026-06-02T09:00:00+09:00",
                                      nationality="japanese")))
    assert parsed.kind is Kind(kind) and parsed.source is Source(source)
    assert parsed.facts == FACTS_FOR.get(kind, {})
    assert parse_notice(parsed.canonical()) == parsed


def test_emigration_may_carry_fuhyo_data() -> None:
    parsed = parse_notice(line(notice(
        "emigration_continued_use", CODE,
        facts={"address": "フランス パリ", "fuhyo_municipality_code": "131016"})))
    assert parsed.facts["fuhyo_municipality_code"] == "131016"


BAD = [
    ("{not json", "not JSON"),
    ("[1, 2]", "not a JSON object"),
    (line({"source": "juki", "kind": "death", "resident_code": CODE,
           "effective_date": "2026-01-01"}), "'id' is a required property"),
    (line(notice("funeral", CODE)), "kind"),
    (line(notice("death", CODE, source="mail")), "source"),
    (line(notice("death", CODE[:-1] + str((int(CODE[-1]) + 1) % 10))), "check digit"),
    (line(notice("death", "1234")), "resident_code"),
    (line(notice("death", CODE, effective_date="2026-02-30")), "not a calendar date"),
    (line(notice("death", CODE, effective_date="26-1-1")), "effective_date"),
    (line(notice("name_change", CODE, facts={})), "name"),
    (line(notice("address_change", CODE, facts={"name": "x"})), "address"),
    (line(notice("sex_change", CODE, facts={"sex": 3})), "sex"),
    (line(notice("sex_change", CODE, facts={"sex": True})), "sex"),
    (line(notice("correction", CODE, facts={})), "facts"),
    (line(notice("death", CODE, facts={"name": "x"})), "facts"),
    (line(notice("death", CODE, colour="red")), "Additional properties"),
    (line(notice("death", CODE, sent_at="2026-06-02T09:00:00.000")), "sent_at: no UTC offset"),
    (line(notice("death", CODE, sent_at="2026-06-02T09:00")), "sent_at"),
    (line(notice("birth_date_change", CODE, facts={"birth_date": "2027-01-01"})),
     "after the effective date"),
    (line(notice("emigration_continued_use", CODE,
                 facts={"fuhyo_municipality_code": "131017"})), "fuhyo_municipality_code"),
    (b"\xff\xfe", "not UTF-8"),
    # a final newline inside a string is not the end of it (JSON Schema's `$`): "N-1\n"
    # would otherwise be stored beside "N-1" and the same death applied twice
    (line(notice("death", CODE, nid="N-1\n")), "id"),
    (line(notice("emigration_continued_use", CODE,
                 facts={"fuhyo_municipality_code": "131016\n"})), "fuhyo_municipality_code"),
]


@pytest.mark.parametrize(("text", "reason"), BAD)
def test_malformed_notices_are_refused_with_a_reason(text: str | bytes, reason: str) -> None:
    with pytest.raises(NoticeError) as info:
        parse_notice(text)
    assert reason in info.value.reason
