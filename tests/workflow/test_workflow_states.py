"""The application state machine on SQLite and PostgreSQL: every transition and its
refusal, each one transaction with its audit entry; and a whole issue on PostgreSQL."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime

import pytest
from workflow_support import OPERATOR, actions, app_state, apply, fresh_schema, pins, resident

from issuance.applications.rules import State
from issuance.applications.store import set_state
from issuance.storage import open_database
from issuance.workflow import records
from issuance.workflow.activate import Activator
from issuance.workflow.center import Center
from issuance.workflow.issue import Issuer
from issuance.workflow.machine import TRANSITIONS, TransitionRefused, transition
from issuance.workflow.migrations import LATEST_VERSION, migrate_workflow

NOW = datetime(2026, 11, 22, 3, 0, tzinfo=UTC)
PAIRS = list(itertools.product(list(State), list(State)))


def test_the_happy_path_and_its_side_branches_exist() -> None:
    path = [State.APPLIED, State.REGISTERED, State.PERSONALISED, State.HANDED_OVER,
            State.ACTIVATED]
    for a, b in itertools.pairwise(path):
        assert b in TRANSITIONS[a]
    assert TRANSITIONS[State.ACTIVATED] == {State.LOST, State.RETURNED, State.ABOLISHED}
    for final in (State.REFUSED, State.CANCELLED, State.ABOLISHED):
        assert TRANSITIONS[final] == frozenset()
    assert State.ACTIVATED not in TRANSITIONS[State.PERSONALISED]  # hand-over first
    assert State.PERSONALISED not in TRANSITIONS[State.PERSONALISED]  # issue once


def test_every_transition_and_refusal(any_db_url: str) -> None:
    with open_database(any_db_url) as db:
        assert migrate_workflow(db) == LATEST_VERSION
        assert migrate_workflow(db) == LATEST_VERSION  # idempotent
        for current, wanted in PAIRS:
            app = apply(db, resident(30))
            with db.transaction() as tx:
                set_state(tx, app, current, now=NOW.isoformat())
            if wanted in TRANSITIONS[current]:
                with db.transaction() as tx:
                    moved = transition(tx, app, wanted, operator=OPERATOR, action="t",
                                       at=NOW)
                assert moved.state is wanted
                entry = actions(db, app)[-1]
                assert entry == ("t", "ok")
            else:
                with pytest.raises(TransitionRefused), db.transaction() as tx:
                    transition(tx, app, wanted, operator=OPERATOR, action="t", at=NOW)
                assert app_state(db, app) == current.value
                assert actions(db, app) == []  # rolled back with the transaction


def test_a_failed_transaction_leaves_the_old_state(any_db_url: str) -> None:
    with open_database(any_db_url) as db:
        migrate_workflow(db)
        app = apply(db, resident(30))
        with pytest.raises(RuntimeError), db.transaction() as tx:
            transition(tx, app, State.REGISTERED, operator=OPERATOR, action="t", at=NOW)
            raise RuntimeError("crash before commit")
        assert app_state(db, app) == "applied" and actions(db, app) == []


def test_one_live_card_per_application(any_db_url: str) -> None:
    from issuance.storage import IntegrityViolation

    with open_database(any_db_url) as db:
        migrate_workflow(db)
        app = apply(db, resident(30))
        with db.transaction() as tx:
            records.put_card(tx, "100000000000001", app, "issued", now=NOW.isoformat())
        with pytest.raises(IntegrityViolation), db.transaction() as tx:
            records.put_card(tx, "100000000000002", app, "personalising", now=NOW.isoformat())
        with db.transaction() as tx:
            records.put_card(tx, "100000000000001", app, "spoiled", now=NOW.isoformat())
            records.put_card(tx, "100000000000002", app, "personalising", now=NOW.isoformat())
            assert records.live_card_of(tx, app).serial == "100000000000002"  # type: ignore


@pytest.mark.personalises
def test_issue_and_activate_on_postgresql(pg_cluster: object, center: Center,
                                          blank_card: str) -> None:
    with open_database(fresh_schema(pg_cluster)) as db:
        app = apply(db, resident(38))
        result = Issuer(db, center, operator=OPERATOR).issue(app, blank_card)
        assert result.life_cycle == "issued"
        Activator(db, operator=OPERATOR).activate(blank_card, pins)
        assert app_state(db, app) == "activated"
        assert [a for a, _ in actions(db, app)] == [
            "application.register", "issue.bind", "issue", "handover", "activate"]
