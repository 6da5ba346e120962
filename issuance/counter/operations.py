"""Counter operations after issue: PIN reset, card update after a move or a name change,
loss report, reissue.

Each operation is one command at the window with one audit entry. The identity check
(本人確認: the documents the operator saw) is confirmed by the operator with a reference
that goes into the audit log; an operation that needs it refuses to run without it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, NoReturn

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from card import contract, formats, images
from card.attestation import AttestationFailed
from card.contract import LifeCycle, Tag
from card.errors import CardError, PinBlocked, PinIncorrect
from card.formats import BasicFour
from card.issuer import IssuerClient, pin_references
from card.jpki import CertKind, JpkiClient, Key
from card.session import area_client
from card.text import TextClient
from card.transport import PcscTransport, Transport
from hsm import HsmError
from issuance.applications.express import ExpressReason
from issuance.applications.intake import IntakeResult, take_application
from issuance.applications.rules import ApplicationRequest, State
from issuance.applications.store import Application, applications_of, get_application
from issuance.audit.log import append_entry
from issuance.personalisation.pins import PIN_KINDS, PinKind, check_pin
from issuance.personalisation.profile import identity_of
from issuance.records.substitutions import substitutions_of
from issuance.registry.dates import japan_date, utc_now
from issuance.registry.store import get_resident
from issuance.storage import Database
from issuance.workflow import records
from issuance.workflow.center import Center, ca_evidence
from issuance.workflow.machine import Refused, stamp, transition
from issuance.workflow.migrations import migrate_workflow
from pki.errors import PkiError

Clock = Callable[[], datetime]
HOLDER_STATES = (State.HANDED_OVER, State.ACTIVATED)


@dataclass
class CounterResult:
    action: str
    application_id: str
    card_serial: str | None
    detail: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {"action": self.action, "application_id": self.application_id,
                "card_serial": self.card_serial, **self.detail}


def _check_reference(identity_check: str | None) -> str:
    ref = (identity_check or "").strip()
    if not ref:
        raise Refused("C1", "the holder's identity was not confirmed: pass the reference of "
                            "the identity check (--identity-checked REF)")
    if len(ref) > 200 or any(ord(c) < 0x20 for c in ref):
        raise Refused("C1", "the identity-check reference is not printable text of at most "
                            "200 characters")
    return ref


def identity_reference(identity_check: str | None) -> str:
    """The identity-check reference, checked as every counter operation checks it (rule
    C1): for a caller that must refuse before it starts (the console's hand-over)."""
    return _check_reference(identity_check)


class Counter:
    def __init__(self, db: Database, *, operator: str, center: Center | None = None,
                 clock: Clock = utc_now, progress: Callable[[str], None] | None = None,
                 on_step: Callable[[str], None] | None = None) -> None:
        """`on_step(name)` is called after each durable step of a card update
        (`old_signing_revoked`, `new_signing_issued`, `new_signing_recorded`): a seam for
        tests that interrupt the process there."""
        self.on_step = on_step or (lambda step: None)
        self.db = db
        self.center = center
        self.operator = operator
        self.clock = clock
        self.progress = progress or (lambda message: None)
        migrate_workflow(db)

    # -- shared ---------------------------------------------------------------------------
    def _audit(self, action: str, subject: str, outcome: str, detail: dict[str, Any]) -> None:
        with self.db.transaction() as tx:
            append_entry(tx, operator=self.operator, action=action, subject=subject,
                         outcome=outcome, detail=detail, at=self.clock())

    def _guard(self, action: str, subject: str, run: Callable[[], CounterResult]
               ) -> CounterResult:
        try:
            return run()
        except Refused as exc:
            self._audit(action, getattr(exc, "subject", subject), "refused",
                        {"rule": exc.rule, "reason": exc.message})
            raise
        except (CardError, HsmError, PkiError) as exc:
            self._audit(action, subject, "failed", {"error": type(exc).__name__,
                                                    "message": str(exc)[:500]})
            raise

    def _card_app(self, serial: str) -> tuple[records.CardRow, Application]:
        with self.db.transaction() as tx:
            card = records.get_card(tx, serial)
            app = get_application(tx, card.application_id) if card else None
        if card is None or app is None:
            raise Refused("W5", f"card {serial} was not issued by this center")
        if card.state not in ("issued", "active") or app.state not in HOLDER_STATES:
            exc = Refused("C2", f"card {serial} is {card.state} (application {app.id} "
                                f"{app.state.value}): only a card in the holder's hands is "
                                "served at the counter")
            exc.subject = app.id  # type: ignore[attr-defined]
            raise exc
        return card, app

    def _center(self) -> Center:
        if self.center is None:
            raise Refused("C0", "this operation needs the center's HSM (Center)")
        return self.center

    # -- PIN reset ------------------------------------------------------------------------
    def reset_pin(self, reader: str, kind: PinKind, *, identity_check: str | None,
                  new_pin: str | None, transport: Transport | None = None) -> CounterResult:
        """Reset a (blocked) holder PIN with issuer authentication (rule 3.4): a new value
        chosen by the holder, or only the retry counter when `new_pin` is None."""
        def run() -> CounterResult:
            ref = _check_reference(identity_check)
            if new_pin is not None:
                try:
                    check_pin(kind, new_pin)
                except ValueError as exc:
                    raise Refused("3.1", f"{PIN_KINDS[kind].title}: {exc}") from None
            with _open(reader, transport) as t:
                client = IssuerClient(t)
                serial = client.serial()
                card, app = self._card_app(serial)
                status = client.pin_status()
                spec = PIN_KINDS[kind]
                if spec.bit not in status.required:
                    raise Refused("C3", f"card {serial} has no {spec.title}")
                client.authenticate(self._center().authenticator)
                # the juki PIN is two key references (住基AP, 共通カードAP): reset both
                for area, fid in pin_references(spec.area, spec.fid):
                    client.reset_pin(area, fid, new_pin)
                tries = area_client(t, spec.area).tries_left(spec.fid) \
                    if client.life_cycle() == LifeCycle.ACTIVE else None
            self.progress(f"{spec.title} reset with issuer authentication"
                          + (" (new value set by the holder)" if new_pin else
                             " (retry counter only)"))
            detail = {"card_serial": serial, "pin": kind.value, "identity_check": ref,
                      "new_value": new_pin is not None, "tries_left": tries}
            self._audit("pin.reset", app.id, "ok", detail)
            return CounterResult("pin.reset", app.id, serial, detail)

        return self._guard("pin.reset", reader, run)

    # -- card update after a move or a name change ---------------------------------------
    def update_card(self, reader: str, *, identity_check: str | None, text_pin: str,
                    sign_password: str | None, transport: Transport | None = None
                    ) -> CounterResult:
        """Write the registry's current basic four facts to the card (text area, card
        face, integrity record) with issuer authentication and the holder's area PINs,
        revoke the old signing certificate (affiliationChanged) and issue a new one on a
        new key generated on the card, linked to the old one.

        Re-running after an interruption finishes the job: facts already on the card are
        not written again, a signing certificate revoked but not replaced is replaced (a
        successor issued but never recorded is revoked first), and a recorded new
        certificate that did not reach the card is written."""
        def run() -> CounterResult:
            ref = _check_reference(identity_check)
            center = self._center()
            with _open(reader, transport) as t:
                client = IssuerClient(t)
                serial = client.serial()
                card, app = self._card_app(serial)
                with self.db.transaction() as tx:
                    resident = get_resident(tx, app.resident_code)
                    current = records.certificates_of(tx, app.id, "current")
                if resident is None:
                    raise Refused("I1", f"resident {app.resident_code} is not in the registry")
                old_sign = next((c for c in current if c.kind == "signing"), None)
                if old_sign is not None and sign_password is None:
                    raise Refused("C4", "the card has a signing certificate: the holder's "
                                        "signing password is needed to replace its key")
                # an emigrant's card shows the 附票 address (rule 1.4, `identity_of`)
                new = BasicFour(name=resident.name, address=identity_of(resident).address,
                                birth_date=resident.birth_date, sex=str(int(resident.sex)))
                text = TextClient(t)
                _verify(lambda: text.verify_pin(text_pin), "card-info input support PIN")
                old = text.basic_four()
                changed = [f for f in ("name", "address", "birth_date", "sex")
                           if getattr(old, f) != getattr(new, f)]
                old_bf = text.basic_four_file()
                mn_file = text.my_number_file()
                my_number = formats.parse_my_number_file(mn_file)
                expiry = formats.parse_yyyymmdd(client.get_data(Tag.EXPIRY))
                jpki = JpkiClient(t)
                sign_outdated = repair = False
                if old_sign is not None:
                    assert sign_password is not None
                    _verify(lambda: jpki.verify_pin(Key.SIGN, sign_password), "signing password")
                    record = center.store.get(old_sign.serial)
                    sign_outdated = bool(changed) or record.status.value != "good"
                    on_card = _card_sign_serial(jpki)
                    repair = (not sign_outdated and on_card != old_sign.serial
                              and jpki.public_key(Key.SIGN) == record.certificate().public_key())
                if not changed and not sign_outdated and not repair:
                    raise Refused("C6", f"the card already shows the registry's facts for "
                                        f"{resident.resident_code}: nothing to update")
                # issuer authentication is card-wide; each area's PIN is verified again
                # when the area is selected (selecting another area clears it)
                client.authenticate(center.authenticator)
                if changed:
                    text.verify_pin(text_pin)
                    bf_file = formats.basic_four_file(new)
                    client.write_file(contract.TEXT, contract.TEXT_BASIC_FOUR,
                                      _padded(bf_file, len(old_bf)))
                    client.write_file(contract.TEXT, contract.TEXT_INTEGRITY,
                                      formats.integrity_record(mn_file, bf_file,
                                                               center.integrity_signer))
                    self.progress("card-info input support area: basic four facts and "
                                  "integrity record rewritten")
                    surface = area_client(t, contract.SURFACE)
                    surface.verify(contract.SURFACE_CODE_A,
                                   formats.verification_code_a(my_number))
                    old_face = surface.read_object(contract.SURFACE_FACE)
                    client.write_file(contract.SURFACE, contract.SURFACE_FACE, _padded(
                        formats.rewrite_card_face(
                            old_face, new, expiry, name_image=images.name_image(new.name),
                            address_image=images.address_image(new.address),
                            signer=center.integrity_signer), len(old_face)))
                    self.progress("card surface area: card face rewritten")
                new_serial = None
                if old_sign is not None and (sign_outdated or repair):
                    assert sign_password is not None
                    jpki.verify_pin(Key.SIGN, sign_password)
                    if sign_outdated:
                        new_serial = self._replace_signing(client, app, serial, resident,
                                                           old_sign, current, changed, expiry)
                    else:
                        new_serial = old_sign.serial
                    cert = center.store.get(new_serial).certificate()
                    old_der = center.store.get(old_sign.serial).der
                    jpki.verify_pin(Key.SIGN, sign_password)
                    client.write_file(contract.JPKI, contract.JPKI_SIGN_CERT, _padded(
                        cert.public_bytes(Encoding.DER), len(old_der)))
                    self.progress(f"signing certificate {new_serial:x} written to the card")
            detail = {"card_serial": serial, "identity_check": ref, "changed": changed,
                      "old_signing_certificate": old_sign.serial_hex if old_sign else None,
                      "new_signing_certificate": format(new_serial, "x") if new_serial
                      else None, "repaired_interrupted_update": repair}
            self._audit("card.update", app.id, "ok", detail)
            return CounterResult("card.update", app.id, serial, detail)

        return self._guard("card.update", reader, run)

    def _replace_signing(self, client: IssuerClient, app: Application, card_serial: str,
                         resident: Any, old_sign: records.IssuedCert,
                         current: list[records.IssuedCert], changed: list[str],
                         expiry: Any) -> int:
        center = self._center()
        now = self.clock().replace(microsecond=0)
        center.store.revoke(old_sign.serial, reason=x509.ReasonFlags.affiliation_changed,
                            cause=f"card update: {', '.join(changed) or 'facts'} changed "
                                  f"({app.id})", at=now)
        self._revoke_unrecorded_successor(app.id, old_sign.serial, now)
        self.on_step("old_signing_revoked")
        self.progress(f"old signing certificate {old_sign.serial_hex} revoked "
                      "(affiliationChanged)")
        public = client.generate_key(contract.JPKI_SIGN_KEY)
        try:
            proof = center.attestation.require(client.key_attestation, serial=card_serial,
                                               key_fid=contract.JPKI_SIGN_KEY, public_key=public)
        except AttestationFailed as exc:
            self._refuse_unattested(client, app, card_serial, str(exc))
        auth = next((c for c in current if c.kind == "user_authentication"), None)
        auth_after = center.store.get(auth.serial).not_after if auth else None
        with self.db.transaction() as tx:
            substitutions = substitutions_of(tx, resident.resident_code)
        issued = center.ca.issue_signing(
            public_key=public, identity=identity_of(resident, substitutions),
            holder_id=resident.resident_code,
            card_expiry=expiry, adult_ward=resident.adult_ward,
            user_certificate_not_after=auth_after, replaces=old_sign.serial,
            evidence=ca_evidence(proof))
        self.on_step("new_signing_issued")
        with self.db.transaction() as tx:
            records.add_certificate(tx, issued.serial, application_id=app.id,
                                    card_serial=card_serial, kind="signing", now=stamp(now))
            records.set_certificate_status(tx, old_sign.serial, "replaced", now=stamp(now))
            records.link_certificates(tx, old_sign.serial, issued.serial, kind="signing",
                                      resident_code=resident.resident_code,
                                      reason="card_update", now=stamp(now))
        self.on_step("new_signing_recorded")
        self.progress(f"new signing key generated on the card; certificate {issued.serial:x} "
                      "issued and linked to the old one")
        return issued.serial

    def _refuse_unattested(self, client: IssuerClient, app: Application, card_serial: str,
                           reason: str) -> NoReturn:
        """The card did not prove its new key: nothing certified; audit, terminate, spoil."""
        now = self.clock()
        self._audit("card.attestation", app.id, "refused",
                    {"card_serial": card_serial, "reason": reason[:500]})
        try:
            client.authenticate(self._center().authenticator)
            client.terminate()
        except CardError:
            pass
        with self.db.transaction() as tx:
            records.put_card(tx, card_serial, app.id, "spoiled", now=stamp(now),
                             note=f"key attestation failed at a card update: {reason}"[:500])
        exc = Refused("C8", f"card {card_serial} did not prove that its new signing key was "
                            f"generated on it ({reason}); nothing was certified, the card is "
                            "terminated and marked spoiled: the holder needs a reissue")
        exc.subject = app.id  # type: ignore[attr-defined]
        raise exc

    def _revoke_unrecorded_successor(self, application_id: str, serial: int,
                                     now: datetime) -> None:
        """A successor a crashed update issued but never recorded nor wrote: revoke it."""
        center = self._center()
        successor = center.store.get(serial).successor
        if successor is None:
            return
        with self.db.transaction() as tx:
            known = records.known_serials(tx, [successor])
        if successor not in known:
            center.store.revoke(successor, reason=x509.ReasonFlags.unspecified,
                                cause=f"spoiled before delivery: issued by an interrupted "
                                      f"card update of {application_id}", at=now)

    # -- loss ----------------------------------------------------------------------------
    def report_loss(self, *, application_id: str | None = None,
                    resident_code: str | None = None, hold: bool = False,
                    identity_check: str | None = None) -> CounterResult:
        """A lost card: its certificates held (一時保留, a report by phone) or revoked
        (keyCompromise), the application and the card marked lost, in one step.

        The window's loss report (紛失届) after a phone hold revokes the held certificates
        (hold → revoked, keyCompromise): a hold is never released (rule 2a)."""
        subject = application_id or resident_code or "?"

        def run() -> CounterResult:
            center = self._center()
            app = self._holder_application(application_id, resident_code, lost=True)
            with self.db.transaction() as tx:
                certs = records.certificates_of(tx, app.id, "current")
                card = records.live_card_of(tx, app.id) if app.state is not State.LOST \
                    else next(iter(c for c in records.cards_of(tx, app.id)
                                   if c.state == "lost"), None)
            card_serial = card.serial if card else None
            if app.state is State.LOST:
                held = self._held(certs)
                if hold or not held:
                    exc = Refused("W1", f"application {app.id} is lost already"
                                        + (" and its certificates are on hold" if held else
                                           ": no certificate left to revoke"))
                    exc.subject = app.id  # type: ignore[attr-defined]
                    raise exc
                changed = self._revoke_held(app, held, "loss report at the window")
                detail: dict[str, Any] = {
                    "card_serial": card_serial, "certificates": [c.serial_hex for c in held],
                    "changed": changed, "hold": False, "after_hold": True,
                    "identity_check": (identity_check or "").strip() or None}
                self._audit("card.report_loss", app.id, "ok", detail)
                self.progress(f"application {app.id}: {len(changed)} held certificate(s) "
                              "revoked (keyCompromise)")
                return CounterResult("card.report_loss", app.id, card_serial, detail)
            now = self.clock().replace(microsecond=0)
            changed = []
            for cert in certs:
                if hold:
                    done = center.store.hold(cert.serial, cause=f"loss reported ({app.id})",
                                             at=now)
                else:
                    done = center.store.revoke(cert.serial,
                                               reason=x509.ReasonFlags.key_compromise,
                                               cause=f"card lost ({app.id})", at=now)
                if done:
                    changed.append(cert.serial_hex)
            detail = {"card_serial": card_serial,
                      "certificates": [c.serial_hex for c in certs],
                      "changed": changed, "hold": hold,
                      "identity_check": (identity_check or "").strip() or None}
            with self.db.transaction() as tx:
                transition(tx, app.id, State.LOST, operator=self.operator,
                           action="card.report_loss", at=self.clock(), detail=detail)
                if card is not None:
                    records.put_card(tx, card.serial, app.id, "lost", now=stamp(now))
                if not hold:
                    for cert in certs:
                        records.set_certificate_status(tx, cert.serial, "revoked",
                                                       now=stamp(now))
            self.progress(f"application {app.id} lost; {len(changed)} certificate(s) "
                          f"{'on hold' if hold else 'revoked (keyCompromise)'}")
            return CounterResult("card.report_loss", app.id, card_serial, detail)

        return self._guard("card.report_loss", subject, run)

    def _held(self, certs: list[records.IssuedCert]) -> list[records.IssuedCert]:
        """The certificates among `certs` the store holds on hold (一時保留)."""
        store = self._center().store
        return [c for c in certs if store.get(c.serial).status.value == "hold"]

    def _revoke_held(self, app: Application, held: list[records.IssuedCert],
                     why: str) -> list[str]:
        """Held certificates of a lost card revoked (keyCompromise), never released."""
        store = self._center().store
        now = self.clock().replace(microsecond=0)
        changed = [c.serial_hex for c in held
                   if store.revoke(c.serial, reason=x509.ReasonFlags.key_compromise,
                                   cause=f"card lost: {why} after a hold ({app.id})", at=now)]
        with self.db.transaction() as tx:
            for cert in held:
                records.set_certificate_status(tx, cert.serial, "revoked", now=stamp(now))
        return changed

    def _holder_application(self, application_id: str | None, resident_code: str | None,
                            *, lost: bool = False) -> Application:
        """The application whose card the holder has (`lost`: or reported lost)."""
        allowed = (State.PERSONALISED, *HOLDER_STATES) + ((State.LOST,) if lost else ())
        with self.db.transaction() as tx:
            if application_id:
                app = get_application(tx, application_id)
                if app is None:
                    raise Refused("W1", f"no application {application_id}")
            elif resident_code:
                apps = applications_of(tx, resident_code)
                held = [a for a in apps if a.state in (State.PERSONALISED, *HOLDER_STATES)] \
                    or [a for a in apps if a.state in allowed]
                if not held:
                    raise Refused("C2", f"resident {resident_code} has no card issued")
                app = held[-1]
            else:
                raise Refused("C2", "name the application or the resident")
        if app.state not in allowed:
            exc = Refused("W1", f"application {app.id} is {app.state.value}: no card to "
                                "report lost")
            exc.subject = app.id  # type: ignore[attr-defined]
            raise exc
        return app

    def reissue(self, resident_code: str, *, stolen: bool = False) -> IntakeResult:
        """A new application after a loss: express reason 3 (rule 4.8(3); 4.8(11) for a
        theft) from the day the loss was reported. Certificates still on hold from a
        report by phone are revoked first (keyCompromise): a hold is never released."""
        with self.db.transaction() as tx:
            lost = [a for a in applications_of(tx, resident_code) if a.state is State.LOST]
        if not lost:
            raise Refused("C7", f"resident {resident_code} has no card reported lost")
        if self.center is not None:
            with self.db.transaction() as tx:
                certs = records.certificates_of(tx, lost[-1].id, "current")
            held = self._held(certs)
            if held:
                changed = self._revoke_held(lost[-1], held, "reissue")
                self._audit("card.revoke_held", lost[-1].id, "ok",
                            {"certificates": changed, "why": "reissue after a loss"})
        elif lost[-1].user_certificate:
            with self.db.transaction() as tx:
                if records.certificates_of(tx, lost[-1].id, "current"):
                    raise Refused("C0", "certificates of the lost card may be on hold: the "
                                        "reissue needs the center's HSM to revoke them")
        event = date_of(lost[-1].updated_at)
        return take_application(self.db, ApplicationRequest(
            resident_code=resident_code,
            express=ExpressReason.CARD_STOLEN if stolen else ExpressReason.CARD_LOST,
            event_date=event, certificates=lost[-1].user_certificate,
            signing_certificate=lost[-1].signing_certificate), operator=self.operator,
            clock=self.clock)


def _verify(check: Callable[[], None], what: str) -> None:
    try:
        check()
    except (PinIncorrect, PinBlocked) as exc:
        raise Refused("C5", f"{what}: {exc}") from None
    except ValueError as exc:
        raise Refused("3.1", f"{what}: {exc}") from None


def _card_sign_serial(jpki: JpkiClient) -> int | None:
    try:
        return jpki.read_certificate(CertKind.SIGN).serial_number
    except (CardError, ValueError):
        return None


def date_of(iso: str) -> Any:
    return japan_date(datetime.fromisoformat(iso))


def _padded(data: bytes, old_length: int) -> bytes:
    return data + b"\xff" * max(0, old_length - len(data))


class _open:
    """The given transport, or a PC/SC connection to `reader` (closed at the end)."""

    def __init__(self, reader: str, transport: Transport | None) -> None:
        self.reader = reader
        self.transport = transport
        self.pcsc: PcscTransport | None = None

    def __enter__(self) -> Transport:
        if self.transport is not None:
            return self.transport
        self.pcsc = PcscTransport(self.reader)
        self.pcsc.connect()
        return self.pcsc

    def __exit__(self, *exc: object) -> None:
        if self.pcsc is not None:
            self.pcsc.close()


__all__ = ["Counter", "CounterResult", "CardError"]
