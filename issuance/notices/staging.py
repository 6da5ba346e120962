"""Staging tables: a batch's rows loaded in one go, then applied by one statement.

The processor writes a batch's effects and marks its notices applied with one
`INSERT … SELECT` and one `UPDATE … FROM` over a TEMP table of the connection, loaded
with COPY on PostgreSQL and one multi-row executemany on SQLite: a few statements per
batch, however large, instead of one round trip per row. The tables are emptied before
each load (inside the caller's transaction) and stay empty after it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from issuance.storage import Transaction

TABLES = {
    "stage_effects": ("sender TEXT, source TEXT, notice_id TEXT, target TEXT, action TEXT,"
                      " serial TEXT, reason TEXT, outcome TEXT, at TEXT"),
    "stage_marks": "sender TEXT, source TEXT, id TEXT, at TEXT, rule TEXT",
}


def stage(tx: Transaction, table: str, rows: Sequence[tuple[Any, ...]]) -> None:
    """Empty TEMP `table` and load `rows` into it (columns in `TABLES` order)."""
    columns = [c.split()[0] for c in TABLES[table].split(",")]
    tx.execute(f"CREATE TEMP TABLE IF NOT EXISTS {table} ({TABLES[table]})")
    tx.execute(f"DELETE FROM {table}")
    if not rows:
        return
    if tx.dialect == "postgresql":
        conn = tx._conn  # type: ignore[attr-defined]  # psycopg: COPY has no DB-API form
        with conn.cursor() as cur, cur.copy(
                f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
        # statistics, so the planner probes the notices' primary key per staged row
        # instead of scanning them (a TEMP table has none until analysed)
        tx.execute(f"ANALYZE {table}")
    else:
        tx.executemany(f"INSERT INTO {table} ({', '.join(columns)})"
                       f" VALUES ({', '.join('?' * len(columns))})", rows)


def write_effects(tx: Transaction, rows: Sequence[tuple[Any, ...]]) -> None:
    """Record effects (sender, source, notice id, target, action, serial, reason,
    outcome, at); one already recorded is kept (its primary key)."""
    stage(tx, "stage_effects", rows)
    tx.execute("INSERT INTO notice_effects (sender, source, notice_id, target, action, serial,"
               " reason, outcome, at) SELECT sender, source, notice_id, target, action, serial,"
               " reason, outcome, at FROM stage_effects WHERE true"
               " ON CONFLICT (sender, source, notice_id, target, action) DO NOTHING")
    tx.execute("DELETE FROM stage_effects")


def mark_applied(tx: Transaction, marks: Sequence[tuple[Any, ...]]
                 ) -> set[tuple[str, str, str]]:
    """Mark the notices that are still accepted applied: (sender, source, id, applied
    at, rule) each. Returns the keys it marked."""
    stage(tx, "stage_marks", marks)
    changed = tx.query(
        "UPDATE notices SET state = 'applied', applied_at = s.at, reason = s.rule"
        " FROM stage_marks s WHERE notices.sender = s.sender AND notices.source = s.source"
        " AND notices.id = s.id AND notices.state = 'accepted'"
        " RETURNING notices.sender, notices.source, notices.id")
    tx.execute("DELETE FROM stage_marks")
    return {(r["sender"], r["source"], r["id"]) for r in changed}
