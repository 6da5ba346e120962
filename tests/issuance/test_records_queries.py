"""Staff lists and search (`issuance.records.queries`, `mynacard applications|cards
list|show`, `mynacard registry update`) on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import pytest
from issuance_factories import fixed_clock, resident
from records_support import OPERATOR, Cli, personalise, rows

from issuance.applications.intake import take_application
from issuance.applications.rules import ApplicationRequest
from issuance.records import queries
from issuance.records.table import width
from issuance.registry.model import ResidentStatus
from issuance.registry.store import ResidentStore
from issuance.storage import Database

DAY1, DAY2, DAY3 = date(2026, 11, 2), date(2026, 11, 10), date(2026, 11, 20)


def _apply(db: Database, person: object, day: date) -> str:
    ResidentStore(db).put(person)  # type: ignore[arg-type]
    result = take_application(db, ApplicationRequest(resident_code=person.resident_code),  # type: ignore[attr-defined]
                              operator=OPERATOR, clock=fixed_clock(day))
    assert result.application is not None, result.refusal
    return result.application.id


@pytest.fixture
def people(db: Database) -> dict[str, tuple[str, str]]:
    """Three residents with an application each; two cards made."""
    out = {}
    for key, name, kana, day in (("yamada", "山田　太郎", "ヤマダ　タロウ", DAY1),
                                 ("yamamoto", "山本　花子", "ヤマモト　ハナコ", DAY2),
                                 ("suzuki", "鈴木　一郎", "スズキ　イチロウ", DAY3)):
        person = resident(name=name, name_kana=kana)
        out[key] = (person.resident_code, _apply(db, person, day))
    personalise(db, out["yamada"][1], "100000000000001", DAY2,
                certificates=(((1 << 70) + 1, "signing"), ((1 << 70) + 2, "user_authentication")))
    personalise(db, out["yamamoto"][1], "100000000000002", DAY3)
    return out


def _ids(found: list[queries.ApplicationRow]) -> list[str]:
    return [r.id for r in found]


def test_search_applications(db: Database, people: dict[str, tuple[str, str]]) -> None:
    yamada, yamamoto, suzuki = (people[k][1] for k in ("yamada", "yamamoto", "suzuki"))
    with db.transaction() as tx:
        def find(**kw: object) -> list[str]:
            return _ids(queries.list_applications(tx, queries.Filter(**kw)))  # type: ignore[arg-type]

        assert find() == [suzuki, yamamoto, yamada]  # newest application first
        assert find(name="山") == [yamamoto, yamada]  # kanji, in part
        assert find(name="ヤマモト") == [yamamoto]  # katakana reading
        assert find(name="やまだ") == [yamada]  # hiragana finds the katakana reading
        assert find(name="%") == [] and find(name="_") == []  # no wildcards
        assert find(resident_code=people["suzuki"][0]) == [suzuki]
        assert find(state="personalised") == [yamamoto, yamada]
        assert find(state="applied") == [suzuki]
        assert find(since=DAY2) == [suzuki, yamamoto]
        assert find(since=DAY1, until=DAY2) == [yamamoto, yamada]
        assert find(limit=1) == [suzuki]
        for bad in (queries.Filter(state="flying"), queries.Filter(since=DAY3, until=DAY1),
                    queries.Filter(limit=0)):
            with pytest.raises(queries.QueryError):
                queries.list_applications(tx, bad)


def test_search_cards_and_show(db: Database, people: dict[str, tuple[str, str]]) -> None:
    with db.transaction() as tx:
        cards = queries.list_cards(tx, queries.Filter())
        assert [c.serial for c in cards] == ["100000000000002", "100000000000001"]
        assert [c.serial for c in queries.list_cards(tx, queries.Filter(name="ヤマダ"))] == [
            "100000000000001"]
        assert [c.serial for c in queries.list_cards(tx, queries.Filter(until=DAY2))] == [
            "100000000000001"]
        assert queries.list_cards(tx, queries.Filter(state="active")) == []
        first = cards[1]
        assert first.expiry == date(2036, 5, 15)  # 10th birthday after issue (rule 4.4)
        detail = queries.card_detail(tx, "100000000000001")
        assert detail is not None and detail.application_state == "personalised"
        assert [(c.kind, c.status) for c in detail.certificates] == [
            ("signing", "current"), ("user_authentication", "current")]
        assert queries.card_detail(tx, "999999999999999") is None
        app = queries.application_detail(tx, people["yamada"][1])
        assert app is not None and [c.serial for c in app.cards] == ["100000000000001"]
        assert app.holder is not None and app.holder.name_substitute == ""


@pytest.fixture
def cli(tmp_path: Path, db_url: str, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> Cli:
    monkeypatch.delenv("MYNACARD_OPERATOR", raising=False)
    home = tmp_path / "home"
    home.mkdir()
    return Cli(home, db_url, capsys, DAY3)


def test_lists_on_the_command_line(cli: Cli, db: Database,
                                   people: dict[str, tuple[str, str]]) -> None:
    before = len(rows(db, "SELECT seq FROM audit_log"))
    code, out, _ = cli("applications", "list", "--name", "やま", "--json", operator=None)
    assert code == 0 and [r["id"] for r in json.loads(out)] == [
        people["yamamoto"][1], people["yamada"][1]]
    code, out, _ = cli("applications", "list", "--state", "applied", operator=None)
    lines = out.splitlines()
    assert code == 0 and lines[0].split()[:3] == ["application", "resident", "name"]
    assert len(lines) == 2 and people["suzuki"][1] in lines[1] and "鈴木　一郎" in lines[1]
    # columns line up on a terminal, wide characters counting two
    assert width(lines[0][:lines[0].index("kana")]) == width(lines[1][:lines[1].index("スズキ")])
    code, out, _ = cli("cards", "list", "--name", "山本", "--json", operator=None)
    assert code == 0 and [c["serial"] for c in json.loads(out)] == ["100000000000002"]
    code, out, _ = cli("cards", "show", "100000000000001", "--json", operator=None)
    shown = json.loads(out)
    assert code == 0 and shown["expiry"] == "2036-05-15" and len(shown["certificates"]) == 2
    code, out, _ = cli("cards", "show", "100000000000001", operator=None)
    assert code == 0 and "signing, current" in out
    code, _, err = cli("cards", "show", "999", operator=None)
    assert code == 1 and "no card 999" in err
    code, _, err = cli("cards", "list", "--since", "2026-12-01", "--until", "2026-11-01",
                       operator=None)
    assert code == 1 and "ends before it starts" in err
    assert len(rows(db, "SELECT seq FROM audit_log")) == before  # reads record nothing


def test_a_move_at_the_counter(cli: Cli, db: Database,
                               people: dict[str, tuple[str, str]]) -> None:
    code, out, _ = cli("registry", "update", people["yamada"][0],
                       "--address", "東京都港区芝公園４－２－８", "--json")
    change = json.loads(out)
    assert code == 0 and change["changed"] == ["address"]
    assert change["signing_certificate_lapses"] is True
    stored = rows(db, "SELECT address FROM residents WHERE resident_code = ?",
                  (people["yamada"][0],))
    assert stored == [{"address": "東京都港区芝公園４－２－８"}]
    entry = rows(db, "SELECT operator, subject, outcome, detail FROM audit_log"
                     " WHERE action = 'registry.update'")[-1]
    assert (entry["operator"], entry["subject"], entry["outcome"]) == (
        OPERATOR, people["yamada"][0], "ok")
    assert "芝公園" not in entry["detail"]  # what changed, not the address
    code, out, _ = cli("registry", "update", people["suzuki"][0], "--address", "大阪府大阪市北区")
    assert code == 0 and "lapses" not in out  # no signing certificate yet
    for argv, fragment in (([], "nothing to change"), (["--address", " "], "printable"),
                           (["--address", "x\x07"], "printable")):
        code, _, err = cli("registry", "update", people["suzuki"][0], *argv)
        assert code == 1 and fragment in err
    code, _, err = cli("registry", "update", "00000000000", "--address", "どこか")
    assert code == 1 and "rule I1" in err
    dead = resident(status=ResidentStatus.DECEASED, status_date=DAY1)
    ResidentStore(db).put(dead)
    code, _, err = cli("registry", "update", dead.resident_code, "--address", "どこか")
    assert code == 1 and "rule I3" in err
    outcomes = [r["outcome"] for r in rows(db, "SELECT outcome FROM audit_log"
                                                " WHERE action = 'registry.update'")]
    assert outcomes == ["ok", "ok", "refused", "refused", "refused", "refused", "refused"]
    code, _, err = cli("registry", "update", people["suzuki"][0], "--address", "x",
                       operator=None)
    assert code == 2
