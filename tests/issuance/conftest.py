"""Fixtures for the issuance tests: every storage-backed test runs on SQLite and on a
real PostgreSQL 15 cluster started for the session (Debian's `postgresql` binaries).

The cluster lives in a temporary directory owned by the `postgres` user when the
suite runs as root (PostgreSQL refuses to run as root), listens only on a Unix socket
in that directory, and is stopped at the end of the session. Each test gets its own
PostgreSQL schema, so tests never see each other's rows. If the cluster cannot be
started the suite fails: it is never skipped.
"""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from issuance.storage import Database, open_database

PG_BIN = Path(os.environ.get("MYNACARD_PG_BIN", "/usr/lib/postgresql/15/bin"))


@dataclass(frozen=True)
class PgCluster:
    socket_dir: Path
    port: int
    user: str

    def url(self, dbname: str = "postgres", schema: str | None = None) -> str:
        url = f"postgresql://{self.user}@/{dbname}?host={self.socket_dir}&port={self.port}"
        if schema:
            url += f"&options=-csearch_path%3D{schema}"
        return url


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _run(cmd: list[str], as_user: str | None) -> subprocess.CompletedProcess[str]:
    if as_user:
        cmd = ["runuser", "-u", as_user, "--", *cmd]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[PgCluster]:
    for tool in ("initdb", "pg_ctl"):
        if not (PG_BIN / tool).exists():
            pytest.fail(f"PostgreSQL 15 not installed: {PG_BIN / tool} missing "
                        "(apt-get install postgresql)", pytrace=False)
    as_user: str | None = None
    base = Path(tempfile.mkdtemp(prefix="mynacard-pg-"))
    if os.geteuid() == 0:
        as_user = "postgres"
        try:
            pw = pwd.getpwnam(as_user)
        except KeyError:
            pytest.fail("running as root but there is no 'postgres' user", pytrace=False)
        os.chown(base, pw.pw_uid, pw.pw_gid)
    user = as_user or pwd.getpwuid(os.geteuid()).pw_name
    data = base / "data"
    port = _free_port()
    init = _run([str(PG_BIN / "initdb"), "-D", str(data), "-U", user, "--auth=trust",
                 "--no-sync", "-E", "UTF8", "--locale=C"], as_user)
    if init.returncode != 0:
        shutil.rmtree(base, ignore_errors=True)
        pytest.fail(f"initdb failed:\n{init.stdout}\n{init.stderr}", pytrace=False)
    opts = (f"-c listen_addresses='' -c unix_socket_directories={base} -p {port} "
            "-c fsync=off -c synchronous_commit=off -c full_page_writes=off")
    start = _run([str(PG_BIN / "pg_ctl"), "-D", str(data), "-l", str(base / "log"),
                  "-o", opts, "-w", "-t", "60", "start"], as_user)
    if start.returncode != 0:
        log = (base / "log").read_text(errors="replace") if (base / "log").exists() else ""
        shutil.rmtree(base, ignore_errors=True)
        pytest.fail(f"pg_ctl start failed:\n{start.stdout}\n{start.stderr}\n{log}",
                    pytrace=False)
    try:
        yield PgCluster(socket_dir=base, port=port, user=user)
    finally:
        _run([str(PG_BIN / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop"],
             as_user)
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture
def pg_url(pg_cluster: PgCluster) -> str:
    """A PostgreSQL URL whose search_path is a fresh, empty schema."""
    import psycopg

    schema = f"t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(pg_cluster.url(), autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    return pg_cluster.url(schema=schema)


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Each test using it runs twice: once on SQLite, once on PostgreSQL."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'issuance.sqlite3'}"
    return str(request.getfixturevalue("pg_url"))


@pytest.fixture
def db(db_url: str) -> Iterator[Database]:
    database = open_database(db_url)
    try:
        yield database
    finally:
        database.close()
