"""No password of a database URL and no mistyped PIN reaches a user, a log or a script:
the real CLI in a subprocess, with recognisable secrets, and every channel searched
(stdout, stderr, the --json document and error line, the audit log, `config show`),
while what the operator needs to fix the problem (scheme, host, database) stays."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest

from hsm.advice import database_unreachable, redacted
from issuance.storage import open_database

ROOT = Path(__file__).resolve().parents[2]


def mynacard(home: Path, *argv: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("MYNACARD_DB", "SOFTHSM2_CONF")}
    env.update(PYTHONPATH=str(ROOT), MYNACARD_DEVELOPMENT="1", MYNACARD_OPERATOR="alice")
    return subprocess.run([sys.executable, "-m", "issuance.cli.main", "--home", str(home),
                           *argv], env=env, capture_output=True, text=True, timeout=300,
                          check=False, cwd=cwd or ROOT)


def _everything(res: subprocess.CompletedProcess[str]) -> str:
    assert "Traceback" not in res.stderr, res.stderr
    return res.stdout + res.stderr


def _audit(url: str) -> str:
    with open_database(url) as db, db.transaction() as tx:
        return json.dumps(tx.query("SELECT * FROM audit_log ORDER BY seq"), default=str)


def _schema_url(cluster: Any, password: str) -> tuple[str, str]:
    """A URL of a fresh schema carrying `password` (the test cluster trusts, so it is
    accepted and ignored): the URL and the schema."""
    import psycopg

    schema = f"t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(cluster.url(), autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    url = cluster.url(schema=schema).replace(f"//{cluster.user}@", f"//{cluster.user}:"
                                             f"{password}@", 1)
    return url, schema


def test_center_init_never_shows_the_store_or_database_password(
        tmp_path: Path, pg_cluster: Any) -> None:
    """center init reported the store URL whole: on the terminal, in --json, in its audit
    entry; config.toml's issuance_db (shown by `config show`) held the database's."""
    store_url, store_schema = _schema_url(pg_cluster, "PGSTOREPW99")
    db_url, _ = _schema_url(pg_cluster, "PGISSPW99")
    home = tmp_path / "home"
    home.mkdir()
    init = ["center", "init", "--master-key", "test", "--shards", "1", "--db", db_url]
    first = mynacard(home, *init, "--store", store_url)
    assert first.returncode == 0, first.stderr
    out = _everything(first)
    assert "PGSTOREPW99" not in out and "PGISSPW99" not in out
    assert f"certificate store postgresql://{pg_cluster.user}:***@/postgres?" in first.stdout
    assert store_schema in first.stdout and str(pg_cluster.socket_dir) in first.stdout

    # a re-run without --store keeps the center's PostgreSQL store, and says so redacted
    again = mynacard(home, *init, "--json")
    assert again.returncode == 0, again.stderr
    assert "PGSTOREPW99" not in _everything(again) and "PGISSPW99" not in again.stdout
    doc: dict[str, Any] = json.loads(again.stdout)
    assert doc["store"] == redacted(store_url) and store_schema in doc["store"]
    assert {"item": f"certificate store {redacted(store_url)}", "outcome": "ready"} \
        in doc["items"]
    assert not (home / "store.sqlite").exists()

    audit = _audit(db_url)
    assert "center.init" in audit and "certificate store postgresql://" in audit
    assert "PGSTOREPW99" not in audit and "PGISSPW99" not in audit

    for argv in (["config", "show"], ["config", "show", "--json"]):
        shown = mynacard(home, *argv)
        assert shown.returncode == 0, shown.stderr
        assert "PGISSPW99" not in _everything(shown)
        assert "PGSTOREPW99" not in _everything(shown)  # config.toml keeps it; never shown
        assert f"{pg_cluster.user}:***@/postgres" in shown.stdout  # the database, redacted


# (URL, its secret, what must still show)
BAD_URLS = [
    ("postgresql://bob@127.0.0.1:1/x?password=S3CRETQ", "S3CRETQ",
     ("postgresql://bob@127.0.0.1:1/x?password=***",)),
    ("postgresql://bob:S3CRET%zz@127.0.0.1:1/x", "S3CRET",
     ("postgresql://bob:***@127.0.0.1:1/x", "invalid percent-encoded token")),
    ("postgresql://bob:S3CRETB@[::1/x", "S3CRETB", ("postgresql://bob:***@[::1/x",)),
]


@pytest.mark.parametrize(("url", "secret", "shown"), BAD_URLS)
def test_database_errors_never_echo_the_password(tmp_path: Path, url: str, secret: str,
                                                 shown: tuple[str, ...]) -> None:
    """The libpq query form escaped redaction, and psycopg's reason quoted the password
    (a bad percent escape, an unparseable URI): both commands, both output modes."""
    home = tmp_path / "home"
    home.mkdir()
    for argv in (["registry", "show", "12345678901", "--db", url],
                 ["rp", "list", "--store", url]):
        for mode in ([], ["--json"]):
            res = mynacard(home, *argv, *mode, cwd=tmp_path)
            assert res.returncode == 3, (argv, mode, res.stderr)
            assert secret not in _everything(res), (argv, mode, res.stderr)
            for part in shown:
                assert part in res.stderr, (argv, mode, res.stderr)
            if mode:
                assert json.loads(res.stderr.strip().splitlines()[-1])["exit"] == 3


@pytest.mark.parametrize("url", ["postgresql+psycopg://bob:S3CRETSA@db.example/x",
                                 "mysql://bob:S3CRETSA@db.example/x"])
def test_an_unsupported_database_url_shows_only_its_scheme(tmp_path: Path, url: str) -> None:
    """The whole URL was echoed (password and all) on stderr and in the --json error."""
    home = tmp_path / "home"
    home.mkdir()
    for mode in ([], ["--json"]):
        res = mynacard(home, "registry", "show", "12345678901", "--db", url, *mode)
        assert res.returncode == 3, res.stderr
        assert "S3CRETSA" not in _everything(res)
        assert f"unsupported database URL scheme {url.split(':')[0]!r}" in res.stderr


def test_the_reason_is_scrubbed_or_withheld() -> None:
    """Every form of the password leaves a driver's reason: raw, percent-decoded, inside
    a quoted URL; a password too short to replace safely drops the reason instead."""
    url = "postgresql://bob:p%40ssw0rd@db.example/x?sslpassword=K3YPASS&sslmode=require"
    assert redacted(url) == ("postgresql://bob:***@db.example/x?sslpassword=***"
                             "&sslmode=require")
    assert redacted("sqlite:///var/lib/issuance.db") == "sqlite:///var/lib/issuance.db"
    reason = ValueError('bad "p@ssw0rd", "p%40ssw0rd", "K3YPASS" in '
                        '"postgresql://carol:other@h/y"')
    line = database_unreachable(url, reason)
    for secret in ("p@ssw0rd", "p%40ssw0rd", "K3YPASS", "other"):
        assert secret not in line, line
    assert "postgresql://carol:***@h/y" in line and "db.example/x" in line
    short = database_unreachable("postgresql://bob:pw@h/x", ValueError('token "pw"'))
    assert '"pw"' not in short and "withheld" in short and "postgresql://bob:***@h/x" in short


@pytest.mark.parametrize("argv", [["issue", "APP1", "--reader", "R"],
                                  ["activate", "--reader", "R"],
                                  ["card", "update", "--reader", "R"],
                                  ["renew", "--reader", "R"]])
def test_a_mistyped_pin_source_is_never_echoed(tmp_path: Path, argv: list[str]) -> None:
    """The PIN typed where its source belongs was echoed back as the 'KIND'; a value that
    looks like a kind name still is, so a typo stays easy to see."""
    home = tmp_path / "home"
    home.mkdir()
    for value in ("SECRETPW77", "SECRETPW77=env:X", "Secret Pw 77=x"):
        for mode in ([], ["--json"]):
            res = mynacard(home, *argv, "--pin-source", value, *mode)
            assert res.returncode == 2, (value, res.stderr)
            assert "SECRETPW77" not in _everything(res) and "Secret Pw" not in res.stderr
            assert "--pin-source takes KIND=SPEC" in res.stderr, res.stderr
            if mode:
                assert json.loads(res.stderr.strip().splitlines()[-1])["exit"] == 2
    typo = mynacard(home, *argv, "--pin-source", "athu=env:X")
    assert typo.returncode == 2 and "--pin-source athu=…: KIND is auth" in typo.stderr
    assert "SECRETPW77" not in _audit(f"sqlite:///{home / 'issuance.sqlite3'}")
