"""Enrolled operators, password logins with lockout, sessions keyed in the HSM, and the
roles every command needs -- through the real root command, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path
from typing import Any

import pytest

from hsm.module import SOFTHSM2_CONF_ENV
from issuance.audit.log import AuditLog
from issuance.cli.main import main
from issuance.operators import OperatorsError, OperatorStore
from issuance.operators.sessions import SESSION_FILE
from issuance.operators.store import MAX_FAILURES
from issuance.storage import Database, open_database
from issuance.storage.config import resolve_db_url

ROOT_PW, CLERK_PW, AUDITOR_PW = "root-password-1", "clerk-password-1", "auditor-pass-1"


def test_store_lockout_is_counted_and_audited(db: Database) -> None:
    store = OperatorStore(db)
    store.add("kato", ("clerk",), CLERK_PW)
    with pytest.raises(OperatorsError, match="at least"):
        store.add("short", ("clerk",), "short")
    with pytest.raises(OperatorsError, match="unknown role"):
        store.add("x", ("janitor",), CLERK_PW)
    assert store.authenticate("kato", CLERK_PW).roles == ("clerk",)
    for n in range(1, MAX_FAILURES + 1):
        with pytest.raises(OperatorsError, match="locked" if n == MAX_FAILURES else "wrong"):
            store.authenticate("kato", "not-the-password")
        assert store.get("kato").failures == n  # type: ignore[union-attr]
    with pytest.raises(OperatorsError, match="locked"):
        store.authenticate("kato", CLERK_PW)  # the right password no longer helps
    entries = AuditLog(db).entries()
    assert [e.action for e in entries] == ["operator.login-failed"] * MAX_FAILURES + [
        "operator.locked"]
    assert [e.detail["failures"] for e in entries] == [*range(1, MAX_FAILURES + 1),
                                                       MAX_FAILURES]
    assert CLERK_PW not in json.dumps([e.to_json() for e in entries])
    old = store.get("kato")
    new = store.set_password("kato", "a-new-password")
    assert not new.locked and new.failures == 0 and new.credential_id != old.credential_id
    store.disable("kato")
    with pytest.raises(OperatorsError, match="disabled"):
        store.authenticate("kato", "a-new-password")
    stored = db.transaction()
    with stored as tx:
        row = tx.query_one("SELECT password_hash FROM operators WHERE name = 'kato'")
    assert row is not None and str(row["password_hash"]).startswith("$argon2id$")


@pytest.fixture
def center(tmp_path: Path, db_url: str, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A center set up by its first operator, outside development mode."""
    monkeypatch.delenv("MYNACARD_DEVELOPMENT", raising=False)
    monkeypatch.delenv("MYNACARD_OPERATOR", raising=False)
    monkeypatch.setenv(SOFTHSM2_CONF_ENV, str(tmp_path / "unused.conf"))
    for name, value in (("T_ROOT_PW", ROOT_PW), ("T_CLERK_PW", CLERK_PW),
                        ("T_AUDITOR_PW", AUDITOR_PW), ("T_WRONG_PW", "wrong-password-9")):
        monkeypatch.setenv(name, value)
    if db_url.startswith("sqlite"):
        monkeypatch.delenv("MYNACARD_DB", raising=False)
    else:
        monkeypatch.setenv("MYNACARD_DB", db_url)
    home = tmp_path / "center"
    home.mkdir()
    return home


def _rows(home: Path) -> list[dict[str, Any]]:
    with open_database(resolve_db_url(None, home)) as db, db.transaction() as tx:
        return tx.query("SELECT * FROM audit_log ORDER BY seq")


def test_login_roles_and_sessions(center: Path, capsys: pytest.CaptureFixture[str]) -> None:
    m = ["--home", str(center)]
    rp = [*m, "rp", "add", "shop", "--kind", "signature-verifier"]
    # a claimed name is not enough outside development mode
    assert main([*rp, "--operator", "mallory"]) == 2
    assert "mynacard login" in capsys.readouterr().err
    # bootstrap: before any operator is enrolled, the center and its first operator
    assert main([*m, "center", "init", "--master-key", "test", "--shards", "1",
                 "--operator", "root"]) == 0
    assert main([*m, "operator", "add", "root", "--role", "supervisor", "--role",
                 "ca-officer", "--password-source", "env:T_ROOT_PW", "--operator", "root"]) == 0
    # from now on, a login
    assert main([*m, "operator", "add", "eve", "--role", "supervisor", "--password-source",
                 "env:T_ROOT_PW", "--operator", "root"]) == 2
    capsys.readouterr()
    assert main([*m, "login", "--operator", "root", "--password-source", "env:T_ROOT_PW"]) == 0
    session = center / SESSION_FILE
    assert stat.S_IMODE(os.stat(session).st_mode) == 0o600
    assert ROOT_PW not in session.read_text()
    capsys.readouterr()
    assert main([*m, "whoami", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["roles"] == ["supervisor", "ca-officer"]
    assert main([*m, "operator", "add", "kato", "--role", "clerk",
                 "--password-source", "env:T_CLERK_PW"]) == 0
    assert main([*m, "operator", "add", "aoki", "--role", "auditor",
                 "--password-source", "env:T_AUDITOR_PW"]) == 0
    assert main([*rp, "--operator", "someone-else"]) == 2  # logged in as root
    assert main(rp) == 0
    assert main([*m, "logout"]) == 0

    # a clerk may not revoke by hand nor act for the CA; an auditor only reads
    assert main([*m, "login", "--operator", "kato", "--password-source", "env:T_CLERK_PW"]) == 0
    capsys.readouterr()
    assert main([*m, "ca", "revoke", "1a", "--reason", "keyCompromise"]) == 1
    assert "needs supervisor or ca-officer" in capsys.readouterr().err
    assert main([*m, "rp", "add", "shop2", "--kind", "signature-verifier"]) == 1
    # editing the session file (adding a role) is detected: the MAC is the HSM's
    body = json.loads(session.read_text())
    body["roles"] = ["clerk", "ca-officer"]
    session.write_text(json.dumps(body))
    capsys.readouterr()
    assert main([*m, "rp", "add", "shop3", "--kind", "signature-verifier"]) == 1
    assert "not made by this center" in capsys.readouterr().err
    assert main([*m, "logout"]) == 1  # even logging out needs a valid session
    session.unlink()
    assert main([*m, "login", "--operator", "aoki", "--password-source",
                 "env:T_AUDITOR_PW"]) == 0
    assert main([*m, "audit", "verify"]) == 0
    assert main([*m, "rp", "remove", "shop"]) == 1
    assert main([*m, "logout"]) == 0

    # five wrong passwords lock the clerk; the counter and the lock are in the log
    for _ in range(MAX_FAILURES):
        assert main([*m, "login", "--operator", "kato", "--password-source",
                     "env:T_WRONG_PW"]) == 1
    assert main([*m, "login", "--operator", "kato", "--password-source", "env:T_CLERK_PW"]) == 1
    assert "locked" in capsys.readouterr().err
    rows = _rows(center)
    actions = [r["action"] for r in rows]
    assert actions.count("operator.login-failed") == MAX_FAILURES
    assert actions.count("operator.locked") == 1
    # every entry names the role the operator acted in
    by_action = {(r["action"], r["operator"], r["outcome"]): r["role"] for r in rows}
    assert by_action[("center.init", "root", "ok")] == "bootstrap"
    assert by_action[("operator.add", "root", "done")] in ("bootstrap", "supervisor,ca-officer")
    assert by_action[("rp.add", "root", "done")] == "supervisor,ca-officer"
    assert by_action[("operator.login", "kato", "done")] == "clerk"
    assert by_action[("ca.revoke", "kato", "refused")] == "clerk"  # refused by role, recorded
    assert by_action[("rp.remove", "aoki", "refused")] == "auditor"
    assert by_action[("operator.login", "kato", "refused")] == "claimed"
    text = json.dumps(rows)
    assert ROOT_PW not in text and CLERK_PW not in text and AUDITOR_PW not in text
    capsys.readouterr()
    assert main([*m, "audit", "verify", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["ok"]


def test_development_mode_is_recorded(center: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MYNACARD_DEVELOPMENT", "1")
    assert main(["--home", str(center), "registry", "generate", "--count", "1",
                 "--out", str(center / "r.jsonl"), "--operator", "dev"]) == 0
    assert [(r["operator"], r["role"]) for r in _rows(center)] == [("dev", "development")]


def test_key_ceremony_needs_two_ca_officers(center: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    m = ["--home", str(center)]
    assert main([*m, "center", "init", "--master-key", "test", "--shards", "1",
                 "--operator", "root"]) == 0
    assert main([*m, "operator", "add", "root", "--role", "ca-officer,supervisor",
                 "--password-source", "env:T_ROOT_PW", "--operator", "root"]) == 0
    assert main([*m, "login", "--operator", "root", "--password-source", "env:T_ROOT_PW"]) == 0
    for name, role, pw in (("sato", "ca-officer", "T_CLERK_PW"), ("kato", "clerk", "T_CLERK_PW")):
        assert main([*m, "operator", "add", name, "--role", role,
                     "--password-source", f"env:{pw}"]) == 0
    key = [*m, "hsm", "create-key", "--token", "none", "--label", "ceremony"]
    before = len(_rows(center))
    capsys.readouterr()
    for extra, says in (
        ([], "second CA officer"),
        (["--second-officer", "root", "--second-password-source", "env:T_ROOT_PW"],
         "different"),
        (["--second-officer", "kato", "--second-password-source", "env:T_CLERK_PW"],
         "not a CA officer"),
        (["--second-officer", "sato", "--second-password-source", "env:T_WRONG_PW"],
         "wrong password"),
    ):
        assert main([*key, *extra]) == 1, extra
        assert says in capsys.readouterr().err, extra
    # nothing ran; each refusal is on record, and the second officer's failed password
    new = _rows(center)[before:]
    assert [(r["action"], r["outcome"]) for r in new] == [("hsm.create-key", "refused")] * 3 + [
        ("operator.login-failed", "refused"), ("hsm.create-key", "refused")]
    assert all(json.loads(r["detail"]).get("refused_by") == "operator rules"
               for r in new if r["action"] == "hsm.create-key")
    with open_database(resolve_db_url(None, center)) as db:
        assert OperatorStore(db).get("sato").failures == 1  # type: ignore[union-attr]
    code = main([*key, "--second-officer", "sato", "--second-password-source",
                 "env:T_CLERK_PW"])
    entry = _rows(center)[-1]
    assert entry["action"] == "hsm.create-key" and entry["operator"] == "root"
    assert entry["role"] == "ca-officer,supervisor"
    detail = json.loads(entry["detail"])
    assert detail["second_officer"] == "sato" and detail["exit"] == code
    assert CLERK_PW not in json.dumps(entry)
