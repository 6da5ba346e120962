"""What the console's pages read: today's work, search, a record's history, statistics.

Read-only SQL over the issuance database (and the certificate store for revocation
reasons). Lists and search may move to issuance/records/ when that package lands.
"""

from __future__ import annotations

import json
import re
from collections import Counter, defaultdict
from datetime import date, datetime, timedelta
from typing import Any

from issuance.applications.rules import State
from issuance.registry.dates import japan_date, utc_now
from issuance.storage import Database
from issuance.workflow.migrations import migrate_workflow

LIMIT = 50

# The console's own schema steps (table `console_schema_version`): indexes that let a name
# or kana prefix search seek instead of scanning the registry.
MIGRATIONS: tuple[tuple[int, str, tuple[str, ...]], ...] = (
    (1, "name and kana indexes for the console's search", (
        "CREATE INDEX IF NOT EXISTS residents_name ON residents (name)",
        "CREATE INDEX IF NOT EXISTS residents_name_kana ON residents (name_kana)")),
)


def migrate_console(db: Database) -> None:
    """The workflow's tables and the console's indexes (once, when the server starts)."""
    from issuance.storage.migrations import apply_migrations

    migrate_workflow(db)
    apply_migrations(db, "console_schema_version", MIGRATIONS)
WAITING = (State.APPLIED.value, State.REGISTERED.value)
OPEN = (State.APPLIED.value, State.REGISTERED.value, State.PERSONALISED.value,
        State.HANDED_OVER.value)


def _marks(values: tuple[str, ...] | list[str]) -> str:
    return ", ".join("?" for _ in values)


def dashboard(db: Database, *, limit: int = LIMIT) -> dict[str, list[dict[str, Any]]]:
    with db.transaction() as tx:
        waiting = tx.query(
            "SELECT a.id, a.resident_code, r.name, a.state, a.applied_on, a.express_deadline"
            " FROM applications a JOIN residents r ON r.resident_code = a.resident_code"
            f" WHERE a.state IN ({_marks(WAITING)})"
            " ORDER BY CASE WHEN a.express_deadline IS NULL THEN 1 ELSE 0 END,"
            " a.express_deadline, a.applied_on, a.id LIMIT ?", [*WAITING, limit])
        ready = tx.query(
            "SELECT a.id, a.resident_code, r.name, c.serial AS card_serial, a.updated_at"
            " FROM applications a JOIN residents r ON r.resident_code = a.resident_code"
            " JOIN cards c ON c.application_id = a.id AND c.state IN ('issued', 'active')"
            " WHERE a.state = ? ORDER BY a.updated_at LIMIT ?",
            [State.PERSONALISED.value, limit])
        express = tx.query(
            "SELECT a.id, a.resident_code, r.name, a.state, a.express_reason,"
            " a.express_deadline FROM applications a"
            " JOIN residents r ON r.resident_code = a.resident_code"
            f" WHERE a.express_deadline IS NOT NULL AND a.state IN ({_marks(OPEN)})"
            " ORDER BY a.express_deadline, a.id LIMIT ?", [*OPEN, limit])
        interrupted = tx.query(
            "SELECT j.application_id AS id, j.card_serial, j.step, j.attempt, j.updated_at"
            " FROM workflow_jobs j JOIN applications a ON a.id = j.application_id"
            f" WHERE j.step <> 'done' AND a.state IN ({_marks(WAITING)})"
            " ORDER BY j.updated_at LIMIT ?", [*WAITING, limit])
    from issuance.notices.queries import problem_notices

    unmatched = problem_notices(db, limit=limit)["unmatched"]
    return {"waiting": [dict(r) for r in waiting], "ready": [dict(r) for r in ready],
            "express": [dict(r) for r in express], "interrupted": [dict(r) for r in interrupted],
            "unmatched": unmatched}


KANA = re.compile(r"^[\u3040-\u30ff\u30fc\s・ー]+$")


def search(db: Database, text: str, *, limit: int = LIMIT) -> dict[str, list[dict[str, Any]]]:
    """Residents, applications, cards and certificates matching `text`: a resident code,
    card serial, application id or certificate serial exactly; a name (kanji) or kana
    reading by prefix, then anywhere."""
    q = text.strip()
    out: dict[str, list[dict[str, Any]]] = {"residents": [], "applications": [], "cards": [],
                                           "certificates": []}
    if not q:
        return out
    with db.transaction() as tx:
        if re.fullmatch(r"\d{11}", q):
            out["residents"] = tx.query(
                "SELECT resident_code, name, name_kana, birth_date, address FROM residents"
                " WHERE resident_code = ?", [q])
        elif re.fullmatch(r"\d{15}", q):
            out["cards"] = tx.query("SELECT serial, application_id, state, updated_at FROM"
                                    " cards WHERE serial = ?", [q])
        elif q.upper().startswith("APP-"):
            out["applications"] = tx.query(
                "SELECT id, resident_code, state, applied_on, express_reason FROM applications"
                " WHERE id = ?", [q.upper()])
        else:
            if re.fullmatch(r"[0-9a-fA-F]{6,40}", q):
                out["certificates"] = tx.query(
                    "SELECT serial, application_id, card_serial, kind, status FROM"
                    " issued_certificates WHERE serial = ?", [q.lower().lstrip("0")])
            column = "name_kana" if KANA.match(q) else "name"
            like = q.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            # a prefix as a range, so the index on the column is used
            rows = tx.query(
                "SELECT resident_code, name, name_kana, birth_date, address FROM residents"
                f" WHERE {column} >= ? AND {column} < ? ORDER BY {column}, resident_code"
                " LIMIT ?", [q, q + "\U0010ffff", limit])
            if len(rows) < limit:
                seen = {r["resident_code"] for r in rows}
                more = tx.query(
                    "SELECT resident_code, name, name_kana, birth_date, address FROM"
                    f" residents WHERE {column} LIKE ? ESCAPE '\\'"
                    f" ORDER BY {column}, resident_code LIMIT ?", ["%" + like + "%", limit])
                rows += [r for r in more if r["resident_code"] not in seen][:limit - len(rows)]
            out["residents"] = rows
    return {k: [dict(r) for r in v] for k, v in out.items()}


def record(db: Database, kind: str, key: str) -> dict[str, Any] | None:
    """One resident, application, card or certificate, what belongs to it, and its history
    (every audit entry about any of them), newest first."""
    with db.transaction() as tx:
        resident_code: str | None = None
        if kind == "resident":
            resident_code = key
        elif kind == "application":
            row = tx.query_one("SELECT resident_code FROM applications WHERE id = ?", [key])
            resident_code = row["resident_code"] if row else None
        elif kind == "card":
            row = tx.query_one("SELECT a.resident_code FROM cards c JOIN applications a"
                               " ON a.id = c.application_id WHERE c.serial = ?", [key])
            resident_code = row["resident_code"] if row else None
        elif kind == "certificate":
            row = tx.query_one("SELECT a.resident_code FROM issued_certificates i"
                               " JOIN applications a ON a.id = i.application_id"
                               " WHERE i.serial = ?", [key])
            resident_code = row["resident_code"] if row else None
        if resident_code is None:
            return None
        resident = tx.query_one("SELECT * FROM residents WHERE resident_code = ?",
                                [resident_code])
        if resident is None:
            return None
        apps = tx.query("SELECT * FROM applications WHERE resident_code = ?"
                        " ORDER BY applied_on, created_at", [resident_code])
        ids = [a["id"] for a in apps]
        cards = tx.query_in("SELECT * FROM cards WHERE application_id IN ({values})",
                            ids) if ids else []
        certs = tx.query_in("SELECT * FROM issued_certificates WHERE application_id IN"
                            " ({values})", ids) if ids else []
        subjects = [resident_code, *ids, *(c["serial"] for c in cards)]
        entries = tx.query(
            f"SELECT seq, at, operator, role, action, subject, outcome, detail FROM audit_log"
            f" WHERE subject IN ({_marks(subjects)}) ORDER BY seq DESC LIMIT 500", subjects)
    history = []
    for e in entries:
        item = dict(e)
        try:
            item["detail"] = json.loads(str(e["detail"]))
        except ValueError:
            item["detail"] = {}
        history.append(item)
    return {"resident": dict(resident), "applications": [dict(a) for a in apps],
            "cards": [dict(c) for c in cards], "certificates": [dict(c) for c in certs],
            "history": history}


# -- statistics ---------------------------------------------------------------------------
REASON_NAMES = {0: "unspecified", 1: "keyCompromise", 3: "affiliationChanged",
                4: "superseded", 5: "cessationOfOperation", 6: "certificateHold",
                9: "privilegeWithdrawn"}


def _day(stamp: str) -> date:
    return japan_date(datetime.fromisoformat(stamp))


def statistics(db: Database, *, days: int = 14, store: Any = None,
               today: date | None = None) -> dict[str, Any]:
    """Per day (Japan time) of the last `days`: cards issued (personalised), of them
    express; certificates revoked by reason (from the certificate store when given);
    express lead time (application to personalised card, in days)."""
    end = today or japan_date(utc_now())
    start = end - timedelta(days=days - 1)
    since = datetime.combine(start - timedelta(days=1), datetime.min.time()).isoformat()
    with db.transaction() as tx:
        issued = tx.query(
            "SELECT l.at, l.subject, a.express_reason, a.created_at FROM audit_log l"
            " JOIN applications a ON a.id = l.subject"
            " WHERE l.action = 'issue' AND l.outcome = 'ok' AND l.at >= ?", [since])
        # revoked at a loss or notice, replaced at a card update (affiliationChanged),
        # spoiled before delivery (unspecified): every one was revoked at the CA
        revoked = tx.query("SELECT serial, status, updated_at FROM issued_certificates"
                           " WHERE status IN ('revoked', 'replaced', 'spoiled')"
                           " AND updated_at >= ?", [since])
    per_day: dict[date, dict[str, Any]] = {
        start + timedelta(days=i): {"issued": 0, "express": 0, "revoked": Counter(),
                                    "lead_days": []} for i in range(days)}
    for row in issued:
        day = _day(str(row["at"]))
        if day in per_day:
            per_day[day]["issued"] += 1
            if row["express_reason"]:
                per_day[day]["express"] += 1
                lead = (datetime.fromisoformat(str(row["at"]))
                        - datetime.fromisoformat(str(row["created_at"])))
                per_day[day]["lead_days"].append(lead.total_seconds() / 86400)
    for row in revoked:
        day = _day(str(row["updated_at"]))
        if day not in per_day:
            continue
        reason = str(row["status"])  # without the store, what the issuance side knows
        if store is not None:
            info = store.status(int(str(row["serial"]), 16))
            if info is not None and info.reason is not None:
                reason = info.reason.name
        per_day[day]["revoked"][reason] += 1
    reasons: dict[str, int] = defaultdict(int)
    rows = []
    for day, v in sorted(per_day.items()):
        leads = v["lead_days"]
        for reason, n in v["revoked"].items():
            reasons[reason] += n
        rows.append({"day": day.isoformat(), "issued": v["issued"], "express": v["express"],
                     "revoked": sum(v["revoked"].values()),
                     "revoked_by_reason": dict(v["revoked"]),
                     "express_lead_days": round(sum(leads) / len(leads), 2) if leads else None})
    return {"days": rows, "revoked_by_reason": dict(reasons)}


def statistics_csv(stats: dict[str, Any]) -> str:
    reasons = sorted(stats["revoked_by_reason"])
    lines = [",".join(["day", "issued", "express", "revoked", "express_lead_days",
                       *(f"revoked_{r}" for r in reasons)])]
    for row in stats["days"]:
        lead = "" if row["express_lead_days"] is None else str(row["express_lead_days"])
        lines.append(",".join([row["day"], str(row["issued"]), str(row["express"]),
                               str(row["revoked"]), lead,
                               *(str(row["revoked_by_reason"].get(r, 0)) for r in reasons)]))
    return "\r\n".join(lines) + "\r\n"
