"""Read-only views of the notice tables: counts, unmatched and rejected notices, effects."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from issuance.notices.migrations import migrate_notices
from issuance.notices.model import LOCAL_SENDER
from issuance.storage import Database, Transaction
from issuance.storage.db import Params, Row


def notice_counts(db: Database, *, today: str | None = None) -> dict[str, int]:
    """arrived (every notice stored), applied, waiting (accepted, not yet applied; of
    which `not_yet_effective` have an effective date after `today`), unmatched, rejected."""
    migrate_notices(db)
    with db.transaction() as tx:
        rows = tx.query("SELECT state, COUNT(*) AS n FROM notices GROUP BY state")
        later = None
        if today is not None:
            later = tx.query_one("SELECT COUNT(*) AS n FROM notices WHERE state = 'accepted'"
                                 " AND effective_date > ?", (today,))
    by_state = {str(r["state"]): int(r["n"]) for r in rows}
    counts = {
        "arrived": sum(by_state.values()),
        "applied": by_state.get("applied", 0),
        "waiting": by_state.get("accepted", 0),
        "unmatched": by_state.get("unmatched", 0),
        "rejected": by_state.get("rejected", 0),
    }
    if later is not None:
        counts["not_yet_effective"] = int(later["n"])
    return counts


def problem_notices(db: Database, *, limit: int | None = None) -> dict[str, list[dict[str, Any]]]:
    """Unmatched notices (source, id, resident code, kind, date) and rejected ones
    (stored id, raw text, reason), oldest first."""
    migrate_notices(db)
    suffix = f" LIMIT {int(limit)}" if limit is not None else ""
    with db.transaction() as tx:
        unmatched = tx.query(
            "SELECT sender, source, id, kind, resident_code, effective_date, received_at,"
            " reason FROM notices WHERE state = 'unmatched'"
            " ORDER BY received_at, sender, source, id" + suffix)
        rejected = tx.query(
            "SELECT sender, id, received_at, reason, payload FROM notices"
            " WHERE state = 'rejected' ORDER BY received_at, sender, id" + suffix)
    return {
        "unmatched": [dict(r) for r in unmatched],
        "rejected": [{"stored_as": r["id"], "sender": r["sender"],
                      "received_at": r["received_at"],
                      "reason": r["reason"], "raw": r["payload"]} for r in rejected],
    }


def effects_of(db: Database, source: str, notice_id: str, *,
               sender: str = LOCAL_SENDER) -> list[dict[str, Any]]:
    migrate_notices(db)
    with db.transaction() as tx:
        return [dict(r) for r in tx.query(
            "SELECT target, action, serial, reason, outcome, at FROM notice_effects"
            " WHERE sender = ? AND source = ? AND notice_id = ? ORDER BY target, action",
            (sender, source, notice_id))]


def notice_state(db: Database, source: str, notice_id: str, *,
                 sender: str = LOCAL_SENDER) -> str | None:
    migrate_notices(db)
    with db.transaction() as tx:
        row = tx.query_one("SELECT state FROM notices WHERE sender = ? AND source = ?"
                           " AND id = ?", (sender, source, notice_id))
    return str(row["state"]) if row else None


def query_in(tx: Transaction, sql: str, values: Iterable[Any], params: Params = ()) -> list[Row]:
    """`Transaction.query_in` (`sql` holds one `IN ({values})`), on PostgreSQL as ONE
    statement with `= ANY(?)` and the distinct values as one array parameter (an `IN`
    list of hundreds of parameters is planned anew each time, and was planned as a walk
    over a whole key prefix). On a column that is a key of its own the array is an index
    condition; for the notices' (sender, source, id) key see `stored_notices`."""
    if sql.count("IN ({values})") != 1:
        raise ValueError("query_in: the statement must hold one IN ({values})")
    if tx.dialect != "postgresql":
        return tx.query_in(sql, values, params)
    distinct = sorted(set(values))
    if not distinct:
        return []
    return tx.query(sql.replace("IN ({values})", "= ANY(?)"), (*params, distinct))


def stored_notices(tx: Transaction, keys: list[tuple[str, str, str]],
                   columns: str) -> dict[tuple[str, str, str], Row]:
    """`columns` (SQL, e.g. "state") of the stored notices among `keys` (sender, source,
    id), in set queries, inside the caller's transaction."""
    by_origin: dict[tuple[str, str], list[str]] = {}
    for sender, source, nid in keys:
        by_origin.setdefault((sender, source), []).append(nid)
    if tx.dialect == "postgresql":
        # one primary-key probe per id (LATERAL … LIMIT 1 keeps the nested loop): with
        # `id = ANY(?)` PostgreSQL walked every notice of the sender and source in key
        # order, fetching each row from the heap to test its id (1.1 s per 5,000 keys
        # once 100,000 notices were stored, growing with the table)
        return {(sender, source, row["id"]): row
                for (sender, source), ids in by_origin.items()
                for row in tx.query(
                    f"SELECT n.id, {', '.join(f'n.{c.strip()}' for c in columns.split(','))}"
                    " FROM unnest(CAST(? AS text[])) AS k(id) CROSS JOIN LATERAL"
                    f" (SELECT id, {columns} FROM notices WHERE sender = ? AND source = ?"
                    " AND id = k.id LIMIT 1) n", (sorted(set(ids)), sender, source))}
    return {(sender, source, row["id"]): row for (sender, source), ids in by_origin.items()
            for row in query_in(tx, f"SELECT id, {columns} FROM notices WHERE sender = ?"
                                " AND source = ? AND id IN ({values})", ids,
                                (sender, source))}
