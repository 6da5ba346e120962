"""Rules of a card's life as pure functions: the express reasons (rule 4.8 and the MIC
slides' two more), a loss reissue on the day of the first application, an emigrant's
signing-certificate facts (rule 1.4), and continued use only from 2024-05-27 (2a, 6.6)."""

from __future__ import annotations

import datetime as dt
from datetime import date, timedelta

import pytest
from issuance_factories import emigrant, resident

from issuance.applications import ApplicationRequest, ExistingApplication, ExpressReason
from issuance.applications.rules import IntakeRefused, State, decide
from issuance.notices.certificates import CertKind, HeldCertificate, Reason
from issuance.notices.model import Kind, Source
from issuance.notices.rules import CardAction
from issuance.notices.rules import decide as decide_notice
from issuance.personalisation.profile import fuhyo_address, identity_of
from issuance.registry.model import FuhyoEntry, Nationality, ResidentStatus

TODAY = date(2026, 11, 20)


def _request(code: str, **kw: object) -> ApplicationRequest:
    return ApplicationRequest(resident_code=code, **kw)  # type: ignore[arg-type]


# ---- rule 4.8: a reissue after a loss on the day the lost card was applied for -------

def test_loss_reissue_on_the_day_the_lost_card_was_applied_for_is_express() -> None:
    r = resident()
    lost = ExistingApplication("APP-LOST", State.LOST, TODAY, date(2036, 5, 15),
                               ended_on=TODAY)
    d = decide(_request(r.resident_code, express=ExpressReason.CARD_LOST, event_date=TODAY),
               r, TODAY, [lost])
    assert d.express is not None and d.express.reason is ExpressReason.CARD_LOST


def test_a_card_produced_after_the_loss_still_makes_the_reissue_not_the_first() -> None:
    r = resident()
    lost = ExistingApplication("APP-LOST", State.LOST, TODAY - timedelta(days=3),
                               date(2036, 5, 15), ended_on=TODAY - timedelta(days=3))
    again = ExistingApplication("APP-NEW", State.LOST, TODAY - timedelta(days=3),
                                date(2036, 5, 15), ended_on=TODAY)
    with pytest.raises(IntakeRefused) as exc:
        decide(_request(r.resident_code, express=ExpressReason.CARD_LOST,
                        event_date=TODAY - timedelta(days=3)), r, TODAY, [lost, again])
    assert exc.value.rule == "4.8(3)" and "not the first card" in str(exc.value)


@pytest.mark.parametrize("reason", [ExpressReason.CARD_STOLEN,
                                    ExpressReason.OFFICE_CAUSED_LAPSE])
def test_the_slides_reasons_replace_a_card_in_hand(reason: ExpressReason) -> None:
    r = resident()
    in_hand = ExistingApplication("APP-1", State.ACTIVATED, date(2020, 1, 1), date(2030, 5, 15))
    d = decide(_request(r.resident_code, express=reason, event_date=TODAY - timedelta(days=2)),
               r, TODAY, [in_hand])
    assert d.express is not None and d.express.reason is reason
    assert d.express.deadline == TODAY + timedelta(days=28)


# ---- rule 1.4: an emigrant's signing certificate carries the 附票 facts -------------

def test_an_emigrants_certificate_identity_is_the_fuhyo_address() -> None:
    person = emigrant()
    identity = identity_of(person)
    assert identity.address == "アメリカ合衆国 カリフォルニア州（附票管理市町村 13101）"
    assert person.address not in identity.address
    assert identity_of(resident()).address == resident().address


def test_a_fuhyo_without_an_address_abroad_says_abroad() -> None:
    assert fuhyo_address(FuhyoEntry("131016", None, True)) == "国外（附票管理市町村 13101）"


def test_an_emigrant_without_a_fuhyo_keeps_the_record_address() -> None:
    person = emigrant(fuhyo=False)
    assert identity_of(person).address == person.address


# ---- 2a, 6.6: continued use exists from 2024-05-27 ------------------------------------

_AT = dt.datetime(2023, 4, 1, 1, 0, tzinfo=dt.UTC)
_SIGN = HeldCertificate(0x51, CertKind.SIGNING, _AT, "good", None)
_AUTH = HeldCertificate(0xA1, CertKind.USER_AUTHENTICATION, _AT, "good", None)


@pytest.mark.parametrize("day, continued", [(date(2024, 5, 26), False),
                                            (date(2024, 5, 27), True)])
def test_continued_use_before_2024_05_27_is_emigration_without_it(day: date,
                                                                   continued: bool) -> None:
    d = decide_notice(kind=Kind.EMIGRATION_CONTINUED_USE, source=Source.JUKI,
                      effective_date=day, nationality=Nationality.JAPANESE,
                      status=ResidentStatus.RESIDENT, certificates=(_SIGN, _AUTH))
    revoked = {r.serial: r.reason for r in d.revocations}
    if continued:
        assert revoked == {_SIGN.serial: Reason.CESSATION_OF_OPERATION}
        assert d.card is CardAction.NONE and d.follow_fuhyo
    else:
        assert revoked == {_SIGN.serial: Reason.CESSATION_OF_OPERATION,
                           _AUTH.serial: Reason.CESSATION_OF_OPERATION}
        assert d.card is CardAction.LAPSE and not d.follow_fuhyo
        assert "before 2024-05-27" in d.rule
