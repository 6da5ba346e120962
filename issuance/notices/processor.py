"""Applying accepted notices: order-tolerant, and exactly once in effect, in batches.

`NoticeProcessor.process()`:
1. re-matches unmatched notices whose resident has since been loaded (→ accepted), when
   the registry's change counter moved since this processor's last re-match (a pass
   with no load in between pays one primary-key read, not a probe of every unmatched);
2. pages through the accepted notices whose effective date has come (today in Japan;
   later ones wait), in effective-date order (then arrival, sender, source, id), with a keyset
   cursor on the `notices_due` index; batches grow from 1 (`first_batch`) to `batch` (default
   5,000), so a lone notice is applied at once and a backlog in large batches. On PostgreSQL the
   same, bucket by bucket, each under its advisory lock (`claims`): several processors
   share the notices, and one resident's are applied by one processor, in order;
3. for each batch: one set query for the residents; then ONE certificate-store
   transaction reads the holders' certificates (staged, one join: `pki.store.bulk`), asks
   `rules.decide` for each notice in order and revokes them all with `revoke_many` (staged,
   one UPDATE; revoking an already revoked certificate is a no-op); then ONE issuance
   transaction marks the notices applied, reads the batch's residents, fact dates and
   applications once, writes the residents and fact dates once, then the applications
   and cards (the counter's order, so the two never deadlock), and records every effect
   (set-based writes: the effects and the marks staged by COPY or one executemany, then
   one INSERT and one UPDATE; `staging`).

A crash (even kill -9) between a batch's revocations and its issuance transaction leaves
its notices accepted; the next run applies them again and the store's idempotent
revocation makes the second pass a no-op. An effect is recorded as `revoked` when this
notice's id is the certificate's revocation cause (also when a crashed earlier pass did
it), else `already_revoked`. The effects table's primary key (notice, target, action)
keeps every effect once.

Order tolerance: certificate scope is by date (see `rules`), and every fact and the
status in the registry view carry the (effective date, source, id, sender) of the notice that
set them (`notice_facts`): a notice never overwrites a value set by a later-dated one, so
any arrival order gives the same registry view and the same certificate statuses. Notices
of one batch see each other's changes (applied in order in memory, written once). Which
notice is named as a certificate's cause (and its revocation time) is that of the first
notice applied, as the certificate store keeps the first revocation.

Revocation time: the processing time, except for emigrations, which revoke as of the
emigration date (00:00 JST that day, not before the certificate was issued).
"""

from __future__ import annotations

import json
import time as _time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, time, timedelta, timezone
from typing import Any

from issuance.applications.rules import CARD_IN_HAND, IN_PROGRESS, State
from issuance.applications.store import Application, applications_of_many, set_state
from issuance.audit.log import append_entry
from issuance.notices.certificates import CertificateGateway, CertKind, Reason
from issuance.notices.claims import NAMESPACE, claims_for
from issuance.notices.migrations import migrate_notices
from issuance.notices.model import (
    EMIGRATIONS,
    FACT_CHANGES,
    LOCAL_SENDER,
    Kind,
    Notice,
    Source,
    notice_from_stored,
)
from issuance.notices.rules import CardAction, Decision, decide
from issuance.notices.staging import mark_applied, write_effects, write_facts, write_residents
from issuance.registry.model import FuhyoEntry, Nationality, Resident, Sex

# the registry's own row mapping, so a batch reads its residents in one set query
from issuance.registry.store import _NATIONALITY_OF, hold_registry_loads, registry_version
from issuance.registry.store import _SELECT as _SELECT_RESIDENTS
from issuance.registry.store import _from_row as _resident_from_row
from issuance.storage import Database, SqliteDatabase, Transaction
from issuance.workflow.migrations import migrate_workflow
from issuance.workflow.records import live_card_of, put_card

JST = timezone(timedelta(hours=9), "JST")
Clock = Callable[[], datetime]
BATCH = 5000
BUSY_WAIT_S = 0.05  # between passes that found every remaining bucket held by others
CACHE_KIB = 256 * 1024  # SQLite page cache of the processor's connection
_Effect = tuple[str, str, str | None, str | None, str]
_REVOKE_ACTION = {kind: f"revoke_{kind.value}" for kind in CertKind}  # no enum call per row


@dataclass
class _Run:
    """Where one `process()` stands: how many applied, the next batch size."""

    today: str
    limit: int | None
    progress: Callable[[ProcessReport], None] | None
    done: int = 0
    size: int = 1
    shown: int = 0

    def full(self) -> bool:
        return self.limit is not None and self.done >= self.limit


def _utc_now() -> datetime:
    return datetime.now(UTC)


def cause_of(notice: Notice) -> str:
    """The revocation cause recorded in the certificate store: `notice:SOURCE:ID` for the
    file intake's notices (as before senders existed), `notice@SENDER:SOURCE:ID` for an
    HTTP sender's (a sender name holds no ':', so the two forms never meet)."""
    if notice.sender == LOCAL_SENDER:
        return f"notice:{notice.source.value}:{notice.id}"
    return f"notice@{notice.sender}:{notice.source.value}:{notice.id}"


def key_of(notice: Notice) -> tuple[str, str, str]:
    """A stored notice's key: (sender, source, id)."""
    return (notice.sender, notice.source.value, notice.id)


@dataclass
class ProcessReport:
    applied: int = 0
    rematched: int = 0
    waiting_until_effective: int = 0
    unmatched: int = 0
    revoked: int = 0
    already_revoked: int = 0
    kept: int = 0
    cards: int = 0
    notices: list[dict[str, Any]] = field(default_factory=list)

    def to_json(self, *, with_notices: bool = False) -> dict[str, Any]:
        out: dict[str, Any] = {k: v for k, v in self.__dict__.items() if k != "notices"}
        if with_notices:
            out["notices"] = self.notices
        return out


class NoticeProcessor:
    def __init__(
        self,
        db: Database,
        certificates: CertificateGateway,
        *,
        clock: Clock = _utc_now,
        on_revoked: Callable[[int], None] | None = None,
        keep_details: bool = False,
        batch: int = BATCH,
        audit_operator: str | None = None,
        first_batch: int = 1,
    ) -> None:
        """`on_revoked(n)` is called after the n-th revocation this processor made, once
        the certificate store committed it (a seam for tests that kill the process
        mid-batch). `batch` is the largest number of notices applied together; each pass
        starts with `first_batch` (1: a lone notice goes at once; a bulk applier that
        knows a backlog is waiting starts at `batch`, sparing small batches' fixed costs).
        `audit_operator`: record each applied batch in the audit log, in the batch's own
        transaction (what a killed worker applied is then audited too)."""
        if batch < 1 or first_batch < 1:
            raise ValueError("batch must be at least 1")
        self.first_batch = min(first_batch, batch)
        self.db = db
        self.certificates = certificates
        self.clock = clock
        self.on_revoked = on_revoked
        self.keep_details = keep_details
        self.batch = batch
        self._revocations = 0
        self._registry_seen: int | None = None  # the registry version at the last re-match
        self.audit_operator = audit_operator
        self._claims = claims_for(db)
        migrate_notices(db)
        migrate_workflow(db)  # the cards a notice abolishes are in the workflow's tables
        if isinstance(db, SqliteDatabase):
            # a batch touches notices, effects, facts and residents all over their indexes
            with db.transaction() as tx:
                tx.execute(f"PRAGMA cache_size = -{CACHE_KIB}")

    # -- the run ----------------------------------------------------------------------
    def process(self, *, limit: int | None = None,
                progress: Callable[[ProcessReport], None] | None = None,
                until_free: bool = False) -> ProcessReport:
        """Apply what is due. On PostgreSQL bucket by bucket, each under its lock
        (`issuance.notices.claims`), skipping the buckets other processors hold; with
        `until_free`, pass again until no bucket was held by another (so the notices a
        killed processor left are applied once its lock is gone)."""
        report = ProcessReport()
        today = self.clock().astimezone(JST).date().isoformat()
        with self.db.transaction() as tx:
            # only when the registry was loaded since this processor's last re-match:
            # every notice is marked unmatched (here or at intake) with loads held off,
            # so a resident loaded after that decision moves the counter after the mark
            # is visible (`hold_registry_loads`); the probe of the whole unmatched
            # backlog is not paid on every pass
            version = registry_version(tx)
            if version != self._registry_seen:
                # one re-match at a time: concurrent processors would lock the same rows
                # in orders of their own (a deadlock on PostgreSQL)
                tx.lock("mynacard.notices.rematch")
                report.rematched = tx.execute(
                    "UPDATE notices SET state = 'accepted', reason = NULL"
                    " WHERE state = 'unmatched'"
                    " AND resident_code IN (SELECT resident_code FROM residents)")
                self._registry_seen = version
            waiting = tx.query_one(
                "SELECT COUNT(*) AS n FROM notices WHERE state = 'accepted'"
                " AND effective_date > ?", (today,))
        report.waiting_until_effective = int(waiting["n"]) if waiting else 0
        run = _Run(today, limit, progress, size=self.first_batch)
        if self._claims is None:
            self._run(run, None, report)
            return report
        while True:
            busy = 0
            before = report.applied + report.unmatched
            for bucket in self._claims.order(run.today):
                if run.full():
                    break
                if not self._claims.try_take(bucket):
                    busy += 1
                    continue
                try:
                    self._run(run, bucket, report)
                finally:
                    self._claims.release(bucket)
            if not until_free or busy == 0 or run.full():
                return report
            if report.applied + report.unmatched == before:
                _time.sleep(BUSY_WAIT_S)  # the holders are at work (or about to be gone)

    def _run(self, run: _Run, bucket: int | None, report: ProcessReport) -> None:
        """Apply the due notices (of one bucket, or all), in order, in growing batches."""
        cursor: tuple[str, str, str, str, str] | None = None
        while not run.full():
            want = run.size if run.limit is None else min(run.size, run.limit - run.done)
            rows = self._due(run.today, cursor, want, bucket)
            if not rows:
                break
            last = rows[-1]
            cursor = (last["effective_date"], last["received_at"], last["sender"],
                      last["source"], last["id"])
            self._apply_batch([notice_from_stored(r["payload"], r["sender"]) for r in rows],
                              report, bucket)
            run.done += len(rows)
            run.size = min(run.size * 2, self.batch)  # slow start: a lone notice goes at once
            if run.progress is not None and run.done // 1000 > run.shown:
                run.shown = run.done // 1000
                run.progress(report)

    def _due(self, today: str, cursor: tuple[str, str, str, str, str] | None,
             n: int, bucket: int | None = None) -> list[Any]:
        """The next `n` accepted, effective notices (of `bucket`, when given) in
        (effective date, arrival, sender, source, id) order after `cursor` (keyset paging
        on the `notices_due` index, or on `notices_bucket_due` for a bucket)."""
        sql = ("SELECT sender, source, id, effective_date, received_at, payload FROM notices"
               " WHERE state = 'accepted' AND effective_date <= ?")
        params: tuple[Any, ...] = (today,)
        if bucket is not None:
            sql += " AND bucket = ?"
            params += (bucket,)
        if cursor is not None:
            sql += (" AND (effective_date, received_at, sender, source, id)"
                    " > (?, ?, ?, ?, ?)")
            params += cursor
        sql += f" ORDER BY effective_date, received_at, sender, source, id LIMIT {int(n)}"
        with self.db.transaction() as tx:
            return tx.query(sql, params)

    # -- one notice -------------------------------------------------------------------
    def apply(self, notice: Notice, report: ProcessReport) -> None:
        self._apply_batch([notice], report, None)

    # -- a batch ----------------------------------------------------------------------
    def _apply_batch(self, notices: list[Notice], report: ProcessReport,
                     bucket: int | None) -> None:
        """Apply notices in order: one certificate-store transaction for every revocation
        of the batch, then one issuance transaction for effects, registry, cards and
        states. A crash between the two leaves the whole batch accepted; the next run
        re-applies it and the store's idempotent revocation makes that a no-op."""
        codes = sorted({n.resident_code for n in notices})
        nationality_of: dict[str, str] = {}
        with self.db.transaction() as tx:
            # read and marked with registry loads held off, so a resident loaded meanwhile
            # is either seen here or moves the re-match counter after the marks commit
            # (`hold_registry_loads`)
            hold_registry_loads(tx)
            for row in tx.query_in("SELECT resident_code, nationality FROM residents"
                                   " WHERE resident_code IN ({values})", codes):
                nationality_of[row["resident_code"]] = row["nationality"]
            missing = [n for n in notices if n.resident_code not in nationality_of]
            if missing:
                tx.executemany("UPDATE notices SET state = 'unmatched', reason = ? WHERE"
                               " sender = ? AND source = ? AND id = ? AND state = 'accepted'",
                               [("no resident with this resident code", *key_of(n))
                                for n in missing])
        report.unmatched += len(missing)
        matched = [n for n in notices if n.resident_code in nationality_of]
        if not matched:
            return
        now = self.clock()
        decided: list[tuple[Notice, Decision, str]] = []
        wanted: list[tuple[int, Reason, str, datetime]] = []
        with self.certificates.transaction():
            held_by = self.certificates.certificates_of_many(
                sorted({n.resident_code for n in matched}))
            for notice in matched:
                held = held_by.get(notice.resident_code, [])
                nationality = _NATIONALITY_OF[notice.nationality or
                                              nationality_of[notice.resident_code]]
                decision = decide(kind=notice.kind, source=notice.source,
                                  effective_date=notice.effective_date, nationality=nationality,
                                  status=None, certificates=held)
                cause = cause_of(notice)
                for rev in decision.revocations:
                    at = now
                    if rev.as_of_effective_date:
                        start = datetime.combine(notice.effective_date, time(0),
                                                 JST).astimezone(UTC)
                        issued = next(c.issued_at for c in held if c.serial == rev.serial)
                        at = min(now, max(start, issued))
                    wanted.append((rev.serial, rev.reason, cause, at))
                decided.append((notice, decision, cause))
            changed = self.certificates.revoke_many(wanted)
        for _ in range(sum(changed)):  # the store has committed these
            self._revocations += 1
            if self.on_revoked is not None:
                self.on_revoked(self._revocations)
        # a revocation is this notice's when it made it, or when the certificate's cause
        # (before the batch, or set by an earlier notice of the batch) is this notice
        cause_now = {c.serial: c.cause for held in held_by.values() for c in held}
        plans: list[tuple[Notice, Decision, list[_Effect]]] = []
        k = 0
        for notice, decision, cause in decided:
            effects: list[_Effect] = []
            for rev in decision.revocations:
                if changed[k]:
                    cause_now[rev.serial] = cause
                k += 1
                if cause_now.get(rev.serial) == cause:
                    report.revoked += 1
                    outcome = "revoked"
                else:
                    report.already_revoked += 1
                    outcome = "already_revoked"
                serial_hex = format(rev.serial, "x")
                effects.append(("certificate:" + serial_hex, _REVOKE_ACTION[rev.certificate],
                                serial_hex, rev.reason.value, outcome))
            report.kept += len(decision.kept)
            for serial in decision.kept:
                serial_hex = format(serial, "x")
                effects.append(("certificate:" + serial_hex, "keep", serial_hex, None, "kept"))
            plans.append((notice, decision, effects))
        stamp = now.astimezone(UTC).isoformat(timespec="microseconds")
        applied: list[tuple[Notice, Decision]] = []
        with self.db.transaction() as tx:
            if bucket is None:
                tx.lock("mynacard.notices.apply")
            else:  # ours already (session lock); waits only if it was lost with a connection
                tx.query_one("SELECT pg_advisory_xact_lock(?, ?) AS got", (NAMESPACE, bucket))
            # mark first: the notices still accepted are this batch's to apply (one
            # another processor applied meanwhile, or a duplicate in the batch, is not)
            ours = mark_applied(tx, [(*key_of(n), stamp, d.rule) for n, d, _e in plans])
            batch = _BatchView.load(tx, sorted({n.resident_code for n, _d, _e in plans}))
            apps = applications_of_many(tx, sorted({n.resident_code for n, d, _e in plans
                                                    if d.card is not CardAction.NONE}))
            rows: list[tuple[Any, ...]] = []
            mine: list[tuple[tuple[str, str, str], Notice, Decision, list[_Effect]]] = []
            for notice, decision, effects in plans:
                key = key_of(notice)
                if key not in ours:
                    continue  # another processor applied it meanwhile
                ours.discard(key)  # a duplicate in the same batch is applied once
                effects = list(effects)
                effects.extend(self._update_registry(notice, decision, batch))
                mine.append((key, notice, decision, effects))
            # the residents first, then the applications and cards: the order the counter
            # (`issuance.counter`) writes them in too, so on PostgreSQL the two never wait
            # for each other's row locks in a cycle
            batch.save(tx)
            for key, notice, decision, effects in mine:
                cards = self._update_card(tx, notice, decision, apps)
                report.cards += len(cards)
                effects.extend(cards)
                rows.extend((*key, target, action, serial, reason, outcome, stamp)
                            for target, action, serial, reason, outcome in effects)
                applied.append((notice, decision))
            if rows:
                write_effects(tx, rows)
            if self.audit_operator is not None and applied:
                append_entry(tx, operator=self.audit_operator, action="notices.apply",
                             subject="notices" if bucket is None else f"bucket:{bucket}",
                             outcome="ok", at=now, detail={
                                 "applied": len(applied),
                                 "revoked": sum(1 for r in rows if r[-2] == "revoked"),
                                 "first": ":".join(key_of(applied[0][0])),
                                 "last": ":".join(key_of(applied[-1][0]))})
        report.applied += len(applied)
        if self.keep_details:
            for notice, decision in applied:
                report.notices.append({"sender": notice.sender,
                                       "source": notice.source.value, "id": notice.id,
                                       **decision.to_json()})

    # -- registry view ----------------------------------------------------------------
    def _update_registry(self, notice: Notice, decision: Decision,
                         batch: _BatchView) -> list[_Effect]:
        resident = batch.residents.get(notice.resident_code)
        if resident is None:
            return []
        target = f"resident:{notice.resident_code}"
        effects: list[_Effect] = []
        updated = resident
        facts = notice.facts
        if notice.kind in FACT_CHANGES:
            # a 附票 notice's address is the address abroad, also when it arrives before
            # the emigration that made the 附票 entry (which then takes it up, see
            # `_with_status`): the domestic address is never set from it
            abroad = notice.source is Source.FUHYO
            for key, value in sorted(facts.items()):
                fact = "address_abroad" if key == "address" and abroad else key
                if not batch.claim(notice, fact):
                    effects.append((target, f"set_{fact}", None, None, "superseded"))
                    continue
                updated = _with_fact(updated, fact, value)
                effects.append((target, f"set_{fact}", None, None, "applied"))
        elif decision.new_status is not None:
            if batch.claim(notice, "status"):
                updated = _with_status(updated, notice, decision, batch)
                effects.append((target, f"set_status_{decision.new_status.value}", None, None,
                                "applied"))
            else:
                effects.append((target, f"set_status_{decision.new_status.value}", None, None,
                                "superseded"))
        if updated != resident:
            batch.put(updated)
        return effects

    def _update_card(self, tx: Transaction, notice: Notice, decision: Decision,
                     apps: dict[str, list[Application]]) -> list[_Effect]:
        """Abolish the cards in hand and cancel the applications in progress; `apps`
        (the batch's applications, read once) follows the changes made here."""
        if decision.card is CardAction.NONE:
            return []
        effects: list[_Effect] = []
        now = self.clock().astimezone(UTC).isoformat()
        mine = apps.get(notice.resident_code, [])
        for i, app in enumerate(list(mine)):
            if app.applied_on > notice.effective_date and notice.kind is not Kind.DEATH:
                continue  # a card applied for after the event (e.g. after returning)
            if app.state in CARD_IN_HAND:
                set_state(tx, app.id, State.ABOLISHED, now=now)
                mine[i] = replace(app, state=State.ABOLISHED)
                effects.extend(_abolish_card(tx, app.id, notice, now))
                effects.append((f"application:{app.id}", f"card_{decision.card.value}", None,
                                None, "abolished"))
            elif app.state in IN_PROGRESS:
                set_state(tx, app.id, State.CANCELLED, now=now)
                mine[i] = replace(app, state=State.CANCELLED)
                effects.extend(_abolish_card(tx, app.id, notice, now))
                effects.append((f"application:{app.id}", "cancel_application", None, None,
                                "cancelled"))
        return effects


def _abolish_card(tx: Transaction, application_id: str, notice: Notice,
                  now: str) -> list[_Effect]:
    """The application's live card (in the holder's hands, or still at the center) is
    abolished in the workflow's records too: no counter serves it again."""
    card = live_card_of(tx, application_id)
    if card is None:
        return []
    put_card(tx, card.serial, application_id, "abolished", now=now,
             note=f"notice {notice.source.value}:{notice.id}"
             + ("" if notice.sender == LOCAL_SENDER else f" from {notice.sender}"))
    return [(f"card:{card.serial}", "abolish_card", None, None, "abolished")]


class _BatchView:
    """The residents and fact dates a batch touches, read once and written once, inside
    the batch's issuance transaction; notices of the batch see each other's changes."""

    def __init__(self, tx: Transaction, residents: dict[str, Resident],
                 facts: dict[tuple[str, str], tuple[str, str, str, str]]) -> None:
        self._tx = tx
        self.residents = residents
        self._loaded = dict(residents)
        self.facts = facts
        self._dirty_residents: dict[str, Resident] = {}
        self._dirty_facts: dict[tuple[str, str], tuple[str, str, str, str]] = {}

    @classmethod
    def load(cls, tx: Transaction, codes: list[str]) -> _BatchView:
        residents: dict[str, Resident] = {}
        facts: dict[tuple[str, str], tuple[str, str, str, str]] = {}
        for row in tx.query_in(f"{_SELECT_RESIDENTS} WHERE r.resident_code IN ({{values}})",
                               codes):
            resident = _resident_from_row(row)
            residents[resident.resident_code] = resident
        for row in tx.query_in("SELECT resident_code, fact, effective_date, source, notice_id,"
                               " sender FROM notice_facts WHERE resident_code IN ({values})",
                               codes):
            facts[(row["resident_code"], row["fact"])] = (
                row["effective_date"], row["source"], row["notice_id"], row["sender"])
        return cls(tx, residents, facts)

    def claim(self, notice: Notice, fact: str) -> bool:
        """Take `fact` for this notice unless a later-ordered notice already set it."""
        mine = (notice.effective_date.isoformat(), notice.source.value, notice.id,
                notice.sender)
        key = (notice.resident_code, fact)
        have = self.facts.get(key)
        if have is not None and have > mine:
            return False
        self.facts[key] = self._dirty_facts[key] = mine
        return True

    def claimed_address_abroad(self, resident_code: str) -> str | None:
        """The address abroad of the notice that last set it (read from that stored
        notice: an address abroad set before the 附票 entry existed lives nowhere else)."""
        have = self.facts.get((resident_code, "address_abroad"))
        if have is None:
            return None
        _date, source, notice_id, sender = have
        row = self._tx.query_one("SELECT payload FROM notices WHERE sender = ? AND source = ?"
                                 " AND id = ?", (sender, source, notice_id))
        if row is None:
            return None
        address = json.loads(row["payload"]).get("facts", {}).get("address")
        return address if isinstance(address, str) else None

    def put(self, resident: Resident) -> None:
        self.residents[resident.resident_code] = resident
        self._dirty_residents[resident.resident_code] = resident

    def save(self, tx: Transaction) -> None:
        write_facts(tx, [(code, fact, *mine) for (code, fact), mine in self._dirty_facts.items()])
        if self._dirty_residents:
            write_residents(tx, [(self._loaded[code], r)
                                 for code, r in self._dirty_residents.items()])


def _with_fact(resident: Resident, fact: str, value: Any) -> Resident:
    if fact == "name":
        return replace(resident, name=value)
    if fact == "address":
        return replace(resident, address=value)
    if fact == "birth_date":
        return replace(resident, birth_date=date.fromisoformat(value))
    if fact == "sex":
        return replace(resident, sex=Sex(int(value)))
    if fact == "address_abroad" and resident.fuhyo is not None:
        return replace(resident, fuhyo=replace(resident.fuhyo, address_abroad=value))
    return resident


def _with_status(resident: Resident, notice: Notice, decision: Decision,
                 batch: _BatchView) -> Resident:
    status = decision.new_status
    assert status is not None
    fuhyo: FuhyoEntry | None = None
    if notice.kind in EMIGRATIONS and resident.nationality is Nationality.JAPANESE:
        old = resident.fuhyo
        municipality = (notice.facts.get("fuhyo_municipality_code")
                        or (old.municipality_code if old else resident.municipality_code))
        abroad = old.address_abroad if old else None
        if "address" in notice.facts:
            # the address abroad is a fact like the others: a later-dated 附票 address
            # change applied first (before this entry existed) keeps its address
            if batch.claim(notice, "address_abroad"):
                abroad = notice.facts["address"]
            else:
                abroad = batch.claimed_address_abroad(notice.resident_code) or abroad
        fuhyo = FuhyoEntry(municipality, abroad, decision.follow_fuhyo)
    return replace(resident, status=status, status_date=notice.effective_date, fuhyo=fuhyo)

