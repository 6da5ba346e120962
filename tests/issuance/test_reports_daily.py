"""`mynacard report daily`: the day's applications, issues (express among them), hand-overs,
activations, revocations by reason, unmatched notices, express lead time against one week
(rule 4.6) and volume against 10,000 a day (rule 4.7). SQLite and PostgreSQL."""

from __future__ import annotations

import csv
import io
import json
from datetime import date
from pathlib import Path

import pytest
from cryptography import x509
from issuance_factories import fixed_clock, resident
from records_support import OPERATOR, Cli, at, certificate, personalise

from issuance.applications.express import ExpressReason
from issuance.applications.intake import take_application
from issuance.applications.rules import ApplicationRequest, State
from issuance.notices.migrations import migrate_notices
from issuance.registry.store import ResidentStore
from issuance.reports.daily import daily_report
from issuance.storage import Database
from issuance.workflow.machine import transition
from pki.store import open_store

DAY = date(2026, 12, 10)


def _apply(db: Database, day: date, *, express: ExpressReason | None = None,
           event: date | None = None, **person: object) -> str:
    p = resident(**person)
    ResidentStore(db).put(p)
    result = take_application(db, ApplicationRequest(
        resident_code=p.resident_code, express=express, express_requested=express is not None,
        event_date=event), operator=OPERATOR, clock=fixed_clock(day))
    assert result.application is not None, result.refusal
    return result.application.id


@pytest.fixture
def day_of_work(db: Database) -> dict[str, str]:
    """On DAY: 2 applications taken; 3 cards issued (2 express: lead 6 and 9 days), one
    handed over and activated; on the day before, one issued (not counted)."""
    apps = {
        "normal": _apply(db, date(2026, 10, 1)),
        "express_fast": _apply(db, DAY.replace(day=4), express=ExpressReason.CARD_LOST,
                               event=date(2026, 12, 1)),
        "express_slow": _apply(db, DAY.replace(day=1), express=ExpressReason.CARD_LOST,
                               event=date(2026, 11, 28)),
        "yesterday": _apply(db, date(2026, 10, 2)),
        "today_1": _apply(db, DAY),
        "today_2": _apply(db, DAY),
    }
    personalise(db, apps["normal"], "200000000000001", DAY,
                certificates=(((1 << 80) + 1, "signing"),))
    personalise(db, apps["express_fast"], "200000000000002", DAY)
    personalise(db, apps["express_slow"], "200000000000003", DAY)
    personalise(db, apps["yesterday"], "200000000000004", date(2026, 12, 9))
    with db.transaction() as tx:
        transition(tx, apps["normal"], State.HANDED_OVER, operator=OPERATOR,
                   action="handover", at=at(DAY, 5))
        transition(tx, apps["normal"], State.ACTIVATED, operator=OPERATOR,
                   action="activate", at=at(DAY, 6))
        tx.execute("UPDATE issued_certificates SET status = 'revoked', updated_at = ?",
                   (at(DAY, 7).isoformat(),))
    migrate_notices(db)
    with db.transaction() as tx:
        for n, received in enumerate((at(DAY, 8), at(date(2026, 12, 1)))):
            tx.execute("INSERT INTO notices (sender, source, id, kind, resident_code,"
                       " effective_date, received_at, payload, state) VALUES"
                       " ('local', 'juki', ?, 'move', '99999999999', '2026-12-01', ?, '{}',"
                       " 'unmatched')", (f"N{n}", received.isoformat()))
    return apps


def test_the_days_counts(db: Database, day_of_work: dict[str, str]) -> None:
    with db.transaction() as tx:
        report = daily_report(tx, DAY)
    data = report.to_json()
    assert (data["applications"], data["issued"], data["express_issued"],
            data["handed_over"], data["activated"]) == (2, 3, 2, 1, 1)
    assert data["revoked"] == {"revoked": 1} and data["revocation_source"] == "issuance records"
    assert (data["unmatched_notices"], data["unmatched_received"]) == (2, 1)
    assert data["express_lead_time"] == {"target_days": 7, "cards": 2, "median_days": 7.5,
                                         "max_days": 9, "over_target": 1}
    assert data["volume"] == {"capacity_per_day": 10_000, "issued": 3, "share": 0.0003,
                              "over_capacity": False}
    with db.transaction() as tx:
        before = daily_report(tx, date(2026, 12, 9)).to_json()
    assert (before["issued"], before["express_issued"], before["applications"]) == (1, 0, 0)


def test_the_japan_day_ends_at_15_00_utc(db: Database) -> None:
    app = _apply(db, DAY)
    personalise(db, app, "200000000000009", DAY)  # 03:00 UTC = noon JST on DAY
    with db.transaction() as tx:
        transition(tx, app, State.HANDED_OVER, operator=OPERATOR, action="handover",
                   at=at(DAY, 15))  # 00:00 JST the next day
    with db.transaction() as tx:
        assert daily_report(tx, DAY).handed_over == 0
        assert daily_report(tx, DAY.replace(day=11)).handed_over == 1


@pytest.fixture
def cli(tmp_path: Path, db_url: str, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> Cli:
    monkeypatch.delenv("MYNACARD_OPERATOR", raising=False)
    home = tmp_path / "home"
    home.mkdir()
    return Cli(home, db_url, capsys, DAY)


def test_report_daily_on_the_command_line(cli: Cli, day_of_work: dict[str, str]) -> None:
    # with the certificate store: revocations by RFC 5280 reason
    with open_store(cli.home / "store.sqlite") as store:
        for serial, reason in (((1 << 80) + 1, x509.ReasonFlags.key_compromise),
                               ((1 << 80) + 2, x509.ReasonFlags.affiliation_changed),
                               ((1 << 80) + 3, x509.ReasonFlags.affiliation_changed)):
            store.add(certificate(serial, at(date(2030, 1, 1))), hierarchy="sign",
                      profile="signing", holder_id="x", shard=0, issued_at=at(DAY, 1))
            store.revoke(serial, reason=reason, at=at(DAY, 4))
        store.add(certificate((1 << 80) + 4, at(date(2030, 1, 1))), hierarchy="auth",
                  profile="user-authentication", holder_id="x", shard=0, issued_at=at(DAY, 1))
        store.hold((1 << 80) + 4, at=at(DAY, 4))
    code, out, err = cli("report", "daily", "--json", operator=None)
    assert code == 0, err
    data = json.loads(out)
    assert data["date"] == DAY.isoformat() and data["issued"] == 3
    assert data["revoked"] == {"affiliationChanged": 2, "certificateHold": 1,
                               "keyCompromise": 1}
    assert data["revoked_total"] == 4 and data["revocation_source"] == "certificate store"
    code, out, _ = cli("report", "daily", "--date", "2026-12-10", "--csv", operator=None)
    table = dict(csv.reader(io.StringIO(out)))
    assert code == 0 and table["metric"] == "value" and table["issued"] == "3"
    assert table["revoked.keyCompromise"] == "1" and table["express_lead_time.over_target"] == "1"
    code, out, _ = cli("report", "daily", operator=None)
    assert code == 0 and "cards issued" in out and "0.03%" in out
    code, out, err = cli("report", "daily", "--json", "--store",
                         str(cli.home / "none.sqlite"), operator=None)
    assert code == 3 and out == "" and len(err.strip().splitlines()) == 1  # the store named
    (cli.home / "store.sqlite").unlink()  # a home without certificates yet
    code, out, _ = cli("report", "daily", "--date", "2026-12-09", "--json", operator=None)
    assert code == 0 and json.loads(out)["revocation_source"] == "issuance records"
