"""The application state machine: which transitions exist, and one function that makes
one, with its audit entry, inside the caller's transaction.

    applied ──► registered ──► personalised ──► handed_over ──► activated
       │            │               │                │              │
       ▼            ▼               ▼                ▼              ▼
    refused,     refused,        cancelled,       lost,          lost, returned,
    cancelled    cancelled       abolished        returned       abolished
                                                                  lost ──► abolished
                                                                  lost ──► activated (found)
                                                                  returned ──► abolished

A refused transition raises `TransitionRefused` (naming the current state and the one
asked for) and changes nothing; the CLI records the refusal in the audit log.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from issuance.applications.rules import State
from issuance.applications.store import Application, get_application, set_state
from issuance.audit.log import append_entry
from issuance.errors import IssuanceError
from issuance.storage import Transaction

TRANSITIONS: Mapping[State, frozenset[State]] = {
    State.APPLIED: frozenset({State.REGISTERED, State.REFUSED, State.CANCELLED}),
    State.REGISTERED: frozenset({State.PERSONALISED, State.REFUSED, State.CANCELLED}),
    State.PERSONALISED: frozenset({State.HANDED_OVER, State.CANCELLED, State.ABOLISHED,
                                   State.LOST}),
    State.HANDED_OVER: frozenset({State.ACTIVATED, State.LOST, State.RETURNED,
                                  State.ABOLISHED}),
    State.ACTIVATED: frozenset({State.LOST, State.RETURNED, State.ABOLISHED}),
    State.LOST: frozenset({State.ACTIVATED, State.ABOLISHED}),  # found: back in hand
    State.RETURNED: frozenset({State.ABOLISHED}),
    State.REFUSED: frozenset(),
    State.CANCELLED: frozenset(),
    State.ABOLISHED: frozenset(),
}


class WorkflowError(IssuanceError):
    """Root of the workflow's errors."""


class Refused(WorkflowError):
    """The command ran and refused: `rule` says which check, the message why."""

    def __init__(self, rule: str, message: str) -> None:
        super().__init__(message)
        self.rule = rule
        self.message = message


class TransitionRefused(Refused):
    def __init__(self, application_id: str, current: State | None, wanted: State) -> None:
        if current is None:
            message = f"no application {application_id}"
        else:
            message = (f"application {application_id} is {current.value}; it cannot become "
                       f"{wanted.value}")
        super().__init__("W1", message)
        self.application_id = application_id
        self.current = current
        self.wanted = wanted


def can_move(current: State, wanted: State) -> bool:
    return wanted in TRANSITIONS[current]


def stamp(at: datetime) -> str:
    return at.astimezone(UTC).isoformat()


def transition(
    tx: Transaction,
    application_id: str,
    wanted: State,
    *,
    operator: str,
    action: str,
    at: datetime,
    detail: Mapping[str, Any] | None = None,
) -> Application:
    """Move the application to `wanted` and append the audit entry, both in `tx`."""
    tx.lock(f"mynacard.workflow:{application_id}")
    app = get_application(tx, application_id)
    if app is None:
        raise TransitionRefused(application_id, None, wanted)
    if not can_move(app.state, wanted):
        raise TransitionRefused(application_id, app.state, wanted)
    set_state(tx, application_id, wanted, now=stamp(at))
    append_entry(tx, operator=operator, action=action, subject=application_id, outcome="ok",
                 detail={"from": app.state.value, "to": wanted.value, **(detail or {})}, at=at)
    moved = get_application(tx, application_id)
    assert moved is not None
    return moved
