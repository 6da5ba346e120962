"""`mynacard notices process --workers N`: N local processor processes on PostgreSQL.

Each worker is a `NoticeProcessor` in a process of its own (its own connections), and
the workers share the waiting notices by resident bucket (`issuance.notices.claims`):
the same as starting `mynacard notices process` N times, here or on other machines.
Each worker audits the batches it applies in their own transactions, so a worker that
dies leaves an audit log that still matches what was applied. On SQLite there is one
writer: the command applies in its own process (`workers_useful` is False).
"""

from __future__ import annotations

import multiprocessing
import queue
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from issuance.errors import IssuanceError
from issuance.notices.processor import ProcessReport
from issuance.storage import Database

SUMMED = ("applied", "rematched", "unmatched", "revoked", "already_revoked", "kept", "cards")


class WorkerError(IssuanceError):
    """A worker process failed (the notices it did not apply stay accepted)."""


def workers_useful(db: Database, workers: int) -> bool:
    return workers > 1 and db.dialect == "postgresql"


def add_reports(total: ProcessReport, part: ProcessReport) -> None:
    for name in SUMMED:
        setattr(total, name, getattr(total, name) + getattr(part, name))
    total.waiting_until_effective = part.waiting_until_effective


def _work(db_url: str, store_location: str, operator: str, now: datetime | None,
          results: Any) -> None:
    from issuance.notices.certificates import CertificateGateway
    from issuance.notices.processor import NoticeProcessor
    from issuance.storage import open_database

    try:
        clock = (lambda: now) if now is not None else (lambda: datetime.now(UTC))
        with CertificateGateway.open(store_location) as certs:
            db = open_database(db_url)
            try:
                report = NoticeProcessor(db, certs, clock=clock, audit_operator=operator
                                         ).process(until_free=True)
            finally:
                db.close()
        results.put(("ok", report.to_json()))
    except BaseException as exc:  # reported to the parent, which raises it
        results.put(("error", f"{type(exc).__name__}: {exc}"))
        raise SystemExit(1) from None


def process_with_workers(db_url: str, store_location: str | Path, workers: int, *,
                         operator: str, now: datetime | None = None) -> ProcessReport:
    """Run `workers` processors until none finds a bucket with due notices left; the sum
    of their reports. A worker that dies is reported once the others are done."""
    ctx = multiprocessing.get_context("spawn")  # no inherited connections or threads
    results = ctx.Queue()
    children = [ctx.Process(target=_work, name=f"mynacard-notices-worker-{k}", daemon=True,
                            args=(db_url, str(store_location), operator, now, results))
                for k in range(workers)]
    for child in children:
        child.start()
    total, errors, got = ProcessReport(), [], 0
    try:
        while got < workers:
            try:
                status, payload = results.get(timeout=1.0)
            except queue.Empty:
                if all(not c.is_alive() for c in children):
                    try:
                        status, payload = results.get(timeout=1.0)
                    except queue.Empty:
                        errors.append("a worker exited without a report")
                        break
                else:
                    continue
            got += 1
            if status != "ok":
                errors.append(str(payload))
                continue
            part = ProcessReport()
            for name, value in payload.items():
                setattr(part, name, value)
            add_reports(total, part)
    finally:
        for child in children:
            child.join(5)
            if child.is_alive():
                child.terminate()
                child.join()
    if errors:
        raise WorkerError(f"notice worker failed: {errors[0]}; the notices it did not"
                          " apply stay accepted")
    return total
