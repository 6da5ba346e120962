"""Applying notices while more are being stored: the processor in a child process.

Intake (parsing, validating, storing) and applying are both CPU-bound Python, so in one
process a large file takes their sum. `ApplyAlongside` runs a `NoticeProcessor` in a
child process that applies what intake has committed while intake stores the rest;
the wall time is then about the longer of the two. Nothing changes in what is applied
or how: the child uses the same processor, which is idempotent and order-tolerant, and
the databases serialise the two writers. The child keeps making passes until intake
says it is done, then makes one last pass that sees every committed notice.

Used by `mynacard notices ingest` for large files, and by the notice benchmark.
"""

from __future__ import annotations

import multiprocessing
import queue
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from issuance.errors import IssuanceError
from issuance.notices.processor import ProcessReport

IDLE_WAIT_S = 0.2  # between passes that found nothing to apply
_SUMMED = ("applied", "rematched", "unmatched", "revoked", "already_revoked", "kept", "cards")


class ApplyAlongsideError(IssuanceError):
    """The child process that applies notices failed (its notices stay accepted)."""


def _apply_until_done(db_url: str, store_location: str, now: datetime | None,
                      done: Any, results: Any) -> None:
    """The child: passes of `NoticeProcessor.process()` until `done` is set, then one more."""
    from issuance.notices.certificates import CertificateGateway
    from issuance.notices.processor import BATCH, NoticeProcessor
    from issuance.storage import open_database

    try:
        total = ProcessReport()
        with CertificateGateway.open(store_location) as certs:
            db = open_database(db_url)
            try:
                clock = (lambda: now) if now is not None else (lambda: datetime.now(UTC))
                # intake commits thousands at a time: no slow start from 1 each pass
                processor = NoticeProcessor(db, certs, clock=clock, first_batch=BATCH)
                while True:
                    finished = done.is_set()  # a pass begun after this saw every notice
                    report = processor.process()
                    for name in _SUMMED:
                        setattr(total, name, getattr(total, name) + getattr(report, name))
                    total.waiting_until_effective = report.waiting_until_effective
                    if finished:
                        break
                    if report.applied == 0:
                        done.wait(IDLE_WAIT_S)
            finally:
                db.close()
        results.put(("ok", total.to_json()))
    except BaseException as exc:  # reported to the parent, which raises it
        results.put(("error", f"{type(exc).__name__}: {exc}"))
        raise SystemExit(1) from None


class ApplyAlongside:
    """A child process applying accepted notices until `finish()`; a context manager
    that stops the child if the block fails.

    `db_url`: the issuance database (its `Database.url`); `store_location`: the
    certificate store; `now`: a fixed processing time (tests, benchmarks), else the
    real clock."""

    def __init__(self, db_url: str, store_location: str | Path, *,
                 now: datetime | None = None) -> None:
        ctx = multiprocessing.get_context("spawn")  # no inherited connections or threads
        self._done = ctx.Event()
        self._results = ctx.Queue()
        self._child = ctx.Process(
            target=_apply_until_done, name="mynacard-notices-apply", daemon=True,
            args=(db_url, str(store_location), now, self._done, self._results))
        self._child.start()

    def finish(self, timeout: float | None = None) -> ProcessReport:
        """Say intake is done; wait for the child's last pass; return what it applied."""
        self._done.set()
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            try:
                status, payload = self._results.get(timeout=1.0)
                break
            except queue.Empty:
                if not self._child.is_alive():
                    try:  # it may have reported just before exiting
                        status, payload = self._results.get(timeout=1.0)
                        break
                    except queue.Empty:
                        raise ApplyAlongsideError(
                            f"the notice processor exited (code {self._child.exitcode})"
                            " without a report; the notices not applied stay accepted"
                        ) from None
                if deadline is not None and time.monotonic() > deadline:
                    self.abort()
                    raise ApplyAlongsideError("the notice processor did not finish in time;"
                                              " the notices not applied stay accepted") from None
        self._child.join()
        if status != "ok":
            raise ApplyAlongsideError(f"applying notices failed: {payload}; the notices"
                                      " not applied stay accepted")
        report = ProcessReport()
        for name, value in payload.items():
            setattr(report, name, value)
        return report

    def abort(self) -> None:
        """Stop the child (what it committed stays; the rest stays accepted)."""
        if self._child.is_alive():
            self._child.terminate()
        self._child.join()

    def __enter__(self) -> ApplyAlongside:
        return self

    def __exit__(self, exc_type: object, *exc: object) -> None:
        if exc_type is not None:
            self.abort()
