"""Emigrants and numbers, at the counter and through 附票ネット, on real emulated cards,
SoftHSM2 and both databases: a holder known only from a 附票 (born abroad) is a record of
the registry view, gets a card whose signing certificate carries the 附票 facts, and
附票ネット notices keep the record current; emigration without continued use and a
foreign national's emigration lapse the card (6.6); a changed My Number lapses the card
(4.8(6)); a renewed period of stay extends a foreign resident's card (4.4)."""

from __future__ import annotations

import dataclasses
import json
from datetime import date, timedelta

import pytest
from cryptography import x509
from workflow_support import OPERATOR, PINS, app_state, apply, resident

from issuance.counter.life import CardLife
from issuance.notices.certificates import CertificateGateway
from issuance.notices.intake import NoticeIntake
from issuance.notices.processor import NoticeProcessor
from issuance.registry.checkdigits import complete_my_number
from issuance.registry.dates import japan_date, utc_now
from issuance.registry.model import FuhyoEntry, Nationality, ResidentStatus
from issuance.registry.store import ResidentStore
from issuance.storage import Database
from issuance.workflow.activate import Activator
from issuance.workflow.center import Center
from issuance.workflow.issue import Issuer
from issuance.workflow.machine import Refused
from pki.profiles import identity_from_certificate

pytestmark = pytest.mark.personalises


def test_a_holder_known_only_from_a_fuhyo_gets_a_card_and_fuhyo_notices_keep_it_current(
        db: Database, center: Center, blank_card: str) -> None:
    abroad = "ブラジル連邦共和国 サンパウロ州"
    born_abroad = dataclasses.replace(
        resident(30), address=abroad, status=ResidentStatus.EMIGRATED, status_date=None,
        fuhyo=FuhyoEntry("011002", abroad, False))
    app = apply(db, born_abroad)
    result = Issuer(db, center, operator=OPERATOR).issue(app, blank_card)
    assert result.sign_serial is not None
    cert = center.store.get(result.sign_serial).certificate()
    assert identity_from_certificate(cert).address == f"{abroad}（附票管理市町村 01100）"
    notice = {"id": "F-1", "source": "fuhyo", "kind": "name_change",
              "resident_code": born_abroad.resident_code,
              # the notice's day in Japan, as the registry dates it (the certificate was
              # issued today JST; the UTC date is a day behind from 15:00 UTC)
              "effective_date": japan_date(utc_now()).isoformat(),
              "facts": {"name": "新名 太郎"}}
    NoticeIntake(db).accept_lines([json.dumps(notice, ensure_ascii=False)])
    assert NoticeProcessor(db, CertificateGateway(center.store)).process().applied == 1
    current = ResidentStore(db).get(born_abroad.resident_code)
    assert current is not None and current.name == "新名 太郎"
    assert current.status is ResidentStatus.EMIGRATED and current.fuhyo is not None
    rec = center.store.get(result.sign_serial)
    assert rec.status.value == "revoked" and rec.reason == x509.ReasonFlags.affiliation_changed


def _active(db: Database, center: Center, reader: str, **changes: object) -> tuple[str, str]:
    person = dataclasses.replace(resident(40), **changes)  # type: ignore[arg-type]
    app = apply(db, person)
    Issuer(db, center, operator=OPERATOR).issue(app, reader)
    Activator(db, operator=OPERATOR).activate(reader, PINS.__getitem__)
    return app, person.resident_code


def test_emigration_without_continued_use_lapses_the_card(
        db: Database, center: Center, blank_card: str) -> None:
    app, code = _active(db, center, blank_card)
    life = CardLife(db, operator=OPERATOR, center=center)
    gone = life.emigrate(resident_code=code, on=date.today(), continued_use=False,
                         identity_check="passport 1", address_abroad="大韓民国 ソウル特別市")
    assert len(gone.detail["revoked"]) == 2 and app_state(db, app) == "abolished"
    person = ResidentStore(db).get(code)
    assert person is not None and person.status is ResidentStatus.EMIGRATED
    assert person.fuhyo is not None and not person.fuhyo.continued_use


def test_a_foreign_nationals_card_cannot_continue_abroad(
        db: Database, center: Center, blank_card: str) -> None:
    app, code = _active(db, center, blank_card, nationality=Nationality.FOREIGN,
                        residence_expiry=date.today() + timedelta(days=900))
    life = CardLife(db, operator=OPERATOR, center=center)
    with pytest.raises(Refused) as err:
        life.emigrate(resident_code=code, on=date.today(), continued_use=True,
                      identity_check="residence card 1", reader=blank_card, text_pin="2581")
    assert err.value.rule == "6.6" and app_state(db, app) == "activated"
    life.emigrate(resident_code=code, on=date.today(), continued_use=False,
                  identity_check="residence card 1")
    assert app_state(db, app) == "abolished"


def test_a_renewed_stay_extends_the_card_and_a_new_number_lapses_it(
        db: Database, center: Center, blank_card: str) -> None:
    end = date.today() + timedelta(days=400)
    app, code = _active(db, center, blank_card, nationality=Nationality.FOREIGN,
                        residence_expiry=end)
    life = CardLife(db, operator=OPERATOR, center=center)
    with pytest.raises(Refused) as err:
        life.extend_stay(resident_code=code, until=end, identity_check="residence card 2")
    assert err.value.rule == "4.4"
    longer = life.extend_stay(resident_code=code, until=end + timedelta(days=1095),
                              identity_check="residence card 2")
    assert longer.detail["old_card_expiry"] == end.isoformat()
    assert longer.detail["card_expiry"] == (end + timedelta(days=1095)).isoformat()
    person = ResidentStore(db).get(code)
    assert person is not None and person.residence_expiry == end + timedelta(days=1095)
    new_number = complete_my_number("98765432101")
    lapsed = life.number_changed(resident_code=code, identity_check="residence card 2",
                                 new_my_number=new_number)
    assert len(lapsed.detail["revoked"]) == 2 and app_state(db, app) == "abolished"
    person = ResidentStore(db).get(code)
    assert person is not None and person.my_number == new_number


def test_coming_back_with_a_continued_use_card_is_the_domestic_procedure(
        db: Database, center: Center, blank_card: str) -> None:
    from card.text import TextClient
    from card.transport import PcscTransport
    from issuance.applications.express import ExpressReason
    from issuance.applications.intake import take_application
    from issuance.applications.rules import ApplicationRequest
    from issuance.personalisation.pins import PinKind

    app, code = _active(db, center, blank_card)
    life = CardLife(db, operator=OPERATOR, center=center)
    life.emigrate(resident_code=code, on=date.today(), continued_use=True,
                  identity_check="passport 5", address_abroad="カナダ トロント",
                  reader=blank_card, text_pin=PINS[PinKind.TEXT])
    away = ResidentStore(db).get(code)
    assert away is not None and away.fuhyo is not None and away.fuhyo.continued_use
    home = "北海道札幌市中央区北1条西2丁目"
    ResidentStore(db).put(dataclasses.replace(away, status=ResidentStatus.RESIDENT,
                                              status_date=date.today(), address=home))
    refused = take_application(db, ApplicationRequest(
        resident_code=code, express=ExpressReason.ARRIVAL_FROM_ABROAD,
        event_date=date.today()), operator=OPERATOR)
    assert refused.refusal is not None and refused.refusal.rule == "4.11"
    back = life.update_card(blank_card, identity_check="passport 5",
                            text_pin=PINS[PinKind.TEXT], sign_password=None)
    assert back.detail["changed"] == ["address"]
    with PcscTransport(blank_card) as t:
        text = TextClient(t)
        text.verify_pin(PINS[PinKind.TEXT])
        assert text.basic_four().address == home
    issued = life.certify(blank_card, identity_check="passport 5", pins=PINS.__getitem__)
    cert = center.store.get(int(issued.detail["issued"]["signing"], 16)).certificate()
    assert identity_from_certificate(cert).address == home
    assert app_state(db, app) == "activated"


def test_an_emigration_at_the_counter_keeps_a_name_a_notice_set_meanwhile(
        db: Database, center: Center, blank_card: str,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The counter reads the resident, revokes in the certificate store, then records the
    emigration; a name-change notice applied in between must survive (the whole row read
    before was once written back over it)."""
    from issuance.registry.store import update_residents

    app, code = _active(db, center, blank_card)
    revoke = center.store.revoke

    def revoke_while_a_notice_lands(*args: object, **kwargs: object) -> bool:
        before = ResidentStore(db).get(code)
        assert before is not None
        if before.name != "新名 花子":
            with db.transaction() as tx:
                update_residents(tx, [(before, dataclasses.replace(before, name="新名 花子"))])
        return revoke(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(center.store, "revoke", revoke_while_a_notice_lands)
    CardLife(db, operator=OPERATOR, center=center).emigrate(
        resident_code=code, on=date.today(), continued_use=False, identity_check="passport 2",
        address_abroad="大韓民国 ソウル特別市")
    person = ResidentStore(db).get(code)
    assert person is not None
    assert person.status is ResidentStatus.EMIGRATED
    assert person.name == "新名 花子"
