"""Hand-over and activation at the counter.

The holder is at the window with the card (交付): the application moves personalised →
handed_over; the holder then sets the PINs the card requires (rule 3.7: only those —
no signing password without a signing certificate) and the card becomes active by
itself when the last one is set; the application moves to activated. A card issued
with the holder's PINs (express issuance) is already active: hand-over and activation
are recorded without asking for PINs.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from card.contract import LifeCycle, PinBit
from card.errors import CardError
from card.issuer import JUKI_PIN_REFERENCES, IssuerClient
from card.session import area_client
from card.transport import PcscTransport, Transport
from issuance.applications.rules import State
from issuance.applications.store import get_application
from issuance.audit.log import append_entry
from issuance.personalisation.pins import PIN_KINDS, PinKind, check_pin, required_kinds
from issuance.records.identity_documents import (
    DocumentError,
    IdentityCheck,
    check_for_person,
    record_check,
)
from issuance.registry.dates import age_on, japan_date, utc_now
from issuance.registry.store import get_resident
from issuance.storage import Database
from issuance.workflow import records
from issuance.workflow.machine import Refused, stamp, transition
from issuance.workflow.migrations import migrate_workflow

Clock = Callable[[], datetime]
PinSupplier = Callable[[PinKind], str]


@dataclass
class ActivationResult:
    application_id: str
    card_serial: str
    pins_set: list[str]
    life_cycle: str

    def to_json(self) -> dict[str, Any]:
        return {"application_id": self.application_id, "card_serial": self.card_serial,
                "application_state": State.ACTIVATED.value, "pins_set": self.pins_set,
                "life_cycle": self.life_cycle}


class Activator:
    def __init__(self, db: Database, *, operator: str, clock: Clock = utc_now,
                 progress: Callable[[str], None] | None = None) -> None:
        self.db = db
        self.operator = operator
        self.clock = clock
        self.progress = progress or (lambda message: None)
        migrate_workflow(db)

    def activate(self, reader: str, pins: PinSupplier, *,
                 transport: Transport | None = None,
                 identity: IdentityCheck | DocumentError | None = None) -> ActivationResult:
        """`identity`: the documents seen at hand-over (rule 4.3), recorded with the
        hand-over as kinds and digests; a minor under 15 or an adult ward needs the legal
        representative, who then sets the PINs."""
        try:
            if isinstance(identity, DocumentError):
                raise _refused(identity.rule, str(identity), reader)
            if transport is not None:
                return self._activate(transport, pins, identity)
            with PcscTransport(reader) as pcsc:
                return self._activate(pcsc, pins, identity)
        except Refused as exc:
            with self.db.transaction() as tx:
                append_entry(tx, operator=self.operator, action="activate",
                             subject=getattr(exc, "subject", reader), outcome="refused",
                             detail={"rule": exc.rule, "reason": exc.message},
                             at=self.clock())
            raise
        except CardError as exc:
            with self.db.transaction() as tx:
                append_entry(tx, operator=self.operator, action="activate", subject=reader,
                             outcome="failed", detail={"error": type(exc).__name__,
                                                       "message": str(exc)[:500]},
                             at=self.clock())
            raise

    def _activate(self, transport: Transport, pins: PinSupplier,
                  identity: IdentityCheck | None = None) -> ActivationResult:
        client = IssuerClient(transport)
        serial = client.serial()
        life = client.life_cycle()
        with self.db.transaction() as tx:
            card = records.get_card(tx, serial)
            app = get_application(tx, card.application_id) if card else None
        if card is None or app is None:
            raise _refused("W5", f"card {serial} was not issued by this center", serial)
        if card.state not in ("issued", "active"):
            raise _refused("W5", f"card {serial} is {card.state}; it cannot be handed over",
                           app.id)
        if app.state not in (State.PERSONALISED, State.HANDED_OVER):
            raise _refused("W1", f"application {app.id} is {app.state.value}: a card is "
                                 "handed over and activated only after it is personalised "
                                 "(and only once)", app.id)
        if life not in (LifeCycle.ISSUED, LifeCycle.ACTIVE):
            raise _refused("W2", f"card {serial} is {life.name.lower()}; only an issued card "
                                 "is handed over", app.id)
        if identity is not None:
            with self.db.transaction() as tx:
                resident = get_resident(tx, app.resident_code)
            if resident is not None:
                try:
                    check_for_person(identity, adult_ward=resident.adult_ward,
                                     age=age_on(resident.birth_date,
                                                japan_date(self.clock())))
                except DocumentError as exc:
                    raise _refused(exc.rule, str(exc), app.id) from None
        if app.state is State.PERSONALISED:
            detail: dict[str, Any] = {"card_serial": serial}
            with self.db.transaction() as tx:
                if identity is not None:
                    record_check(tx, app.id, "handover", identity, operator=self.operator,
                                 now=stamp(self.clock()))
                    detail.update(identity.audit_detail(app.id))
                transition(tx, app.id, State.HANDED_OVER, operator=self.operator,
                           action="handover", at=self.clock(), detail=detail)
            self.progress(f"card {serial} handed over (application {app.id})")

        status = client.pin_status()
        missing = set(status.required - status.set)
        if PinBit.COMMON in missing:  # the 共通カードAP's copy of the resident-registry PIN
            missing.add(PinBit.JUKI)
        needed = required_kinds(frozenset(missing))
        values: dict[PinKind, str] = {}
        for kind in needed:
            try:
                values[kind] = check_pin(kind, pins(kind))
            except ValueError as exc:
                raise _refused("3.1", f"{PIN_KINDS[kind].title}: {exc}", app.id) from None
        for kind in needed:
            ref = PIN_KINDS[kind]
            targets = ([(area, fid) for area, fid, bit in JUKI_PIN_REFERENCES if bit in missing]
                       if kind is PinKind.JUKI else [(ref.area, ref.fid)])
            for area, fid in targets:  # the juki PIN is two key references on the card
                area_client(transport, area).set_pin(fid, values[kind])
            self.progress(f"{ref.title} set by the holder")
        life = client.life_cycle()
        if life != LifeCycle.ACTIVE:
            raise _refused("W2", f"card {serial} did not become active ({life.name.lower()})",
                           app.id)
        now = self.clock()
        with self.db.transaction() as tx:
            represented = tx.query_one(
                "SELECT name FROM legal_representatives WHERE application_id = ?"
                " AND step = 'handover'", (app.id,)) is not None
            set_by = "legal_representative" if represented else "holder"
            transition(tx, app.id, State.ACTIVATED, operator=self.operator, action="activate",
                       at=now, detail={"card_serial": serial,
                                       "pins_set": [k.value for k in needed],
                                       "pins_set_by": set_by})
            records.put_card(tx, serial, app.id, "active", now=stamp(now))
        self.progress(f"card {serial} active; application {app.id} activated")
        return ActivationResult(app.id, serial, [k.value for k in needed], "active")


def _refused(rule: str, message: str, subject: str) -> Refused:
    exc = Refused(rule, message)
    exc.subject = subject  # type: ignore[attr-defined]
    return exc
