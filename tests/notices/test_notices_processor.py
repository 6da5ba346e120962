"""Applying notices against real databases and a real certificate store."""

from __future__ import annotations

import datetime as dt
import hashlib
import itertools
from typing import Any

import pytest
from cryptography import x509
from notices_support import (
    FACTS_FOR,
    NOW,
    clock,
    emigrant,
    issue,
    issue_pair,
    line,
    notice,
    resident,
)

from issuance.notices.certificates import CertificateGateway
from issuance.notices.intake import NoticeIntake
from issuance.notices.processor import NoticeProcessor
from issuance.notices.queries import effects_of, notice_counts, notice_state
from issuance.registry.model import Nationality, Resident, ResidentStatus
from issuance.registry.store import ResidentStore
from issuance.storage import Database
from issuance.workflow.migrations import migrate_workflow
from issuance.workflow.records import get_card, put_card
from pki.profiles import Profile
from pki.store import CertificateStore

CESSATION = x509.ReasonFlags.cessation_of_operation
AFFILIATION = x509.ReasonFlags.affiliation_changed
KINDS = ["death", "record_deleted", "emigration_continued_use",
         "emigration_without_continued_use", *FACTS_FOR]


def add_card(db: Database, code: str, *, state: str = "activated",
             applied_on: str = "2025-03-01") -> str:
    app_id = f"app-{code}-{applied_on}"
    with db.transaction() as tx:
        tx.execute(
            "INSERT INTO applications (id, resident_code, applied_on, created_at, updated_at,"
            " state, photo_less, signing_certificate, user_certificate, validity_years,"
            " card_expiry, operator) VALUES (?, ?, ?, ?, ?, ?, 0, 1, 1, 10, ?, 'test')",
            (app_id, code, applied_on, applied_on, applied_on, state, "2035-07-01"))
    migrate_workflow(db)
    with db.transaction() as tx:  # the card the workflow issued for it
        put_card(tx, card_serial_of(app_id), app_id, "active", now=applied_on)
    return app_id


def card_serial_of(app_id: str) -> str:
    return f"{int(hashlib.sha256(app_id.encode()).hexdigest(), 16) % 10**15:015d}"


def card_row_state(db: Database, app_id: str) -> str:
    with db.transaction() as tx:
        row = get_card(tx, card_serial_of(app_id))
    assert row is not None
    return row.state


def card_state(db: Database, app_id: str) -> str:
    with db.transaction() as tx:
        row = tx.query_one("SELECT state FROM applications WHERE id = ?", (app_id,))
    assert row is not None
    return str(row["state"])


def ingest(db: Database, certs: CertificateGateway, *notices: dict[str, Any],
           now: dt.datetime = NOW) -> Any:
    NoticeIntake(db, clock=clock(now)).accept_lines([line(n) for n in notices])
    return NoticeProcessor(db, certs, clock=clock(now)).process()


def status(store: CertificateStore, serial: int) -> tuple[str, Any, str | None]:
    rec = store.get(serial)
    return rec.status.value, rec.reason, rec.cause


@pytest.mark.parametrize("source", ["juki", "fuhyo"])
@pytest.mark.parametrize("kind", KINDS)
def test_each_rule_row_end_to_end(kind: str, source: str, db: Database,
                                  certs: CertificateGateway, store: CertificateStore) -> None:
    person = emigrant() if source == "fuhyo" else resident()
    ResidentStore(db).put(person)
    sign, auth = issue_pair(store, person.resident_code)
    app = add_card(db, person.resident_code)
    n = notice(kind, person.resident_code, source=source, nid=f"{kind}-{source}")
    report = ingest(db, certs, n)
    cause = f"notice:{source}:{n['id']}"
    assert report.applied == 1 and notice_state(db, source, n["id"]) == "applied"
    after = ResidentStore(db).get(person.resident_code)
    assert after is not None
    if kind in ("death", "record_deleted"):
        assert status(store, sign) == ("revoked", CESSATION, cause)
        assert status(store, auth) == ("revoked", CESSATION, cause)
        assert card_state(db, app) == "abolished" and card_row_state(db, app) == "abolished"
        assert after.status is (ResidentStatus.DECEASED if kind == "death"
                                else ResidentStatus.DELETED)
        assert after.status_date == dt.date(2026, 6, 1) and after.fuhyo is None
    elif kind in FACTS_FOR:
        assert status(store, sign) == ("revoked", AFFILIATION, cause)
        assert status(store, auth) == ("good", None, None)
        assert card_state(db, app) == "activated" and card_row_state(db, app) == "active"
        assert after.status is person.status
        changed = {k: v for k, v in after.to_row().items() if v != person.to_row()[k]}
        expected = dict(FACTS_FOR[kind])
        if source == "fuhyo" and "address" in expected:
            expected = {"fuhyo_address": expected["address"]}
        assert changed == expected
    elif kind == "emigration_continued_use":
        assert status(store, sign) == ("revoked", CESSATION, cause)
        assert store.get(sign).revoked_at == dt.datetime(2026, 5, 31, 15, 0, tzinfo=dt.UTC)
        assert status(store, auth) == ("good", None, None)
        assert card_state(db, app) == "activated"
        assert after.status is ResidentStatus.EMIGRATED
        assert after.fuhyo is not None and after.fuhyo.continued_use
    else:
        assert status(store, sign) == ("revoked", CESSATION, cause)
        assert status(store, auth) == ("revoked", CESSATION, cause)
        assert store.get(auth).revoked_at == dt.datetime(2026, 5, 31, 15, 0, tzinfo=dt.UTC)
        assert card_state(db, app) == "abolished" and card_row_state(db, app) == "abolished"
        assert after.status is ResidentStatus.EMIGRATED
        assert after.fuhyo is not None and not after.fuhyo.continued_use
    effects = effects_of(db, source, n["id"])
    revokes = [e for e in effects if e["action"].startswith("revoke_")]
    assert all(e["outcome"] == "revoked" for e in revokes)
    assert {e["serial"] for e in revokes} == {
        format(s, "x") for s in (sign, auth) if store.get(s).status.value == "revoked"}


def test_foreign_national_cannot_continue_use(db: Database, certs: CertificateGateway,
                                              store: CertificateStore) -> None:
    person = resident(nationality=Nationality.FOREIGN)
    ResidentStore(db).put(person)
    sign, auth = issue_pair(store, person.resident_code)
    ingest(db, certs, notice("emigration_continued_use", person.resident_code))
    assert store.get(sign).status.value == store.get(auth).status.value == "revoked"
    after = ResidentStore(db).get(person.resident_code)
    assert after is not None and after.fuhyo is None


def test_certificate_issued_after_the_effective_date_survives(
        db: Database, certs: CertificateGateway, store: CertificateStore) -> None:
    person = resident()
    ResidentStore(db).put(person)
    old_sign, auth = issue_pair(store, person.resident_code)
    new_sign = issue(store, person.resident_code, Profile.SIGNING,
                     issued_at=dt.datetime(2026, 6, 10, 2, 0, tzinfo=dt.UTC))
    old_card = add_card(db, person.resident_code)
    ingest(db, certs, notice("address_change", person.resident_code,
                             effective_date="2026-06-01"))
    assert store.get(old_sign).status.value == "revoked"
    assert store.get(new_sign).status.value == "good"
    assert store.get(auth).status.value == "good"
    assert card_state(db, old_card) == "activated"


def test_returnee_keeps_new_card_when_old_emigration_notice_arrives_late(
        db: Database, certs: CertificateGateway, store: CertificateStore) -> None:
    person = resident()
    ResidentStore(db).put(person)
    new_sign, new_auth = issue_pair(store, person.resident_code,
                                    issued_at=dt.datetime(2026, 9, 1, tzinfo=dt.UTC))
    new_card = add_card(db, person.resident_code, applied_on="2026-08-01")
    ingest(db, certs, notice("emigration_without_continued_use", person.resident_code,
                             effective_date="2026-03-01"))
    assert store.get(new_sign).status.value == store.get(new_auth).status.value == "good"
    assert card_state(db, new_card) == "activated"


def _end_state(db: Database, store: CertificateStore, person: Resident,
               serials: list[int]) -> tuple[Any, ...]:
    row = ResidentStore(db).get(person.resident_code)
    assert row is not None
    facts = {k: v for k, v in row.to_row().items() if k not in ("resident_code", "my_number")}
    return (facts, [(store.get(s).status.value, store.get(s).reason) for s in serials])


def test_order_tolerance_every_arrival_order_gives_the_same_end_state(
        db: Database, certs: CertificateGateway, store: CertificateStore) -> None:
    script = [
        ("name_change", "2026-05-01", {"name": "佐藤 花子"}),
        ("address_change", "2026-06-01", {"address": "大阪府大阪市北区梅田1丁目1番1号"}),
        ("address_change", "2026-07-01", {"address": "福岡県福岡市中央区天神1丁目1番1号"}),
        ("emigration_continued_use", "2026-08-01", {"address": "カナダ トロント"}),
    ]
    states = []
    for order in itertools.permutations(range(len(script))):
        person = resident()
        ResidentStore(db).put(person)
        sign, auth = issue_pair(store, person.resident_code)
        # issued between the two moves: the late 06-01 notice must not revoke it,
        # the 07-01 one must
        mid = issue(store, person.resident_code, Profile.SIGNING,
                    issued_at=dt.datetime(2026, 6, 15, 1, 0, tzinfo=dt.UTC))
        for i in order:  # one notice per batch, in this arrival order
            kind, day, facts = script[i]
            ingest(db, certs, notice(kind, person.resident_code, effective_date=day,
                                     facts=facts, nid=f"{person.resident_code}-{i}"))
        states.append(_end_state(db, store, person, [sign, auth, mid]))
    # the registry view and which certificates are revoked never depend on arrival order
    assert all(f == states[0][0] for f, _ in states), "arrival order changed the registry"
    assert all([st for st, _ in c] == [st for st, _ in states[0][1]] for _, c in states)
    # the store keeps the first revocation: its reason is that of the first notice applied
    facts, statuses = states[0]
    assert facts["name"] == "佐藤 花子"
    assert facts["address"] == "福岡県福岡市中央区天神1丁目1番1号"
    assert facts["status"] == "emigrated" and facts["fuhyo_address"] == "カナダ トロント"
    assert statuses[1] == ("good", None)
    assert statuses[0][0] == statuses[2][0] == "revoked"


def test_order_tolerance_of_an_emigration_and_a_later_fuhyo_address_change(
        db: Database, certs: CertificateGateway, store: CertificateStore) -> None:
    """The 附票 network's address change (dated after the emigration) may arrive first,
    before the 附票 entry exists: it never sets the domestic address, and the emigration
    applied later keeps the newer address abroad."""
    script = [
        ("emigration_continued_use", "juki", "2026-06-01",
         {"address": "アメリカ合衆国 ニューヨーク州"}),
        ("address_change", "fuhyo", "2026-07-01", {"address": "アメリカ合衆国 カリフォルニア州"}),
        ("name_change", "fuhyo", "2026-08-01", {"name": "佐藤 花子"}),
    ]
    states = []
    for order in itertools.permutations(range(len(script))):
        person = resident()
        ResidentStore(db).put(person)
        serials = list(issue_pair(store, person.resident_code))
        for i in order:
            kind, source, day, facts = script[i]
            ingest(db, certs, notice(kind, person.resident_code, source=source,
                                     effective_date=day, facts=facts,
                                     nid=f"{person.resident_code}-{i}"))
        states.append(_end_state(db, store, person, serials))
    assert all(f == states[0][0] for f, _ in states), [f for f, _ in states]
    facts = states[0][0]
    assert facts["address"] == resident().address  # the domestic address, untouched
    assert facts["status"] == "emigrated"
    assert facts["fuhyo_address"] == "アメリカ合衆国 カリフォルニア州"
    assert facts["name"] == "佐藤 花子"


def test_order_tolerance_with_changes_only_includes_reasons(
        db: Database, certs: CertificateGateway, store: CertificateStore) -> None:
    script = [("address_change", "2026-06-01", {"address": "大阪府大阪市北区梅田1丁目1番1号"}),
              ("address_change", "2026-07-01", {"address": "福岡県福岡市中央区天神1丁目1番1号"}),
              ("name_change", "2026-07-01", {"name": "佐藤 花子"})]
    states = []
    for order in itertools.permutations(range(len(script))):
        person = resident()
        ResidentStore(db).put(person)
        serials = list(issue_pair(store, person.resident_code))
        serials.append(issue(store, person.resident_code, Profile.SIGNING,
                             issued_at=dt.datetime(2026, 6, 15, 1, 0, tzinfo=dt.UTC)))
        serials.append(issue(store, person.resident_code, Profile.SIGNING,
                             issued_at=dt.datetime(2026, 7, 2, 1, 0, tzinfo=dt.UTC)))
        for i in order:
            kind, day, facts = script[i]
            ingest(db, certs, notice(kind, person.resident_code, effective_date=day,
                                     facts=facts, nid=f"{person.resident_code}-{i}"))
        states.append(_end_state(db, store, person, serials))
    assert all(s == states[0] for s in states)
    assert states[0][1] == [("revoked", AFFILIATION), ("good", None), ("revoked", AFFILIATION),
                            ("good", None)]


def test_a_batch_is_applied_in_effective_date_order(db: Database, certs: CertificateGateway,
                                                    store: CertificateStore) -> None:
    person = resident()
    ResidentStore(db).put(person)
    sign, _ = issue_pair(store, person.resident_code)
    late = notice("death", person.resident_code, effective_date="2026-07-01", nid="late")
    early = notice("name_change", person.resident_code, effective_date="2026-06-01",
                   nid="early")
    ingest(db, certs, late, early)  # arrive reversed, in one batch
    assert status(store, sign) == ("revoked", AFFILIATION, "notice:juki:early")
    assert [e["outcome"] for e in effects_of(db, "juki", "late")
            if e["serial"] == format(sign, "x")] == ["already_revoked"]


def test_future_effective_date_waits(db: Database, certs: CertificateGateway,
                                     store: CertificateStore) -> None:
    person = resident()
    ResidentStore(db).put(person)
    sign, _ = issue_pair(store, person.resident_code)
    report = ingest(db, certs, notice("emigration_continued_use", person.resident_code,
                                      effective_date="2026-12-01"))
    assert report.applied == 0 and report.waiting_until_effective == 1
    assert store.get(sign).status.value == "good"
    assert notice_counts(db, today="2026-11-22")["not_yet_effective"] == 1
    later = dt.datetime(2026, 12, 1, 0, 0, tzinfo=dt.UTC)  # 09:00 JST on the day
    assert NoticeProcessor(db, certs, clock=clock(later)).process().applied == 1
    assert store.get(sign).status.value == "revoked"


def test_processing_twice_changes_nothing(db: Database, certs: CertificateGateway,
                                          store: CertificateStore) -> None:
    person = resident()
    ResidentStore(db).put(person)
    issue_pair(store, person.resident_code)
    n = notice("death", person.resident_code)
    ingest(db, certs, n)
    before = effects_of(db, "juki", n["id"])
    again = ingest(db, certs, n)
    assert again.applied == 0 and effects_of(db, "juki", n["id"]) == before


def test_unmatched_notice_is_applied_once_the_resident_is_loaded(
        db: Database, certs: CertificateGateway, store: CertificateStore) -> None:
    person = resident()
    sign, auth = issue_pair(store, person.resident_code)
    n = notice("death", person.resident_code)
    assert ingest(db, certs, n).applied == 0
    assert notice_state(db, "juki", n["id"]) == "unmatched"
    ResidentStore(db).put(person)
    report = NoticeProcessor(db, certs, clock=clock()).process()
    assert (report.rematched, report.applied) == (1, 1)
    assert store.get(sign).status.value == store.get(auth).status.value == "revoked"


def test_certificate_revoked_earlier_for_another_cause_keeps_its_reason(
        db: Database, certs: CertificateGateway, store: CertificateStore) -> None:
    person = resident()
    ResidentStore(db).put(person)
    sign, auth = issue_pair(store, person.resident_code)
    store.revoke(sign, reason=x509.ReasonFlags.key_compromise, cause="lost card",
                 at=dt.datetime(2026, 1, 1, tzinfo=dt.UTC))
    n = notice("death", person.resident_code)
    ingest(db, certs, n)
    assert status(store, sign) == ("revoked", x509.ReasonFlags.key_compromise, "lost card")
    outcomes = {e["serial"]: e["outcome"] for e in effects_of(db, "juki", n["id"])
                if e["serial"]}
    assert outcomes == {format(sign, "x"): "already_revoked", format(auth, "x"): "revoked"}


def test_notices_of_one_batch_see_each_others_revocations(
        db: Database, certs: CertificateGateway, store: CertificateStore) -> None:
    # batches grow 1, 2, ...: the first notice goes alone, the next two share a batch
    other, person = resident(), resident()
    ResidentStore(db).put(other)
    ResidentStore(db).put(person)
    issue_pair(store, other.resident_code)
    sign, auth = issue_pair(store, person.resident_code)
    first = notice("name_change", other.resident_code, effective_date="2026-05-01",
                   facts={"name": "佐藤 花子"})
    death = notice("death", person.resident_code, effective_date="2026-06-01", nid="d")
    deleted = notice("record_deleted", person.resident_code, effective_date="2026-06-02",
                     nid="x")
    report = ingest(db, certs, deleted, death, first)
    assert (report.applied, report.revoked, report.already_revoked) == (3, 3, 2)
    for serial in (sign, auth):
        assert status(store, serial) == ("revoked", x509.ReasonFlags.cessation_of_operation,
                                         "notice:juki:d")
        assert store.get(serial).status_version == 1  # revoked once, not twice
    outcome = {(nid, e["serial"]): e["outcome"] for nid in ("d", "x")
               for e in effects_of(db, "juki", nid) if e["serial"]}
    assert outcome == {("d", format(sign, "x")): "revoked", ("d", format(auth, "x")): "revoked",
                       ("x", format(sign, "x")): "already_revoked",
                       ("x", format(auth, "x")): "already_revoked"}


def test_long_lived_processor_rematches_only_after_a_registry_load(
        db: Database, certs: CertificateGateway, store: CertificateStore,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A server's processor makes a pass per notice: the unmatched backlog is probed
    again only when residents were loaded since, and then the load is seen at once."""
    person = resident()
    sign, auth = issue_pair(store, person.resident_code)
    n = notice("death", person.resident_code)
    NoticeIntake(db, clock=clock(NOW)).accept_lines([line(n)])
    processor = NoticeProcessor(db, certs, clock=clock())
    assert processor.process().applied == 0  # its first pass re-matches: nobody to match
    assert notice_state(db, "juki", n["id"]) == "unmatched"
    with db.transaction() as tx:
        tx_class = type(tx)
    statements: list[str] = []
    original = tx_class.execute

    def spy(self: Any, sql: str, params: Any = ()) -> int:
        statements.append(sql)
        return int(original(self, sql, params))

    monkeypatch.setattr(tx_class, "execute", spy)
    idle = processor.process()
    assert (idle.rematched, idle.applied) == (0, 0)
    assert not [s for s in statements if "'unmatched'" in s]
    assert notice_state(db, "juki", n["id"]) == "unmatched"
    ResidentStore(db).put(person)  # the registry load moves the counter
    statements.clear()
    report = processor.process()
    assert (report.rematched, report.applied) == (1, 1)
    assert [s for s in statements if "'unmatched'" in s]
    assert store.get(sign).status.value == store.get(auth).status.value == "revoked"
    assert processor.process().rematched == 0  # nothing loaded since


def _blocked_on_a_row_lock(store_url: str, backend: str, deadline: float = 20.0) -> None:
    """Wait until another connection waits for a row lock (PostgreSQL), so the race is
    the one meant; SQLite's BEGIN IMMEDIATE makes the other writer wait for the commit."""
    import time

    if backend != "postgresql":
        time.sleep(0.3)
        return
    import psycopg

    end = time.monotonic() + deadline
    with psycopg.connect(store_url, autocommit=True) as conn:
        while time.monotonic() < end:
            row = conn.execute("SELECT count(*) FROM pg_stat_activity WHERE"
                               " wait_event_type = 'Lock' AND datname = current_database()"
                               ).fetchone()
            if row and row[0] > 0:
                return
            time.sleep(0.02)
    raise AssertionError("the second connection never waited for the row")


@pytest.mark.parametrize("op", ["hold", "revoke"])
def test_a_hold_or_revocation_racing_a_notice_never_overwrites_its_revocation(
        op: str, backend: str, certs: CertificateGateway, store: CertificateStore,
        store_url: str) -> None:
    """The processor revokes a certificate for a death notice while, on another
    connection, the counter puts it on hold (a loss reported) or revokes it: whoever
    commits second sees the first revocation and changes nothing (PostgreSQL's READ
    COMMITTED once let the second overwrite status, reason and cause)."""
    import threading

    from issuance.notices.certificates import Reason
    from pki.store import open_store

    serial = issue(store, "12345678901", Profile.SIGNING)
    counter = open_store(store_url)
    outcome: dict[str, Any] = {}

    def at_the_counter() -> None:
        try:
            if op == "hold":
                outcome["changed"] = counter.hold(serial, cause="loss reported", at=NOW)
            else:
                outcome["changed"] = counter.revoke(
                    serial, reason=x509.ReasonFlags.key_compromise, cause="counter",
                    at=NOW + dt.timedelta(days=3))
        except BaseException as exc:  # reported by the assertion below
            outcome["error"] = exc

    try:
        with certs.transaction():
            changed = certs.revoke_many([(serial, Reason.CESSATION_OF_OPERATION,
                                          "notice:juki:DEATH-1", NOW)])
            thread = threading.Thread(target=at_the_counter)
            thread.start()
            _blocked_on_a_row_lock(store_url, backend)
        thread.join(30)
    finally:
        counter.close()
    assert not thread.is_alive()
    assert "error" not in outcome, outcome
    assert changed == [True]
    assert outcome["changed"] is False
    record = store.get(serial)
    assert record.status.value == "revoked"
    assert record.cause == "notice:juki:DEATH-1"
    assert record.reason is CESSATION


def test_a_counter_step_and_a_death_notice_on_one_holder_never_deadlock(
        db: Database, db_url: str, backend: str, certs: CertificateGateway,
        store: CertificateStore) -> None:
    """The counter writes a resident, then the application (an emigration, say) while the
    processor applies a death of the same holder: the processor writes the residents
    before the applications and cards too, so it waits for the counter instead of
    holding the application the counter needs next (PostgreSQL once found a deadlock
    and aborted one of the two)."""
    import threading

    from issuance.storage import open_database

    person = resident()
    ResidentStore(db).put(person)
    issue_pair(store, person.resident_code)
    app_id = add_card(db, person.resident_code)
    NoticeIntake(db, clock=clock()).accept_lines([line(notice("death", person.resident_code))])
    outcome: dict[str, Any] = {}

    def processor() -> None:
        conn = open_database(db_url)
        try:
            outcome["report"] = NoticeProcessor(conn, certs, clock=clock()).process()
        except BaseException as exc:  # reported by the assertions
            outcome["error"] = exc
        finally:
            conn.close()

    counter = open_database(db_url)
    try:
        with counter.transaction() as tx:
            tx.execute("UPDATE residents SET name = name WHERE resident_code = ?",
                       (person.resident_code,))
            thread = threading.Thread(target=processor)
            thread.start()
            _blocked_on_a_row_lock(db_url, backend)  # the processor waits for the resident
            tx.execute("UPDATE applications SET updated_at = updated_at WHERE id = ?",
                       (app_id,))
        thread.join(60)
    finally:
        counter.close()
    assert not thread.is_alive()
    assert "error" not in outcome, outcome
    assert outcome["report"].applied == 1 and outcome["report"].cards >= 1
