"""Taking applications against the real store (SQLite and PostgreSQL), with audit."""

from __future__ import annotations

import threading
from datetime import date, timedelta

from issuance_factories import emigrant, fixed_clock, resident

from issuance.applications import ApplicationRequest, ExpressReason, State, take_application
from issuance.applications.store import applications_of, get_application, set_state
from issuance.audit import AuditLog
from issuance.registry import ResidentStore
from issuance.registry.dates import day_before_birthday
from issuance.registry.model import ResidentStatus
from issuance.storage import Database, open_database

TODAY = date(2026, 11, 20)
CLOCK = fixed_clock(TODAY)


def test_accepted_application_is_stored_and_audited(db: Database) -> None:
    r = resident(birth_date=TODAY - timedelta(days=40))
    ResidentStore(db).put(r)
    result = take_application(db, ApplicationRequest(r.resident_code, express_requested=True),
                              operator="counter-1", clock=CLOCK)
    assert result.accepted and result.application is not None
    app = result.application
    assert app.state is State.APPLIED and app.photo_less and not app.signing_certificate
    assert app.express_reason is ExpressReason.UNDER_ONE
    assert app.express_deadline == day_before_birthday(r.birth_date, 1)
    assert app.event_date == r.birth_date
    assert app.applied_on == TODAY and app.operator == "counter-1"
    entries = AuditLog(db).entries()
    assert [(e.operator, e.action, e.subject, e.outcome) for e in entries] == [
        ("counter-1", "application.apply", r.resident_code, "accepted")]
    assert entries[0].detail["application_id"] == app.id


def test_duplicate_application_is_refused_in_the_store(db: Database) -> None:
    r = resident()
    ResidentStore(db).put(r)
    first = take_application(db, ApplicationRequest(r.resident_code), operator="op", clock=CLOCK)
    second = take_application(db, ApplicationRequest(r.resident_code), operator="op", clock=CLOCK)
    assert first.accepted
    assert second.refusal is not None and second.refusal.rule == "I4"
    assert first.application is not None and first.application.id in second.refusal.message
    outcomes = [(e.outcome, e.detail.get("rule")) for e in AuditLog(db).entries()]
    assert outcomes == [("accepted", None), ("refused", "I4")]


def test_card_in_hand_then_lost_then_express_replacement(db: Database) -> None:
    r = resident()
    ResidentStore(db).put(r)
    first = take_application(db, ApplicationRequest(r.resident_code), operator="op",
                             clock=fixed_clock(date(2026, 1, 5)))
    assert first.application is not None
    stamp = "2026-02-01T00:00:00+00:00"
    with db.transaction() as tx:
        assert set_state(tx, first.application.id, State.ACTIVATED, now=stamp)
    refused = take_application(db, ApplicationRequest(r.resident_code), operator="op",
                               clock=CLOCK)
    assert refused.refusal is not None and refused.refusal.rule == "I5"
    with db.transaction() as tx:
        set_state(tx, first.application.id, State.LOST, now=stamp)
    lost_on = TODAY - timedelta(days=5)
    replaced = take_application(
        db, ApplicationRequest(r.resident_code, express=ExpressReason.CARD_LOST,
                               event_date=lost_on),
        operator="op", clock=CLOCK)
    assert replaced.accepted and replaced.application is not None
    assert replaced.application.express_deadline == lost_on + timedelta(days=30)
    with db.transaction() as tx:
        states = [a.state for a in applications_of(tx, r.resident_code)]
    assert states == [State.LOST, State.APPLIED]


def test_refusals_name_their_rule_and_are_audited(db: Database) -> None:
    dead = resident(status=ResidentStatus.DECEASED, status_date=date(2026, 1, 1))
    gone = emigrant(fuhyo=False)
    abroad = emigrant()
    ResidentStore(db).put(dead, gone, abroad)
    cases = {"00000000000": "I1", dead.resident_code: "I2", gone.resident_code: "I3"}
    for code, rule in cases.items():
        result = take_application(db, ApplicationRequest(code), operator="op", clock=CLOCK)
        assert result.refusal is not None and result.refusal.rule == rule
    assert take_application(db, ApplicationRequest(abroad.resident_code), operator="op",
                            clock=CLOCK).accepted
    late = take_application(
        db, ApplicationRequest(resident().resident_code), operator="op", clock=CLOCK)
    assert late.refusal is not None and late.refusal.rule == "I1"
    log = AuditLog(db)
    assert [e.detail.get("rule") for e in log.entries() if e.outcome == "refused"] == \
        ["I1", "I2", "I3", "I1"]
    assert log.verify().ok


def test_concurrent_intakes_accept_exactly_one(db_url: str) -> None:
    with open_database(db_url) as setup:
        r = resident()
        ResidentStore(setup).put(r)
    results = []

    def worker() -> None:
        with open_database(db_url) as own:
            results.append(take_application(own, ApplicationRequest(r.resident_code),
                                            operator="op", clock=CLOCK))

    threads = [threading.Thread(target=worker) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(res.accepted for res in results) == 1
    assert {res.refusal.rule for res in results if res.refusal} == {"I4"}
    with open_database(db_url) as check:
        assert AuditLog(check).verify().ok
        with check.transaction() as tx:
            assert len(applications_of(tx, r.resident_code)) == 1
            accepted = next(res for res in results if res.accepted)
            assert accepted.application is not None
            assert get_application(tx, accepted.application.id) is not None
