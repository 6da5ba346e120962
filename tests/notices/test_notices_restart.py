"""`notices serve` on PostgreSQL across a database restart, and the processor's timer: a
private cluster of this module's own (so stopping it disturbs no other test), stopped and
started with pg_ctl while the server runs."""

from __future__ import annotations

import os
import pwd
import shutil
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from notices_server import request, running, wait_for
from notices_support import issue_pair, line, notice, resident
from tls_certs import TestCa

from issuance.audit.log import AuditLog
from issuance.notices.intake import NoticeIntake
from issuance.notices.queries import notice_state
from issuance.notices.senders import add_sender
from issuance.registry.model import Resident
from issuance.registry.store import ResidentStore
from issuance.storage import open_database
from pki.store import open_store

conftest = sys.modules["issuance_tests_conftest"]


@dataclass
class Cluster:
    data: Path
    base: Path
    port: int
    user: str
    as_user: str | None
    opts: str

    def url(self) -> str:
        return f"postgresql://{self.user}@/postgres?host={self.base}&port={self.port}"

    def pg_ctl(self, *args: str) -> None:
        done = conftest._run([str(conftest.PG_BIN / "pg_ctl"), "-D", str(self.data), *args],
                             self.as_user)
        assert done.returncode == 0, done.stdout + done.stderr

    def stop(self) -> None:
        self.pg_ctl("-m", "fast", "-w", "stop")

    def start(self) -> None:
        self.pg_ctl("-l", str(self.base / "log"), "-o", self.opts, "-w", "-t", "60", "start")


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    as_user = "postgres" if os.geteuid() == 0 else None
    base = Path(tempfile.mkdtemp(prefix="mynacard-pg-restart-"))
    if as_user:
        pw = pwd.getpwnam(as_user)
        os.chown(base, pw.pw_uid, pw.pw_gid)
    user = as_user or pwd.getpwuid(os.geteuid()).pw_name
    data = base / "data"
    init = conftest._run([str(conftest.PG_BIN / "initdb"), "-D", str(data), "-U", user,
                          "--auth=trust", "--no-sync", "-E", "UTF8", "--locale=C"], as_user)
    assert init.returncode == 0, init.stderr
    port = conftest._free_port()
    opts = (f"-c listen_addresses='' -c unix_socket_directories={base} -p {port} "
            "-c fsync=off")
    c = Cluster(data, base, port, user, as_user, opts)
    c.start()
    try:
        yield c
    finally:
        conftest._run([str(conftest.PG_BIN / "pg_ctl"), "-D", str(data), "-m", "immediate",
                       "-w", "stop"], as_user)
        shutil.rmtree(base, ignore_errors=True)


def test_server_survives_a_database_restart(cluster: Cluster, ca: TestCa) -> None:
    db = open_database(cluster.url())
    try:
        token = add_sender(db, "gw", sources=["juki"])
        people = [resident() for _ in range(3)]
        for person in people:
            ResidentStore(db).put(person)
        with running(db, None, ca) as srv:
            def post(person: Resident, nid: str) -> tuple[int, Any]:
                body = line(notice("death", person.resident_code, nid=nid)).encode()
                return request(srv, "POST", "/notices", body, token)

            assert post(people[0], "R1")[0] == 200
            cluster.stop()
            status, answer = post(people[1], "R2")
            assert status == 503 and "retry" in answer["error"]
            health = request(srv, "GET", "/health")
            assert health == (503, {"ok": False, "database": "down"})
            cluster.start()
            wait_for("the server never saw the database back",
                     lambda: request(srv, "GET", "/health")[0] == 200)
            for i, person in enumerate(people):  # every request works again
                status, answer = post(person, f"R{i + 1}")
                assert status == 200, answer
            assert notice_state(db, "juki", "R2", sender="gw") == "accepted"
        # the 503s were counted, and written once the audit log could be written again
        [outage] = [e for e in AuditLog(db).entries()
                    if e.detail.get("reason") == "database unavailable"]
        assert outage.outcome == "refused" and outage.detail["count"] == 1
    finally:
        db.close()


def test_waiting_notices_are_applied_at_start_up_and_on_a_timer(
        cluster: Cluster, ca: TestCa, tmp_path: Path) -> None:
    db = open_database(cluster.url())
    store_path = tmp_path / "store.sqlite"
    store = open_store(store_path)
    try:
        before, later = resident(), resident()
        for person in (before, later):
            ResidentStore(db).put(person)
        certs = {p.resident_code: issue_pair(store, p.resident_code) for p in (before, later)}
        # accepted while no server ran (e.g. a crash after the 200): applied at start-up
        NoticeIntake(db).accept(line(notice("death", before.resident_code, nid="S1")))
        with running(db, str(store_path), ca, apply_interval=0.5):
            wait_for("the waiting notice was not applied at start-up",
                     lambda: notice_state(db, "juki", "S1") == "applied")
            # stored by another process while the server runs: the timer applies it
            NoticeIntake(db).accept(line(notice("death", later.resident_code, nid="S2")))
            wait_for("the timer never applied the new notice",
                     lambda: notice_state(db, "juki", "S2") == "applied")
        for pair in certs.values():
            assert all(store.get(s).status.value == "revoked" for s in pair)
    finally:
        store.close()
        db.close()
