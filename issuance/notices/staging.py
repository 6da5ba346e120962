"""Staging tables: a batch's rows loaded in one go, then applied by one statement.

The processor marks a batch's notices applied with one `UPDATE … FROM` over a TEMP table
of the connection, loaded with COPY on PostgreSQL and one multi-row executemany on
SQLite; on PostgreSQL it also writes the batch's effects, fact dates and resident
changes by COPY and one `INSERT … SELECT` / `UPDATE … FROM` each: a few statements per
batch, however large, instead of one round trip per row (SQLite has no round trips, and
there those are one executemany straight into the table). The tables are emptied before
each load (inside the caller's transaction) and stay empty after it.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

# the registry's own column mapping, so a staged update writes what `update_residents` would
from issuance.registry.model import Resident
from issuance.registry.store import _COLUMNS as _RESIDENT_COLUMNS
from issuance.registry.store import _UPSERT_FUHYO, resident_change, update_residents
from issuance.storage import Transaction

TABLES = {
    "stage_effects": ("sender TEXT, source TEXT, notice_id TEXT, target TEXT, action TEXT,"
                      " serial TEXT, reason TEXT, outcome TEXT, at TEXT"),
    "stage_marks": "sender TEXT, source TEXT, id TEXT, at TEXT, rule TEXT",
    "stage_notices": ("sender TEXT, source TEXT, id TEXT, kind TEXT, resident_code TEXT,"
                      " effective_date TEXT, received_at TEXT, payload TEXT, state TEXT,"
                      " reason TEXT, bucket INTEGER"),
    "stage_facts": ("resident_code TEXT, fact TEXT, effective_date TEXT, source TEXT,"
                    " notice_id TEXT, sender TEXT"),
    # the residents' columns (`issuance.registry.store._COLUMNS` order), every one
    # nullable, then which set of changed columns the row belongs to
    "stage_residents": ("resident_code TEXT, my_number TEXT, name TEXT, name_kana TEXT,"
                        " address TEXT, birth_date TEXT, sex INTEGER, nationality TEXT,"
                        " status TEXT, status_date TEXT, adult_ward INTEGER,"
                        " municipality_code TEXT, residence_expiry TEXT, updated_at TEXT,"
                        " grp INTEGER"),
    "stage_fuhyo": ("resident_code TEXT, municipality_code TEXT, address_abroad TEXT,"
                    " continued_use INTEGER, gone INTEGER"),
}


def stage(tx: Transaction, table: str, rows: Sequence[tuple[Any, ...]], *,
          analyse: bool = True) -> None:
    """Empty TEMP `table` and load `rows` into it (columns in `TABLES` order); on
    PostgreSQL `analyse` it for the planner (not needed when no join reads it)."""
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
        if analyse:  # statistics, so the planner probes the notices' primary key per
            # staged row instead of scanning them (a TEMP table has none until analysed)
            tx.execute(f"ANALYZE {table}")
    else:
        tx.executemany(f"INSERT INTO {table} ({', '.join(columns)})"
                       f" VALUES ({', '.join('?' * len(columns))})", rows)


_NOTICE_COLUMNS = ("sender, source, id, kind, resident_code, effective_date, received_at,"
                   " payload, state, reason, bucket")


def insert_notices(tx: Transaction, rows: Sequence[tuple[Any, ...]]) -> None:
    """Store new notices (the `stage_notices` columns), none of them stored yet: a key
    already taken fails the statement (IntegrityViolation), as row by row. PostgreSQL:
    COPY into the staging table, one INSERT … SELECT; SQLite: one executemany."""
    if not rows:
        return
    if tx.dialect != "postgresql":
        tx.executemany(f"INSERT INTO notices ({_NOTICE_COLUMNS})"
                       " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)
        return
    stage(tx, "stage_notices", rows, analyse=False)
    tx.execute(f"INSERT INTO notices ({_NOTICE_COLUMNS})"
               f" SELECT {_NOTICE_COLUMNS} FROM stage_notices")
    tx.execute("DELETE FROM stage_notices")


def write_effects(tx: Transaction, rows: Sequence[tuple[Any, ...]]) -> None:
    """Record effects (sender, source, notice id, target, action, serial, reason,
    outcome, at); one already recorded is kept (its primary key). SQLite: one
    executemany straight into the table (staging first would write every row twice)."""
    if tx.dialect != "postgresql":
        tx.executemany("INSERT INTO notice_effects (sender, source, notice_id, target, action,"
                       " serial, reason, outcome, at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
                       " ON CONFLICT (sender, source, notice_id, target, action) DO NOTHING",
                       rows)
        return
    stage(tx, "stage_effects", rows, analyse=False)  # read by a plain scan, no join
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


def write_facts(tx: Transaction, rows: Sequence[tuple[Any, ...]]) -> None:
    """Set who last set each fact: (resident code, fact, effective date, source, notice
    id, sender), inserted or replacing the row of that (resident code, fact). PostgreSQL:
    staged, one INSERT … SELECT; SQLite: one executemany (no round trips to save)."""
    if not rows:
        return
    upsert = ("INSERT INTO notice_facts (resident_code, fact, effective_date, source,"
              " notice_id, sender) {values} ON CONFLICT (resident_code, fact) DO UPDATE"
              " SET effective_date = excluded.effective_date, source = excluded.source,"
              " notice_id = excluded.notice_id, sender = excluded.sender")
    if tx.dialect != "postgresql":
        tx.executemany(upsert.format(values="VALUES (?, ?, ?, ?, ?, ?)"), rows)
        return
    stage(tx, "stage_facts", rows, analyse=False)  # read by a plain scan, no join
    tx.execute(upsert.format(values="SELECT resident_code, fact, effective_date, source,"
                             " notice_id, sender FROM stage_facts WHERE true"))
    tx.execute("DELETE FROM stage_facts")


def write_residents(tx: Transaction, changes: Iterable[tuple[Resident, Resident]]) -> int:
    """`issuance.registry.store.update_residents` (only the changed columns of each
    resident, and its 附票 entry where it changed), set-based on PostgreSQL: the rows
    staged once by COPY, then one UPDATE per set of changed columns, one DELETE and one
    upsert of 附票 entries, instead of one statement per resident. SQLite: the
    registry's own executemany."""
    if tx.dialect != "postgresql":
        return update_residents(tx, changes)
    now = datetime.now(UTC).isoformat()
    groups: dict[tuple[int, ...], int] = {}
    staged: list[tuple[Any, ...]] = []
    fuhyo: list[tuple[Any, ...]] = []
    count = 0
    for before, after in changes:
        new, changed = resident_change(before, after, now)
        if changed:  # only the changed columns are staged (the others NULL)
            staged.append((new[0], *(new[i] if i in changed else None
                                     for i in range(1, len(_RESIDENT_COLUMNS))),
                           now, groups.setdefault(changed, len(groups))))
        if before.fuhyo != after.fuhyo:
            if after.fuhyo is None:
                fuhyo.append((after.resident_code, None, None, None, 1))
            else:
                fuhyo.append((after.resident_code, after.fuhyo.municipality_code,
                              after.fuhyo.address_abroad, int(after.fuhyo.continued_use), 0))
        count += bool(changed) or before.fuhyo != after.fuhyo
    if staged:
        stage(tx, "stage_residents", staged)
        for changed, grp in groups.items():
            sets = ", ".join(f"{_RESIDENT_COLUMNS[i]} = s.{_RESIDENT_COLUMNS[i]}"
                             for i in changed)
            tx.execute(f"UPDATE residents SET {sets}, updated_at = s.updated_at"
                       " FROM stage_residents s WHERE residents.resident_code = s.resident_code"
                       " AND s.grp = ?", (grp,))
        tx.execute("DELETE FROM stage_residents")
    if fuhyo:
        stage(tx, "stage_fuhyo", fuhyo)
        tx.execute("DELETE FROM fuhyo_entries WHERE resident_code IN"
                   " (SELECT resident_code FROM stage_fuhyo WHERE gone = 1)")
        tx.execute(_UPSERT_FUHYO.replace(
            "VALUES (?, ?, ?, ?)", "SELECT resident_code, municipality_code, address_abroad,"
            " continued_use FROM stage_fuhyo WHERE gone = 0"))
        tx.execute("DELETE FROM stage_fuhyo")
    return count
