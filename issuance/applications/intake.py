"""Taking an application: the rules, the stored application and its audit entry, in
one transaction."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from issuance.applications.rules import (
    ApplicationRequest,
    IntakeDecision,
    IntakeRefused,
    Refusal,
    decide,
    refuse,
)
from issuance.applications.store import Application, applications_of, insert_application
from issuance.audit.log import append_entry
from issuance.records.identity_documents import (
    DocumentError,
    IdentityCheck,
    check_for_person,
    record_check,
)
from issuance.registry.dates import age_on, japan_date, utc_now
from issuance.registry.store import get_resident
from issuance.storage import Database, IntegrityViolation

Clock = Callable[[], datetime]


def new_application_id() -> str:
    return f"APP-{uuid.uuid4().hex[:20].upper()}"


@dataclass(frozen=True)
class IntakeResult:
    application: Application | None
    decision: IntakeDecision | None
    refusal: Refusal | None

    @property
    def accepted(self) -> bool:
        return self.refusal is None

    def to_json(self) -> dict[str, Any]:
        return {
            "accepted": self.accepted,
            "application_id": self.application.id if self.application else None,
            "decision": self.decision.to_json() if self.decision else None,
            "refusal": None if self.refusal is None else {
                "rule": self.refusal.rule, "message": self.refusal.message,
            },
        }


def take_application(
    db: Database,
    request: ApplicationRequest,
    *,
    operator: str,
    clock: Clock = utc_now,
    new_id: Callable[[], str] = new_application_id,
    identity: IdentityCheck | DocumentError | None = None,
) -> IntakeResult:
    """Decide on `request`; store it if accepted; audit either way.

    `identity`: the documents the clerk saw (rule 4.3), recorded with the application and
    in the audit entry as kinds and digests; a DocumentError (the counter's input did not
    make a valid check) or a minor or an adult ward without a legal representative is
    refused with rule 4.3."""
    now = clock()
    today = japan_date(now)
    stamp = now.astimezone(UTC).isoformat()
    try:
        with db.transaction() as tx:
            tx.lock(f"mynacard.application:{request.resident_code}")
            resident = get_resident(tx, request.resident_code)
            existing = [a.as_existing() for a in applications_of(tx, request.resident_code)]
            try:
                if isinstance(identity, DocumentError):
                    raise refuse(identity.rule, str(identity))
                decision = decide(request, resident, today, existing)
                if identity is not None and resident is not None:
                    try:
                        check_for_person(identity,
                                         age=age_on(resident.birth_date, today),
                                         adult_ward=resident.adult_ward)
                    except DocumentError as exc:
                        raise refuse(exc.rule, str(exc)) from None
            except IntakeRefused as exc:
                _audit_refusal(tx, operator, request, exc.refusal, now)
                return IntakeResult(None, None, exc.refusal)
            application = insert_application(
                tx, application_id=new_id(), decision=decision, operator=operator, now=stamp
            )
            detail = {"application_id": application.id, **decision.to_json()}
            if identity is not None:
                record_check(tx, application.id, "intake", identity, operator=operator,
                             now=stamp)
                detail.update(identity.audit_detail(application.id))
            append_entry(
                tx, operator=operator, action="application.apply",
                subject=request.resident_code, outcome="accepted",
                detail=detail, at=now,
            )
            return IntakeResult(application, decision, None)
    except IntegrityViolation:
        # Another intake won the race between our check and our insert.
        refusal = refuse("I4", "another application is already in progress").refusal
        with db.transaction() as tx:
            _audit_refusal(tx, operator, request, refusal, now)
        return IntakeResult(None, None, refusal)


def _audit_refusal(
    tx: Any, operator: str, request: ApplicationRequest, refusal: Refusal, now: datetime
) -> None:
    append_entry(
        tx, operator=operator, action="application.apply", subject=request.resident_code,
        outcome="refused",
        detail={
            "rule": refusal.rule,
            "reason": refusal.message,
            "express": request.express.value if request.express else None,
            "event_date": request.event_date.isoformat() if request.event_date else None,
        },
        at=now,
    )
