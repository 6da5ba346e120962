"""Several notice processors against one PostgreSQL: three worker processes share
~20,000 waiting notices by resident bucket; one is killed with SIGKILL in the middle
of a batch (after the certificate store committed its revocations, before the notices
were marked applied). Every notice is applied exactly once in effect (effects, statuses,
audit) and each resident's notices in order."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from notices_support import line, notice, resident

from issuance.audit.log import AuditLog
from issuance.notices.intake import NoticeIntake
from issuance.notices.queries import notice_counts
from issuance.registry.store import put_residents
from issuance.storage import open_database
from pki.store import open_store

WORKER = Path(__file__).with_name("notices_pool_worker.py")
ROOT = Path(__file__).parents[2]
PEOPLE = 6700  # three notices each: 20,100 notices
FIRST_SERIAL = 1 << 72
ISSUED = 1743469200  # 2025-04-01 01:00 UTC
# per resident, in the order they must be applied: the address change revokes the
# signing certificate, the name change finds it revoked, the death revokes the other
PLAN = [("address_change", "2026-06-01"), ("name_change", "2026-06-15"),
        ("death", "2026-07-01")]



def _fresh_schema(cluster: Any) -> str:
    """A new PostgreSQL schema of the test cluster (as the notices conftest makes them)."""
    import uuid

    import psycopg

    schema = f"n_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(cluster.url(), autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    return str(cluster.url(schema=schema))


def _serials(i: int) -> tuple[int, int]:
    return FIRST_SERIAL + 2 * i, FIRST_SERIAL + 2 * i + 1


def _seed_store(store: Any, codes: list[str]) -> None:
    """Two certificate rows per holder (placeholder DER): what the notice path reads."""
    rows = []
    for i, code in enumerate(codes):
        sign, auth = _serials(i)
        rows.append((format(sign, "x"), "sign", "signing", code, sign % 16, ISSUED, ISSUED,
                     ISSUED + 5 * 365 * 86400, ISSUED, b"\x30\x00"))
        rows.append((format(auth, "x"), "auth", "user-authentication", code, auth % 16, ISSUED,
                     ISSUED, ISSUED + 5 * 365 * 86400, ISSUED, b"\x30\x00"))
    with store.transaction():
        store._executemany(
            "INSERT INTO certificates (serial, hierarchy, profile, holder_id, shard, issued_at,"
            " not_before, not_after, status, updated_at, der)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'good', ?, ?)", rows)


def _start(db_url: str, store_url: str, name: str, mode: str, n: int,
           marker: Path) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    return subprocess.Popen([sys.executable, str(WORKER), db_url, store_url, name, mode,
                             str(n), str(marker)], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def test_three_workers_one_killed_apply_each_notice_once_in_order(
        pg_cluster: Any, tmp_path: Path) -> None:
    db_url, store_url = _fresh_schema(pg_cluster), _fresh_schema(pg_cluster)
    people = [resident() for _ in range(PEOPLE)]
    codes = [p.resident_code for p in people]
    lines = [line(notice(kind, code, effective_date=day, nid=f"w-{i}-{k}"))
             for k, (kind, day) in enumerate(PLAN) for i, code in enumerate(codes)]
    with open_database(db_url) as db, open_store(store_url) as store:
        with db.transaction() as tx:
            put_residents(tx, people)
        _seed_store(store, codes)
        NoticeIntake(db, batch=5000).accept_lines(lines[::-1])  # latest arrive first
        assert notice_counts(db)["waiting"] == len(lines)

    marker = tmp_path / "killed-at"
    victim = _start(db_url, store_url, "worker-0", "wait", 300, marker)
    others = [_start(db_url, store_url, f"worker-{k}", "none", 0, tmp_path / "-")
              for k in (1, 2)]
    deadline = time.monotonic() + 120
    while not marker.exists():
        assert victim.poll() is None, victim.communicate()
        assert time.monotonic() < deadline, "the worker never reached the kill point"
        time.sleep(0.02)
    with open_database(db_url) as db:  # mid-batch: the store has revoked, notices wait
        assert 0 < notice_counts(db)["waiting"] < len(lines)
    os.kill(victim.pid, signal.SIGKILL)
    victim.wait(timeout=30)
    assert victim.returncode == -signal.SIGKILL
    applied_by = []
    for proc in others:
        out, err = proc.communicate(timeout=600)
        assert proc.returncode == 0, err
        applied_by.append(int(out.strip()))
    assert all(n > 0 for n in applied_by), applied_by  # the work was shared

    with open_database(db_url) as db, open_store(store_url) as store:
        assert notice_counts(db) == {"arrived": len(lines), "applied": len(lines),
                                     "waiting": 0, "unmatched": 0, "rejected": 0}
        with db.transaction() as tx:
            effects = tx.query("SELECT notice_id, serial, outcome FROM notice_effects"
                               " WHERE action LIKE 'revoke_%'")
            dupes = tx.query("SELECT sender, source, notice_id, target, action FROM"
                             " notice_effects GROUP BY sender, source, notice_id, target,"
                             " action HAVING COUNT(*) > 1")
            applied = tx.query("SELECT id, resident_code, effective_date, applied_at"
                               " FROM notices")
        assert dupes == []
        # exactly once in effect: each revoked certificate by exactly one notice, the one
        # the per-resident order makes first (address change: signing; death: the other)
        revoked_by: dict[str, list[str]] = {}
        for e in effects:
            if e["outcome"] == "revoked":
                revoked_by.setdefault(e["serial"], []).append(e["notice_id"])
        assert len(revoked_by) == 2 * PEOPLE
        statuses = {}
        for i in range(PEOPLE):
            sign, auth = _serials(i)
            assert revoked_by[format(sign, "x")] == [f"w-{i}-0"]
            assert revoked_by[format(auth, "x")] == [f"w-{i}-2"]
            statuses[sign] = store.get(sign)
            statuses[auth] = store.get(auth)
        for i in range(PEOPLE):
            sign, auth = _serials(i)
            assert statuses[sign].status.value == "revoked"
            assert statuses[sign].cause == f"notice:juki:w-{i}-0"
            assert statuses[auth].cause == f"notice:juki:w-{i}-2"
        # per-resident order: a later-dated notice was never applied before an earlier one
        by_resident: dict[str, list[tuple[str, str]]] = {}
        for row in applied:
            by_resident.setdefault(row["resident_code"], []).append(
                (row["effective_date"], row["applied_at"]))
        for rows in by_resident.values():
            rows.sort()
            stamps = [at for _day, at in rows]
            assert stamps == sorted(stamps), rows

        # audited once: the batches' audit entries add up to every notice, no more
        entries = [e for e in AuditLog(db).entries() if e.action == "notices.apply"]
        assert sum(int(e.detail["applied"]) for e in entries) == len(lines)
        assert {e.operator for e in entries} >= {"worker-1", "worker-2"}
        assert AuditLog(db).verify().ok


def test_cli_process_with_workers(db_url: str, backend: str, store_url: str,
                                  tmp_path: Path) -> None:
    """`notices process --workers 3`: three processes on PostgreSQL, one on SQLite (one
    writer); either way every waiting notice is applied once and audited."""
    import argparse

    from notices_support import NOW, clock

    from issuance.notices import cli

    home = tmp_path / "home"
    home.mkdir()
    store_loc: Any = home / "store.sqlite" if backend == "sqlite" else store_url
    people = [resident() for _ in range(300)]
    codes = [p.resident_code for p in people]
    with open_database(db_url) as db, open_store(store_loc) as store:
        with db.transaction() as tx:
            put_residents(tx, people)
        _seed_store(store, codes)
        NoticeIntake(db).accept_lines([line(notice("death", c, nid=f"c-{i}"))
                                       for i, c in enumerate(codes)])
    parser = argparse.ArgumentParser(prog="mynacard")
    cli.register(parser.add_subparsers(), clock=clock(NOW))
    args = parser.parse_args(["notices", "process", "--workers", "3", "--operator", "clerk-1",
                              "--db", db_url, "--json",
                              *([] if backend == "sqlite" else ["--store", store_url])])
    args.home = home
    assert args.func(args) == 0
    with open_database(db_url) as db, open_store(store_loc) as store:
        assert notice_counts(db)["applied"] == len(codes)
        assert all(store.get(s).status.value == "revoked"
                   for i in range(len(codes)) for s in _serials(i))
        entries = AuditLog(db).entries()
        run = [e for e in entries if e.action == "notices.process"]
        assert len(run) == 1 and run[0].detail["applied"] == len(codes)
        batches = [e for e in entries if e.action == "notices.apply"]
        if backend == "postgresql":
            assert run[0].detail["workers"] == 3
            assert sum(int(e.detail["applied"]) for e in batches) == len(codes)
        else:
            assert batches == []
