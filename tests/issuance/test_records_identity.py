"""Identity documents at intake (rule 4.3): kinds from a fixed list, one of list A or two
of list B, a legal representative for minors under 15 and adult wards; stored with the
application and audited as kinds and digests, never the reference. SQLite and PostgreSQL."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import pytest
from issuance_factories import fixed_clock, resident
from records_support import OPERATOR, Cli, rows

from issuance.applications.intake import take_application
from issuance.applications.rules import ApplicationRequest
from issuance.records.identity_documents import (
    DocumentError,
    IdentityDocument,
    build_check,
    check_documents,
)
from issuance.registry.store import ResidentStore
from issuance.storage import Database

TODAY = date(2026, 11, 20)
PASSPORT = "passport:TK1234567"


@pytest.fixture
def cli(tmp_path: Path, db_url: str, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> Cli:
    monkeypatch.delenv("MYNACARD_OPERATOR", raising=False)
    home = tmp_path / "home"
    home.mkdir()
    return Cli(home, db_url, capsys, TODAY)


@pytest.mark.parametrize("texts", [
    ["passport:TK1"], ["driving-licence:1"], ["my-number-card:X"], ["residence-card:A"],
    ["health-insurance-card:1", "pension-book:2"], ["student-id:1", "employee-id:2"],
    ["other:1", "other:2"],
])
def test_one_from_list_a_or_two_from_list_b(texts: list[str]) -> None:
    check_documents([IdentityDocument.parse(t) for t in texts])


@pytest.mark.parametrize(("texts", "fragment"), [
    ([], "was not checked"),
    (["health-insurance-card:1"], "not one from list A"),
    (["health-insurance-card:1", "health-insurance-card:2"], "two different"),
    (["passport:1", "pension-book:2"], "not one from"),
    (["other:1", "other:1"], "two different"),
    (["passport:1", "driving-licence:2", "pension-book:3"], "not one from"),
])
def test_other_combinations_are_refused(texts: list[str], fragment: str) -> None:
    with pytest.raises(DocumentError, match=fragment) as info:
        check_documents([IdentityDocument.parse(t) for t in texts])
    assert info.value.rule == "4.3"


@pytest.mark.parametrize(("text", "fragment"), [
    ("passport", "KIND:REF"), ("passport:", "KIND:REF"), ("library-card:1", "unknown"),
    ("passport:" + "9" * 65, "at most 64"), ("passport:A\x00B", "printable"),
])
def test_malformed_documents_are_refused(text: str, fragment: str) -> None:
    with pytest.raises(DocumentError, match=fragment):
        IdentityDocument.parse(text)


def test_the_digest_hides_the_reference_and_depends_on_the_application() -> None:
    doc = IdentityDocument.parse(PASSPORT)
    one, two = doc.digest("APP-1"), doc.digest("APP-2")
    assert one != two and len(one) == 32 and "TK1234567" not in one
    assert doc.digest("APP-1") == one


def test_a_representative_needs_a_name_relation_and_documents() -> None:
    check = build_check([], representative_name="山田 花子",
                        representative_relation="parent",
                        representative_documents=["driving-licence:123"])
    assert check is not None and check.representative is not None and check.holder == ()
    with pytest.raises(DocumentError, match="representative's documents"):
        build_check([], representative_name="山田 花子",
                    representative_documents=["pension-book:1"])
    with pytest.raises(DocumentError, match="without --legal-representative"):
        build_check(["passport:1"], representative_documents=["passport:2"])
    assert build_check([]) is None


def _apply(db: Database, person: object, identity: object) -> object:
    ResidentStore(db).put(person)  # type: ignore[arg-type]
    return take_application(db, ApplicationRequest(resident_code=person.resident_code),  # type: ignore[attr-defined]
                            operator=OPERATOR, clock=fixed_clock(TODAY),
                            identity=identity)  # type: ignore[arg-type]


def test_intake_stores_and_audits_the_documents_without_the_reference(db: Database) -> None:
    person = resident()
    check = build_check([PASSPORT])
    result = _apply(db, person, check)
    assert result.accepted  # type: ignore[attr-defined]
    app_id = result.application.id  # type: ignore[attr-defined]
    stored = rows(db, "SELECT * FROM identity_checks WHERE application_id = ?", (app_id,))
    assert [(r["step"], r["person"], r["document_kind"]) for r in stored] == [
        ("intake", "holder", "passport")]
    assert stored[0]["reference_digest"] == IdentityDocument.parse(PASSPORT).digest(app_id)
    entry = rows(db, "SELECT detail FROM audit_log WHERE action = 'application.apply'")[-1]
    detail = json.loads(entry["detail"])
    assert detail["identity_documents"] == [
        {"kind": "passport", "digest": IdentityDocument.parse(PASSPORT).digest(app_id)}]
    everything = json.dumps(rows(db, "SELECT * FROM audit_log")) + json.dumps(stored)
    assert "TK1234567" not in everything


def test_a_minor_or_a_ward_without_representative_is_refused(db: Database) -> None:
    child = resident(birth_date=date(2016, 5, 1))
    result = _apply(db, child, build_check(["student-id:1", "health-insurance-card:2"]))
    assert not result.accepted and result.refusal.rule == "4.3"  # type: ignore[attr-defined]
    assert "minor of 10" in result.refusal.message  # type: ignore[attr-defined]
    ward = resident(adult_ward=True)
    result = _apply(db, ward, build_check([PASSPORT]))
    assert result.refusal.rule == "4.3"  # type: ignore[attr-defined]
    assert "adult ward" in result.refusal.message  # type: ignore[attr-defined]
    refused = rows(db, "SELECT outcome, detail FROM audit_log WHERE action = 'application.apply'")
    assert [r["outcome"] for r in refused] == ["refused", "refused"]
    assert rows(db, "SELECT * FROM applications") == []

    with_rep = build_check([], representative_name="山田 花子",
                           representative_documents=["driving-licence:999"])
    result = _apply(db, child, with_rep)
    assert result.accepted  # type: ignore[attr-defined]
    app_id = result.application.id  # type: ignore[attr-defined]
    reps = rows(db, "SELECT name, relation, step FROM legal_representatives")
    assert reps == [{"name": "山田 花子", "relation": "parent", "step": "intake"}]
    people = rows(db, "SELECT person, document_kind FROM identity_checks"
                      " WHERE application_id = ?", (app_id,))
    assert people == [{"person": "representative", "document_kind": "driving-licence"}]


def test_apply_and_show_on_the_command_line(cli: Cli, db_url: str) -> None:
    from issuance.storage import open_database

    person = resident()
    with open_database(db_url) as db:
        ResidentStore(db).put(person)
    code, out, err = cli("apply", "--resident-code", person.resident_code,
                         "--identity-document", "pension-book:PB77001", "--json")
    assert code == 1 and json.loads(out)["refusal"]["rule"] == "4.3"
    code, out, _ = cli("apply", "--resident-code", person.resident_code,
                       "--identity-document", "pension-book:PB77001",
                       "--identity-document", "health-insurance-card:HI88002", "--json")
    assert code == 0
    app_id = json.loads(out)["application_id"]
    code, out, _ = cli("applications", "show", app_id, "--json")
    shown = json.loads(out)
    assert code == 0 and shown["id"] == app_id
    assert sorted((d["step"], d["kind"]) for d in shown["identity_documents"]) == [
        ("intake", "health-insurance-card"), ("intake", "pension-book")]
    assert "PB77001" not in out and "HI88002" not in out
    code, out, _ = cli("applications", "show", app_id)
    assert code == 0 and "identity checks:" in out and "pension-book" in out
    code, _, err = cli("applications", "show", "APP-NONE")
    assert code == 1 and "no application APP-NONE" in err
