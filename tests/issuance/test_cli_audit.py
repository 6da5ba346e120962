"""Every command of the `mynacard` parser tree, checked against the operator rules, and the
keyed audit chain through the real root command and a SoftHSM2 center.

Rules: a command that changes anything refuses to run without an operator (exit 2, one
line saying how to give one, nothing done, nothing recorded) and, with one, leaves an
audit entry (its own richer ones, or the root command's -- never both); a read-only
command runs without an operator and records nothing. The walk covers the whole tree,
so a command added later fails here until it declares itself (and gets arguments below).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from hsm.module import SOFTHSM2_CONF_ENV
from issuance.cli.main import build_parser, command_tree, declaration, main
from issuance.storage import open_database
from issuance.storage.config import resolve_db_url

APP = "12345678901"


def minimal_argv(tmp: Path) -> dict[str, list[str]]:
    """Arguments that let each command run and end quickly (mostly by failing early)."""
    missing = str(tmp / "missing")
    return {
        "apply": ["--resident-code", APP],
        "audit verify": [],
        "audit show": [],
        "card": [],
        "card info": ["--reader", "no reader"],
        "card readers": [],
        "card authenticate": ["--challenge", missing, "--reader", "no reader",
                              "--pin-source", "env:AUDIT_T_NONE"],
        "card sign": [missing, "--reader", "no reader", "--pin-source", "env:AUDIT_T_NONE"],
        "card update": ["--reader", "no reader", "--pin-source", "text=env:AUDIT_T_NONE"],
        "card report-loss": ["--application", "APP-none"],
        "card reissue": ["--resident-code", APP],
        "card certify": ["--reader", "no reader", "--pin-source", "auth=env:AUDIT_T_NONE"],
        "card found": ["--reader", "no reader", "--pin-source", "auth=env:AUDIT_T_NONE"],
        "card return": ["--application", "APP-none"],
        "card revoke-certificates": ["--application", "APP-none"],
        "renew": ["--reader", "no reader", "--pin-source", "auth=env:AUDIT_T_NONE"],
        "application cancel": ["APP-none", "--reason", "walk"],
        "emigrate": ["--resident-code", APP, "--date", "2026-01-01"],
        "card number-changed": ["--resident-code", APP],
        "card extend-stay": ["--resident-code", APP, "--until", "2030-01-01"],
        "application refuse": ["APP-none", "--reason", "walk"],
        "pin reset": ["--reader", "no reader", "--pin", "auth", "--keep-value"],
        "emulator": [],
        "emulator up": ["--cards", "1", "--timeout", "5"],
        "emulator down": [],
        "emulator status": [],
        "emulator insert": ["--reader", "0", "--timeout", "5"],
        "emulator eject": ["--reader", "0", "--timeout", "5"],
        "emulator replace": ["--reader", "0", "--timeout", "5"],
        "hsm": [],
        "hsm init": ["--token", "walk"],
        "hsm keys": [],
        "hsm create-key": ["--token", "none", "--label", "k"],
        "notices ingest": [missing],
        "notices process": [],
        "notices status": [],
        "notices unmatched": [],
        "notices schema": [],
        "notices serve": ["--host", "256.256.256.256", "--port", "1"],
        "console serve": ["--listen", "256.256.256.256:1"],
        "notices sender add": ["gateway", "--source", "juki"],
        "notices sender disable": ["no-such-gateway"],
        "notices sender list": [],
        "ca init": ["--pin-source", "env:AUDIT_T_NONE", "--pin-source", "so=env:AUDIT_T_NONE"],
        "ca issue": ["--pin-source", "env:AUDIT_T_NONE", "--profile", "signing",
                     "--public-key", missing, "--identity", missing, "--holder-id", "R1",
                     "--card-expiry", "2035-01-01"],
        "ca issue-batch": [missing],
        "ca revoke": ["1a", "--reason", "keyCompromise"],
        "ca status": ["1a"],
        "crl publish": ["--out", str(tmp / "crl")],
        "ocsp serve": ["--pin-source", "env:AUDIT_T_NONE"],
        "ocsp pregenerate": ["--pin-source", "env:AUDIT_T_NONE"],
        "verify": ["--cert", missing, "--no-revocation"],
        "login-challenge": ["--ttl", "0"],
        "verify-serve": ["--tls-cert", missing],
        "registry load": [missing + ".csv"],
        "registry generate": ["--count", "1", "--out", str(tmp / "r.jsonl")],
        "registry show": [APP],
        "registry schema": [],
        "rp add": ["walker", "--kind", "signature-verifier"],
        "rp list": [],
        "rp remove": ["nobody"],
        "rp subscribe": ["nobody", "--serial", "1a"],
        "rp unsubscribe": ["nobody", "--serial", "1a"],
        "rp push": [],
        "config": [],
        "config show": [],
        "completion": ["bash"],
        "commands": [],
        "center init": ["--master-key", "nonsense"],  # refused before anything is made
        "issue": ["APP-none", "--reader", "no reader"],
        "activate": ["--reader", "no reader", "--pin-source", "auth=env:AUDIT_T_NONE"],
        "login": ["--pin-source", "env:AUDIT_T_NONE"],
        "logout": [],
        "whoami": [],
        "operator add": ["walker-2", "--role", "clerk", "--pin-source", "env:AUDIT_T_NONE"],
        "operator list": [],
        "operator disable": ["nobody"],
        "operator passwd": ["nobody", "--pin-source", "env:AUDIT_T_NONE"],
        "operator issue-card": ["nobody", "--reader", "No Such Reader 99",
                                "--pin-source", "env:AUDIT_T_NONE"],
        "operator revoke-card": ["nobody"],
        "operator cards": ["nobody"],
        "applications list": [],
        "applications show": ["APP-none"],
        "applications notice": ["APP-none", "--out", str(tmp / "notice.pdf")],
        "cards list": [],
        "cards show": ["100000000000001"],
        "registry update": [APP, "--address", "東京都港区"],
        "report daily": [],
        "report expiring": ["--within", "1d"],
    }


@pytest.fixture
def env(tmp_path: Path, db_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A fresh home; the audit log in `db_url` ($MYNACARD_DB) on both databases."""
    monkeypatch.delenv("MYNACARD_OPERATOR", raising=False)
    monkeypatch.setenv(SOFTHSM2_CONF_ENV, str(tmp_path / "unused.conf"))
    monkeypatch.setenv("PCSCLITE_CSOCK_NAME", str(tmp_path / "no-pcscd.sock"))
    monkeypatch.setenv("MYNACARD_BRIDGE_JAR", str(tmp_path / "no-bridge.jar"))
    if db_url.startswith("sqlite"):
        monkeypatch.delenv("MYNACARD_DB", raising=False)  # the home's issuance database
    else:
        monkeypatch.setenv("MYNACARD_DB", db_url)
    yield tmp_path


def _entries(home: Path) -> list[dict[str, Any]]:
    url = resolve_db_url(None, home)
    if url.startswith("sqlite") and not (home / "issuance.sqlite3").exists():
        return []
    with open_database(url) as db, db.transaction() as tx:
        return tx.query("SELECT * FROM audit_log ORDER BY seq")


def _run(argv: list[str]) -> int:
    try:
        return main(argv)
    except SystemExit as exc:  # argparse, or a server that could not bind
        return exc.code if isinstance(exc.code, int) else 1


def test_every_command_declares_itself() -> None:
    tree = command_tree(build_parser())
    problems = {path: declaration(p, path).problems() for path, p in tree.items()}
    assert {path: p for path, p in problems.items() if p} == {}
    # the brief's read-only list, and commands that must be recorded
    for path in ("registry schema", "registry show", "notices status", "notices schema",
                 "audit show", "audit verify", "ca status", "card info", "card readers",
                 "emulator status", "hsm keys", "verify"):
        assert not declaration(tree[path], path).changes, path
    for path in ("ca init", "ca issue", "ca issue-batch", "ca revoke", "crl publish", "rp add",
                 "rp remove", "rp subscribe", "hsm init", "hsm create-key",
                 "notices sender add", "notices sender disable", "notices ingest",
                 "notices process", "registry load",
                 "registry generate", "center init", "issue", "activate", "apply",
                 "pin reset", "card update", "card report-loss", "card reissue"):
        assert declaration(tree[path], path).changes, path
    # roles: an auditor only reads; a clerk neither revokes by hand nor runs the key ceremony
    for path, parser in tree.items():
        decl = declaration(parser, path)
        assert decl.roles, path
        if decl.changes:
            assert "auditor" not in decl.roles and "*" not in decl.roles or path in (
                "login", "logout"), path
        else:
            assert decl.roles == ("*",), path
    for path in ("ca revoke", "ca init", "hsm init", "hsm create-key", "center init",
                 "ca issue", "crl publish"):
        assert "clerk" not in declaration(tree[path], path).roles, path
    for path in ("ca init", "hsm init", "hsm create-key", "center init"):
        assert declaration(tree[path], path).roles == ("ca-officer",), path
    for path in ("ca init", "hsm init", "hsm create-key"):  # the key ceremony: two officers
        assert declaration(tree[path], path).dual_control, path


def test_walk_every_command(env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    tree = command_tree(build_parser())
    argv_of = minimal_argv(env)
    assert sorted(tree) == sorted(argv_of), "give the new command minimal arguments above"
    for n, (path, parser) in enumerate(sorted(tree.items())):
        decl = declaration(parser, path)
        home = env / f"home-{n}"
        home.mkdir()
        argv = ["--home", str(home), *path.split(), *argv_of[path]]
        before = _entries(home)
        listing = sorted(p.name for p in home.iterdir())
        capsys.readouterr()
        if decl.changes:
            # without an operator: exit 2, one line saying how, nothing done or recorded
            assert _run(argv) == 2, path
            err = capsys.readouterr().err
            assert "--operator NAME" in err and "MYNACARD_OPERATOR" in err, path
            assert len(err.strip().splitlines()) == 1, (path, err)
            assert _entries(home) == before, path
            assert sorted(p.name for p in home.iterdir()) == listing, path
            # with one: an entry by that operator, from the command or the root command
            code = _run([*argv, "--operator", "walker-op"])
            out, err = capsys.readouterr()
            assert "Traceback" not in err, (path, err)
            new = _entries(home)[len(before):]
            mine = [e for e in new if e["operator"] == "walker-op"]
            assert mine, f"{path}: no audit entry (exit {code}: {err})"
            by_root = [e for e in mine if json.loads(e["detail"]).get("command") == path]
            if decl.audits_itself:
                assert len(by_root) in (0, 1) and (not by_root or len(mine) == 1), \
                    f"{path}: root entry beside the command's own: {mine}"
            else:
                assert len(mine) == 1 and by_root, (path, mine)
            if by_root:
                entry = by_root[0]
                assert entry["action"] == decl.action
                assert entry["outcome"] == ("done" if code == 0 else
                                            "refused" if code in (1, 2) else "failed"), path
                assert json.loads(entry["detail"])["exit"] == code
                assert "AUDIT_T_NONE" not in json.dumps(entry)  # no pin source recorded
        else:
            code = _run(argv)
            err = capsys.readouterr().err
            assert "operator identity" not in err, (path, err)
            assert "Traceback" not in err, (path, err)
            assert _entries(home) == before, f"{path} recorded something"


def _center(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, db_url: str) -> Path:
    monkeypatch.delenv("MYNACARD_OPERATOR", raising=False)
    monkeypatch.setenv(SOFTHSM2_CONF_ENV, str(tmp_path / "unused.conf"))
    if db_url.startswith("sqlite"):
        monkeypatch.delenv("MYNACARD_DB", raising=False)
    else:
        monkeypatch.setenv("MYNACARD_DB", db_url)
    home = tmp_path / "center"
    home.mkdir()
    return home


def test_cli_keys_the_chain_with_the_hsm_key(tmp_path: Path, db_url: str,
                                             monkeypatch: pytest.MonkeyPatch,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    home = _center(tmp_path, monkeypatch, db_url)
    m = ["--home", str(home)]
    # before the center: recorded without a MAC
    assert main([*m, "registry", "generate", "--count", "1", "--out", str(tmp_path / "r.jsonl"),
                 "--operator", "clerk"]) == 0
    assert main([*m, "center", "init", "--master-key", "test", "--shards", "1",
                 "--operator", "custodian", "--json"]) == 0
    items = json.loads(capsys.readouterr().out)["items"]
    assert {"item": "audit log key 'audit-mac' (HMAC-SHA256, in the HSM)",
            "outcome": "created"} in items
    assert main([*m, "rp", "add", "shop", "--kind", "signature-verifier",
                 "--operator", "clerk"]) == 0
    rp_out = capsys.readouterr().out
    rows = _entries(home)
    assert {r["role"] for r in rows} == {"development"}  # claimed operators, recorded as such
    assert [(r["action"], bool(r["mac"])) for r in rows] == [
        ("registry.generate", False), ("center.init", True), ("rp.add", True)]
    # no secret in any entry: PINs, the relying party's token
    pin = (home / "hsm" / "jpki.pin").read_text().strip()
    token = next(line.split(":", 1)[1].strip() for line in rp_out.splitlines()
                 if "OCSP bearer token" in line)
    text = json.dumps(rows)
    assert pin not in text and token not in text

    assert main([*m, "audit", "verify", "--json"]) == 0
    first = json.loads(capsys.readouterr().out)
    assert first["ok"] and first["keyed"] and first["macs"] == 2 and first["entries"] == 3
    assert main([*m, "audit", "verify", "--json", "--head", first["head"]]) == 0
    assert json.loads(capsys.readouterr().out) == first  # verifying recorded nothing

    # an attacker with the database but not the HSM: edit and re-chain every hash
    from issuance.audit.log import entry_hash

    url = resolve_db_url(None, home)
    with open_database(url) as db, db.transaction() as tx:
        if db.dialect == "sqlite":
            tx.execute("DROP TRIGGER audit_log_no_update")
        else:
            tx.execute("DROP TRIGGER audit_log_no_change ON audit_log")
        prev = None
        for row in tx.query("SELECT * FROM audit_log ORDER BY seq"):
            if row["seq"] == 3:
                row["operator"] = "mallory"
            prev = prev or row["prev_hash"]
            digest = entry_hash(seq=row["seq"], at=row["at"], operator=row["operator"],
                                action=row["action"], subject=row["subject"],
                                outcome=row["outcome"], detail=json.loads(row["detail"]),
                                prev_hash=prev, role=row["role"])
            tx.execute("UPDATE audit_log SET operator = ?, prev_hash = ?, hash = ? WHERE seq = ?",
                       (row["operator"], prev, digest, row["seq"]))
            prev = digest
    assert main([*m, "audit", "verify"]) == 1
    out, err = capsys.readouterr()
    assert "seq 3: forged" in err and "BROKEN" in out


def test_cli_head_finds_truncation(tmp_path: Path, db_url: str,
                                   monkeypatch: pytest.MonkeyPatch,
                                   capsys: pytest.CaptureFixture[str]) -> None:
    home = _center(tmp_path, monkeypatch, db_url)
    m = ["--home", str(home)]
    monkeypatch.setenv("MYNACARD_OPERATOR", "clerk")
    for name in ("a", "b", "c"):
        assert main([*m, "registry", "generate", "--count", "1",
                     "--out", str(tmp_path / f"{name}.jsonl")]) == 0
    assert main([*m, "audit", "verify", "--json"]) == 0
    head = json.loads(capsys.readouterr().out)["head"]
    assert head.startswith("3:")
    assert main([*m, "registry", "generate", "--count", "1",
                 "--out", str(tmp_path / "d.jsonl")]) == 0
    assert main([*m, "audit", "verify", "--head", head]) == 0  # the log extends the head
    capsys.readouterr()
    with open_database(resolve_db_url(None, home)) as db, db.transaction() as tx:
        if db.dialect == "sqlite":
            tx.execute("DROP TRIGGER audit_log_no_delete")
        else:
            tx.execute("DROP TRIGGER audit_log_no_change ON audit_log")
        tx.execute("DELETE FROM audit_log WHERE seq >= 3")
    assert main([*m, "audit", "verify"]) == 0  # a shorter chain is still a chain
    capsys.readouterr()
    assert main([*m, "audit", "verify", "--head", head]) == 1
    assert "seq 3: truncated" in capsys.readouterr().err


def test_reading_never_makes_the_audit_key(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    """A center from before the audit key: `audit verify` leaves the HSM alone; the next
    recorded command makes the key, and its keyed entry covers the older entries."""
    from hsm import PinSource, open_key_manager
    from hsm.mac import _find, has_mac_key
    from issuance.audit.keyer import AUDIT_KEY_LABEL
    from issuance.workflow.center import CenterConfig

    home = _center(tmp_path, monkeypatch, "sqlite")  # about the HSM key: one database will do
    assert main(["--home", str(home), "center", "init", "--master-key", "test",
                 "--shards", "1", "--operator", "custodian"]) == 0
    config = CenterConfig.load(home)

    def key_present(destroy: bool = False) -> bool:
        with open_key_manager(config.token_uri,
                              pin_source=PinSource.from_spec(config.pin_source)) as km:
            if destroy:
                km._run("destroying", lambda ps: _find(ps, AUDIT_KEY_LABEL).destroy())
            return has_mac_key(km, AUDIT_KEY_LABEL)

    assert key_present()
    assert not key_present(destroy=True)
    # the log of that older center: unkeyed entries only
    url = f"sqlite:///{tmp_path / 'older.sqlite3'}"
    monkeypatch.setenv("MYNACARD_DB", url)
    with open_database(url) as db:
        from issuance.audit import AuditLog

        AuditLog(db).append(operator="old", action="center.init", subject="x", outcome="ok")
    assert main(["--home", str(home), "audit", "verify"]) == 0  # unkeyed, nothing to check
    capsys.readouterr()
    assert not key_present()  # reading made no key
    assert main(["--home", str(home), "rp", "add", "later", "--kind", "user-verifier",
                 "--operator", "custodian"]) == 0
    capsys.readouterr()
    assert key_present()
    assert main(["--home", str(home), "audit", "verify", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["ok"] and result["keyed"] and (result["entries"], result["macs"]) == (2, 1)
