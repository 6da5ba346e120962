"""Long counter actions (issue, hand-over, PIN reset, card update) run in a thread of their
own; the clerk's page polls their progress. An action that needs the holder's PINs gets a
`Pad`: the holder's PIN pad screen (paired by a one-time token) hands each PIN straight to
the running action, which asks for them one by one (`Pad.supply`), as the CLI's PIN
supplier does on a terminal. A PIN lives only in that hand-off; it is never stored, put in
the job's state, shown to the clerk or logged.
"""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from card.errors import CardError
from hsm import HsmError
from issuance.audit.operator import Acting, acting
from issuance.errors import IssuanceError
from issuance.personalisation.pins import PinKind, check_pin
from issuance.workflow.machine import Refused
from pki.errors import PkiError

PAD_WAIT = 600.0  # seconds the action waits for the holder's PIN
JOB_KEEP = 3600.0  # seconds a finished job stays listed


class PadTimeout(Refused):
    def __init__(self) -> None:
        super().__init__("3.7", "the holder did not enter the PINs on the PIN pad in time")


@dataclass
class Pad:
    """The hand-off between the holder's PIN pad screen and the running action."""

    token: str
    asking: tuple[PinKind, str] | None = None  # the PIN asked for now, "set" or "verify"
    device: str | None = None  # the PIN pad browser that opened the token first
    csrf: str = field(default_factory=lambda: secrets.token_urlsafe(24))
    closed: bool = False
    _value: str | None = None
    _cond: threading.Condition = field(default_factory=threading.Condition)

    def supply(self, kind: PinKind, mode: str = "set", *, wait: float = PAD_WAIT) -> str:
        """Ask the pad for `kind` and wait for the holder (called by the action's thread)."""
        with self._cond:
            self.asking = (kind, mode)
            self._value = None
            if not self._cond.wait_for(lambda: self._value is not None or self.closed, wait):
                self.asking = None
                raise PadTimeout()
            value, self._value, self.asking = self._value, None, None
        if value is None:
            raise PadTimeout()
        return value

    def deliver(self, kind: PinKind, first: str, second: str | None) -> str | None:
        """The holder's entry: None when taken, else why not (shown on the pad)."""
        with self._cond:
            if self.asking is None or self.asking[0] is not kind:
                return "not asked"
            if self.asking[1] == "set":
                if first != second:
                    return "mismatch"
                try:
                    check_pin(kind, first)
                except ValueError as exc:
                    return str(exc)
            elif not first:
                return "empty"
            # No longer asked for from this moment: the pad's page, fetched again straight
            # after this POST, must not show the same form while the action wakes.
            self._value, self.asking = first, None
            self._cond.notify_all()
        return None

    def close(self) -> None:
        with self._cond:
            self.closed = True
            self._cond.notify_all()


@dataclass
class Job:
    id: str
    kind: str
    subject: str
    operator: str
    started: float = field(default_factory=time.time)
    state: str = "running"  # running, done, refused, failed
    lines: list[tuple[float, str]] = field(default_factory=list)
    result: dict[str, Any] = field(default_factory=dict)
    rule: str | None = None
    message: str | None = None
    pad: Pad | None = None
    ended: float | None = None

    def progress(self, message: str) -> None:
        self.lines.append((round(time.time() - self.started, 2), message))

    def to_json(self) -> dict[str, Any]:
        """What the clerk's page sees: never a PIN (only which PIN the pad is asking for)."""
        asking = self.pad.asking if self.pad else None
        return {"id": self.id, "kind": self.kind, "subject": self.subject,
                "state": self.state, "rule": self.rule, "message": self.message,
                "steps": [{"t": t, "message": m} for t, m in self.lines],
                "pad_asking": asking[0].value if asking else None,
                "result": self.result}


Body = Callable[[Job], dict[str, Any]]


class JobTable:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._jobs: dict[str, Job] = {}
        self._pads: dict[str, Job] = {}

    def start(self, kind: str, subject: str, who: Acting, body: Body, *,
              pad: bool = False) -> Job:
        job = Job(secrets.token_urlsafe(12), kind, subject, who.operator)
        if pad:
            job.pad = Pad(secrets.token_urlsafe(24))
        with self._lock:
            self._forget_old()
            self._jobs[job.id] = job
            if job.pad is not None:
                self._pads[job.pad.token] = job
        thread = threading.Thread(target=self._run, args=(job, who, body),
                                  name=f"console-{kind}-{job.id}", daemon=True)
        thread.start()
        return job

    def _run(self, job: Job, who: Acting, body: Body) -> None:
        try:
            with acting(who):
                job.result = body(job)
            job.state = "done"
        except Refused as exc:
            job.state, job.rule, job.message = "refused", exc.rule, exc.message
        except (IssuanceError, CardError, HsmError, PkiError, ValueError) as exc:
            job.state = "failed"
            job.message = f"{type(exc).__name__}: {exc}"[:300]
        except Exception as exc:  # a job must never die silently
            job.state = "failed"
            job.message = f"{type(exc).__name__}"
        finally:
            job.ended = time.time()
            if job.pad is not None:
                job.pad.close()  # the pad page now says done; the token takes no PIN

    def _forget_old(self) -> None:
        now = time.time()
        for key in [k for k, j in self._jobs.items()
                    if j.ended is not None and now - j.ended > JOB_KEEP]:
            job = self._jobs.pop(key)
            if job.pad is not None:
                self._pads.pop(job.pad.token, None)

    def get(self, job_id: str) -> Job | None:
        with self._lock:
            return self._jobs.get(job_id)

    def by_pad(self, token: str) -> Job | None:
        with self._lock:
            return self._pads.get(token)

    def running(self) -> list[Job]:
        with self._lock:
            return [j for j in self._jobs.values() if j.state == "running"]
