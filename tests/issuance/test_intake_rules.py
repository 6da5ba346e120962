"""Intake rules as pure functions: every rule and its refusal (reference sections 1, 4)."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from issuance_factories import emigrant, resident

from issuance.applications import (
    ApplicationRequest,
    ExistingApplication,
    ExpressReason,
    IntakeRefused,
    State,
    card_expiry,
    deadline,
    decide,
    is_photo_less,
    validity_years,
)
from issuance.registry.dates import age_on, day_before_birthday, nth_birthday_after
from issuance.registry.model import Nationality, ResidentStatus

TODAY = date(2026, 11, 20)


def _refused(exc: pytest.ExceptionInfo[IntakeRefused], rule: str) -> None:
    assert exc.value.rule == rule
    assert str(exc.value).startswith(f"rule {rule}: ")


def _request(r, **kw):  # type: ignore[no-untyped-def]
    return ApplicationRequest(resident_code=r.resident_code, **kw)


# ---- ages and birthdays ------------------------------------------------------------


def test_age_counts_completed_years() -> None:
    birth = date(2000, 6, 10)
    assert age_on(birth, date(2018, 6, 9)) == 17
    assert age_on(birth, date(2018, 6, 10)) == 18


def test_leap_day_birth_ages_on_first_of_march_in_common_years() -> None:
    birth = date(2024, 2, 29)
    assert age_on(birth, date(2025, 2, 28)) == 0
    assert age_on(birth, date(2025, 3, 1)) == 1
    assert age_on(birth, date(2028, 2, 29)) == 4
    assert day_before_birthday(birth, 1) == date(2025, 2, 28)


def test_nth_birthday_after_is_strictly_after() -> None:
    birth = date(1990, 4, 1)
    assert nth_birthday_after(birth, date(2026, 4, 1), 1) == date(2027, 4, 1)
    assert nth_birthday_after(birth, date(2026, 3, 31), 1) == date(2026, 4, 1)


# ---- rule 4.4: card validity ---------------------------------------------------------


def test_adult_card_runs_to_tenth_birthday_after_issuance() -> None:
    birth = date(1980, 5, 15)
    assert validity_years(birth, TODAY) == 10
    assert card_expiry(birth, TODAY, date(2026, 12, 10)) == date(2036, 5, 15)


def test_minor_card_runs_to_fifth_birthday_after_issuance() -> None:
    birth = date(2010, 1, 20)  # 16 on the application date
    assert validity_years(birth, TODAY) == 5
    assert card_expiry(birth, TODAY, date(2026, 12, 1)) == date(2031, 1, 20)


def test_age_threshold_is_judged_on_the_application_date() -> None:
    birth = date(2008, 12, 1)  # 17 when applying, 18 when the card is issued
    assert validity_years(birth, TODAY) == 5
    assert card_expiry(birth, TODAY, date(2026, 12, 5)) == date(2031, 12, 1)
    assert validity_years(birth, date(2026, 12, 1)) == 10


def test_threshold_was_twenty_before_april_2022() -> None:
    birth = date(2003, 1, 1)  # 19 in March 2022
    assert validity_years(birth, date(2022, 3, 31)) == 5
    assert validity_years(birth, date(2022, 4, 1)) == 10


def test_leap_day_birth_validity() -> None:
    adult = date(2000, 2, 29)
    # 10th birthday after an issuance in 2026 falls in 2036, a leap year.
    assert card_expiry(adult, TODAY, date(2026, 12, 1)) == date(2036, 2, 29)
    # Issued in March 2027: the 10th birthday falls in 2037, a common year: 28 February.
    assert card_expiry(adult, date(2027, 3, 5), date(2027, 3, 10)) == date(2037, 2, 28)
    # Issued in January 2027: the first birthday after is 2027-02-28, the 10th in 2036.
    assert card_expiry(adult, date(2027, 1, 5), date(2027, 1, 10)) == date(2036, 2, 29)
    child = date(2016, 2, 29)
    assert card_expiry(child, TODAY, date(2026, 12, 1)) == date(2031, 2, 28)


def test_foreign_resident_card_ends_with_the_period_of_stay() -> None:
    r = resident(nationality=Nationality.FOREIGN, residence_expiry=date(2029, 3, 31))
    d = decide(_request(r), r, TODAY, [])
    assert d.card_expiry == date(2029, 3, 31)


def test_issue_before_application_is_a_value_error() -> None:
    with pytest.raises(ValueError):
        card_expiry(date(1980, 1, 1), TODAY, TODAY - timedelta(days=1))


# ---- rule 4.5: photo-less under 1; rule 1.9: signing certificate ---------------------


def test_under_one_gets_a_photo_less_card() -> None:
    baby = resident(birth_date=TODAY - timedelta(days=100))
    d = decide(_request(baby), baby, TODAY, [])
    assert d.photo_less and d.validity_years == 5
    assert not d.signing_certificate and d.user_certificate
    assert any("rule 4.5" in n for n in d.notes)


def test_one_year_old_gets_a_photo() -> None:
    assert not is_photo_less(date(2025, 11, 20), TODAY)
    assert is_photo_less(date(2025, 11, 21), TODAY)


def test_photo_less_starts_on_2024_12_02() -> None:
    birth = date(2024, 10, 1)
    assert not is_photo_less(birth, date(2024, 12, 1))
    assert is_photo_less(birth, date(2024, 12, 2))


def test_under_fifteen_gets_no_signing_certificate() -> None:
    child = resident(birth_date=date(2011, 11, 21))  # 14 until tomorrow
    d = decide(_request(child), child, TODAY, [])
    assert not d.signing_certificate and d.user_certificate
    assert any("under 15" in n for n in d.notes)
    fifteen = resident(birth_date=date(2011, 11, 20))
    assert decide(_request(fifteen), fifteen, TODAY, []).signing_certificate


def test_adult_ward_gets_no_signing_certificate() -> None:
    ward = resident(adult_ward=True)
    d = decide(_request(ward), ward, TODAY, [])
    assert not d.signing_certificate and d.user_certificate
    assert any("adult wards" in n for n in d.notes)


def test_applicant_may_decline_certificates() -> None:
    r = resident()
    none = decide(_request(r, certificates=False), r, TODAY, [])
    assert not none.signing_certificate and not none.user_certificate
    user_only = decide(_request(r, signing_certificate=False), r, TODAY, [])
    assert not user_only.signing_certificate and user_only.user_certificate


# ---- I1–I3: who may apply ------------------------------------------------------------


def test_unknown_resident_is_refused() -> None:
    with pytest.raises(IntakeRefused) as exc:
        decide(ApplicationRequest(resident_code="00000000000"), None, TODAY, [])
    _refused(exc, "I1")


def test_deceased_is_refused() -> None:
    r = resident(status=ResidentStatus.DECEASED, status_date=date(2026, 1, 1))
    with pytest.raises(IntakeRefused) as exc:
        decide(_request(r), r, TODAY, [])
    _refused(exc, "I2")


def test_deleted_record_is_refused() -> None:
    r = resident(status=ResidentStatus.DELETED, status_date=date(2026, 1, 1))
    with pytest.raises(IntakeRefused) as exc:
        decide(_request(r), r, TODAY, [])
    _refused(exc, "I3")


def test_emigrant_without_fuhyo_is_refused() -> None:
    r = emigrant(fuhyo=False)
    with pytest.raises(IntakeRefused) as exc:
        decide(_request(r), r, TODAY, [])
    _refused(exc, "I3")
    assert "附票" in str(exc.value)


def test_emigrant_with_fuhyo_is_accepted_with_signing_from_fuhyo() -> None:
    r = emigrant()
    d = decide(_request(r), r, TODAY, [])
    assert d.signing_certificate
    assert any("rule 1.4" in n for n in d.notes)


def test_foreign_national_abroad_is_refused() -> None:
    r = resident(nationality=Nationality.FOREIGN, status=ResidentStatus.EMIGRATED,
                 status_date=date(2025, 1, 1))
    with pytest.raises(IntakeRefused) as exc:
        decide(_request(r), r, TODAY, [])
    _refused(exc, "I3")


def test_ended_period_of_stay_is_refused() -> None:
    r = resident(nationality=Nationality.FOREIGN, residence_expiry=date(2026, 11, 19))
    with pytest.raises(IntakeRefused) as exc:
        decide(_request(r), r, TODAY, [])
    _refused(exc, "I3")


# ---- I4 duplicates, I5 existing card ---------------------------------------------------


def _app(state: State, *, applied: date = date(2026, 10, 1),
         expiry: date = date(2036, 5, 15), id: str = "APP-1") -> ExistingApplication:
    return ExistingApplication(id, state, applied, expiry)


@pytest.mark.parametrize("state", [State.APPLIED, State.REGISTERED, State.PERSONALISED])
def test_application_in_progress_is_a_duplicate(state: State) -> None:
    r = resident()
    with pytest.raises(IntakeRefused) as exc:
        decide(_request(r), r, TODAY, [_app(state)])
    _refused(exc, "I4")
    assert "APP-1" in str(exc.value)


@pytest.mark.parametrize("state", [State.REFUSED, State.CANCELLED, State.LOST,
                                   State.RETURNED, State.ABOLISHED])
def test_finished_applications_do_not_block(state: State) -> None:
    r = resident()
    decide(_request(r), r, TODAY, [_app(state)])


@pytest.mark.parametrize("state", [State.HANDED_OVER, State.ACTIVATED])
def test_valid_card_in_hand_blocks_a_new_application(state: State) -> None:
    r = resident()
    with pytest.raises(IntakeRefused) as exc:
        decide(_request(r), r, TODAY, [_app(state)])
    _refused(exc, "I5")


def test_renewal_within_three_months_and_expired_cards_are_allowed() -> None:
    r = resident()
    decide(_request(r), r, TODAY, [_app(State.ACTIVATED, expiry=TODAY + timedelta(days=60))])
    decide(_request(r), r, TODAY, [_app(State.ACTIVATED, expiry=TODAY - timedelta(days=1))])


def test_damaged_card_is_replaced_by_express() -> None:
    r = resident()
    d = decide(_request(r, express=ExpressReason.CARD_DAMAGED,
                        event_date=TODAY - timedelta(days=3)),
               r, TODAY, [_app(State.ACTIVATED, applied=date(2020, 1, 1))])
    assert d.express is not None and d.express.reason is ExpressReason.CARD_DAMAGED


# ---- rule 4.8: the express reasons -----------------------------------------------------

THIRTY_DAY_REASONS = [r for r in ExpressReason if r is not ExpressReason.UNDER_ONE]


def _subject_for(reason: ExpressReason):  # type: ignore[no-untyped-def]
    if reason is ExpressReason.NEW_MID_LONG_TERM_RESIDENT:
        return resident(nationality=Nationality.FOREIGN, residence_expiry=date(2030, 1, 1))
    return resident()


def test_the_reasons_are_rule_4_8s_nine_and_the_slides_two() -> None:
    # rule 4.8 (1)-(9) in its order; the MIC express slides add 役所起因のカード失効 and
    # 盗難 as reasons of their own: 4.8(10) and 4.8(11)
    assert len(ExpressReason) == 11
    assert [r.number for r in ExpressReason] == list(range(1, 12))
    assert ExpressReason.parse("10") is ExpressReason.OFFICE_CAUSED_LAPSE
    assert ExpressReason.parse("11") is ExpressReason.CARD_STOLEN
    assert ExpressReason.CARD_STOLEN.rule == "4.8(11)"
    assert ExpressReason.parse("3") is ExpressReason.CARD_LOST
    assert ExpressReason.parse("card-lost") is ExpressReason.CARD_LOST


@pytest.mark.parametrize("reason", THIRTY_DAY_REASONS, ids=lambda r: r.value)
def test_thirty_day_reason_accepted_on_the_last_day(reason: ExpressReason) -> None:
    r = _subject_for(reason)
    event = TODAY - timedelta(days=30)
    d = decide(_request(r, express=reason, event_date=event), r, TODAY, [])
    assert d.express is not None
    assert d.express.reason is reason and d.express.deadline == TODAY
    assert deadline(reason, event, birth_date=r.birth_date) == TODAY


@pytest.mark.parametrize("reason", THIRTY_DAY_REASONS, ids=lambda r: r.value)
def test_thirty_day_reason_refused_the_day_after(reason: ExpressReason) -> None:
    r = _subject_for(reason)
    with pytest.raises(IntakeRefused) as exc:
        decide(_request(r, express=reason, event_date=TODAY - timedelta(days=31)), r, TODAY, [])
    _refused(exc, reason.rule)
    assert "deadline passed" in str(exc.value)


@pytest.mark.parametrize("reason", THIRTY_DAY_REASONS, ids=lambda r: r.value)
def test_thirty_day_reason_needs_its_event_date(reason: ExpressReason) -> None:
    r = _subject_for(reason)
    with pytest.raises(IntakeRefused) as exc:
        decide(_request(r, express=reason), r, TODAY, [])
    _refused(exc, reason.rule)


def test_event_in_the_future_is_refused() -> None:
    r = resident()
    with pytest.raises(IntakeRefused) as exc:
        decide(_request(r, express=ExpressReason.CARD_LOST, event_date=TODAY + timedelta(1)),
               r, TODAY, [])
    _refused(exc, "4.8(3)")


def test_under_one_accepted_until_the_day_before_the_first_birthday() -> None:
    birth = date(2025, 11, 21)
    baby = resident(birth_date=birth)
    d = decide(_request(baby, express=ExpressReason.UNDER_ONE), baby, TODAY, [])
    assert d.express is not None and d.express.deadline == TODAY and d.photo_less
    one = resident(birth_date=date(2025, 11, 20))
    with pytest.raises(IntakeRefused) as exc:
        decide(_request(one, express=ExpressReason.UNDER_ONE), one, TODAY, [])
    _refused(exc, "4.8(1)")


def test_under_one_leap_day_deadline() -> None:
    baby = resident(birth_date=date(2024, 2, 29))
    assert deadline(ExpressReason.UNDER_ONE, baby.birth_date, birth_date=baby.birth_date) \
        == date(2025, 2, 28)
    decide(_request(baby, express=ExpressReason.UNDER_ONE), baby, date(2025, 2, 28), [])
    with pytest.raises(IntakeRefused):
        decide(_request(baby, express=ExpressReason.UNDER_ONE), baby, date(2025, 3, 1), [])


def test_under_one_only_for_the_first_card() -> None:
    baby = resident(birth_date=TODAY - timedelta(days=200))
    old = _app(State.RETURNED, applied=TODAY - timedelta(days=150))
    with pytest.raises(IntakeRefused) as exc:
        decide(_request(baby, express=ExpressReason.UNDER_ONE), baby, TODAY, [old])
    _refused(exc, "4.8(1)")


def test_express_is_for_the_first_card_after_the_event() -> None:
    r = resident()
    event = TODAY - timedelta(days=20)
    issued = _app(State.LOST, applied=TODAY - timedelta(days=10), id="APP-AFTER")
    with pytest.raises(IntakeRefused) as exc:
        decide(_request(r, express=ExpressReason.CARD_LOST, event_date=event), r, TODAY,
               [issued])
    _refused(exc, "4.8(3)")
    assert "APP-AFTER" in str(exc.value)


def test_mid_long_term_reason_is_for_foreign_nationals() -> None:
    r = resident()
    with pytest.raises(IntakeRefused) as exc:
        decide(_request(r, express=ExpressReason.NEW_MID_LONG_TERM_RESIDENT,
                        event_date=TODAY), r, TODAY, [])
    _refused(exc, "4.8(5)")


def test_no_applicable_express_reason_is_refused() -> None:
    r = resident()
    with pytest.raises(IntakeRefused) as exc:
        decide(_request(r, express_requested=True), r, TODAY, [])
    _refused(exc, "4.8")
    assert "no express reason applies" in str(exc.value)


def test_express_reason_found_for_a_baby() -> None:
    baby = resident(birth_date=TODAY - timedelta(days=10))
    d = decide(_request(baby, express_requested=True), baby, TODAY, [])
    assert d.express is not None and d.express.reason is ExpressReason.UNDER_ONE


def test_emigrants_do_not_use_express() -> None:
    r = emigrant()
    with pytest.raises(IntakeRefused) as exc:
        decide(_request(r, express=ExpressReason.CARD_LOST, event_date=TODAY), r, TODAY, [])
    _refused(exc, "4.11")


def test_express_did_not_exist_before_december_2024() -> None:
    r = resident()
    with pytest.raises(IntakeRefused) as exc:
        decide(_request(r, express=ExpressReason.CARD_LOST, event_date=date(2024, 11, 1)),
               r, date(2024, 11, 5), [])
    _refused(exc, "4.6")
