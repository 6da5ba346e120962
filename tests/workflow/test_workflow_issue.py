"""Issuing and activating cards against real emulated cards, SoftHSM2 and SQLite."""

from __future__ import annotations

import pytest
from cryptography import x509
from workflow_support import (
    OPERATOR,
    PINS,
    actions,
    app_state,
    apply,
    card_certificate,
    life_cycle,
    pins,
    resident,
)

from card import contract
from card.contract import LifeCycle
from card.errors import DataNotFound
from card.issuer import IssuerClient
from card.jpki import CertKind, JpkiClient, Key
from card.text import TextClient
from card.transport import PcscTransport
from issuance.applications.express import ExpressReason
from issuance.personalisation.pins import PinKind
from issuance.storage import Database
from issuance.workflow import records
from issuance.workflow.activate import Activator
from issuance.workflow.center import Center
from issuance.workflow.issue import Issuer
from issuance.workflow.machine import Refused
from pki.verify import verify_certificate

pytestmark = pytest.mark.personalises


def _no_pin(kind: PinKind) -> str:
    raise AssertionError(f"the {kind} PIN was asked for")


def test_issue_and_activate_an_adult_card(db: Database, center: Center, blank_card: str) -> None:
    person = resident(40)
    app = apply(db, person)
    steps: list[str] = []
    result = Issuer(db, center, operator=OPERATOR, on_step=steps.append).issue(app, blank_card)
    assert steps == ["bound", "keys_generated", "certificates_issued", "certificates_recorded",
                     "card_written", "card_locked", "done"]
    assert result.card_serial == blank_card.serial  # type: ignore[attr-defined]
    assert result.life_cycle == "issued" and app_state(db, app) == "personalised"
    assert life_cycle(blank_card) == LifeCycle.ISSUED

    # the certificates are in the store, good, for the holder, and on the card
    assert result.sign_serial and result.auth_serial
    for serial, profile in ((result.sign_serial, "signing"),
                            (result.auth_serial, "user-authentication")):
        rec = center.store.get(serial)
        assert rec.status.value == "good" and rec.holder_id == person.resident_code
        assert rec.profile.replace("_", "-") == profile
    done = Activator(db, operator=OPERATOR).activate(blank_card, pins)
    on_card = card_certificate(blank_card, "auth")
    assert on_card.serial_number == result.auth_serial
    roots = [h.root_cert for h in center.ca.config.hierarchies.values()]
    assert verify_certificate(on_card, roots=roots, check_revocation=False).valid

    assert done.pins_set == ["auth", "sign", "text", "juki"]
    assert app_state(db, app) == "activated" and life_cycle(blank_card) == LifeCycle.ACTIVE
    with db.transaction() as tx:
        assert records.get_card(tx, result.card_serial).state == "active"  # type: ignore

    # what the registry said is on the card, with an integrity record signed in the HSM
    with PcscTransport(blank_card) as t:
        text = TextClient(t)
        text.verify_pin(PINS[PinKind.TEXT])
        assert text.my_number() == person.my_number
        facts = text.basic_four()
        assert (facts.name, facts.address, facts.birth_date) == (
            person.name, person.address, person.birth_date)
        check = text.check_integrity(center.integrity_signer.public_key())
        assert check.ok and check.signature_ok
        jpki = JpkiClient(t)
        jpki.verify_pin(Key.SIGN, PINS[PinKind.SIGN])
        sign_cert = jpki.read_certificate(CertKind.SIGN)
        assert sign_cert.serial_number == result.sign_serial
        assert jpki.public_key(Key.SIGN) == sign_cert.public_key()

    assert actions(db, app) == [
        ("application.register", "ok"),
        ("issue.bind", "ok"), ("issue", "ok"), ("handover", "ok"), ("activate", "ok")]


def test_issuing_twice_is_refused(db: Database, center: Center, blank_card: str,
                                  mynacard_emulator: object) -> None:
    app = apply(db, resident(30))
    Issuer(db, center, operator=OPERATOR).issue(app, blank_card)
    with pytest.raises(Refused) as err:
        Issuer(db, center, operator=OPERATOR).issue(app, blank_card)
    assert err.value.rule == "W1" and "personalised" in err.value.message
    assert actions(db, app)[-1] == ("issue", "refused")


def test_personalising_a_non_blank_card_is_refused(db: Database, center: Center,
                                                   sample_card: str) -> None:
    app = apply(db, resident(30))
    with pytest.raises(Refused) as err:
        Issuer(db, center, operator=OPERATOR).issue(app, sample_card)
    assert err.value.rule == "W2" and "not blank" in err.value.message
    assert app_state(db, app) == "applied"
    assert life_cycle(sample_card) == LifeCycle.ACTIVE
    assert actions(db, app)[-1] == ("issue", "refused")


def test_activating_before_hand_over_is_refused(db: Database, center: Center,
                                                blank_card: str) -> None:
    app = apply(db, resident(30))

    def stop(step: str) -> None:
        if step == "card_written":
            raise RuntimeError("interrupted")

    with pytest.raises(RuntimeError):
        Issuer(db, center, operator=OPERATOR, on_step=stop).issue(app, blank_card)
    assert app_state(db, app) == "registered"
    with pytest.raises(Refused) as err:
        Activator(db, operator=OPERATOR).activate(blank_card, pins)
    assert err.value.rule == "W5"
    assert ("activate", "refused") in actions(db)
    assert life_cycle(blank_card) == LifeCycle.PERSONALISED


def test_activating_twice_is_refused(db: Database, center: Center, blank_card: str) -> None:
    app = apply(db, resident(30))
    Issuer(db, center, operator=OPERATOR).issue(app, blank_card)
    Activator(db, operator=OPERATOR).activate(blank_card, pins)
    with pytest.raises(Refused) as err:
        Activator(db, operator=OPERATOR).activate(blank_card, pins)
    assert err.value.rule == "W1" and "activated" in err.value.message


def test_under_15_card_has_no_signing_key_and_no_signing_password(
        db: Database, center: Center, blank_card: str) -> None:
    app = apply(db, resident(12))
    result = Issuer(db, center, operator=OPERATOR).issue(app, blank_card)
    assert result.sign_serial is None and result.auth_serial is not None

    def no_sign(kind: PinKind) -> str:
        assert kind is not PinKind.SIGN
        return pins(kind)

    done = Activator(db, operator=OPERATOR).activate(blank_card, no_sign)
    assert done.pins_set == ["auth", "text", "juki"]
    with PcscTransport(blank_card) as t:
        assert JpkiClient(t).cert_availability().sign is False
        with pytest.raises(DataNotFound):
            IssuerClient(t).read_public_key(contract.JPKI_SIGN_KEY)


def test_adult_ward_and_declined_signing_get_no_signing_certificate(
        db: Database, center: Center, blank_card: str) -> None:
    app = apply(db, resident(50, adult_ward=True))
    result = Issuer(db, center, operator=OPERATOR).issue(app, blank_card)
    assert result.sign_serial is None and result.auth_serial is not None


def test_no_certificates_at_all(db: Database, center: Center, blank_card: str) -> None:
    app = apply(db, resident(45))
    result = Issuer(db, center, operator=OPERATOR).issue(app, blank_card, certificates=False)
    assert result.sign_serial is None and result.auth_serial is None

    def text_and_juki(kind: PinKind) -> str:
        assert kind in (PinKind.TEXT, PinKind.JUKI)
        return pins(kind)

    done = Activator(db, operator=OPERATOR).activate(blank_card, text_and_juki)
    assert done.pins_set == ["text", "juki"]
    with db.transaction() as tx:
        assert records.certificates_of(tx, app) == []


def test_express_issuance_sets_the_applicants_pins(db: Database, center: Center,
                                                   blank_card: str) -> None:
    from issuance.personalisation.pins import holder_pins

    baby = resident(0, months=3)
    app = apply(db, baby, express=ExpressReason.UNDER_ONE)
    express_pins = holder_pins({k: v for k, v in PINS.items() if k is not PinKind.SIGN})
    result = Issuer(db, center, operator=OPERATOR).issue(app, blank_card,
                                                         holder_pins=express_pins)
    assert result.life_cycle == "active" and result.sign_serial is None
    done = Activator(db, operator=OPERATOR).activate(blank_card, _no_pin)
    assert done.pins_set == [] and app_state(db, app) == "activated"


def test_express_pins_are_refused_without_express(db: Database, center: Center,
                                                  blank_card: str) -> None:
    from issuance.personalisation.pins import holder_pins

    app = apply(db, resident(33))
    with pytest.raises(Refused) as err:
        Issuer(db, center, operator=OPERATOR).issue(app, blank_card,
                                                    holder_pins=holder_pins(dict(PINS)))
    assert err.value.rule == "W6"


def test_a_badly_formed_pin_is_refused_before_the_card_is_touched(
        db: Database, center: Center, blank_card: str) -> None:
    app = apply(db, resident(33))
    Issuer(db, center, operator=OPERATOR).issue(app, blank_card)

    def lower_case(kind: PinKind) -> str:
        return "abc123" if kind is PinKind.SIGN else pins(kind)

    with pytest.raises(Refused) as err:
        Activator(db, operator=OPERATOR).activate(blank_card, lower_case)
    assert err.value.rule == "3.1" and "abc123" not in str(err.value)
    with PcscTransport(blank_card) as t:
        status = IssuerClient(t).pin_status()
    assert status.set == frozenset()  # nothing was set
    assert app_state(db, app) == "handed_over"
    Activator(db, operator=OPERATOR).activate(blank_card, pins)
    assert app_state(db, app) == "activated"


def test_certificates_name_the_holder_and_chain_to_the_roots(
        db: Database, center: Center, blank_card: str) -> None:
    person = resident(61)
    app = apply(db, person)
    result = Issuer(db, center, operator=OPERATOR).issue(app, blank_card)
    cert = center.store.get(result.sign_serial).certificate()  # type: ignore[arg-type]
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    values = [n.value for n in san if isinstance(n, x509.OtherName)]
    assert any(person.address.encode() in v for v in values)


def test_a_missing_reader_fails_and_is_recorded(db: Database, center: Center,
                                                mynacard_emulator: object) -> None:
    from card.errors import CardError

    app = apply(db, resident(30))
    with pytest.raises(CardError):
        Issuer(db, center, operator=OPERATOR).issue(app, "No Such Reader 99")
    assert actions(db, app) == [("issue", "failed")] and app_state(db, app) == "applied"
