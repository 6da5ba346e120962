"""`mynacard report expiring` (rule 1.7): certificates and cards about to expire, one
Japanese letter per holder as PDF and a mail-merge CSV; and the hand-over notice
(交付通知書) of a personalised card. SQLite and PostgreSQL."""

from __future__ import annotations

import csv
import io
import json
import stat
from datetime import date
from pathlib import Path

import pytest
from issuance_factories import fixed_clock, resident
from records_support import OPERATOR, Cli, at, certificate, pages, pdf_text, personalise

from issuance.applications.intake import take_application
from issuance.applications.rules import ApplicationRequest
from issuance.registry.store import ResidentStore
from issuance.reports.expiring import by_holder, csv_text, expiring
from issuance.storage import Database, open_database
from pki.store import open_store

TODAY = date(2026, 12, 3)
YOSHI = "\U00020bb7"
SOON, LATER, FAR = date(2027, 1, 20), date(2027, 2, 28), date(2027, 6, 1)


def _apply(db: Database, day: date, **person: object) -> tuple[str, str]:
    p = resident(**person)
    ResidentStore(db).put(p)
    result = take_application(db, ApplicationRequest(resident_code=p.resident_code),
                              operator=OPERATOR, clock=fixed_clock(day))
    assert result.application is not None, result.refusal
    return p.resident_code, result.application.id


@pytest.fixture
def holders(db: Database, tmp_path: Path) -> dict[str, str]:
    """吉田 (name with 𠮷): signing cert expiring SOON, user cert LATER; 佐藤: card expiring
    (a 17-year-old's card runs to the 5th birthday); 高田: certificate FAR away; 田中 has
    died (no letter)."""
    yoshida, app1 = _apply(db, date(2022, 1, 5), name=f"{YOSHI}田　一郎",
                           address="東京都千代田区千代田１－１")
    sato, app2 = _apply(db, date(2022, 1, 26), name="佐藤　花子",
                        birth_date=date(2005, 1, 25), address="大阪府大阪市北区１")
    takada, app3 = _apply(db, date(2022, 1, 5), name="高田　三郎")
    tanaka, app4 = _apply(db, date(2022, 1, 5), name="田中　四郎")
    s = 1 << 90
    personalise(db, app1, "300000000000001", date(2022, 1, 20),
                certificates=((s + 1, "signing"), (s + 2, "user_authentication"),
                              (s + 5, "signing")))
    personalise(db, app2, "300000000000002", date(2022, 1, 27))
    personalise(db, app3, "300000000000003", date(2022, 1, 20),
                certificates=((s + 3, "signing"),))
    personalise(db, app4, "300000000000004", date(2022, 1, 20),
                certificates=((s + 4, "signing"),))
    with db.transaction() as tx:
        tx.execute("UPDATE issued_certificates SET status = 'replaced' WHERE serial = ?",
                   (format(s + 5, "x"),))
        tx.execute("UPDATE residents SET status = 'deceased' WHERE resident_code = ?",
                   (tanaka,))
    with open_store(tmp_path / "home" / "store.sqlite") as store:
        for serial, holder, profile, last in (
                (s + 1, yoshida, "signing", SOON), (s + 2, yoshida, "user-authentication", LATER),
                (s + 3, takada, "signing", FAR), (s + 4, tanaka, "signing", SOON),
                (s + 5, yoshida, "signing", SOON), ((1 << 90) + 99, "unknown", "signing", SOON)):
            # notAfter is 23:59:59 JST on the last day
            store.add(certificate(serial, at(last, 15).replace(hour=14, minute=59, second=59)),
                      hierarchy="sign" if profile == "signing" else "auth", profile=profile,
                      holder_id=holder, shard=0, issued_at=at(date(2022, 1, 20)))
    return {"yoshida": yoshida, "sato": sato, "takada": takada, "tanaka": tanaka}


@pytest.fixture
def cli(tmp_path: Path, db_url: str, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> Cli:
    monkeypatch.delenv("MYNACARD_OPERATOR", raising=False)
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    return Cli(home, db_url, capsys, TODAY)


def test_what_expires_and_who_gets_a_letter(db: Database, holders: dict[str, str],
                                            tmp_path: Path) -> None:
    from pki.store import open_readonly_store

    with open_readonly_store(tmp_path / "home" / "store.sqlite") as store, \
            db.transaction() as tx:
        items = expiring(tx, store, today=TODAY, within_days=90)
        notices = by_holder(tx, items)
        assert expiring(tx, None, today=TODAY, within_days=90) == [
            i for i in items if i.kind == "card"]
    assert [(i.kind, i.resident_code, i.expires_on) for i in items] == sorted([
        ("signing", holders["yoshida"], SOON), ("signing", holders["tanaka"], SOON),
        ("card", holders["sato"], date(2027, 1, 25)),
        ("user_authentication", holders["yoshida"], LATER)], key=lambda t: (t[2], t[1], t[0]))
    assert [n.resident_code for n in notices] == [holders["yoshida"], holders["sato"]]
    yoshida = notices[0]
    assert yoshida.name == "吉田　一郎"  # as on the certificate (代替文字)
    assert (yoshida.expiry_of("signing"), yoshida.expiry_of("user_authentication"),
            yoshida.expiry_of("card")) == (SOON, LATER, None)
    table = list(csv.DictReader(io.StringIO(csv_text(notices))))
    assert [r["resident_code"] for r in table] == [holders["yoshida"], holders["sato"]]
    assert table[1]["card_expiry"] == "2027-01-25" and table[1]["signing_expiry"] == ""


def test_report_expiring_writes_letters_and_csv(cli: Cli, holders: dict[str, str],
                                                tmp_path: Path) -> None:
    pdf, table = tmp_path / "out" / "notices.pdf", tmp_path / "out" / "notices.csv"
    pdf.parent.mkdir()
    code, _, err = cli("report", "expiring", "--within", "90d", "--pdf", str(pdf),
                       operator=None)
    assert code == 2 and "--operator" in err and not pdf.exists()
    code, out, err = cli("report", "expiring", "--within", "90d", "--pdf", str(pdf),
                         "--csv", str(table), "--json")
    assert code == 0, err
    data = json.loads(out)
    assert len(data["items"]) == 4 and len(data["holders"]) == 2
    for f in (pdf, table):
        assert stat.S_IMODE(f.stat().st_mode) == 0o600
    data_pdf = pdf.read_bytes()
    assert pages(data_pdf) == 2
    text = pdf_text(data_pdf)
    assert "吉田　一郎　様" in text and "佐藤　花子　様" in text
    assert "マイナンバーカード・電子証明書の有効期限のお知らせ" not in text
    assert "電子証明書の有効期限のお知らせ" in text
    assert "マイナンバーカードの有効期限のお知らせ" in text
    assert "令和9年1月20日まで" in text and "令和9年2月28日まで" in text
    assert any("3か月前から" in line for line in text)
    assert YOSHI not in "".join(text)
    rows = list(csv.reader(io.StringIO(table.read_text(encoding="utf-8"))))
    assert rows[0][0] == "resident_code" and len(rows) == 3
    code, _, err = cli("report", "expiring", "--pdf", str(pdf))
    assert code == 1 and "exists" in err  # never overwritten
    code, out, _ = cli("report", "expiring", "--within", "50d")
    assert code == 0 and "2 item(s) of 1 holder(s)" in out
    empty = tmp_path / "out" / "none.pdf"
    code, out, err = cli("report", "expiring", "--within", "1d", "--pdf", str(empty), "--json")
    assert code == 0 and json.loads(out)["pdf"] is None and not empty.exists()
    assert "not created" in err
    for bad in ("-1d", "1y", "900d"):
        with pytest.raises(SystemExit):
            cli("report", "expiring", "--within", bad)


def test_the_hand_over_notice(cli: Cli, db_url: str, tmp_path: Path) -> None:
    with open_database(db_url) as db:
        _, app = _apply(db, date(2026, 11, 1), name=f"{YOSHI}野　花子",
                            birth_date=date(2015, 4, 1))
        _, other = _apply(db, date(2026, 11, 1))
        personalise(db, app, "400000000000001", date(2026, 11, 25),
                    certificates=(((1 << 95) + 1, "user_authentication"),))
    out_file = tmp_path / "notice.pdf"
    code, _, err = cli("applications", "notice", other, "--out", str(out_file))
    assert code == 1 and "rule 4.1" in err and not out_file.exists()
    code, out, err = cli("applications", "notice", app, "--out", str(out_file))
    assert code == 0, err
    assert stat.S_IMODE(out_file.stat().st_mode) == 0o600
    text = pdf_text(out_file.read_bytes())
    assert "個人番号カード交付通知書" in text and "吉野　花子　様" in text
    assert app in text and "400000000000001" in text and "利用者証明用電子証明書" in text
    assert any("法定代理人" in line for line in text)  # an 11-year-old comes with one
    code, _, err = cli("applications", "notice", app, "--out", str(out_file))
    assert code == 1 and "exists" in err
    every = tmp_path / "every.pdf"
    code, out, _ = cli("applications", "notice", "--all-ready", "--out", str(every), "--json")
    assert code == 0 and json.loads(out)["applications"] == [app] and pages(every.read_bytes()) == 1
    code, _, err = cli("applications", "notice", "--all-ready", app, "--out", str(every))
    assert code == 2
    with open_database(db_url) as db, db.transaction() as tx:  # the notice changes nothing
        assert tx.query_one("SELECT state FROM applications WHERE id = ?",
                            (app,)) == {"state": "personalised"}
