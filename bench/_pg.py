"""A private PostgreSQL cluster for one benchmark run (initdb + pg_ctl in a temp dir,
Unix socket only, fsync off: a benchmark's throwaway data). As root the cluster runs as
the `postgres` system user, which PostgreSQL requires."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

PG_BIN = Path("/usr/lib/postgresql/15/bin")


def _as_cluster_user(cmd: list[str]) -> list[str]:
    return ["runuser", "-u", "postgres", "--", *cmd] if os.geteuid() == 0 else cmd


@contextlib.contextmanager
def private_cluster(database: str = "bench") -> Iterator[str]:
    """Start a cluster, create `database`, yield its postgresql:// URL; stop and remove
    it afterwards."""
    if not (PG_BIN / "initdb").exists():
        raise RuntimeError(f"PostgreSQL 15 is not installed ({PG_BIN}; `make setup` does)")
    base = Path(tempfile.mkdtemp(prefix="mynacard-bench-pg-"))
    if os.geteuid() == 0:
        shutil.chown(base, "postgres", "postgres")
    data, sock = base / "data", base / "sock"
    port = "5432"
    try:
        subprocess.run(_as_cluster_user([str(PG_BIN / "initdb"), "-D", str(data), "-U",
                                         "mynacard", "-A", "trust", "--no-sync"]),
                       check=True, capture_output=True)
        subprocess.run(_as_cluster_user(["mkdir", str(sock)]), check=True)
        opts = f"-k {sock} -p {port} -c listen_addresses='' -c fsync=off"
        subprocess.run(_as_cluster_user([str(PG_BIN / "pg_ctl"), "-D", str(data), "-o", opts,
                                         "-l", str(base / "log"), "-w", "start"]),
                       check=True, capture_output=True)
        admin = f"postgresql://mynacard@/postgres?host={sock}&port={port}"
        import psycopg

        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f"CREATE DATABASE {database}")
        yield admin.replace("/postgres?", f"/{database}?")
    finally:
        subprocess.run(_as_cluster_user([str(PG_BIN / "pg_ctl"), "-D", str(data), "-m",
                                         "immediate", "stop"]), capture_output=True)
        shutil.rmtree(base, ignore_errors=True)
