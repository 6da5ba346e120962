"""The counter's records on a real card: a name with characters outside JIS X 0208
(𠮷, 髙) goes onto the signing certificate replaced and flagged; the hand-over records
the identity documents (kinds and digests) and, for a minor, the legal representative
who sets the PINs (rule 4.3). SQLite and PostgreSQL, jCardSim over PC/SC."""

from __future__ import annotations

import dataclasses
import json
from datetime import UTC, datetime

import pytest
from workflow_support import OPERATOR, app_state, apply, pins, resident

from issuance.records.identity_documents import IdentityDocument, build_check
from issuance.reports.handover import handover_letter
from issuance.storage import Database
from issuance.workflow import records
from issuance.workflow.activate import Activator
from issuance.workflow.center import Center
from issuance.workflow.issue import Issuer
from issuance.workflow.machine import Refused
from pki.profiles import identity_from_certificate

YOSHI = "\U00020bb7"


def _entries(db: Database, action: str) -> list[dict[str, object]]:
    with db.transaction() as tx:
        return [json.loads(r["detail"]) for r in tx.query(
            "SELECT detail FROM audit_log WHERE action = ? ORDER BY seq", (action,))]


@pytest.mark.personalises
def test_substitutes_on_the_card_and_documents_at_hand_over(db: Database, center: Center,
                                                           blank_card: str) -> None:
    person = dataclasses.replace(resident(40), name=f"髙橋　{YOSHI}男")
    app = apply(db, person)
    Issuer(db, center, operator=OPERATOR).issue(app, blank_card)
    with db.transaction() as tx:
        (sign,) = [c for c in records.certificates_of(tx, app) if c.kind == "signing"]
    facts = identity_from_certificate(center.store.get(sign.serial).certificate())
    assert (facts.name, facts.name_substitute) == ("高橋　吉男", "10010")
    with db.transaction() as tx:
        letter = handover_letter(tx, app, today=datetime.now(UTC).date())
    assert letter.name == "高橋　吉男"

    check = build_check(["driving-licence:DL-4402-7781"])
    result = Activator(db, operator=OPERATOR).activate(blank_card, pins, identity=check)
    assert result.pins_set and app_state(db, app) == "activated"
    digest = IdentityDocument.parse("driving-licence:DL-4402-7781").digest(app)
    handover = _entries(db, "handover")[-1]
    assert handover["identity_documents"] == [{"kind": "driving-licence", "digest": digest}]
    assert _entries(db, "activate")[-1]["pins_set_by"] == "holder"
    with db.transaction() as tx:
        stored = tx.query("SELECT step, person, document_kind FROM identity_checks"
                          " WHERE application_id = ?", (app,))
        log = json.dumps(tx.query("SELECT * FROM audit_log"))
    assert stored == [{"step": "handover", "person": "holder",
                       "document_kind": "driving-licence"}]
    assert "DL-4402-7781" not in log


@pytest.mark.personalises
def test_a_minor_is_handed_the_card_with_the_legal_representative(
        db: Database, center: Center, blank_card: str) -> None:
    app = apply(db, resident(12))
    Issuer(db, center, operator=OPERATOR).issue(app, blank_card)
    alone = build_check(["student-id:S1", "health-insurance-card:H1"])
    with pytest.raises(Refused) as info:
        Activator(db, operator=OPERATOR).activate(blank_card, pins, identity=alone)
    assert info.value.rule == "4.3" and "minor of 12" in info.value.message
    assert app_state(db, app) == "personalised"
    with_rep = build_check([], representative_name="山田 花子",
                           representative_relation="parent",
                           representative_documents=["passport:TR0001"])
    Activator(db, operator=OPERATOR).activate(blank_card, pins, identity=with_rep)
    assert app_state(db, app) == "activated"
    assert _entries(db, "activate")[-1]["pins_set_by"] == "legal_representative"
    handover = _entries(db, "handover")[-1]
    assert handover["legal_representative"]["relation"] == "parent"
    assert "TR0001" not in json.dumps(handover)
    with db.transaction() as tx:
        assert tx.query("SELECT name, step FROM legal_representatives") == [
            {"name": "山田 花子", "step": "handover"}]
