"""The rule table as a pure function: every row, from both networks."""

from __future__ import annotations

import datetime as dt

import pytest

from issuance.notices.certificates import CertKind, HeldCertificate, Reason
from issuance.notices.model import Kind, Source
from issuance.notices.rules import CardAction, decide
from issuance.registry.model import Nationality, ResidentStatus

BEFORE = dt.datetime(2025, 4, 1, 1, 0, tzinfo=dt.UTC)
SIGN = HeldCertificate(0x51, CertKind.SIGNING, BEFORE, "good", None)
AUTH = HeldCertificate(0xA1, CertKind.USER_AUTHENTICATION, BEFORE, "good", None)
EFFECTIVE = dt.date(2026, 6, 1)
SOURCES = [Source.JUKI, Source.FUHYO]
FACT_KINDS = [Kind.NAME_CHANGE, Kind.ADDRESS_CHANGE, Kind.BIRTH_DATE_CHANGE,
              Kind.SEX_CHANGE, Kind.CORRECTION]


def run(kind: Kind, source: Source, *, nationality: Nationality = Nationality.JAPANESE,
        certs: tuple[HeldCertificate, ...] = (SIGN, AUTH)) -> object:
    return decide(kind=kind, source=source, effective_date=EFFECTIVE, nationality=nationality,
                  status=ResidentStatus.RESIDENT, certificates=certs)


def revoked(decision: object) -> dict[int, Reason]:
    return {r.serial: r.reason for r in decision.revocations}  # type: ignore[attr-defined]


@pytest.mark.parametrize("source", SOURCES)
@pytest.mark.parametrize("kind", [Kind.DEATH, Kind.RECORD_DELETED])
def test_death_or_deleted_revokes_both_and_abolishes_the_card(kind: Kind,
                                                               source: Source) -> None:
    d = run(kind, source)
    assert revoked(d) == {SIGN.serial: Reason.CESSATION_OF_OPERATION,
                          AUTH.serial: Reason.CESSATION_OF_OPERATION}
    assert d.card is CardAction.ABOLISH and d.kept == ()  # type: ignore[attr-defined]
    assert d.new_status is (ResidentStatus.DECEASED if kind is Kind.DEATH  # type: ignore[attr-defined]
                            else ResidentStatus.DELETED)


@pytest.mark.parametrize("source", SOURCES)
@pytest.mark.parametrize("kind", FACT_KINDS)
def test_change_of_facts_revokes_signing_only(kind: Kind, source: Source) -> None:
    d = run(kind, source)
    assert revoked(d) == {SIGN.serial: Reason.AFFILIATION_CHANGED}
    assert d.kept == (AUTH.serial,)  # type: ignore[attr-defined]
    assert d.card is CardAction.NONE and d.new_status is None  # type: ignore[attr-defined]


@pytest.mark.parametrize("source", SOURCES)
def test_emigration_with_continued_use_keeps_user_authentication(source: Source) -> None:
    d = run(Kind.EMIGRATION_CONTINUED_USE, source)
    assert revoked(d) == {SIGN.serial: Reason.CESSATION_OF_OPERATION}
    assert all(r.as_of_effective_date for r in d.revocations)  # type: ignore[attr-defined]
    assert d.kept == (AUTH.serial,)  # type: ignore[attr-defined]
    assert d.follow_fuhyo and d.card is CardAction.NONE  # type: ignore[attr-defined]
    assert d.new_status is ResidentStatus.EMIGRATED  # type: ignore[attr-defined]


@pytest.mark.parametrize("source", SOURCES)
@pytest.mark.parametrize(("kind", "nationality"), [
    (Kind.EMIGRATION_WITHOUT_CONTINUED_USE, Nationality.JAPANESE),
    (Kind.EMIGRATION_WITHOUT_CONTINUED_USE, Nationality.FOREIGN),
    (Kind.EMIGRATION_CONTINUED_USE, Nationality.FOREIGN),
])
def test_emigration_without_continued_use_or_foreign_revokes_both(
        kind: Kind, nationality: Nationality, source: Source) -> None:
    d = run(kind, source, nationality=nationality)
    assert revoked(d) == {SIGN.serial: Reason.CESSATION_OF_OPERATION,
                          AUTH.serial: Reason.CESSATION_OF_OPERATION}
    assert d.card is CardAction.LAPSE and not d.follow_fuhyo  # type: ignore[attr-defined]


@pytest.mark.parametrize("kind", [k for k in Kind if k is not Kind.DEATH])
def test_certificates_issued_after_the_effective_date_are_not_touched(kind: Kind) -> None:
    later = dt.datetime(2026, 6, 1, 15, 30, tzinfo=dt.UTC)  # 2026-06-02 00:30 JST
    new_sign = HeldCertificate(0x52, CertKind.SIGNING, later, "good", None)
    new_auth = HeldCertificate(0xA2, CertKind.USER_AUTHENTICATION, later, "good", None)
    d = run(kind, Source.JUKI, certs=(SIGN, AUTH, new_sign, new_auth))
    assert set(revoked(d)) <= {SIGN.serial, AUTH.serial}
    assert {new_sign.serial, new_auth.serial} <= set(d.kept)  # type: ignore[attr-defined]


def test_same_day_issue_counts_as_before_and_death_revokes_everything() -> None:
    same_day = dt.datetime(2026, 6, 1, 14, 0, tzinfo=dt.UTC)  # 23:00 JST on the date
    later = dt.datetime(2026, 7, 1, tzinfo=dt.UTC)
    a = HeldCertificate(0x53, CertKind.SIGNING, same_day, "good", None)
    b = HeldCertificate(0x54, CertKind.SIGNING, later, "good", None)
    assert set(revoked(run(Kind.NAME_CHANGE, Source.JUKI, certs=(a, b)))) == {a.serial}
    assert set(revoked(run(Kind.DEATH, Source.FUHYO, certs=(a, b)))) == {a.serial, b.serial}


def test_certificates_of_unknown_profiles_are_ignored() -> None:
    other = HeldCertificate(0x99, CertKind.OTHER, BEFORE, "good", None)
    d = run(Kind.DEATH, Source.JUKI, certs=(other,))
    assert d.revocations == () and d.kept == ()  # type: ignore[attr-defined]
