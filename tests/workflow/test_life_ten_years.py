"""An adult's ten-year card, end to end on real emulated cards, SoftHSM2 and both
databases, on an injected clock (nothing stored is back-dated): issue, a move (card
update), renewal at year five (rules 1.5–1.7: to the 6th birthday), a loss reported by
phone (hold), the card found (the hold revoked, new certificates), emigration with
continued use (the signing certificate lapses, the card records the 附票 address, a new
signing certificate on the 附票 facts), and the card's return."""

from __future__ import annotations

import dataclasses
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from workflow_support import OPERATOR, PINS, actions, app_state, resident

from card.text import TextClient
from card.transport import PcscTransport
from issuance.applications.intake import take_application
from issuance.applications.rules import ApplicationRequest
from issuance.counter.life import CardLife
from issuance.personalisation.pins import PinKind
from issuance.registry.dates import japan_date, nth_birthday_after
from issuance.registry.store import ResidentStore
from issuance.storage import Database
from issuance.workflow import records
from issuance.workflow.activate import Activator
from issuance.workflow.center import Center, CenterConfig
from issuance.workflow.issue import Issuer
from pki.profiles import identity_from_certificate

pytestmark = pytest.mark.personalises
ABROAD = "ドイツ連邦共和国 ベルリン"


class Clock:
    """The test's clock: now, moved forward by the test."""

    def __init__(self) -> None:
        self.now = datetime.now(UTC).replace(microsecond=0)

    def __call__(self) -> datetime:
        return self.now

    def to(self, moment: datetime) -> None:
        assert moment >= self.now, "the clock only moves forward"
        self.now = moment


def test_an_adults_ten_year_card(db: Database, center_home: Path, center_config: CenterConfig,
                                 blank_card: str) -> None:
    clock = Clock()
    with Center.open(center_home, center_config, clock=clock) as center:
        person = resident(30)
        ResidentStore(db).put(person)
        intake = take_application(db, ApplicationRequest(resident_code=person.resident_code),
                                  operator=OPERATOR, clock=clock)
        assert intake.application is not None
        app = intake.application.id
        assert intake.decision is not None and intake.decision.validity_years == 10
        first = Issuer(db, center, operator=OPERATOR, clock=clock).issue(app, blank_card)
        Activator(db, operator=OPERATOR, clock=clock).activate(blank_card, PINS.__getitem__)
        life = CardLife(db, operator=OPERATOR, center=center, clock=clock)
        assert first.sign_serial and first.auth_serial

        # year one: a move; the card records the new address, a new signing certificate
        clock.to(clock.now + timedelta(days=365))
        moved = dataclasses.replace(person, address="大阪府大阪市北区中之島1丁目3番20号")
        ResidentStore(db).put(moved)
        update = life.update_card(blank_card, identity_check="licence 1",
                                  text_pin=PINS[PinKind.TEXT], sign_password=PINS[PinKind.SIGN])
        assert update.detail["changed"] == ["address"]
        sign_after_move = int(update.detail["new_signing_certificate"], 16)

        # year five: renewal opens three months before expiry, runs to the 6th birthday
        auth_end = center.store.get(first.auth_serial).not_after
        clock.to(auth_end - timedelta(days=100))
        with pytest.raises(Exception) as early:
            life.renew(blank_card, identity_check="licence 2", pins=PINS.__getitem__)
        assert getattr(early.value, "rule", None) == "1.7"
        clock.to(auth_end - timedelta(days=60))
        renewed = life.renew(blank_card, identity_check="licence 2", pins=PINS.__getitem__)
        new_auth = int(renewed.detail["issued"]["user_authentication"], 16)
        new_sign = int(renewed.detail["issued"]["signing"], 16)
        today = japan_date(clock.now)
        sixth = nth_birthday_after(person.birth_date, today, 6)
        card_end = center.store.get(new_auth).not_after
        assert japan_date(card_end) == sixth  # the 6th birthday, before the card's expiry
        for old, new in ((first.auth_serial, new_auth), (sign_after_move, new_sign)):
            rec = center.store.get(old)
            assert rec.status.value == "revoked" and rec.reason == x509.ReasonFlags.superseded
            assert rec.successor == new
        with db.transaction() as tx:
            links = {(link.old_serial, link.new_serial, link.reason)
                     for link in records.links_of(tx, person.resident_code)}
        assert {(first.auth_serial, new_auth, "renewal"), (sign_after_move, new_sign, "renewal"),
                (first.sign_serial, sign_after_move, "card_update")} <= links

        # a loss by phone (hold), then the card is found: the hold revoked, new certificates
        clock.to(clock.now + timedelta(days=30))
        held = life.report_loss(application_id=app, hold=True).detail["certificates"]
        clock.to(clock.now + timedelta(days=2))
        found = life.card_found(blank_card, identity_check="passport 3", pins=PINS.__getitem__)
        for serial in held:
            rec = center.store.get(int(serial, 16))
            assert rec.status.value == "revoked" and rec.reason == x509.ReasonFlags.key_compromise
        assert set(found.detail["issued"]) == {"signing", "user_authentication"}
        assert app_state(db, app) == "activated"

        # year six: emigration with continued use; the card records the 附票 address
        clock.to(clock.now + timedelta(days=200))
        leaving = japan_date(clock.now) + timedelta(days=1)
        gone = life.emigrate(resident_code=person.resident_code, on=leaving,
                             continued_use=True, identity_check="passport 3",
                             address_abroad=ABROAD, reader=blank_card,
                             text_pin=PINS[PinKind.TEXT])
        lapsed = int(found.detail["issued"]["signing"], 16)
        assert gone.detail["revoked"] == [format(lapsed, "x")]
        rec = center.store.get(lapsed)
        assert rec.reason == x509.ReasonFlags.cessation_of_operation
        assert japan_date(rec.revoked_at) == leaving  # type: ignore[arg-type]
        kept = int(found.detail["issued"]["user_authentication"], 16)
        assert center.store.get(kept).status.value == "good"
        with PcscTransport(blank_card) as t:
            text = TextClient(t)
            text.verify_pin(PINS[PinKind.TEXT])
            address = text.basic_four().address
        assert address == f"{ABROAD}（附票管理市町村 {person.municipality_code[:5]}）"
        fuhyo_sign = life.certify(blank_card, identity_check="passport 3",
                                  pins=PINS.__getitem__).detail["issued"]["signing"]
        cert = center.store.get(int(fuhyo_sign, 16)).certificate()
        assert identity_from_certificate(cert).address == address

        # the card is returned
        clock.to(clock.now + timedelta(days=400))
        back = life.return_card(application_id=app, identity_check="passport 4")
        assert app_state(db, app) == "returned" and back.detail["revoked"]
        assert [a for a, o in actions(db, app) if o == "ok"][-1] == "card.return"
    assert date.today() <= japan_date(clock.now)
