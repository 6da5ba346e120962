"""Applications in the issuance store."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from issuance.applications.express import ExpressReason
from issuance.applications.rules import ENDED, ExistingApplication, IntakeDecision, State
from issuance.registry.dates import japan_date
from issuance.storage import Transaction


@dataclass(frozen=True)
class Application:
    id: str
    resident_code: str
    applied_on: date
    state: State
    express_reason: ExpressReason | None
    event_date: date | None
    express_deadline: date | None
    photo_less: bool
    signing_certificate: bool
    user_certificate: bool
    validity_years: int
    card_expiry: date
    operator: str
    created_at: str
    updated_at: str

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "resident_code": self.resident_code,
            "applied_on": self.applied_on.isoformat(),
            "state": self.state.value,
            "express_reason": self.express_reason.value if self.express_reason else None,
            "event_date": self.event_date.isoformat() if self.event_date else None,
            "express_deadline": (
                self.express_deadline.isoformat() if self.express_deadline else None
            ),
            "photo_less": self.photo_less,
            "signing_certificate": self.signing_certificate,
            "user_certificate": self.user_certificate,
            "validity_years": self.validity_years,
            "card_expiry": self.card_expiry.isoformat(),
            "operator": self.operator,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
        }

    def as_existing(self) -> ExistingApplication:
        ended = None
        if self.state in ENDED:
            ended = japan_date(datetime.fromisoformat(self.updated_at))
        return ExistingApplication(self.id, self.state, self.applied_on, self.card_expiry,
                                   ended)


def _d(value: str | None) -> date | None:
    return date.fromisoformat(value) if value else None


def _from_row(row: dict[str, Any]) -> Application:
    return Application(
        id=row["id"],
        resident_code=row["resident_code"],
        applied_on=date.fromisoformat(row["applied_on"]),
        state=State(row["state"]),
        express_reason=ExpressReason(row["express_reason"]) if row["express_reason"] else None,
        event_date=_d(row["event_date"]),
        express_deadline=_d(row["express_deadline"]),
        photo_less=bool(row["photo_less"]),
        signing_certificate=bool(row["signing_certificate"]),
        user_certificate=bool(row["user_certificate"]),
        validity_years=int(row["validity_years"]),
        card_expiry=date.fromisoformat(row["card_expiry"]),
        operator=row["operator"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
    )


def applications_of(tx: Transaction, resident_code: str) -> list[Application]:
    """A resident's applications, oldest first."""
    return applications_of_many(tx, [resident_code])[resident_code]


def applications_of_many(tx: Transaction, resident_codes: list[str]
                         ) -> dict[str, list[Application]]:
    """`applications_of` for many residents, in set queries (one per 500 residents)."""
    out: dict[str, list[Application]] = {code: [] for code in resident_codes}
    for row in tx.query_in("SELECT * FROM applications WHERE resident_code IN ({values})",
                           resident_codes):
        out[row["resident_code"]].append(_from_row(row))
    for apps in out.values():
        apps.sort(key=lambda a: (a.applied_on, a.created_at))
    return out


def get_application(tx: Transaction, application_id: str) -> Application | None:
    row = tx.query_one("SELECT * FROM applications WHERE id = ?", (application_id,))
    return _from_row(row) if row else None


def insert_application(
    tx: Transaction, *, application_id: str, decision: IntakeDecision, operator: str, now: str
) -> Application:
    express = decision.express
    tx.execute(
        "INSERT INTO applications (id, resident_code, applied_on, created_at, updated_at,"
        " state, express_reason, event_date, express_deadline, photo_less,"
        " signing_certificate, user_certificate, validity_years, card_expiry, operator)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            application_id, decision.resident_code, decision.application_date.isoformat(),
            now, now, State.APPLIED.value,
            express.reason.value if express else None,
            express.event_date.isoformat() if express else None,
            express.deadline.isoformat() if express else None,
            int(decision.photo_less), int(decision.signing_certificate),
            int(decision.user_certificate), decision.validity_years,
            decision.card_expiry.isoformat(), operator,
        ),
    )
    created = get_application(tx, application_id)
    assert created is not None
    return created


def set_state(tx: Transaction, application_id: str, state: State, *, now: str) -> bool:
    """Move an application to `state` (the workflow's transitions are checked there)."""
    changed = tx.execute(
        "UPDATE applications SET state = ?, updated_at = ? WHERE id = ?",
        (state.value, now, application_id),
    )
    return changed == 1
