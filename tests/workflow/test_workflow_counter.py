"""Counter operations on cards issued by the center: PIN reset after a block, card update
after a move, loss report and reissue — real emulated cards, SoftHSM2, SQLite."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from workflow_support import OPERATOR, PINS, actions, app_state, apply, pins, resident

from card import formats, images
from card.common_ap import CommonClient
from card.errors import PinBlocked, PinIncorrect
from card.jpki import CertKind, JpkiClient, Key
from card.juki import JukiClient
from card.surface import SurfaceClient
from card.text import TextClient
from card.transport import PcscTransport
from issuance.audit.log import AuditLog
from issuance.counter.operations import Counter
from issuance.personalisation.pins import PinKind
from issuance.registry.model import Resident
from issuance.registry.store import ResidentStore
from issuance.storage import Database
from issuance.workflow.activate import Activator
from issuance.workflow.center import Center
from issuance.workflow.issue import Issuer
from issuance.workflow.machine import Refused
from pki.verify import verify_certificate

pytestmark = pytest.mark.personalises


def active_card(db: Database, center: Center, reader: str, age: int = 40
                ) -> tuple[str, Resident, int | None]:
    person = resident(age)
    app = apply(db, person)
    result = Issuer(db, center, operator=OPERATOR).issue(app, reader)
    Activator(db, operator=OPERATOR).activate(reader, pins)
    return app, person, result.sign_serial


@pytest.mark.blocks_pins
def test_blocked_signing_password_is_reset_at_the_counter_and_works(
        db: Database, center: Center, blank_card: str) -> None:
    app, _person, _ = active_card(db, center, blank_card)
    with PcscTransport(blank_card) as t:
        jpki = JpkiClient(t)
        for _ in range(4):
            with pytest.raises(PinIncorrect):
                jpki.verify_pin(Key.SIGN, "WRONG1")
        with pytest.raises(PinBlocked):
            jpki.verify_pin(Key.SIGN, "WRONG1")
        with pytest.raises(PinBlocked):
            jpki.verify_pin(Key.SIGN, PINS[PinKind.SIGN])
    counter = Counter(db, operator=OPERATOR, center=center)
    with pytest.raises(Refused) as err:
        counter.reset_pin(blank_card, PinKind.SIGN, identity_check="", new_pin="NEWPW77")
    assert err.value.rule == "C1"
    result = counter.reset_pin(blank_card, PinKind.SIGN, identity_check="passport TK1234567",
                               new_pin="NEWPW77")
    assert result.detail["tries_left"] == 5
    with PcscTransport(blank_card) as t:
        jpki = JpkiClient(t)
        jpki.verify_pin(Key.SIGN, "NEWPW77")
        signature = jpki.sign_sha256(Key.SIGN, b"after the reset")
        public = jpki.public_key(Key.SIGN)
    public.verify(signature, b"after the reset", padding.PKCS1v15(), hashes.SHA256())
    entry = [e for e in AuditLog(db).entries() if e.action == "pin.reset"]
    assert [e.outcome for e in entry] == ["refused", "ok"]
    assert entry[-1].detail["identity_check"] == "passport TK1234567"
    assert "NEWPW77" not in str(entry[-1].detail)
    assert entry[-1].subject == app


@pytest.mark.blocks_pins
def test_juki_pin_is_set_and_reset_in_both_key_references(db: Database, center: Center,
                                                          blank_card: str) -> None:
    """Activation set the holder's juki PIN in the 住基AP and the 共通カードAP; each copy
    blocks on its own; the counter reset gives both the new value and full tries."""
    active_card(db, center, blank_card)
    with PcscTransport(blank_card) as t:
        common, juki = CommonClient(t), JukiClient(t)
        common.verify_pin(PINS[PinKind.JUKI])
        juki.verify_pin(PINS[PinKind.JUKI])
        for client in (common, juki):
            for _ in range(3):
                with pytest.raises((PinIncorrect, PinBlocked)):
                    client.verify(client.area.pins[0].fid, "0000")
            with pytest.raises(PinBlocked):
                client.verify(client.area.pins[0].fid, PINS[PinKind.JUKI])
    result = Counter(db, operator=OPERATOR, center=center).reset_pin(
        blank_card, PinKind.JUKI, identity_check="passport TK7654321", new_pin="8642")
    assert result.detail["tries_left"] == 3
    with PcscTransport(blank_card) as t:
        for client in (CommonClient(t), JukiClient(t)):
            fid = client.area.pins[0].fid
            assert client.tries_left(fid) == 3
            client.verify(fid, "8642")


@pytest.mark.blocks_pins
def test_counter_only_reset_keeps_the_value(db: Database, center: Center,
                                            blank_card: str) -> None:
    active_card(db, center, blank_card)
    with PcscTransport(blank_card) as t:
        text = TextClient(t)
        for _ in range(3):
            with pytest.raises((PinIncorrect, PinBlocked)):
                text.verify_pin("0000")
    Counter(db, operator=OPERATOR, center=center).reset_pin(
        blank_card, PinKind.TEXT, identity_check="residence card", new_pin=None)
    with PcscTransport(blank_card) as t:
        TextClient(t).verify_pin(PINS[PinKind.TEXT])


def test_card_update_after_a_move(db: Database, center: Center, blank_card: str) -> None:
    app, person, old_sign = active_card(db, center, blank_card)
    moved = dataclasses.replace(person, address="東京都千代田区霞が関２丁目１番２号")
    ResidentStore(db).put(moved)
    counter = Counter(db, operator=OPERATOR, center=center)
    with pytest.raises(Refused) as err:
        counter.update_card(blank_card, identity_check=None, text_pin=PINS[PinKind.TEXT],
                            sign_password=PINS[PinKind.SIGN])
    assert err.value.rule == "C1"
    result = counter.update_card(blank_card, identity_check="my number card + juki notice",
                                 text_pin=PINS[PinKind.TEXT], sign_password=PINS[PinKind.SIGN])
    assert result.detail["changed"] == ["address"]
    new_sign = int(result.detail["new_signing_certificate"], 16)

    # new facts on the card, integrity record signed by the HSM key
    with PcscTransport(blank_card) as t:
        text = TextClient(t)
        text.verify_pin(PINS[PinKind.TEXT])
        assert text.basic_four().address == moved.address
        assert text.check_integrity(center.integrity_signer.public_key()).signature_ok
        # the card face shows the new address image, keeps its photo, and is signed again
        surface = SurfaceClient(t)
        surface.verify_code_a(person.my_number)
        face = surface.card_face()
        assert face.address_image == images.address_image(moved.address)
        assert face.photo == images.generated_portrait(person.resident_code)
        assert face.verify(center.integrity_signer.public_key())
        assert surface.cv_certificate().public_key == center.integrity_signer.public_key()
        jpki = JpkiClient(t)
        jpki.verify_pin(Key.SIGN, PINS[PinKind.SIGN])
        on_card = jpki.read_certificate(CertKind.SIGN)
        key = jpki.public_key(Key.SIGN)
    assert on_card.serial_number == new_sign and on_card.public_key() == key
    # old certificate revoked affiliationChanged, linked to the new one, new one valid
    assert old_sign is not None
    old = center.store.get(old_sign)
    assert old.status.value == "revoked"
    assert old.reason == x509.ReasonFlags.affiliation_changed
    assert old.successor == new_sign
    assert old.certificate().public_key() != key
    roots = [h.root_cert for h in center.ca.config.hierarchies.values()]
    new = center.store.get(new_sign)
    assert new.status.value == "good"
    assert verify_certificate(new.certificate(), roots=roots, check_revocation=False).valid
    san = new.certificate().extensions.get_extension_for_class(x509.SubjectAlternativeName)
    assert any(moved.address.encode() in n.value for n in san.value
               if isinstance(n, x509.OtherName))
    assert ("card.update", "ok") in actions(db, app)
    # nothing left to update: refused
    with pytest.raises(Refused) as err:
        counter.update_card(blank_card, identity_check="again", text_pin=PINS[PinKind.TEXT],
                            sign_password=PINS[PinKind.SIGN])
    assert err.value.rule == "C6"
    assert isinstance(key, rsa.RSAPublicKey) and formats


def test_report_loss_revokes_both_and_reissue_is_express(
        db: Database, center: Center, blank_card: str) -> None:
    # the lost card was applied for today, the day of the loss: still express (4.8(3))
    app, person, sign = active_card(db, center, blank_card)
    counter = Counter(db, operator=OPERATOR, center=center)
    result = counter.report_loss(resident_code=person.resident_code)
    assert app_state(db, app) == "lost" and len(result.detail["changed"]) == 2
    for serial in result.detail["certificates"]:
        rec = center.store.get(int(serial, 16))
        assert rec.status.value == "revoked" and rec.reason == x509.ReasonFlags.key_compromise
    with pytest.raises(Refused):
        counter.report_loss(application_id=app)  # already lost
    new = counter.reissue(person.resident_code)
    assert new.accepted and new.decision is not None
    assert new.decision.express is not None and new.decision.express.reason.number == 3
    assert [a for a, _ in actions(db, app)].count("card.report_loss") == 2


def test_loss_reported_by_phone_puts_certificates_on_hold(
        db: Database, center: Center, blank_card: str) -> None:
    app, _person, _ = active_card(db, center, blank_card)
    result = Counter(db, operator=OPERATOR, center=center).report_loss(application_id=app,
                                                                       hold=True)
    for serial in result.detail["certificates"]:
        assert center.store.get(int(serial, 16)).status.value == "hold"
    assert datetime.now(UTC)


@pytest.mark.parametrize("step", ["old_signing_revoked", "new_signing_issued",
                                  "new_signing_recorded"])
def test_an_interrupted_card_update_is_finished_by_running_it_again(
        step: str, db: Database, center: Center, blank_card: str) -> None:
    app, person, old_sign = active_card(db, center, blank_card)
    moved = dataclasses.replace(person, name="新姓 花子")
    ResidentStore(db).put(moved)

    def stop(at: str) -> None:
        if at == step:
            raise RuntimeError("interrupted")

    with pytest.raises(RuntimeError):
        Counter(db, operator=OPERATOR, center=center, on_step=stop).update_card(
            blank_card, identity_check="ref", text_pin=PINS[PinKind.TEXT],
            sign_password=PINS[PinKind.SIGN])
    result = Counter(db, operator=OPERATOR, center=center).update_card(
        blank_card, identity_check="ref", text_pin=PINS[PinKind.TEXT],
        sign_password=PINS[PinKind.SIGN])
    with PcscTransport(blank_card) as t:
        text = TextClient(t)
        text.verify_pin(PINS[PinKind.TEXT])
        assert text.basic_four().name == moved.name
        jpki = JpkiClient(t)
        jpki.verify_pin(Key.SIGN, PINS[PinKind.SIGN])
        on_card = jpki.read_certificate(CertKind.SIGN)
        key = jpki.public_key(Key.SIGN)
    assert on_card.public_key() == key
    assert center.store.get(on_card.serial_number).status.value == "good"
    signing = [r for r in center.store.by_holder(person.resident_code)
               if r.profile == "signing"]
    assert [r.serial for r in signing if r.status.value == "good"] == [on_card.serial_number]
    assert old_sign is not None
    assert center.store.get(old_sign).reason == x509.ReasonFlags.affiliation_changed
    if step == "new_signing_recorded":
        assert result.detail["repaired_interrupted_update"] is True
    assert result.detail["new_signing_certificate"] == format(on_card.serial_number, "x")
