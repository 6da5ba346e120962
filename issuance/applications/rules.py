"""Intake rules as pure functions over a registry record, the application date and the
resident's existing applications. Each refusal names its rule.

Rule numbers are those of `docs/rules.md` where the public rules have one; the
intake checks the public rules leave implicit carry mynacard's own numbers I1–I5:

| rule  | what it checks |
|-------|----------------|
| I1    | the resident code is in the registry |
| I2    | the person is alive (a death deletes the 住民票; ref. 2a, 6.3) |
| I3    | a resident, or an emigrant holding a 附票 entry (Japanese nationals only;   |
|       | ref. 1.4, 6.6); a foreign resident's period of stay has not ended          |
| I4    | no other application is in progress (duplicate check) |
| I5    | no valid card is already issued, unless it is lost, replaced under express |
|       | reason 4.8(3), (6), (7), (8), (10) or (11), or expires within 3 months     |
|       | (ref. 1.7)                                                                 |
| 4.4   | validity: to the 10th birthday after issuance if 18 or over on the         |
|       | application date (20 up to 2022-03-31), else the 5th; capped at a foreign  |
|       | resident's end of stay                                                     |
| 4.5   | photo-less card for anyone under 1 on the application date (from 2024-12-02) |
| 1.9   | no signing certificate for holders under 15 or adult wards |
| 4.6   | express issuance exists from 2024-12-02 |
| 4.8   | express: one of the eleven reasons, first card after the event, in time    |
| 4.11  | emigrants (附票 holders) do not use express issuance |
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from enum import StrEnum
from typing import Any

from issuance.applications.express import (
    EXPRESS_START,
    ExpressDecision,
    ExpressReason,
    deadline,
)
from issuance.errors import IssuanceError
from issuance.registry.dates import age_on, nth_birthday_after
from issuance.registry.model import Nationality, Resident, ResidentStatus

PHOTO_LESS_START = date(2024, 12, 2)  # rule 4.5
ADULT_AGE_CHANGE = date(2022, 4, 1)  # rule 4.4: threshold 20 for applications up to 2022-03-31
SIGNING_MIN_AGE = 15  # rule 1.9
RENEWAL_WINDOW = timedelta(days=92)  # about 3 months before expiry (rule 1.7)


class State(StrEnum):
    APPLIED = "applied"
    REGISTERED = "registered"
    PERSONALISED = "personalised"
    HANDED_OVER = "handed_over"
    ACTIVATED = "activated"
    REFUSED = "refused"
    CANCELLED = "cancelled"
    LOST = "lost"
    RETURNED = "returned"
    ABOLISHED = "abolished"


IN_PROGRESS = frozenset({State.APPLIED, State.REGISTERED, State.PERSONALISED})
CARD_IN_HAND = frozenset({State.HANDED_OVER, State.ACTIVATED})
ENDED = frozenset({State.LOST, State.RETURNED, State.ABOLISHED})
CARD_PRODUCED = CARD_IN_HAND | ENDED
REPLACING_REASONS = frozenset({
    ExpressReason.CARD_LOST,
    ExpressReason.NUMBER_CHANGED,
    ExpressReason.CARD_DAMAGED,
    ExpressReason.RECORD_FIELD_FULL,
    ExpressReason.OFFICE_CAUSED_LAPSE,
    ExpressReason.CARD_STOLEN,
})


@dataclass(frozen=True)
class Refusal:
    rule: str
    message: str

    def __str__(self) -> str:
        return f"rule {self.rule}: {self.message}"


class IntakeRefused(IssuanceError):
    """An application refused at intake; `refusal.rule` names the rule."""

    def __init__(self, refusal: Refusal) -> None:
        super().__init__(str(refusal))
        self.refusal = refusal

    @property
    def rule(self) -> str:
        return self.refusal.rule


def refuse(rule: str, message: str) -> IntakeRefused:
    return IntakeRefused(Refusal(rule, message))


@dataclass(frozen=True)
class ExistingApplication:
    """What intake needs to know of an earlier application (and the card it became)."""

    id: str
    state: State
    applied_on: date
    card_expiry: date
    ended_on: date | None = None  # the day (in Japan) it became lost, returned or abolished


@dataclass(frozen=True)
class ApplicationRequest:
    resident_code: str
    express: ExpressReason | None = None
    express_requested: bool = False  # --express without a reason: find one
    event_date: date | None = None
    certificates: bool = True
    signing_certificate: bool = True

    @property
    def wants_express(self) -> bool:
        return self.express is not None or self.express_requested


@dataclass(frozen=True)
class IntakeDecision:
    resident_code: str
    application_date: date
    age: int
    photo_less: bool
    signing_certificate: bool
    user_certificate: bool
    validity_years: int
    card_expiry: date  # provisional: computed as if issued on the application date
    express: ExpressDecision | None
    notes: tuple[str, ...] = field(default=())

    def to_json(self) -> dict[str, Any]:
        return {
            "resident_code": self.resident_code,
            "application_date": self.application_date.isoformat(),
            "age": self.age,
            "photo_less": self.photo_less,
            "signing_certificate": self.signing_certificate,
            "user_certificate": self.user_certificate,
            "validity_years": self.validity_years,
            "card_expiry": self.card_expiry.isoformat(),
            "express": None if self.express is None else {
                "reason": self.express.reason.value,
                "rule": self.express.reason.rule,
                "event_date": self.express.event_date.isoformat(),
                "deadline": self.express.deadline.isoformat(),
            },
            "notes": list(self.notes),
        }


# ---- decisions -----------------------------------------------------------------------


def adult_age(application_date: date) -> int:
    """The age from which a card is valid for 10 years (rule 4.4)."""
    return 18 if application_date >= ADULT_AGE_CHANGE else 20


def validity_years(birth_date: date, application_date: date) -> int:
    """10 if the applicant is an adult on the application date, else 5 (rule 4.4)."""
    return 10 if age_on(birth_date, application_date) >= adult_age(application_date) else 5


def card_expiry(
    birth_date: date,
    application_date: date,
    issue_date: date,
    *,
    residence_expiry: date | None = None,
) -> date:
    """The card's last day (rule 4.4): the 10th or 5th birthday after issuance; for a
    foreign resident with a period of stay, no later than its end."""
    if issue_date < application_date:
        raise ValueError("a card is issued after its application")
    years = validity_years(birth_date, application_date)
    expiry = nth_birthday_after(birth_date, issue_date, years)
    if residence_expiry is not None and residence_expiry < expiry:
        return residence_expiry
    return expiry


def is_photo_less(birth_date: date, application_date: date) -> bool:
    """Rule 4.5: under 1 on the application date, from 2024-12-02."""
    return application_date >= PHOTO_LESS_START and age_on(birth_date, application_date) < 1


def signing_certificate_refusal(resident: Resident, on: date) -> str | None:
    """Why rule 1.9 withholds the signing certificate, or None if it may be issued."""
    if age_on(resident.birth_date, on) < SIGNING_MIN_AGE:
        return "rule 1.9: no signing certificate for holders under 15"
    if resident.adult_ward:
        return "rule 1.9: no signing certificate for adult wards (成年被後見人)"
    return None


# ---- refusals ------------------------------------------------------------------------


def check_eligible_person(resident: Resident | None, resident_code: str, on: date) -> Resident:
    """Rules I1–I3."""
    if resident is None:
        raise refuse("I1", f"no resident with code {resident_code} in the registry")
    if resident.status is ResidentStatus.DECEASED:
        raise refuse("I2", "the person is deceased (住民票 deleted)")
    if resident.status is ResidentStatus.DELETED:
        raise refuse("I3", "the 住民票 has been deleted")
    if resident.status is ResidentStatus.EMIGRATED:
        if resident.nationality is not Nationality.JAPANESE:
            raise refuse("I3", "a foreign national living abroad (no 附票; ref. 6.6)")
        if resident.fuhyo is None:
            raise refuse("I3", "emigrated without a 附票 entry")
    if resident.residence_expiry is not None and resident.residence_expiry < on:
        raise refuse("I3", f"the period of stay ended on {resident.residence_expiry}")
    if resident.birth_date > on:
        raise refuse("I1", "the birth date is after the application date")
    return resident


def check_no_application_in_progress(existing: Sequence[ExistingApplication]) -> None:
    """Rule I4 (duplicate check)."""
    for app in existing:
        if app.state in IN_PROGRESS:
            raise refuse("I4", f"application {app.id} is already in progress ({app.state})")


def check_existing_card(
    existing: Sequence[ExistingApplication], on: date, express: ExpressReason | None
) -> None:
    """Rule I5: the state of any card already issued."""
    for app in existing:
        if app.state not in CARD_IN_HAND or app.card_expiry < on:
            continue
        if express is ExpressReason.ARRIVAL_FROM_ABROAD:
            raise refuse("4.11", f"the card of application {app.id} is still valid (kept "
                                 "abroad through continued use): coming back is the domestic "
                                 "procedure (`mynacard card update` after the move-in), not "
                                 "express issuance")
        if express in REPLACING_REASONS:
            continue
        if app.card_expiry - on <= RENEWAL_WINDOW:
            continue  # renewal
        raise refuse(
            "I5",
            f"a valid card is already issued (application {app.id}, {app.state}, "
            f"valid to {app.card_expiry}); report it lost or return it first",
        )


def check_express(
    request: ApplicationRequest,
    resident: Resident,
    on: date,
    existing: Sequence[ExistingApplication],
) -> ExpressDecision | None:
    """Rules 4.6, 4.8, 4.11."""
    if not request.wants_express:
        return None
    if on < EXPRESS_START:
        raise refuse("4.6", f"express issuance starts on {EXPRESS_START}")
    if resident.status is ResidentStatus.EMIGRATED:
        raise refuse("4.11", "emigrants do not use express issuance")
    reason = request.express
    if reason is None:
        # Only rule 4.8(1) can be recognised from the registry alone.
        if age_on(resident.birth_date, on) < 1 and not _any_card(existing):
            reason = ExpressReason.UNDER_ONE
        else:
            raise refuse("4.8", "no express reason applies")
    event = request.event_date
    if reason is ExpressReason.UNDER_ONE:
        event = event or resident.birth_date
        if event != resident.birth_date:
            raise refuse(reason.rule, "the event of reason (1) is the birth")
        if _any_card(existing):
            raise refuse(reason.rule, "not the first card (a card was issued before)")
    elif event is None:
        raise refuse(reason.rule, f"needs the date of the event: {reason.event} (--event-date)")
    if event > on:
        raise refuse(reason.rule, f"the event date {event} is after the application date")
    if event < resident.birth_date:
        raise refuse(reason.rule, f"the event date {event} is before the birth date")
    if reason is ExpressReason.NEW_MID_LONG_TERM_RESIDENT and (
        resident.nationality is not Nationality.FOREIGN
    ):
        raise refuse(reason.rule, "only for foreign nationals (中長期在留者)")
    last_day = deadline(reason, event, birth_date=resident.birth_date)
    if on > last_day:
        raise refuse(
            reason.rule,
            f"deadline passed: {reason.event} on {event}, last day {last_day}",
        )
    for app in existing:
        if app.state in ENDED and app.ended_on == event and app.applied_on <= event:
            continue  # the card the event ended (lost, returned) is not a card after it
        if app.state in CARD_PRODUCED and app.applied_on >= event:
            raise refuse(
                reason.rule, f"not the first card after the event (application {app.id})"
            )
    return ExpressDecision(reason, event, last_day)


def _any_card(existing: Sequence[ExistingApplication]) -> bool:
    return any(app.state in CARD_PRODUCED for app in existing)


# ---- all together --------------------------------------------------------------------


def decide(
    request: ApplicationRequest,
    resident: Resident | None,
    application_date: date,
    existing: Sequence[ExistingApplication],
) -> IntakeDecision:
    """Apply every intake rule; raise `IntakeRefused` naming the first rule that fails."""
    person = check_eligible_person(resident, request.resident_code, application_date)
    check_no_application_in_progress(existing)
    check_existing_card(existing, application_date, request.express)
    express = check_express(request, person, application_date, existing)

    notes: list[str] = []
    age = age_on(person.birth_date, application_date)
    photo_less = is_photo_less(person.birth_date, application_date)
    if photo_less:
        notes.append("rule 4.5: photo-less card (under 1 on the application date)")
    user_cert = request.certificates
    signing = request.certificates and request.signing_certificate
    if not request.certificates:
        notes.append("rule 1.1: the applicant declined both certificates")
    elif not request.signing_certificate:
        notes.append("rule 1.1: the applicant declined the signing certificate")
    if signing:
        why_not = signing_certificate_refusal(person, application_date)
        if why_not:
            notes.append(why_not)
            signing = False
    if signing and person.fuhyo is not None and person.status is ResidentStatus.EMIGRATED:
        notes.append("rule 1.4: signing certificate from the 附票 entry")
    years = validity_years(person.birth_date, application_date)
    expiry = card_expiry(person.birth_date, application_date, application_date,
                         residence_expiry=person.residence_expiry)
    notes.append(f"rule 4.4: valid to the {'10th' if years == 10 else '5th'} birthday "
                 "after issuance" + (" or the end of stay" if person.residence_expiry else ""))
    return IntakeDecision(
        resident_code=person.resident_code,
        application_date=application_date,
        age=age,
        photo_less=photo_less,
        signing_certificate=signing,
        user_certificate=user_cert,
        validity_years=years,
        card_expiry=expiry,
        express=express,
        notes=tuple(notes),
    )
