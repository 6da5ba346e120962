"""OCSP responders reading a PostgreSQL standby: a revocation is on the standby before the
revoking call returns, when the primary names the standby synchronous.

A real primary and a real streaming hot standby (initdb, pg_basebackup, pg_ctl) in a temp
dir; as root they run as the `postgres` system user (PostgreSQL refuses root)."""

from __future__ import annotations

import datetime as dt
import os
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509

from pki.ca import IssuingCA
from pki.store import CertStatus, open_readonly_store, open_store

PG_BIN = Path("/usr/lib/postgresql/15/bin")


def _as_cluster_user(cmd: list[str]) -> list[str]:
    return ["runuser", "-u", "postgres", "--", *cmd] if os.geteuid() == 0 else cmd


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _run(cmd: list[str]) -> None:
    subprocess.run(_as_cluster_user(cmd), check=True, capture_output=True)


@pytest.fixture(scope="module")
def primary_and_standby() -> Iterator[tuple[str, str]]:
    """(primary URL, standby URL) of database `ocsp`; the primary waits for the standby
    (`synchronous_standby_names = '*'`)."""
    import psycopg

    base = Path(tempfile.mkdtemp(prefix="mynacard-pg-replica-"))
    if os.geteuid() == 0:
        shutil.chown(base, "postgres", "postgres")
    sock = base / "sock"
    ports = {"primary": _port(), "standby": _port()}
    started: list[Path] = []
    try:
        _run([str(PG_BIN / "initdb"), "-D", str(base / "primary"), "-U", "mynacard",
              "-A", "trust", "--no-sync"])
        _run(["mkdir", str(sock)])
        common = f"-k {sock} -c listen_addresses='' -c fsync=off"
        _run([str(PG_BIN / "pg_ctl"), "-D", str(base / "primary"), "-o",
              f"{common} -p {ports['primary']} -c synchronous_standby_names='*'",
              "-l", str(base / "primary.log"), "-w", "start"])
        started.append(base / "primary")
        _run([str(PG_BIN / "pg_basebackup"), "-D", str(base / "standby"), "-R",
              "-h", str(sock), "-p", str(ports["primary"]), "-U", "mynacard"])
        _run([str(PG_BIN / "pg_ctl"), "-D", str(base / "standby"), "-o",
              f"{common} -p {ports['standby']}", "-l", str(base / "standby.log"),
              "-w", "start"])
        started.append(base / "standby")
        url = "postgresql://mynacard@/{db}?host=" + str(sock) + "&port={port}"
        with psycopg.connect(url.format(db="postgres", port=ports["primary"]),
                             autocommit=True) as conn:
            conn.execute("CREATE DATABASE ocsp")
        yield (url.format(db="ocsp", port=ports["primary"]),
               url.format(db="ocsp", port=ports["standby"]))
    finally:
        for data in reversed(started):
            subprocess.run(_as_cluster_user([str(PG_BIN / "pg_ctl"), "-D", str(data), "-m",
                                             "immediate", "stop"]), capture_output=True)
        shutil.rmtree(base, ignore_errors=True)


def _on_standby(standby: str, serial: int, status: CertStatus, deadline: float = 30) -> Any:
    """The standby's store once it holds `serial` with `status` (it follows the primary)."""
    end = time.monotonic() + deadline
    while True:
        try:
            ro = open_readonly_store(standby)
        except Exception:  # noqa: BLE001 - the database is not on the standby yet
            ro = None
        if ro is not None:
            info = ro.status(serial) if ro.exists(serial) else None
            if info is not None and info.status is status:
                return ro
            ro.close()
        assert time.monotonic() < end, "the standby never caught up"
        time.sleep(0.05)


def test_a_revocation_returns_only_once_the_synchronous_standby_applied_it(
        primary_and_standby: tuple[str, str], km: Any, session_ca: Any, clock: Any,
        holder_key: Any, adult: Any) -> None:
    """Replay on the standby is paused: `revoke` waits (PostgreSQL's default for a
    synchronous standby waits for the WAL to be written there, not applied, and a
    responder reading it said "good" after the revocation had returned); once replay goes
    on, it returns, and the standby already answers "revoked"."""
    import psycopg

    primary, standby = primary_and_standby
    store = open_store(primary)
    ca = IssuingCA(key_source=km, ca=session_ca, store=store, clock=clock)
    cert = ca.issue_signing(public_key=holder_key.public_key(), identity=adult,
                            holder_id="R1", card_expiry=dt.date(2035, 1, 1))
    ro = _on_standby(standby, cert.serial, CertStatus.GOOD)
    done = threading.Event()
    outcome: dict[str, Any] = {}

    def revoke() -> None:
        try:
            outcome["changed"] = store.revoke(cert.serial,
                                              reason=x509.ReasonFlags.key_compromise,
                                              cause="death notice", at=clock.now)
        except BaseException as exc:  # reported by the assertions
            outcome["error"] = exc
        finally:
            done.set()

    with psycopg.connect(standby, autocommit=True) as admin:
        admin.execute("SELECT pg_wal_replay_pause()")
        try:
            thread = threading.Thread(target=revoke)
            thread.start()
            returned_while_paused = done.wait(2.0)
            status_while_paused = ro.status(cert.serial).status
        finally:
            admin.execute("SELECT pg_wal_replay_resume()")
        assert done.wait(30)
        status_on_return = ro.status(cert.serial).status
    thread.join(5)
    ro.close()
    store.close()
    assert "error" not in outcome, outcome
    assert outcome["changed"] is True
    assert not returned_while_paused, "the revocation returned before the standby had it"
    assert status_while_paused is CertStatus.GOOD
    assert status_on_return is CertStatus.REVOKED
