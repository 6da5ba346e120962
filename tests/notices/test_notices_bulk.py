"""The set-based store functions (`pki.store.bulk`) against the row-by-row reference, on
SQLite and PostgreSQL: the same statuses, causes and per-revocation answers for random
batches with repeated serials, held and revoked certificates."""

from __future__ import annotations

import datetime as dt
import random
from typing import Any

from cryptography import x509

from pki.store import Revocation, open_store

AT = dt.datetime(2026, 11, 22, 3, 0, tzinfo=dt.UTC)
REASONS = [x509.ReasonFlags.affiliation_changed, x509.ReasonFlags.cessation_of_operation,
           x509.ReasonFlags.key_compromise]



def _fresh_schema(cluster: Any) -> str:
    """A new PostgreSQL schema of the test cluster (as the notices conftest makes them)."""
    import uuid

    import psycopg

    schema = f"n_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(cluster.url(), autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    return str(cluster.url(schema=schema))


def _seed(store: Any, n: int) -> None:
    rows = [(format(s, "x"), "sign", "signing", f"H{s % 97:03d}", s % 16, 1743469200 + s,
             1743469200, 1900000000, 1743469200, b"\x30\x00") for s in range(1, n + 1)]
    with store.transaction():
        store._executemany(
            "INSERT INTO certificates (serial, hierarchy, profile, holder_id, shard, issued_at,"
            " not_before, not_after, status, updated_at, der)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'good', ?, ?)", rows)


def _state(store: Any, n: int) -> list[tuple[Any, ...]]:
    return [(r.status.value, r.reason, r.revoked_at, r.cause, r.status_version)
            for r in (store.get(s) for s in range(1, n + 1))]


def test_set_based_revocation_matches_row_by_row(backend: str, store_url: str,
                                                 request: Any, tmp_path: Any) -> None:
    other = (str(tmp_path / "reference.sqlite") if backend == "sqlite"
             else _fresh_schema(request.getfixturevalue("pg_cluster")))
    n = 600
    rnd = random.Random(16)
    with open_store(store_url) as bulk, open_store(other) as rows:
        for store in (bulk, rows):
            _seed(store, n)
            store.hold(7, cause="held", at=AT)
        for round_ in range(4):
            batch = [Revocation(rnd.randint(1, n), rnd.choice(REASONS), f"c{round_}-{k}",
                                AT + dt.timedelta(seconds=k))
                     for k in range(rnd.randint(1, 700))]
            assert bulk.revoke_many(batch) == rows._revoke_many_by_rows(batch)
        assert _state(bulk, n) == _state(rows, n)
        holders = [f"H{h:03d}" for h in range(0, 120, 3)]
        assert bulk.by_holders(holders) == super(type(rows), rows).by_holders(holders)


def test_sqlite_set_statements_probe_the_certificates(tmp_path: Any) -> None:
    """On SQLite the set-based reads and revocations look certificates up by index, one
    probe per staged holder or serial: none scans the certificate table (which, at ten
    million rows, would cost seconds per batch whatever its size)."""
    n = 300
    with open_store(str(tmp_path / "store.sqlite")) as store:
        _seed(store, n)
        statements: list[str] = []
        conn = store._db.conn
        conn.set_trace_callback(statements.append)
        try:
            held = store.by_holders(["H001", "H002"])
            changed = store.revoke_many([Revocation(5, REASONS[0], "c", AT),
                                         Revocation(6, REASONS[1], "c", AT)])
        finally:
            conn.set_trace_callback(None)
        assert [c.serial for c in held["H001"]] == [1, 98, 195, 292]
        assert changed == [True, True]
        touching = [s for s in statements if "certificates" in s and "TEMP" not in s
                    and not s.startswith(("INSERT", "DELETE", "UPDATE status_changes"))]
        assert any(s.startswith("SELECT c.serial") for s in touching)
        assert any(s.startswith("UPDATE certificates") for s in touching)
        with store.transaction():
            for sql in touching:
                plan = " | ".join(row[3] for row in conn.execute(f"EXPLAIN QUERY PLAN {sql}"))
                assert "SCAN c " not in plan + " " and "SCAN certificates" not in plan, (
                    sql, plan)
