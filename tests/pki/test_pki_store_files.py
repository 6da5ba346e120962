"""The SQLite files of the certificate store and of the issuance database: a location that
is a URL of another database is never taken for a path, a symlink planted at a database
file (or at its -wal, -shm or -journal) is refused, never followed, and the files are 0600."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from issuance.storage import SqliteDatabase, StorageError, default_url, open_database
from pki.errors import StoreError
from pki.relying_parties.db import RpDatabase
from pki.store import open_readonly_store, open_store

MYNACARD = str(Path(sys.executable).parent / "mynacard")
PASSWORD = "S3CRETSA"
FOREIGN_URLS = (
    ("postgresql+psycopg", f"postgresql+psycopg://bob:{PASSWORD}@127.0.0.1:1/x"),
    ("mysql", f"mysql://bob:{PASSWORD}@127.0.0.1:1/x"),
    ("sqlite", "sqlite:///store.sqlite"),
)
COMPANIONS = ("", "-wal", "-shm", "-journal")


def run(home: Path, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, MYNACARD_OPERATOR="clerk-files", MYNACARD_DEVELOPMENT="1")
    for name in ("SOFTHSM2_CONF", "MYNACARD_DB", "MYNACARD_STORE"):
        env.pop(name, None)
    res = subprocess.run([MYNACARD, "--home", str(home), *args], capture_output=True,
                         text=True, env=env, cwd=cwd, timeout=120)
    assert "Traceback" not in res.stderr, res.stderr
    return res


def _mode(path: Path) -> int:
    return path.stat().st_mode & 0o777


def _victim(where: Path, name: str = "victim.db") -> Path:
    victim = where / name
    victim.write_bytes(b"precious")
    victim.chmod(0o644)
    return victim


def _victim_database(where: Path) -> tuple[Path, bytes]:
    """A real SQLite database someone else keeps (0644), and its bytes."""
    victim = where / "victim.db"
    conn = sqlite3.connect(victim)
    conn.execute("CREATE TABLE precious (x TEXT)")
    conn.execute("INSERT INTO precious VALUES ('kept')")
    conn.commit()
    conn.close()
    victim.chmod(0o644)
    return victim, victim.read_bytes()


@pytest.fixture
def home(tmp_path: Path) -> Path:
    home = tmp_path / "home"
    home.mkdir(mode=0o700)
    return home


# --- 1. a URL of another database is not a path -----------------------------------------


@pytest.mark.parametrize(("scheme", "url"), FOREIGN_URLS)
def test_a_url_of_another_database_is_refused_naming_only_its_scheme(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, scheme: str, url: str
) -> None:
    work = tmp_path / "cwd"
    work.mkdir()
    monkeypatch.chdir(work)
    for opener in (open_store, open_readonly_store, RpDatabase):
        with pytest.raises(StoreError) as caught:
            opener(url)
        message = str(caught.value)
        assert f"scheme '{scheme}'" in message and "postgresql://" in message
        assert PASSWORD not in message and "127.0.0.1" not in message
    assert list(work.iterdir()) == []  # no directory named after the URL


@pytest.mark.parametrize(("scheme", "url"), FOREIGN_URLS[:2])
@pytest.mark.parametrize("command", (["rp", "list"],
                                     ["rp", "add", "acme", "--kind", "signature-verifier",
                                      "--webhook", "https://rp.example/hook"]))
def test_cli_refuses_a_url_of_another_database(
    home: Path, tmp_path: Path, scheme: str, url: str, command: list[str]
) -> None:
    work = tmp_path / "cwd"
    work.mkdir()
    res = run(home, *command, "--store", url, cwd=work)
    assert res.returncode == 3, res.stderr
    assert f"unsupported certificate store URL scheme '{scheme}'" in res.stderr
    assert PASSWORD not in res.stdout + res.stderr
    assert list(work.iterdir()) == []
    assert not (home / "store.sqlite").exists()


# --- 2. a symlink at a database file is refused ------------------------------------------


@pytest.mark.parametrize("suffix", COMPANIONS)
def test_store_refuses_a_symlink_at_its_file_or_companions(tmp_path: Path, home: Path,
                                                          suffix: str) -> None:
    victim = _victim(tmp_path)
    db = home / "store.sqlite"
    link = home / f"store.sqlite{suffix}"
    link.symlink_to(victim)
    with pytest.raises(StoreError, match=r"store\.sqlite.*is a symlink"):
        open_store(db)
    assert victim.read_bytes() == b"precious" and _mode(victim) == 0o644
    assert link.is_symlink()
    if suffix:  # the database file itself was made, privately
        assert _mode(db) == 0o600
    link.unlink()  # without the link, the store opens; its files are private
    with open_store(db) as store:
        assert store.count() == 0
        assert sorted(p.name for p in home.iterdir() if _mode(p) != 0o600) == []


def test_store_refuses_a_dangling_symlink(tmp_path: Path, home: Path) -> None:
    elsewhere = tmp_path / "elsewhere" / "victim.db"
    elsewhere.parent.mkdir()
    (home / "store.sqlite").symlink_to(elsewhere)
    with pytest.raises(StoreError, match="is a symlink"):
        open_store(home / "store.sqlite")
    assert not elsewhere.exists()


def test_read_only_store_refuses_a_symlink(tmp_path: Path, home: Path) -> None:
    real = tmp_path / "real.sqlite"
    open_store(real).close()
    (home / "store.sqlite").symlink_to(real)
    with pytest.raises(StoreError, match="is a symlink"):
        open_readonly_store(home / "store.sqlite")


@pytest.mark.parametrize("read_only", (False, True))
def test_the_relying_party_tables_refuse_a_symlinked_store(tmp_path: Path, home: Path,
                                                           read_only: bool) -> None:
    """`RpDatabase` opens the store's file itself (library callers, not only the CLI that
    opens the store first): a symlink there is refused and its target left alone."""
    victim, before = _victim_database(tmp_path)
    (home / "store.sqlite").symlink_to(victim)
    with pytest.raises(StoreError, match="is a symlink"):
        RpDatabase(home / "store.sqlite", read_only=read_only)
    assert victim.read_bytes() == before and _mode(victim) == 0o644


def test_the_relying_party_tables_create_a_private_store(home: Path) -> None:
    RpDatabase(home / "store.sqlite").close()
    assert _mode(home / "store.sqlite") == 0o600


@pytest.mark.parametrize("dangling", (False, True))
def test_rp_add_never_writes_the_webhook_secret_through_a_symlink(
    home: Path, tmp_path: Path, dangling: bool
) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    victim, before = (elsewhere / "victim.db", b"") if dangling \
        else _victim_database(elsewhere)
    (home / "store.sqlite").symlink_to(victim)
    res = run(home, "rp", "add", "acme", "--kind", "signature-verifier", "--webhook",
              "https://rp.example/hook", "--json", cwd=tmp_path)
    assert res.returncode == 3, res.stdout + res.stderr
    assert "store.sqlite: is a symlink" in res.stderr
    assert "webhook_secret" not in res.stdout
    if dangling:
        assert list(elsewhere.iterdir()) == []
    else:
        assert victim.read_bytes() == before and _mode(victim) == 0o644
        assert sorted(p.name for p in elsewhere.iterdir()) == ["victim.db"]


# --- 2'. the issuance database -------------------------------------------------------------


@pytest.mark.parametrize("suffix", COMPANIONS)
def test_issuance_database_refuses_a_symlink(tmp_path: Path, home: Path, suffix: str) -> None:
    victim = _victim(tmp_path)
    path = home / "issuance.sqlite3"
    link = home / f"issuance.sqlite3{suffix}"
    link.symlink_to(victim)
    with pytest.raises(StorageError, match=r"issuance\.sqlite3.*is a symlink"):
        SqliteDatabase(path)
    assert victim.read_bytes() == b"precious" and _mode(victim) == 0o644
    if suffix:
        assert _mode(path) == 0o600
    link.unlink()
    with open_database(default_url(home)) as db:  # without the link: private files
        assert db.schema_version() > 0
        assert sorted(p.name for p in home.iterdir() if _mode(p) != 0o600) == []


def test_default_issuance_url_does_not_resolve_a_symlink(tmp_path: Path, home: Path) -> None:
    victim = _victim(tmp_path)
    (home / "issuance.sqlite3").symlink_to(victim)
    url = default_url(home)
    assert url == f"sqlite:///{home.resolve() / 'issuance.sqlite3'}"
    with pytest.raises(StorageError, match="is a symlink"):
        open_database(url)
    assert victim.read_bytes() == b"precious" and _mode(victim) == 0o644


def test_registry_load_never_writes_through_a_symlinked_database(home: Path,
                                                                 tmp_path: Path) -> None:
    other = tmp_path / "other"
    other.mkdir(mode=0o700)
    csv = tmp_path / "residents.csv"
    gen = run(other, "registry", "generate", "--count", "3", "--seed", "1", "--out", str(csv),
              cwd=tmp_path)
    assert gen.returncode == 0, gen.stderr
    victim, before = _victim_database(tmp_path)
    (home / "issuance.sqlite3").symlink_to(victim)
    res = run(home, "registry", "load", str(csv), cwd=tmp_path)
    assert res.returncode != 0
    assert "issuance.sqlite3: is a symlink" in res.stderr
    assert victim.read_bytes() == before and _mode(victim) == 0o644
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith("victim")) == \
        ["victim.db"]  # no -wal or -shm made beside it
    assert (home / "issuance.sqlite3").is_symlink()
