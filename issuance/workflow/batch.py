"""Issuing many applications over K readers at once: one worker thread per reader, each
owning its reader (a card encoder), all taking applications from one queue.

After each card a worker waits for the next blank card in its reader (a new serial); a
worker whose reader stays empty longer than `card_wait` seconds stops, and the
applications nobody took are reported as not issued.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from card.errors import CardError
from card.issuer import card_manager_serial
from card.session import channel_for
from card.transport import PcscTransport
from issuance.workflow.issue import Issuer, IssueResult
from issuance.workflow.machine import Refused


@dataclass
class BatchReport:
    issued: list[IssueResult] = field(default_factory=list)
    refused: dict[str, str] = field(default_factory=dict)
    not_issued: list[str] = field(default_factory=list)
    errors: dict[str, str] = field(default_factory=dict)  # reader -> why its worker stopped
    seconds: float = 0.0
    readers: int = 0

    @property
    def cards_per_hour(self) -> float:
        return len(self.issued) / self.seconds * 3600 if self.seconds else 0.0

    def to_json(self) -> dict[str, Any]:
        return {"issued": [r.to_json() for r in self.issued], "refused": self.refused,
                "not_issued": self.not_issued, "reader_errors": self.errors,
                "seconds": round(self.seconds, 3),
                "readers": self.readers, "cards_per_hour": round(self.cards_per_hour, 1)}


FIRST_CARD_WAIT = 10.0


def card_serial_in(reader: str) -> str | None:
    """The serial of the card in `reader`, None when there is none (or it is unreadable)."""
    try:
        with PcscTransport(reader) as transport:
            return card_manager_serial(channel_for(transport))
    except CardError:
        return None


def wait_for_new_card(reader: str, previous: str | None, timeout: float) -> str | None:
    deadline = time.monotonic() + timeout
    while True:
        serial = card_serial_in(reader)
        if serial is not None and serial != previous:
            return serial
        if time.monotonic() >= deadline:
            return None
        time.sleep(0.1)


def issue_batch(issuer_for: Callable[[str], Issuer], applications: list[str],
                readers: list[str], *, card_wait: float = 0.0,
                on_card_done: Callable[[str, str], None] | None = None,
                certificates: bool = True) -> BatchReport:
    """Issue `applications` over `readers` in parallel. `issuer_for(reader)` gives each
    worker its Issuer; `on_card_done(reader, serial)` is called after each card (a card
    feeder, e.g. an encoder's hopper, or the emulator in benchmarks)."""
    if not readers:
        raise ValueError("a batch needs at least one reader")
    if len(set(readers)) != len(readers):
        raise ValueError("a reader is named twice")
    work: queue.Queue[str] = queue.Queue()
    for app in applications:
        work.put(app)
    report = BatchReport(readers=len(readers))
    lock = threading.Lock()

    def worker(reader: str) -> None:
        issuer = issuer_for(reader)
        previous: str | None = None
        first = True
        while True:
            # the first card is already in the reader: allow for a slow PC/SC answer
            serial = wait_for_new_card(reader, previous,
                                       max(card_wait, FIRST_CARD_WAIT) if first else card_wait)
            first = False
            if serial is None:
                return
            try:
                app = work.get_nowait()
            except queue.Empty:
                return
            try:
                result = issuer.issue(app, reader, certificates=certificates)
            except Refused as exc:
                with lock:
                    report.refused[app] = f"rule {exc.rule}: {exc.message}"
                previous = serial if exc.rule in ("W2", "W3", "W4") else previous
                if exc.rule in ("W2", "W3", "W4"):
                    work.put(app)  # this card is unusable: try the app again on the next
                continue
            except Exception as exc:  # a card or HSM failure: keep the batch going
                with lock:
                    report.refused[app] = f"error: {exc}"
                previous = serial
                continue
            with lock:
                report.issued.append(result)
                report.refused.pop(app, None)
            previous = serial
            if on_card_done is not None:
                on_card_done(reader, serial)

    # pyscard imports lazily; two threads importing it at once break each other (a
    # partially initialised module), so import it here, before the workers start.
    import smartcard.Exceptions  # noqa: F401
    import smartcard.System  # noqa: F401

    def guarded_worker(reader: str) -> None:
        try:
            worker(reader)
        except Exception as exc:  # a worker must never die silently
            with lock:
                report.errors[reader] = f"{type(exc).__name__}: {exc}"

    started = time.monotonic()
    threads = [threading.Thread(target=guarded_worker, args=(r,), name=f"issue-{r}")
               for r in readers]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    report.seconds = time.monotonic() - started
    while True:
        try:
            left = work.get_nowait()
        except queue.Empty:
            break
        if left not in report.refused:
            report.not_issued.append(left)
    return report
