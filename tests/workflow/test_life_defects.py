"""Defects of a card's life at the counter, on real emulated cards, SoftHSM2 and both
databases: an emigrant's signing certificate (rule 1.4), a phone hold turned into a
revocation (2a), and express issuance without certificates (rule 3.7)."""

from __future__ import annotations

import dataclasses
from datetime import date

import pytest
from cryptography import x509
from workflow_support import OPERATOR, PINS, actions, app_state, apply, resident

from card.contract import LifeCycle
from card.jpki import CertKind, JpkiClient, Key
from card.transport import PcscTransport
from issuance.applications.express import ExpressReason
from issuance.counter.operations import Counter
from issuance.personalisation.pins import PinKind, holder_pins
from issuance.registry.model import FuhyoEntry, ResidentStatus
from issuance.storage import Database
from issuance.workflow import records
from issuance.workflow.activate import Activator
from issuance.workflow.center import Center
from issuance.workflow.issue import Issuer
from issuance.workflow.machine import Refused
from pki.profiles import identity_from_certificate

pytestmark = pytest.mark.personalises


def _no_pin(kind: PinKind) -> str:
    raise AssertionError(f"the {kind} PIN was asked for")


def test_an_emigrants_signing_certificate_carries_the_fuhyo_address(
        db: Database, center: Center, blank_card: str) -> None:
    person = dataclasses.replace(
        resident(40), status=ResidentStatus.EMIGRATED, status_date=date(2025, 3, 1),
        fuhyo=FuhyoEntry("131016", "フランス共和国 パリ市", True))
    app = apply(db, person)
    result = Issuer(db, center, operator=OPERATOR).issue(app, blank_card)
    assert result.sign_serial is not None
    Activator(db, operator=OPERATOR).activate(blank_card, PINS.__getitem__)
    with PcscTransport(blank_card) as t:
        jpki = JpkiClient(t)
        jpki.verify_pin(Key.SIGN, PINS[PinKind.SIGN])
        on_card = jpki.read_certificate(CertKind.SIGN)
    assert on_card.serial_number == result.sign_serial
    address = identity_from_certificate(on_card).address
    assert address == "フランス共和国 パリ市（附票管理市町村 13101）"
    assert person.address not in address


def test_a_phone_hold_is_revoked_by_the_window_loss_report(
        db: Database, center: Center, blank_card: str) -> None:
    person = resident(40)
    app = apply(db, person)
    Issuer(db, center, operator=OPERATOR).issue(app, blank_card)
    Activator(db, operator=OPERATOR).activate(blank_card, PINS.__getitem__)
    counter = Counter(db, operator=OPERATOR, center=center)
    phone = counter.report_loss(resident_code=person.resident_code, hold=True)
    serials = [int(s, 16) for s in phone.detail["certificates"]]
    assert len(serials) == 2
    assert {center.store.get(s).status.value for s in serials} == {"hold"}
    window = counter.report_loss(resident_code=person.resident_code,
                                 identity_check="passport TK1")
    assert window.detail["after_hold"] is True and len(window.detail["changed"]) == 2
    for serial in serials:
        rec = center.store.get(serial)
        assert rec.status.value == "revoked" and rec.reason == x509.ReasonFlags.key_compromise
    with db.transaction() as tx:
        assert records.certificates_of(tx, app, "current") == []
    with pytest.raises(Refused):  # nothing held any more
        counter.report_loss(application_id=app)
    assert app_state(db, app) == "lost"


def test_a_reissue_revokes_certificates_still_on_hold(
        db: Database, center: Center, blank_card: str) -> None:
    person = resident(40)
    app = apply(db, person)
    Issuer(db, center, operator=OPERATOR).issue(app, blank_card)
    Activator(db, operator=OPERATOR).activate(blank_card, PINS.__getitem__)
    counter = Counter(db, operator=OPERATOR, center=center)
    phone = counter.report_loss(application_id=app, hold=True)
    new = counter.reissue(person.resident_code)  # the day of the first application
    assert new.accepted, new.refusal
    assert new.decision is not None and new.decision.express is not None
    for serial in phone.detail["certificates"]:
        rec = center.store.get(int(serial, 16))
        assert rec.status.value == "revoked" and rec.reason == x509.ReasonFlags.key_compromise
    assert ("card.revoke_held", "ok") in actions(db, app)


def test_express_issuance_without_certificates_needs_only_the_two_area_pins(
        db: Database, center: Center, blank_card: str) -> None:
    person = resident(30)
    app = apply(db, person, express=ExpressReason.CARD_DAMAGED, certificates=False,
                event_date=date.today())
    pins = holder_pins({PinKind.TEXT: PINS[PinKind.TEXT], PinKind.JUKI: PINS[PinKind.JUKI]})
    result = Issuer(db, center, operator=OPERATOR).issue(app, blank_card, holder_pins=pins)
    assert result.life_cycle == LifeCycle.ACTIVE.name.lower()
    assert result.sign_serial is None and result.auth_serial is None
    done = Activator(db, operator=OPERATOR).activate(blank_card, _no_pin)
    assert done.pins_set == [] and app_state(db, app) == "activated"


def test_express_issuance_with_certificates_still_needs_their_pins(
        db: Database, center: Center, blank_card: str) -> None:
    app = apply(db, resident(30), express=ExpressReason.CARD_DAMAGED, event_date=date.today())
    pins = holder_pins({PinKind.TEXT: PINS[PinKind.TEXT], PinKind.JUKI: PINS[PinKind.JUKI]})
    with pytest.raises(Refused) as err:
        Issuer(db, center, operator=OPERATOR).issue(app, blank_card, holder_pins=pins)
    assert err.value.rule == "3.7"
    assert app_state(db, app) == "applied"
