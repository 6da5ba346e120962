"""Personalising and issuing one card for one application, safe against crashes.

The job, step by step (each `on_step(name)` is called right after the step is durable,
so tests can kill the process there):

1. `bound`: one transaction moves the application applied → registered if needed, binds
   the card serial to it (`cards`: personalising) and records the job (attempt n).
2. The card is authenticated with its issuer key derived in the HSM, every area's data is
   written and the card generates its JPKI key pairs (`keys_generated`).
3. The card proves each public key is its own (ATTEST KEY: a fresh HSM challenge, the MAC
   checked in the HSM with the card-auth key; the key, the key slot and the bound serial
   must match). Without that proof nothing is certified: the refusal is audited, the
   card is terminated and marked spoiled. Then the CA (keys in the HSM) certifies the
   card's public keys; the certificate store
   commits them (`certificates_issued`); one transaction records their serials against
   the application and card (`certificates_recorded`).
4. The certificates, token info and integrity record (signed by the issuer key in the
   HSM) are written (`card_written`), and the card is locked: issued (`card_locked`).
5. `done`: one transaction moves the application registered → personalised and the card
   to issued (or active, for express issuance with the holder's PINs), with the audit
   entry naming the card and certificate serials.

Resuming (run the same command again) after a crash anywhere:
- certificates the store holds for the holder, issued since the job started and not
  recorded here, are orphans of a crash in step 3: revoked (unspecified: 交付前に破棄);
- the same card in state blank or personalised is personalised again from the start
  (new keys), and the certificates recorded for it are revoked (unspecified) first;
- the same card already issued whose keys match the recorded certificates is complete:
  step 5 is finished and nothing is issued again;
- a card of the job that can no longer be personalised (issued without matching
  certificates, or terminated), or a card that is not in the reader any more, is
  marked spoiled, its certificates revoked, and a new blank card is needed.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, NoReturn

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import rsa

from card import contract
from card.attestation import AttestationFailed, KeyAttestor
from card.contract import LifeCycle
from card.errors import CardError, DataNotFound
from card.formats import HolderPins
from card.issuer import IssuerClient
from card.transport import CardReset, PcscTransport, Transport
from hsm import HsmError
from issuance.applications.photos import photo_of
from issuance.applications.rules import State
from issuance.applications.store import Application, get_application
from issuance.audit.log import append_entry
from issuance.personalisation import StepTransport, card_identity, identity_of
from issuance.personalisation.pins import PIN_KINDS, missing_certificate_pins
from issuance.records.substitutions import substitutions_of
from issuance.registry.dates import japan_date, utc_now
from issuance.registry.model import Resident, ResidentStatus
from issuance.registry.store import get_resident
from issuance.storage import Database
from issuance.workflow import records
from issuance.workflow.center import Center, ca_evidence
from issuance.workflow.machine import Refused, stamp, transition
from issuance.workflow.migrations import migrate_workflow
from issuance.workflow.ownership import owner_alive, run_id
from issuance.workflow.records import Job
from pki.errors import PkiError
from pki.profiles import Hierarchy

Clock = Callable[[], datetime]
StepHook = Callable[[str], None]
Progress = Callable[[str], None]

STEPS = ("bound", "keys_generated", "certificates_issued", "certificates_recorded",
         "card_written", "card_locked", "done")
SIGNING = "signing"
# Reads of the card's serial and life cycle, when other connections keep resetting it.
IDENTIFY_TRIES = 3
USER_AUTH = "user_authentication"


@dataclass
class IssueResult:
    application_id: str
    card_serial: str
    life_cycle: str
    resumed: bool
    reused: bool
    sign_serial: int | None
    auth_serial: int | None
    revoked: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def to_json(self) -> dict[str, Any]:
        return {
            "application_id": self.application_id,
            "card_serial": self.card_serial,
            "life_cycle": self.life_cycle,
            "application_state": State.PERSONALISED.value,
            "resumed": self.resumed,
            "reused_finished_card": self.reused,
            "signing_certificate": format(self.sign_serial, "x") if self.sign_serial else None,
            "user_authentication_certificate":
                format(self.auth_serial, "x") if self.auth_serial else None,
            "revoked_on_resume": self.revoked,
            "seconds": round(self.seconds, 3),
        }


class CardSpoiled(Refused):
    """The card in the reader cannot be used for this application any more."""


class Issuer:
    """Issues cards for applications; one instance per operator session (thread-safe as
    long as each call uses its own reader)."""

    def __init__(self, db: Database, center: Center, *, operator: str, clock: Clock = utc_now,
                 on_step: StepHook | None = None, progress: Progress | None = None) -> None:
        self.db = db
        self.center = center
        self.operator = operator
        self.clock = clock
        self.on_step = on_step or (lambda step: None)
        self.progress = progress or (lambda message: None)
        migrate_workflow(db)

    # -- public -------------------------------------------------------------------------
    def issue(self, application_id: str, reader: str, *, certificates: bool = True,
              holder_pins: HolderPins | None = None,
              transport: Transport | None = None) -> IssueResult:
        """Personalise the card in `reader` for `application_id` (or resume a crashed run).

        Raises `Refused` (nothing changed, or the refusal recorded) when the application
        or the card does not allow it."""
        started = time.monotonic()
        try:
            if transport is not None:
                result = self._issue(application_id, transport, certificates, holder_pins)
            else:
                with PcscTransport(reader) as pcsc:
                    result = self._issue(application_id, pcsc, certificates, holder_pins)
        except Refused as exc:
            self._audit_refusal(application_id, exc)
            raise
        except (CardError, HsmError, PkiError) as exc:
            self._audit_failure(application_id, exc)
            raise
        result.seconds = time.monotonic() - started
        return result

    # -- the job ------------------------------------------------------------------------
    def _issue(self, application_id: str, raw: Transport, certificates: bool,
               holder_pins: HolderPins | None) -> IssueResult:
        app, resident, job = self._load(application_id)
        self._check_not_running(job)
        if holder_pins is not None and app.express_reason is None:
            raise Refused("W6", "holder PINs are set at issuance only for express issuance "
                                "(特急発行); others set them at the counter (`mynacard activate`)")
        if holder_pins is not None:
            with_auth = certificates and app.user_certificate
            missing = missing_certificate_pins(holder_pins, auth=with_auth,
                                               sign=with_auth and app.signing_certificate)
            if missing:
                raise Refused("3.7", "the card carries the certificate(s) of "
                              + ", ".join(PIN_KINDS[k].title for k in missing)
                              + ": the holder gives that PIN too (--pin-source "
                              + " ".join(f"{k.value}=…" for k in missing) + ")")
        transport = StepTransport(raw, self.on_step)
        client = IssuerClient(transport)
        serial, life = self._identify(client)
        self.progress(f"card {serial} in the reader, life cycle {life.name.lower()}")
        resumed = job is not None and job.step != "new"
        revoked: list[str] = []

        # A crashed run left a different card bound to this application: spoil it.
        if job is not None and job.card_serial and job.card_serial != serial:
            revoked += self._spoil(app, job.card_serial,
                                   "another card was inserted to resume the issuance")
            job = self._reload_job(application_id)

        with self.db.transaction() as tx:
            card_row = records.get_card(tx, serial)
        if card_row is not None and card_row.application_id != app.id:
            raise Refused("W3", f"card {serial} belongs to application {card_row.application_id}"
                                f" ({card_row.state}); insert a blank card")
        if card_row is not None and card_row.state == "spoiled":
            raise Refused("W3", f"card {serial} was spoiled earlier; insert a blank card")

        if card_row is None and life != LifeCycle.BLANK:
            raise Refused("W2", f"card {serial} is not blank (life cycle "
                                f"{life.name.lower()}); personalisation needs a blank card")

        if card_row is not None:  # our card from a crashed run of this application
            if life in (LifeCycle.ISSUED, LifeCycle.ACTIVE):
                finished = self._finished_card(app, serial, client)
                if finished is not None:
                    self.progress("the card was completed before the interruption; "
                                  "recording it")
                    sign, auth = finished
                    self._finish(app, serial, life, sign, auth, resumed=True, reused=True)
                    return IssueResult(app.id, serial, life.name.lower(), True, True, sign, auth)
            if life not in (LifeCycle.BLANK, LifeCycle.PERSONALISED):
                revoked += self._spoil(app, serial, f"life cycle {life.name.lower()} after an "
                                                    "interrupted issuance", terminate=client)
                raise CardSpoiled("W4", f"card {serial} was left {life.name.lower()} by an "
                                        "interrupted run and cannot be personalised again; it "
                                        "is marked spoiled: insert a new blank card and run "
                                        "the command again")
            revoked += self._revoke_recorded(app, serial, "re-personalising after an "
                                                          "interrupted issuance")
            self.progress("card left personalised by an interrupted run: personalising it again")

        job = self._bind(app, serial, job)
        self.on_step("bound")
        revoked += self._revoke_orphans(app, resident, job)

        issue_date = japan_date(self.clock())
        profile = card_identity(resident, app, issued_on=issue_date,
                                security_code=job.security_code, certificates=certificates,
                                photo=photo_of(self.db, app.id))
        self.progress("issuer authenticated with the card key derived in the HSM; writing "
                      "the areas and generating the JPKI keys on the card")
        issued: dict[str, int] = {}
        try:
            result = client.personalise(
                profile,
                authenticator=self.center.authenticator,
                issue_certificates=self._certifier(app, resident, serial, profile.expiry,
                                                   issued),
                integrity_signer=self.center.integrity_signer,
                holder_pins=holder_pins,
            )
        except AttestationFailed as exc:
            self._refuse_unattested(app, serial, client, str(exc))
        life = result.life_cycle
        self.progress(f"card locked against personalisation: {life.name.lower()}")
        self._finish(app, serial, life, issued.get(SIGNING), issued.get(USER_AUTH),
                     resumed=resumed, reused=False)
        return IssueResult(app.id, serial, life.name.lower(), resumed, False,
                           issued.get(SIGNING), issued.get(USER_AUTH), revoked)

    def _load(self, application_id: str) -> tuple[Application, Resident, Job | None]:
        with self.db.transaction() as tx:
            app = get_application(tx, application_id)
            if app is None:
                raise Refused("W1", f"no application {application_id}")
            if app.state not in (State.APPLIED, State.REGISTERED):
                raise Refused("W1", f"application {application_id} is {app.state.value}: "
                                    "only an application that is applied or registered is "
                                    "personalised")
            resident = get_resident(tx, app.resident_code)
            job = records.get_job(tx, application_id)
        if resident is None:
            raise Refused("I1", f"resident {app.resident_code} is not in the registry")
        if resident.status in (ResidentStatus.DECEASED, ResidentStatus.DELETED):
            raise Refused("I2", f"resident {app.resident_code} is {resident.status.value}")
        return app, resident, job

    def _identify(self, client: IssuerClient) -> tuple[str, LifeCycle]:
        """The card's serial and life cycle, read again if another connection resets the
        card meanwhile.

        pcscd resets the card for a process that died holding it a moment after that
        process is gone, which is exactly when the operator runs the job again. Reading
        changes nothing, so reading again is safe; a reset later in the job is another
        program interfering, and fails the run (resumable) as it should."""
        for attempt in range(1, IDENTIFY_TRIES + 1):
            try:
                return client.serial(), client.life_cycle()
            except CardReset:
                if attempt == IDENTIFY_TRIES:
                    raise
                self.progress("the card was reset by another connection; reading it again")
        raise AssertionError("unreachable")

    def _check_not_running(self, job: Job | None) -> None:
        if job is None or job.step in ("new", "done"):
            return
        if owner_alive(job.owner, job.updated_at, self.clock()):
            raise Refused("W7", f"application {job.application_id} is being issued right now "
                                f"on card {job.card_serial} ({job.owner}); wait for that run "
                                "to finish (an interrupted run is resumed by running the "
                                "command again once it has stopped)")

    def _reload_job(self, application_id: str) -> Job | None:
        with self.db.transaction() as tx:
            return records.get_job(tx, application_id)

    def _bind(self, app: Application, serial: str, job: Job | None) -> Job:
        now = self.clock()
        with self.db.transaction() as tx:
            current = get_application(tx, app.id)
            assert current is not None
            if current.state is State.APPLIED:
                transition(tx, app.id, State.REGISTERED, operator=self.operator,
                           action="application.register", at=now,
                           detail={"by": "issue"})
            elif current.state is not State.REGISTERED:
                raise Refused("W1", f"application {app.id} is {current.state.value}")
            latest = records.get_job(tx, app.id)
            if latest is not None and latest != job:
                self._check_not_running(latest)  # another reader bound it meanwhile
                job = latest
            new = Job(
                application_id=app.id, card_serial=serial, step="bound",
                attempt=(job.attempt if job else 0) + 1,
                started_at=job.started_at if job else stamp(now),
                security_code=job.security_code if job else f"{secrets.randbelow(10**4):04d}",
                operator=self.operator, owner=run_id(),
            )
            records.put_job(tx, new, now=stamp(now))
            records.put_card(tx, serial, app.id, "personalising", now=stamp(now))
            append_entry(tx, operator=self.operator, action="issue.bind", subject=app.id,
                         outcome="ok", detail={"card_serial": serial, "attempt": new.attempt},
                         at=now)
        self.progress(f"card {serial} bound to application {app.id} (attempt {new.attempt})")
        return new

    def _certifier(self, app: Application, resident: Resident, card_serial: str,
                   expiry: Any, issued: dict[str, int]) -> Any:
        ca = self.center.ca
        with self.db.transaction() as tx:
            substitutions = substitutions_of(tx, resident.resident_code)
        sign_root = ca.config.hierarchies[_hier("sign")].root_cert
        auth_root = ca.config.hierarchies[_hier("auth")].root_cert

        def certify(auth_pub: rsa.RSAPublicKey | None, sign_pub: rsa.RSAPublicKey | None,
                    attest: KeyAttestor,
                    ) -> tuple[x509.Certificate | None, x509.Certificate | None,
                               x509.Certificate, x509.Certificate]:
            self.on_step("keys_generated")
            proofs = {}
            for fid, pub in ((contract.JPKI_AUTH_KEY, auth_pub),
                             (contract.JPKI_SIGN_KEY, sign_pub)):
                if pub is not None:  # raises AttestationFailed: nothing certified
                    proofs[fid] = ca_evidence(self.center.attestation.require(
                        attest, serial=card_serial, key_fid=fid, public_key=pub))
            self.progress("the card proved its keys were generated on it (attestation "
                          "checked in the HSM)")
            identity = identity_of(resident, substitutions)
            auth_cert = sign_cert = None
            if auth_pub is not None:
                auth = ca.issue_user_authentication(public_key=auth_pub, identity=identity,
                                                    holder_id=resident.resident_code,
                                                    card_expiry=expiry,
                                                    evidence=proofs[contract.JPKI_AUTH_KEY])
                auth_cert = auth.certificate
                issued[USER_AUTH] = auth.serial
            if sign_pub is not None:
                sign = ca.issue_signing(
                    public_key=sign_pub, identity=identity, holder_id=resident.resident_code,
                    card_expiry=expiry, adult_ward=resident.adult_ward,
                    user_certificate_not_after=(auth_cert.not_valid_after_utc
                                                if auth_cert else None),
                    evidence=proofs[contract.JPKI_SIGN_KEY])
                sign_cert = sign.certificate
                issued[SIGNING] = sign.serial
            self.on_step("certificates_issued")
            now = self.clock()
            with self.db.transaction() as tx:
                for kind, serial in issued.items():
                    records.add_certificate(tx, serial, application_id=app.id,
                                            card_serial=card_serial, kind=kind, now=stamp(now))
                job = records.get_job(tx, app.id)
                assert job is not None
                records.put_job(tx, _with(job, step="certified"), now=stamp(now))
            self.progress("certificates issued by the HSM-backed CA: " + ", ".join(
                f"{k.replace('_', '-')} {v:x}" for k, v in issued.items()) if issued
                else "no certificates (declined)")
            self.on_step("certificates_recorded")
            return sign_cert, auth_cert, sign_root, auth_root

        return certify

    def _finish(self, app: Application, serial: str, life: LifeCycle, sign: int | None,
                auth: int | None, *, resumed: bool, reused: bool) -> None:
        now = self.clock()
        with self.db.transaction() as tx:
            transition(tx, app.id, State.PERSONALISED, operator=self.operator, action="issue",
                       at=now, detail={
                           "card_serial": serial, "life_cycle": life.name.lower(),
                           "signing_certificate": format(sign, "x") if sign else None,
                           "user_authentication_certificate": format(auth, "x") if auth
                           else None,
                           "resumed": resumed, "reused_finished_card": reused})
            records.put_card(tx, serial, app.id,
                             "active" if life == LifeCycle.ACTIVE else "issued", now=stamp(now))
            job = records.get_job(tx, app.id)
            assert job is not None
            records.put_job(tx, _with(job, step="done"), now=stamp(now))
        self.on_step("done")

    # -- resume helpers -----------------------------------------------------------------
    def _finished_card(self, app: Application, serial: str,
                       client: IssuerClient) -> tuple[int | None, int | None] | None:
        """(sign, auth) serials when the issued card carries exactly the recorded keys."""
        with self.db.transaction() as tx:
            job = records.get_job(tx, app.id)
            certs = [c for c in records.certificates_of(tx, app.id, "current")
                     if c.card_serial == serial]
        if job is None or job.step not in ("certified", "done"):
            return None
        found: dict[str, int] = {}
        for cert in certs:
            fid = contract.JPKI_SIGN_KEY if cert.kind == SIGNING else contract.JPKI_AUTH_KEY
            try:
                on_card = client.read_public_key(fid)
            except (DataNotFound, CardError):
                return None
            recorded = self.center.store.get(cert.serial).certificate().public_key()
            if not isinstance(recorded, rsa.RSAPublicKey) or \
                    recorded.public_numbers() != on_card.public_numbers():
                return None
            found[cert.kind] = cert.serial
        if not certs and (app.user_certificate or app.signing_certificate):
            # declined with --no-certificates, or nothing recorded: check the card has no key
            for fid in (contract.JPKI_AUTH_KEY, contract.JPKI_SIGN_KEY):
                try:
                    client.read_public_key(fid)
                    return None
                except DataNotFound:
                    pass
        return found.get(SIGNING), found.get(USER_AUTH)

    def _revoke(self, serial: int, cause: str) -> bool:
        return self.center.store.revoke(serial, reason=x509.ReasonFlags.unspecified,
                                        cause=cause, at=self.clock().replace(microsecond=0))

    def _revoke_recorded(self, app: Application, card_serial: str, why: str) -> list[str]:
        with self.db.transaction() as tx:
            certs = [c for c in records.certificates_of(tx, app.id, "current")
                     if c.card_serial == card_serial]
        done = []
        for cert in certs:
            self._revoke(cert.serial, f"spoiled before delivery: {why} ({app.id})")
            done.append(cert.serial_hex)
        if certs:
            now = self.clock()
            with self.db.transaction() as tx:
                for cert in certs:
                    records.set_certificate_status(tx, cert.serial, "spoiled", now=stamp(now))
                append_entry(tx, operator=self.operator, action="issue.revoke_spoiled",
                             subject=app.id, outcome="ok",
                             detail={"card_serial": card_serial, "why": why,
                                     "revoked": done}, at=now)
            self.progress(f"revoked {len(done)} certificate(s) of the interrupted run "
                          "(reason unspecified: destroyed before delivery)")
        return done

    def _revoke_orphans(self, app: Application, resident: Resident, job: Job) -> list[str]:
        """Certificates issued for the holder since the job started but never recorded."""
        since = datetime.fromisoformat(job.started_at).replace(microsecond=0)
        candidates = [r for r in self.center.store.by_holder(resident.resident_code)
                      if r.status.value != "revoked" and r.issued_at >= since]
        if not candidates:
            return []
        with self.db.transaction() as tx:
            known = records.known_serials(tx, [r.serial for r in candidates])
        orphans = [r.serial for r in candidates if r.serial not in known]
        for serial in orphans:
            self._revoke(serial, f"spoiled before delivery: issued by an interrupted run of "
                                 f"{app.id}, never written to a card")
        if orphans:
            now = self.clock()
            with self.db.transaction() as tx:
                append_entry(tx, operator=self.operator, action="issue.revoke_orphans",
                             subject=app.id, outcome="ok",
                             detail={"revoked": [format(s, "x") for s in orphans]}, at=now)
            self.progress(f"revoked {len(orphans)} certificate(s) issued by the interrupted "
                          "run but never recorded")
        return [format(s, "x") for s in orphans]

    def _spoil(self, app: Application, card_serial: str, why: str, *,
               terminate: IssuerClient | None = None) -> list[str]:
        revoked = self._revoke_recorded(app, card_serial, why)
        if terminate is not None:
            try:
                terminate.authenticate(self.center.authenticator)
                terminate.terminate()
            except CardError:
                pass
        now = self.clock()
        with self.db.transaction() as tx:
            records.put_card(tx, card_serial, app.id, "spoiled", now=stamp(now), note=why)
            job = records.get_job(tx, app.id)
            if job is not None:
                records.put_job(tx, _with(job, card_serial=None, step="new"), now=stamp(now))
            append_entry(tx, operator=self.operator, action="issue.spoil", subject=app.id,
                         outcome="ok", detail={"card_serial": card_serial, "why": why,
                                               "revoked": revoked}, at=now)
        self.progress(f"card {card_serial} marked spoiled: {why}")
        return revoked

    def _refuse_unattested(self, app: Application, serial: str, client: IssuerClient,
                           reason: str) -> NoReturn:
        """The card did not prove its keys: audit, terminate and spoil it, refuse."""
        now = self.clock()
        with self.db.transaction() as tx:
            append_entry(tx, operator=self.operator, action="issue.attestation",
                         subject=app.id, outcome="refused",
                         detail={"card_serial": serial, "reason": reason[:500]}, at=now)
        self._spoil(app, serial, f"key attestation failed: {reason}", terminate=client)
        raise CardSpoiled("W8", f"card {serial} did not prove that its keys were generated "
                                f"on it ({reason}); nothing was certified, the card is "
                                "terminated and marked spoiled: insert a new blank card")

    def _audit_failure(self, application_id: str, exc: Exception) -> None:
        """A card, HSM or CA failure: recorded; running the command again resumes."""
        try:
            with self.db.transaction() as tx:
                append_entry(tx, operator=self.operator, action="issue", subject=application_id,
                             outcome="failed", detail={"error": type(exc).__name__,
                                                       "message": str(exc)[:500]},
                             at=self.clock())
        except Exception:  # the original failure matters more
            pass

    def _audit_refusal(self, application_id: str, exc: Refused) -> None:
        with self.db.transaction() as tx:
            append_entry(tx, operator=self.operator, action="issue", subject=application_id,
                         outcome="refused", detail={"rule": exc.rule, "reason": exc.message},
                         at=self.clock())


def _with(job: Job, **changes: Any) -> Job:
    from dataclasses import replace

    return replace(job, **changes)


def _hier(name: str) -> Hierarchy:
    return Hierarchy(name)

