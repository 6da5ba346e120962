"""Exactly once in effect across a real crash: the processor dies (os._exit or kill -9)
after revoking in the certificate store and before marking the notice applied; running
it again finishes the batch with every notice applied once and no duplicate effect."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from notices_support import issue_pair, line, notice, resident

from issuance.notices.intake import NoticeIntake
from issuance.notices.queries import notice_counts
from issuance.registry.store import ResidentStore
from issuance.storage import open_database
from pki.store import open_store

WORKER = Path(__file__).with_name("notices_crash_worker.py")
ROOT = Path(__file__).parents[2]
KINDS = ["death", "address_change", "emigration_continued_use",
         "emigration_without_continued_use", "name_change"]


def _worker(db_url: str, store_url: str, mode: str, n: int, marker: Path) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    return subprocess.Popen([sys.executable, str(WORKER), db_url, store_url, mode, str(n),
                             str(marker)], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def _crash(db_url: str, store_url: str, mode: str, n: int, tmp: Path) -> None:
    marker = tmp / f"marker-{n}"
    proc = _worker(db_url, store_url, mode, n, marker)
    if mode == "wait":
        deadline = time.monotonic() + 60
        while not marker.exists():
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "worker never reached the crash point"
            time.sleep(0.02)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
        assert proc.returncode == -signal.SIGKILL
    else:
        proc.wait(timeout=60)
        assert proc.returncode == 137, proc.communicate()


@pytest.mark.parametrize("mode", ["exit", "wait"])
def test_crash_mid_batch_then_restart_applies_each_notice_once(
        mode: str, db_url: str, store_url: str, tmp_path: Path) -> None:
    people = [resident() for _ in range(12)]
    expected: dict[int, str] = {}
    notices = []
    with open_database(db_url) as db, open_store(store_url) as store:
        ResidentStore(db).put(*people)
        for i, person in enumerate(people):
            sign, auth = issue_pair(store, person.resident_code)
            kind = KINDS[i % len(KINDS)]
            notices.append(notice(kind, person.resident_code, nid=f"crash-{i}"))
            expected[sign] = "revoked"
            expected[auth] = ("good" if kind in ("address_change", "name_change",
                                                 "emigration_continued_use") else "revoked")
        # a second, later notice for some people: revokes nothing new
        for i, person in enumerate(people[:4]):
            notices.append(notice("address_change", person.resident_code,
                                  effective_date="2026-07-01", nid=f"crash-late-{i}"))
        NoticeIntake(db).accept_lines([line(n) for n in notices])
        assert notice_counts(db)["waiting"] == len(notices)

    _crash(db_url, store_url, mode, 3, tmp_path)
    with open_database(db_url) as db, open_store(store_url) as store:
        counts = notice_counts(db)
        assert 0 < counts["waiting"] < len(notices)
        revoked = sum(store.get(s).status.value == "revoked" for s in expected)
        with db.transaction() as tx:
            recorded = tx.query_one("SELECT COUNT(*) AS n FROM notice_effects"
                                    " WHERE outcome = 'revoked'")
        # the crash hit between the store's commit and the notice's transaction
        assert recorded is not None and revoked > int(recorded["n"])

    _crash(db_url, store_url, mode, 4, tmp_path)  # crash a second time, further on

    done = _worker(db_url, store_url, "none", 0, tmp_path / "unused")
    out, err = done.communicate(timeout=120)
    assert done.returncode == 0, err

    with open_database(db_url) as db, open_store(store_url) as store:
        assert notice_counts(db) == {"arrived": len(notices), "applied": len(notices),
                                     "waiting": 0, "unmatched": 0, "rejected": 0}
        with db.transaction() as tx:
            rows = tx.query("SELECT source, notice_id, serial, outcome FROM notice_effects"
                            " WHERE action LIKE 'revoke_%'")
            dupes = tx.query("SELECT source, notice_id, target, action, COUNT(*) AS n"
                             " FROM notice_effects GROUP BY source, notice_id, target, action"
                             " HAVING COUNT(*) > 1")
        assert dupes == []
        revoked_by: dict[str, list[str]] = {}
        for r in rows:
            if r["outcome"] == "revoked":
                revoked_by.setdefault(r["serial"], []).append(r["notice_id"])
        for serial, state in expected.items():
            rec = store.get(serial)
            assert rec.status.value == state, (format(serial, "x"), rec)
            if state == "revoked":
                # exactly one notice revoked it, and the store names that notice
                assert len(revoked_by[format(serial, "x")]) == 1
                assert rec.cause == f"notice:juki:{revoked_by[format(serial, 'x')][0]}"
            else:
                assert format(serial, "x") not in revoked_by
        assert len(revoked_by) == sum(1 for s in expected.values() if s == "revoked")
