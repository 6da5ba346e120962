"""A card's life after the first issue, at the counter: certificate renewal (rules 1.5–1.7),
certificates issued again onto the card the holder has (after a revocation request, a
found card, or for an emigrant on the 附票 facts), the holder's revocation request
(失効申請), the card's return (返納), a card found after a loss, and cancelling or
refusing an application before its card is handed over.

Each is one command with one audit entry (a refusal too), naming its rule. New
certificates are always on new keys the card generates and proves its own (key
attestation, as at issue); the certificate they replace is revoked (superseded, or
earlier for its own reason) and linked to the new one (証明書新旧紐付け, rule 5.7) in the
certificate store and in `certificate_links`. Run again after an interruption, a renewal
or a re-issue revokes (unspecified: 交付前に破棄) a successor the interrupted run had the
CA issue but never recorded, and issues again.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, time
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from card import contract, formats
from card.attestation import AttestationFailed
from card.issuer import IssuerClient
from card.jpki import JpkiClient, Key
from card.transport import Transport
from issuance.applications.rules import (
    CARD_IN_HAND,
    IN_PROGRESS,
    State,
    card_expiry,
    signing_certificate_refusal,
)
from issuance.applications.store import Application, applications_of, get_application
from issuance.counter.operations import Counter, CounterResult, _check_reference, _open, _verify
from issuance.notices.rules import CONTINUED_USE_START, JST
from issuance.personalisation.pins import PinKind
from issuance.personalisation.profile import identity_of
from issuance.registry.checkdigits import is_valid_my_number
from issuance.registry.dates import japan_date
from issuance.registry.model import FuhyoEntry, Nationality, Resident, ResidentStatus
from issuance.registry.store import get_resident, update_residents
from issuance.workflow import records
from issuance.workflow.center import ca_evidence
from issuance.workflow.machine import Refused, stamp, transition

SIGNING = "signing"
USER_AUTH = "user_authentication"
RENEWAL_MONTHS = 3  # rule 1.7: renewal from three months before expiry

PinSupplier = Callable[[PinKind], str]


@dataclass(frozen=True)
class _Kind:
    name: str
    key: Key
    pin: PinKind
    key_fid: int
    cert_fid: int


KINDS = {
    USER_AUTH: _Kind(USER_AUTH, Key.AUTH, PinKind.AUTH, contract.JPKI_AUTH_KEY,
                     contract.JPKI_AUTH_CERT),
    SIGNING: _Kind(SIGNING, Key.SIGN, PinKind.SIGN, contract.JPKI_SIGN_KEY,
                   contract.JPKI_SIGN_CERT),
}


def months_before(day: date, months: int) -> date:
    """The same day `months` earlier (the month's last day when it has no such day)."""
    month, year = day.month - months, day.year
    while month < 1:
        month, year = month + 12, year - 1
    for d in range(day.day, 0, -1):
        try:
            return date(year, month, d)
        except ValueError:
            continue
    raise AssertionError("unreachable")


class CardLife(Counter):
    """The counter's operations on a card's certificates and its application's end."""

    # -- renewal and certificates issued again -------------------------------------------
    def renew(self, reader: str, *, identity_check: str | None, pins: PinSupplier,
              transport: Transport | None = None) -> CounterResult:
        """Renew the card's current certificates (rule 1.7: from three months before the
        earliest one expires): new keys on the card, new certificates (to the 6th
        birthday when renewed within those months, rules 1.5/1.6), the old ones revoked
        as superseded and linked to the new ones."""
        def run() -> CounterResult:
            ref = _check_reference(identity_check)
            with _open(reader, transport) as t:
                client = IssuerClient(t)
                serial = client.serial()
                _card, app = self._card_app(serial)
                resident = self._resident(app)
                with self.db.transaction() as tx:
                    current = records.certificates_of(tx, app.id, "current")
                if not current:
                    raise _refused("1.7", app.id, f"card {serial} has no current certificate "
                                                  "to renew; issue new ones with `mynacard "
                                                  "card certify`")
                today = japan_date(self.clock())
                ends = {c.kind: self._center().store.get(c.serial).not_after for c in current}
                first_end = min(japan_date(e) for e in ends.values())
                opens = months_before(first_end, RENEWAL_MONTHS)
                if today < opens:
                    raise _refused("1.7", app.id, f"renewal starts three months before "
                                                  f"expiry: the certificates expire on "
                                                  f"{first_end}, renewal opens on {opens}")
                kinds = [k for k in (USER_AUTH, SIGNING) if k in ends]
                issued = self._certify(t, client, app, serial, resident, kinds, pins,
                                       {c.kind: c for c in current}, reason="renewal")
            detail = self._detail(serial, ref, issued, current)
            self._audit("certificates.renew", app.id, "ok", detail)
            return CounterResult("certificates.renew", app.id, serial, detail)

        return self._guard("certificates.renew", reader, run)

    def certify(self, reader: str, *, identity_check: str | None, pins: PinSupplier,
                transport: Transport | None = None) -> CounterResult:
        """Issue certificates again onto the card the holder has, without a new card:
        after a revocation request (失効申請), for a found card, or for an emigrant (the
        signing certificate from the 附票 facts, rule 1.4). Certificates still current
        are replaced (superseded); those revoked earlier are linked to the new ones."""
        def run() -> CounterResult:
            ref = _check_reference(identity_check)
            with _open(reader, transport) as t:
                client = IssuerClient(t)
                serial = client.serial()
                _card, app = self._card_app(serial)
                resident = self._resident(app)
                current, previous = self._latest_certificates(app.id, serial)
                kinds = self._wanted_kinds(app, resident)
                if not kinds:
                    raise _refused("C10", app.id, f"application {app.id} declined the "
                                                  "certificates (rule 1.1): nothing to issue")
                issued = self._certify(t, client, app, serial, resident, kinds, pins,
                                       previous, reason="reissue")
            detail = self._detail(serial, ref, issued, current)
            self._audit("certificates.issue", app.id, "ok", detail)
            return CounterResult("certificates.issue", app.id, serial, detail)

        return self._guard("certificates.issue", reader, run)

    def _resident(self, app: Application) -> Resident:
        with self.db.transaction() as tx:
            resident = get_resident(tx, app.resident_code)
        if resident is None:
            raise Refused("I1", f"resident {app.resident_code} is not in the registry")
        return resident

    def _latest_certificates(self, application_id: str, card_serial: str
                             ) -> tuple[list[records.IssuedCert], dict[str, records.IssuedCert]]:
        """(the current certificates, the latest certificate of each kind on this card)."""
        with self.db.transaction() as tx:
            mine = [c for c in records.certificates_of(tx, application_id)
                    if c.card_serial == card_serial and c.status != "spoiled"]
        latest: dict[str, records.IssuedCert] = {}
        for cert in mine:  # oldest first: the last of each kind wins
            latest[cert.kind] = cert
        return [c for c in mine if c.status == "current"], latest

    def _wanted_kinds(self, app: Application, resident: Resident) -> list[str]:
        kinds = []
        if app.user_certificate:
            kinds.append(USER_AUTH)
            if app.signing_certificate and signing_certificate_refusal(
                    resident, japan_date(self.clock())) is None:
                kinds.append(SIGNING)
        return kinds

    def _certify(self, t: Transport, client: IssuerClient, app: Application, card_serial: str,
                 resident: Resident, kinds: list[str], pins: PinSupplier,
                 previous: dict[str, records.IssuedCert], *, reason: str) -> dict[str, int]:
        """New keys on the card, attested, certified, recorded, linked and written."""
        center = self._center()
        store = center.store
        jpki = JpkiClient(t)
        values = {k: pins(KINDS[k].pin) for k in kinds}
        for kind in kinds:  # the holder's PINs first: a wrong one changes nothing
            _verify(_pin_check(jpki, KINDS[kind].key, values[kind]),
                    f"the holder's {kind.replace('_', '-')} PIN")
        expiry = formats.parse_yyyymmdd(client.get_data(contract.Tag.EXPIRY))
        client.authenticate(center.authenticator)
        issued: dict[str, int] = {}
        auth_after = None
        if USER_AUTH not in kinds:
            with self.db.transaction() as tx:
                auth = next((c for c in records.certificates_of(tx, app.id, "current")
                             if c.kind == USER_AUTH), None)
            auth_after = store.get(auth.serial).not_after if auth else None
        for kind in kinds:
            spec = KINDS[kind]
            old = previous.get(kind)
            if old is not None:  # a successor an interrupted run issued, never recorded
                self._revoke_unrecorded_successor(app.id, old.serial,
                                                  self.clock().replace(microsecond=0))
            old_record = store.get(old.serial) if old else None
            jpki.verify_pin(spec.key, values[kind])
            public = client.generate_key(spec.key_fid)
            try:
                proof = center.attestation.require(client.key_attestation, serial=card_serial,
                                                   key_fid=spec.key_fid, public_key=public)
            except AttestationFailed as exc:
                self._refuse_unattested(client, app, card_serial, str(exc))
            renewing = old_record.not_after if (old_record and reason == "renewal") else None
            replaces = old.serial if old else None
            if kind == USER_AUTH:
                made = center.ca.issue_user_authentication(
                    public_key=public, identity=identity_of(resident),
                    holder_id=resident.resident_code, card_expiry=expiry, renewing=renewing,
                    replaces=replaces, evidence=ca_evidence(proof))
                auth_after = made.certificate.not_valid_after_utc
            else:
                made = center.ca.issue_signing(
                    public_key=public, identity=identity_of(resident),
                    holder_id=resident.resident_code, card_expiry=expiry,
                    adult_ward=resident.adult_ward, user_certificate_not_after=auth_after,
                    renewing=renewing, replaces=replaces, evidence=ca_evidence(proof))
            self.on_step(f"{kind}_issued")
            now = self.clock()
            with self.db.transaction() as tx:
                records.add_certificate(tx, made.serial, application_id=app.id,
                                        card_serial=card_serial, kind=kind, now=stamp(now))
                if old is not None:
                    if old.status == "current":
                        records.set_certificate_status(tx, old.serial, "replaced",
                                                       now=stamp(now))
                    records.link_certificates(tx, old.serial, made.serial, kind=kind,
                                              resident_code=resident.resident_code,
                                              reason=reason, now=stamp(now))
            der = made.certificate.public_bytes(Encoding.DER)
            old_len = len(old_record.der) if old_record else 0
            jpki.verify_pin(spec.key, values[kind])
            client.write_file(contract.JPKI, spec.cert_fid,
                              der + b"\xff" * max(0, old_len - len(der)))
            issued[kind] = made.serial
            self.progress(f"{kind.replace('_', '-')} certificate {made.serial:x} issued on a "
                          "new key the card generated and proved"
                          + (f", linked to {old.serial_hex}" if old else ""))
        client.write_file(contract.JPKI, contract.JPKI_CERT_AVAILABILITY,
                          formats.cert_availability_file(sign=SIGNING in kinds
                                                         or self._has_current(app, SIGNING),
                                                         auth=True))
        return issued

    def _has_current(self, app: Application, kind: str) -> bool:
        with self.db.transaction() as tx:
            return any(c.kind == kind for c in records.certificates_of(tx, app.id, "current"))

    @staticmethod
    def _detail(serial: str, ref: str, issued: dict[str, int],
                replaced: list[records.IssuedCert]) -> dict[str, Any]:
        return {"card_serial": serial, "identity_check": ref,
                "issued": {k: format(v, "x") for k, v in issued.items()},
                "replaced": [c.serial_hex for c in replaced if c.kind in issued]}

    # -- revocation request, return, found card ------------------------------------------
    def revoke_certificates(self, *, application_id: str | None = None,
                            resident_code: str | None = None,
                            identity_check: str | None = None) -> CounterResult:
        """The holder's revocation request (失効申請, rule 2a): both certificates revoked
        (cessationOfOperation: no longer needed); the card stays the holder's."""
        subject = application_id or resident_code or "?"

        def run() -> CounterResult:
            ref = _check_reference(identity_check)
            app = self._in_hand(application_id, resident_code)
            revoked = self._revoke_current(app, "the holder's revocation request (失効申請)")
            if not revoked:
                raise Refused("C10", f"application {app.id} has no current certificate")
            with self.db.transaction() as tx:
                card = records.live_card_of(tx, app.id)
            card_serial = card.serial if card else None
            detail: dict[str, Any] = {"card_serial": card_serial, "identity_check": ref,
                                      "revoked": revoked}
            self._audit("certificates.revoke", app.id, "ok", detail)
            return CounterResult("certificates.revoke", app.id, card_serial, detail)

        return self._guard("certificates.revoke", subject, run)

    def return_card(self, *, application_id: str | None = None,
                    resident_code: str | None = None,
                    identity_check: str | None = None) -> CounterResult:
        """The holder returns the card (返納): its certificates revoked
        (cessationOfOperation), the card and the application returned."""
        subject = application_id or resident_code or "?"

        def run() -> CounterResult:
            ref = _check_reference(identity_check)
            app = self._in_hand(application_id, resident_code)
            revoked = self._revoke_current(app, "card returned (返納)")
            now = self.clock()
            with self.db.transaction() as tx:
                card = records.live_card_of(tx, app.id)
                card_serial = card.serial if card else None
                detail: dict[str, Any] = {"card_serial": card_serial,
                                          "identity_check": ref, "revoked": revoked}
                transition(tx, app.id, State.RETURNED, operator=self.operator,
                           action="card.return", at=now, detail=detail)
                if card is not None:
                    records.put_card(tx, card.serial, app.id, "returned", now=stamp(now))
            self.progress(f"application {app.id}: card returned; {len(revoked)} "
                          "certificate(s) revoked")
            return CounterResult("card.return", app.id, card_serial, detail)

        return self._guard("card.return", subject, run)

    def card_found(self, reader: str, *, identity_check: str | None, pins: PinSupplier,
                   transport: Transport | None = None) -> CounterResult:
        """A card reported lost is back (rule 2a): certificates still on hold are revoked
        (a hold is never released), new certificates are issued on new keys, and the
        card and its application are the holder's again."""
        def run() -> CounterResult:
            ref = _check_reference(identity_check)
            with _open(reader, transport) as t:
                client = IssuerClient(t)
                serial = client.serial()
                with self.db.transaction() as tx:
                    card = records.get_card(tx, serial)
                    app = get_application(tx, card.application_id) if card else None
                    others = applications_of(tx, app.resident_code) if app else []
                if card is None or app is None:
                    raise Refused("W5", f"card {serial} was not issued by this center")
                if app.state is not State.LOST or card.state != "lost":
                    exc = Refused("C9", f"card {serial} is {card.state} (application "
                                        f"{app.id} {app.state.value}): only a card reported "
                                        "lost can be found")
                    exc.subject = app.id  # type: ignore[attr-defined]
                    raise exc
                newer = [a.id for a in others if a.id != app.id
                         and a.state in IN_PROGRESS | CARD_IN_HAND]
                if newer:
                    exc = Refused("C9", f"the holder already has application(s) "
                                        f"{', '.join(newer)} for a new card: cancel it "
                                        "(`mynacard application cancel`) or return that card "
                                        "first")
                    exc.subject = app.id  # type: ignore[attr-defined]
                    raise exc
                with self.db.transaction() as tx:
                    held = self._held(records.certificates_of(tx, app.id, "current"))
                revoked = self._revoke_held(app, held, "card found") if held else []
                now = self.clock()
                with self.db.transaction() as tx:
                    transition(tx, app.id, State.ACTIVATED, operator=self.operator,
                               action="card.found", at=now,
                               detail={"card_serial": serial, "identity_check": ref,
                                       "revoked": revoked})
                    records.put_card(tx, serial, app.id, "active", now=stamp(now))
                resident = self._resident(app)
                _current, previous = self._latest_certificates(app.id, serial)
                kinds = self._wanted_kinds(app, resident)
                issued = self._certify(t, client, app, serial, resident, kinds, pins,
                                       previous, reason="reissue") if kinds else {}
            detail = {"card_serial": serial, "identity_check": ref, "revoked": revoked,
                      "issued": {k: format(v, "x") for k, v in issued.items()}}
            self._audit("certificates.issue", app.id, "ok", detail)
            return CounterResult("card.found", app.id, serial, detail)

        return self._guard("card.found", reader, run)

    def _in_hand(self, application_id: str | None, resident_code: str | None) -> Application:
        app = self._holder_application(application_id, resident_code)
        if app.state not in CARD_IN_HAND:
            exc = Refused("C2", f"application {app.id} is {app.state.value}: its card is not "
                                "in the holder's hands")
            exc.subject = app.id  # type: ignore[attr-defined]
            raise exc
        return app

    def _revoke_current(self, app: Application, why: str) -> list[str]:
        store = self._center().store
        now = self.clock().replace(microsecond=0)
        with self.db.transaction() as tx:
            certs = records.certificates_of(tx, app.id, "current")
        done = [c.serial_hex for c in certs
                if store.revoke(c.serial, reason=x509.ReasonFlags.cessation_of_operation,
                                cause=f"{why} ({app.id})", at=now)]
        with self.db.transaction() as tx:
            for cert in certs:
                records.set_certificate_status(tx, cert.serial, "revoked", now=stamp(now))
        return done

    # -- emigration (国外転出) ---------------------------------------------------------------
    def emigrate(self, *, resident_code: str, on: date, continued_use: bool,
                 identity_check: str | None, address_abroad: str | None = None,
                 fuhyo_municipality: str | None = None, reader: str | None = None,
                 text_pin: str | None = None, transport: Transport | None = None
                 ) -> CounterResult:
        """The holder leaves Japan on `on` (rules 2a, 6.6, 6.7).

        With continued use (継続利用; Japanese nationals, from 2024-05-27): the 附票 entry
        is recorded, the signing certificate lapses on the emigration date
        (cessationOfOperation as of that day), the user-authentication certificate and
        the card stay, and the change (記載事項変更) is written to the card in `reader`
        with the holder's card-info PIN: the address of the text area, the card face and
        the integrity record become the 附票 address. A new signing certificate on the
        附票 facts is then issued with `mynacard card certify`.
        Without continued use, or for a foreign national (6.6): both certificates are
        revoked as of the emigration date and the card lapses (application abolished)."""
        def run() -> CounterResult:
            ref = _check_reference(identity_check)
            app = self._in_hand(None, resident_code)
            resident = self._resident(app)
            foreign = resident.nationality is Nationality.FOREIGN
            if continued_use and foreign:
                raise _refused("6.6", app.id, "continued use needs Japanese nationality (a "
                                              "附票 entry): a foreign national's card lapses on "
                                              "emigration (emigrate without --continued-use)")
            if continued_use and on < CONTINUED_USE_START:
                raise _refused("2a", app.id, f"continued use exists from "
                                             f"{CONTINUED_USE_START}; an emigration on {on} "
                                             "lapses the card")
            if continued_use and (reader is None or text_pin is None):
                raise _refused("C12", app.id, "continued use writes the change to the card: "
                                              "the card in --reader and the holder's "
                                              "card-info input support PIN are needed")
            at = datetime.combine(on, time(0), JST).astimezone(UTC)
            entry = None
            if not foreign:
                entry = FuhyoEntry(fuhyo_municipality or resident.municipality_code,
                                   (address_abroad or "").strip() or None, continued_use)
            moved = replace(resident, status=ResidentStatus.EMIGRATED, status_date=on,
                            fuhyo=entry)
            store = self._center().store
            with self.db.transaction() as tx:
                certs = records.certificates_of(tx, app.id, "current")
            targets = [c for c in certs if c.kind == SIGNING or not continued_use]
            revoked = [c.serial_hex for c in targets
                       if store.revoke(c.serial, reason=x509.ReasonFlags.cessation_of_operation,
                                       cause=f"emigration on {on} ({app.id})", at=at)]
            now = self.clock()
            with self.db.transaction() as tx:
                # only what this step changed: a notice applied since `resident` was
                # read (a new name, say) is kept, not written back over
                update_residents(tx, [(resident, moved)])
                for cert in targets:
                    records.set_certificate_status(tx, cert.serial, "revoked", now=stamp(now))
                card = records.live_card_of(tx, app.id)
                card_serial = card.serial if card else None
                detail: dict[str, Any] = {
                    "card_serial": card_serial, "identity_check": ref,
                    "emigration_date": on.isoformat(), "continued_use": continued_use,
                    "fuhyo_municipality": entry.municipality_code if entry else None,
                    "revoked": revoked}
                if not continued_use:
                    transition(tx, app.id, State.ABOLISHED, operator=self.operator,
                               action="card.emigrate", at=now,
                               detail={**detail, "card": "lapsed"})
                    if card is not None:
                        records.put_card(tx, card.serial, app.id, "abolished",
                                         now=stamp(now), note=f"lapsed on emigration {on}")
            if continued_use:
                assert reader is not None and text_pin is not None
                written = self.update_card(reader, identity_check=ref, text_pin=text_pin,
                                           sign_password=None, transport=transport)
                detail["card_changed"] = written.detail["changed"]
                self._audit("card.emigrate", app.id, "ok", detail)
            self.progress(f"resident {resident_code} emigrated on {on}: "
                          + ("continued use; signing certificate lapsed, the card records the "
                             "附票 address" if continued_use else "the card lapsed"))
            return CounterResult("card.emigrate", app.id, card_serial, detail)

        return self._guard("card.emigrate", resident_code, run)

    # -- a changed number, a longer stay ---------------------------------------------------
    def number_changed(self, *, resident_code: str, identity_check: str | None,
                       new_my_number: str | None = None) -> CounterResult:
        """The My Number (or the 住民票コード) changed: the card lapses (rule 4.8(6)): both
        certificates revoked (cessationOfOperation), the card and its application
        abolished; the new My Number is recorded. A new card follows under express reason
        4.8(6) within 30 days."""
        def run() -> CounterResult:
            ref = _check_reference(identity_check)
            app = self._in_hand(None, resident_code)
            resident = self._resident(app)
            if new_my_number is not None and (not is_valid_my_number(new_my_number)
                                              or new_my_number == resident.my_number):
                raise _refused("4.8(6)", app.id, "the new My Number is not a valid 12-digit "
                                                 "number different from the old one")
            revoked = self._revoke_current(app, "the card lapsed: number changed")
            now = self.clock()
            with self.db.transaction() as tx:
                if new_my_number is not None:
                    update_residents(tx, [(resident, replace(resident,
                                                             my_number=new_my_number))])
                card = records.live_card_of(tx, app.id)
                card_serial = card.serial if card else None
                detail: dict[str, Any] = {"card_serial": card_serial, "identity_check": ref,
                                          "revoked": revoked, "card": "lapsed",
                                          "new_my_number_recorded": new_my_number is not None}
                transition(tx, app.id, State.ABOLISHED, operator=self.operator,
                           action="card.number_changed", at=now, detail=detail)
                if card is not None:
                    records.put_card(tx, card.serial, app.id, "abolished", now=stamp(now),
                                     note="lapsed: My Number or resident code changed")
            return CounterResult("card.number_changed", app.id, card_serial, detail)

        return self._guard("card.number_changed", resident_code, run)

    def extend_stay(self, *, resident_code: str, until: date,
                    identity_check: str | None) -> CounterResult:
        """A foreign resident's period of stay was renewed: the registry records the new
        end and the card's validity follows it (rule 4.4: the card ends no later than
        the stay, and no later than its 10th/5th birthday)."""
        def run() -> CounterResult:
            ref = _check_reference(identity_check)
            app = self._in_hand(None, resident_code)
            resident = self._resident(app)
            if resident.nationality is not Nationality.FOREIGN or \
                    resident.residence_expiry is None:
                raise _refused("4.4", app.id, "only a foreign resident with a period of stay "
                                              "has a card capped at its end")
            if until <= resident.residence_expiry:
                raise _refused("4.4", app.id, f"the new end of stay {until} is not after the "
                                              f"recorded one {resident.residence_expiry}")
            expiry = card_expiry(resident.birth_date, app.applied_on, app.applied_on,
                                 residence_expiry=until)
            now = self.clock()
            with self.db.transaction() as tx:
                update_residents(tx, [(resident, replace(resident, residence_expiry=until))])
                tx.execute("UPDATE applications SET card_expiry = ?, updated_at = ?"
                           " WHERE id = ?", (expiry.isoformat(), stamp(now), app.id))
                card = records.live_card_of(tx, app.id)
            card_serial = card.serial if card else None
            detail: dict[str, Any] = {"card_serial": card_serial, "identity_check": ref,
                                      "old_card_expiry": app.card_expiry.isoformat(),
                                      "card_expiry": expiry.isoformat(),
                                      "residence_expiry": until.isoformat()}
            self._audit("card.extend_stay", app.id, "ok", detail)
            return CounterResult("card.extend_stay", app.id, card_serial, detail)

        return self._guard("card.extend_stay", resident_code, run)

    # -- an application that ends before its card is handed over -------------------------
    def cancel(self, application_id: str, *, why: str, refuse: bool = False) -> CounterResult:
        """Cancel (the applicant withdraws) or refuse (the center refuses: e.g. an
        application form found wanting) an application not yet handed over. A card
        already personalised for it is abolished and its certificates revoked
        (unspecified: 交付前に破棄)."""
        action = "application.refuse" if refuse else "application.cancel"

        def run() -> CounterResult:
            reason = (why or "").strip()
            if not reason or len(reason) > 500 or any(ord(c) < 0x20 for c in reason):
                raise Refused("C11", "say why (--reason TEXT, printable, at most 500 "
                                     "characters)")
            with self.db.transaction() as tx:
                app = get_application(tx, application_id)
            if app is None:
                raise Refused("W1", f"no application {application_id}")
            allowed = (State.APPLIED, State.REGISTERED) if refuse else \
                (State.APPLIED, State.REGISTERED, State.PERSONALISED)
            if app.state not in allowed:
                raise Refused("C11", f"application {app.id} is {app.state.value}: only an "
                                     "application " + ("applied or registered is refused"
                                                       if refuse else "whose card is not "
                                                       "handed over is cancelled"))
            store = self._center().store if app.state is State.PERSONALISED else None
            now = self.clock()
            revoked: list[str] = []
            if store is not None:
                with self.db.transaction() as tx:
                    certs = records.certificates_of(tx, app.id, "current")
                revoked = [c.serial_hex for c in certs
                           if store.revoke(c.serial, reason=x509.ReasonFlags.unspecified,
                                           cause=f"destroyed before delivery: application "
                                                 f"{app.id} cancelled",
                                           at=now.replace(microsecond=0))]
            with self.db.transaction() as tx:
                card = records.live_card_of(tx, app.id)
                card_serial = card.serial if card else None
                detail: dict[str, Any] = {"why": reason, "card_serial": card_serial,
                                          "revoked": revoked}
                transition(tx, app.id, State.REFUSED if refuse else State.CANCELLED,
                           operator=self.operator, action=action, at=now, detail=detail)
                if card is not None:
                    records.put_card(tx, card.serial, app.id, "abolished", now=stamp(now),
                                     note=f"application cancelled: {reason}"[:500])
                for serial in revoked:
                    records.set_certificate_status(tx, int(serial, 16), "spoiled",
                                                   now=stamp(now))
            return CounterResult(action, app.id, card_serial, detail)

        return self._guard(action, application_id, run)


def _refused(rule: str, application_id: str, message: str) -> Refused:
    """A refusal the audit log files under the application (not the reader)."""
    exc = Refused(rule, message)
    exc.subject = application_id  # type: ignore[attr-defined]
    return exc


def _pin_check(jpki: JpkiClient, key: Key, value: str) -> Callable[[], None]:
    return lambda: jpki.verify_pin(key, value)


__all__ = ["CardLife", "months_before"]
