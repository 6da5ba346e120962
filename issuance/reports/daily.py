"""The daily report: what the center did on one (Japan) day.

Counts come from the audit log, where every step of every application is recorded
with its time: applications taken, cards issued (of them express), handed over and
activated. Revocations come from the certificate store (by RFC 5280 reason); without a
store, from the issued-certificate records (by status). Express lead time is measured
from the application date to the day the card was issued, against the one-week target
of rule 4.6; the day's issuance volume against the 10,000 cards a day of rule 4.7.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from statistics import median
from typing import Any

from issuance.records.queries import JST, day_bounds
from issuance.storage import Transaction
from pki.store import ReadOnlyStore

EXPRESS_TARGET_DAYS = 7  # rule 4.6: about one week
DAILY_CAPACITY = 10_000  # rule 4.7


@dataclass(frozen=True)
class DailyReport:
    day: date
    applications: int
    issued: int
    express_issued: int
    handed_over: int
    activated: int
    revoked: dict[str, int]
    revocation_source: str  # "certificate store" | "issuance records"
    unmatched_notices: int  # waiting now
    unmatched_received: int  # received on the day and still unmatched
    express_lead_days: list[int] = field(default_factory=list)

    @property
    def express_over_target(self) -> int:
        return sum(1 for d in self.express_lead_days if d > EXPRESS_TARGET_DAYS)

    @property
    def capacity_used(self) -> float:
        return self.issued / DAILY_CAPACITY

    def to_json(self) -> dict[str, Any]:
        lead = self.express_lead_days
        return {
            "date": self.day.isoformat(), "applications": self.applications,
            "issued": self.issued, "express_issued": self.express_issued,
            "handed_over": self.handed_over, "activated": self.activated,
            "revoked": dict(sorted(self.revoked.items())),
            "revoked_total": sum(self.revoked.values()),
            "revocation_source": self.revocation_source,
            "unmatched_notices": self.unmatched_notices,
            "unmatched_received": self.unmatched_received,
            "express_lead_time": {
                "target_days": EXPRESS_TARGET_DAYS, "cards": len(lead),
                "median_days": median(lead) if lead else None,
                "max_days": max(lead) if lead else None,
                "over_target": self.express_over_target,
            },
            "volume": {"capacity_per_day": DAILY_CAPACITY, "issued": self.issued,
                       "share": round(self.capacity_used, 4),
                       "over_capacity": self.issued > DAILY_CAPACITY},
        }

    def csv_rows(self) -> list[tuple[str, str]]:
        """(metric, value) rows, flat."""
        data = self.to_json()
        rows = [(k, str(data[k])) for k in ("date", "applications", "issued",
                                             "express_issued", "handed_over", "activated",
                                             "revoked_total", "unmatched_notices",
                                             "unmatched_received")]
        rows += [(f"revoked.{reason}", str(n)) for reason, n in data["revoked"].items()]
        rows += [(f"express_lead_time.{k}", "" if v is None else str(v))
                 for k, v in data["express_lead_time"].items()]
        rows += [(f"volume.{k}", str(v)) for k, v in data["volume"].items()]
        return rows


def _table_exists(tx: Transaction, name: str) -> bool:
    if tx.dialect == "sqlite":
        sql = "SELECT 1 AS x FROM sqlite_master WHERE type = 'table' AND name = ?"
    else:
        sql = ("SELECT 1 AS x FROM information_schema.tables WHERE table_name = ?"
               " AND table_schema = current_schema()")
    return tx.query_one(sql, (name,)) is not None


def daily_report(tx: Transaction, day: date, store: ReadOnlyStore | None = None
                 ) -> DailyReport:
    start, end = day_bounds(day)
    entries = tx.query(
        "SELECT action, subject, outcome, detail FROM audit_log WHERE at >= ? AND at < ?"
        " AND action IN ('application.apply', 'issue', 'handover', 'activate')",
        (start, end))
    counts: Counter[str] = Counter()
    issued_apps: list[str] = []
    for e in entries:
        if e["action"] == "application.apply":
            counts["applications"] += e["outcome"] == "accepted"
            continue
        if e["outcome"] != "ok":
            continue
        try:
            to = json.loads(e["detail"]).get("to")
        except (ValueError, AttributeError):
            continue
        if e["action"] == "issue" and to == "personalised":
            issued_apps.append(e["subject"])
        elif e["action"] == "handover" and to == "handed_over":
            counts["handed_over"] += 1
        elif e["action"] == "activate" and to == "activated":
            counts["activated"] += 1
    lead: list[int] = []
    for row in tx.query_in("SELECT applied_on, express_reason FROM applications"
                           " WHERE id IN ({values})", issued_apps):
        if row["express_reason"]:
            lead.append((day - date.fromisoformat(row["applied_on"])).days)
    revoked: Counter[str] = Counter()
    if store is not None:
        first = datetime.combine(day, time(), JST).astimezone(UTC)
        for cert in store.revoked_between(first, first + timedelta(days=1)):
            reason = ("certificateHold" if cert.status.value == "hold" else
                      cert.reason.value if cert.reason is not None else "unspecified")
            revoked[reason] += 1
        source = "certificate store"
    else:
        if _table_exists(tx, "issued_certificates"):
            for row in tx.query("SELECT status FROM issued_certificates WHERE updated_at >= ?"
                                " AND updated_at < ? AND status <> 'current'", (start, end)):
                revoked[row["status"]] += 1
        source = "issuance records"
    unmatched = received = 0
    if _table_exists(tx, "notices"):
        total = tx.query_one("SELECT COUNT(*) AS n FROM notices WHERE state = 'unmatched'")
        unmatched = int(total["n"]) if total else 0
        today = tx.query_one("SELECT COUNT(*) AS n FROM notices WHERE state = 'unmatched'"
                             " AND received_at >= ? AND received_at < ?", (start, end))
        received = int(today["n"]) if today else 0
    return DailyReport(day, counts["applications"], len(issued_apps), len(lead),
                       counts["handed_over"], counts["activated"], dict(revoked), source,
                       unmatched, received, sorted(lead))
