"""Certificates after the first issue, at the counter, on real emulated cards, SoftHSM2
and both databases: the holder's revocation request and certificates issued again onto
the same card (linked old → new), the card's return, a card found after a loss,
cancelling and refusing an application, and renewal before its window (rule 1.7)."""

from __future__ import annotations

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding
from workflow_support import OPERATOR, PINS, actions, app_state, apply, resident

from card.jpki import CertKind, JpkiClient, Key
from card.transport import PcscTransport
from issuance.counter.life import CardLife
from issuance.personalisation.pins import PinKind
from issuance.registry.model import Resident
from issuance.storage import Database
from issuance.workflow import records
from issuance.workflow.activate import Activator
from issuance.workflow.center import Center
from issuance.workflow.issue import Issuer
from issuance.workflow.machine import Refused

pytestmark = pytest.mark.personalises


def active_card(db: Database, center: Center, reader: str) -> tuple[str, Resident]:
    person = resident(40)
    app = apply(db, person)
    Issuer(db, center, operator=OPERATOR).issue(app, reader)
    Activator(db, operator=OPERATOR).activate(reader, PINS.__getitem__)
    return app, person


def signs_with_new_key(reader: str, serial: int) -> None:
    with PcscTransport(reader) as t:
        jpki = JpkiClient(t)
        jpki.verify_pin(Key.SIGN, PINS[PinKind.SIGN])
        cert = jpki.read_certificate(CertKind.SIGN)
        signature = jpki.sign_sha256(Key.SIGN, b"after")
    assert cert.serial_number == serial
    cert.public_key().verify(signature, b"after", padding.PKCS1v15(),  # type: ignore[union-attr]
                             hashes.SHA256())


def test_revocation_request_then_certificates_issued_again_on_the_same_card(
        db: Database, center: Center, blank_card: str) -> None:
    app, person = active_card(db, center, blank_card)
    life = CardLife(db, operator=OPERATOR, center=center)
    with pytest.raises(Refused) as err:
        life.revoke_certificates(application_id=app, identity_check="")
    assert err.value.rule == "C1"
    done = life.revoke_certificates(application_id=app, identity_check="licence 1")
    assert len(done.detail["revoked"]) == 2
    for serial in done.detail["revoked"]:
        rec = center.store.get(int(serial, 16))
        assert rec.status.value == "revoked"
        assert rec.reason == x509.ReasonFlags.cessation_of_operation
    assert app_state(db, app) == "activated"
    again = life.certify(blank_card, identity_check="licence 1", pins=PINS.__getitem__)
    new = {k: int(v, 16) for k, v in again.detail["issued"].items()}
    assert set(new) == {"signing", "user_authentication"}
    with db.transaction() as tx:
        links = records.links_of(tx, person.resident_code)
        current = records.certificates_of(tx, app, "current")
    assert {link.new_serial for link in links} == set(new.values())
    assert {format(link.old_serial, "x") for link in links} == set(done.detail["revoked"])
    assert {c.serial for c in current} == set(new.values())
    for old in done.detail["revoked"]:
        assert center.store.get(int(old, 16)).successor in new.values()
    signs_with_new_key(blank_card, new["signing"])
    assert ("certificates.issue", "ok") in actions(db, app)


def test_renewal_is_refused_before_three_months_before_expiry(
        db: Database, center: Center, blank_card: str) -> None:
    app, _ = active_card(db, center, blank_card)
    with pytest.raises(Refused) as err:
        CardLife(db, operator=OPERATOR, center=center).renew(
            blank_card, identity_check="ref", pins=PINS.__getitem__)
    assert err.value.rule == "1.7" and "renewal opens on" in err.value.message
    assert ("certificates.renew", "refused") in actions(db, app)


def test_a_returned_card_has_its_certificates_revoked(
        db: Database, center: Center, blank_card: str) -> None:
    app, _ = active_card(db, center, blank_card)
    life = CardLife(db, operator=OPERATOR, center=center)
    done = life.return_card(application_id=app, identity_check="passport 9")
    assert app_state(db, app) == "returned" and len(done.detail["revoked"]) == 2
    with db.transaction() as tx:
        assert [c.state for c in records.cards_of(tx, app)] == ["returned"]
    with pytest.raises(Refused):
        life.return_card(application_id=app, identity_check="passport 9")


def test_a_card_found_after_a_phone_hold_gets_new_certificates_never_a_release(
        db: Database, center: Center, blank_card: str) -> None:
    app, person = active_card(db, center, blank_card)
    life = CardLife(db, operator=OPERATOR, center=center)
    held = life.report_loss(application_id=app, hold=True).detail["certificates"]
    found = life.card_found(blank_card, identity_check="passport 1", pins=PINS.__getitem__)
    assert sorted(found.detail["revoked"]) == sorted(held)
    for serial in held:
        rec = center.store.get(int(serial, 16))
        assert rec.status.value == "revoked" and rec.reason == x509.ReasonFlags.key_compromise
    assert app_state(db, app) == "activated"
    signs_with_new_key(blank_card, int(found.detail["issued"]["signing"], 16))
    with pytest.raises(Refused) as err:
        life.card_found(blank_card, identity_check="passport 1", pins=PINS.__getitem__)
    assert err.value.rule == "C9"


def test_cancel_and_refuse_an_application(db: Database, center: Center,
                                          blank_card: str) -> None:
    life = CardLife(db, operator=OPERATOR, center=center)
    refused = apply(db, resident(30))
    with pytest.raises(Refused) as err:
        life.cancel(refused, why="", refuse=True)
    assert err.value.rule == "C11"
    life.cancel(refused, why="photo does not show the face", refuse=True)
    assert app_state(db, refused) == "refused"
    person = resident(30)
    app = apply(db, person)
    result = Issuer(db, center, operator=OPERATOR).issue(app, blank_card)
    done = life.cancel(app, why="the applicant withdrew")
    assert app_state(db, app) == "cancelled"
    assert sorted(done.detail["revoked"]) == sorted(
        format(s, "x") for s in (result.sign_serial, result.auth_serial) if s)
    with pytest.raises(Refused) as err:
        life.cancel(app, why="again")
    assert err.value.rule == "C11"


def test_an_interrupted_reissue_revokes_the_orphan_and_issues_again(
        db: Database, center: Center, blank_card: str) -> None:
    app, _ = active_card(db, center, blank_card)
    CardLife(db, operator=OPERATOR, center=center).revoke_certificates(
        application_id=app, identity_check="ref")
    with db.transaction() as tx:
        old_sign = next(c for c in records.certificates_of(tx, app) if c.kind == "signing")

    def stop(step: str) -> None:
        if step == "signing_issued":
            raise RuntimeError("interrupted")

    with pytest.raises(RuntimeError):
        CardLife(db, operator=OPERATOR, center=center, on_step=stop).certify(
            blank_card, identity_check="ref", pins=PINS.__getitem__)
    orphan = center.store.get(old_sign.serial).successor
    assert orphan is not None
    again = CardLife(db, operator=OPERATOR, center=center).certify(
        blank_card, identity_check="ref", pins=PINS.__getitem__)
    new_sign = int(again.detail["issued"]["signing"], 16)
    rec = center.store.get(orphan)
    assert rec.status.value == "revoked" and rec.reason == x509.ReasonFlags.unspecified
    assert new_sign != orphan and center.store.get(new_sign).status.value == "good"
    signs_with_new_key(blank_card, new_sign)
