"""Running a publication step on a schedule: `crl publish --every 15m`, `rp push --follow`.

`run_every(step, every=…, count=…)` runs `step` at once and then every `every` seconds
(measured from the start of each run, so a slow run does not drift the schedule; a run
longer than the period is followed at once by the next). Ctrl-C (SIGINT) or SIGTERM stops
it cleanly between runs or while waiting; a run in progress finishes first.
"""

from __future__ import annotations

import re
import signal
import threading
import time
from collections.abc import Callable
from typing import Any

_DURATION = re.compile(r"\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*")
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, None: 1.0}


def parse_duration(text: str) -> float:
    """'15m' → 900.0; units ms, s, m, h, d (none means seconds); also '1h30m'."""
    if not isinstance(text, str) or not text.strip():
        raise ValueError("empty duration")
    total, pos = 0.0, 0
    while pos < len(text):
        m = _DURATION.match(text, pos)
        if m is None or m.end() == pos:
            raise ValueError(f"not a duration: {text!r} (e.g. 30s, 15m, 1h)")
        total += float(m.group(1)) * _UNITS[m.group(2)]
        pos = m.end()
    if total <= 0:
        raise ValueError(f"duration must be positive: {text!r}")
    return total


def run_every(step: Callable[[], Any], *, every: float, count: int | None = None,
              stop: threading.Event | None = None,
              on_error: Callable[[BaseException], None] | None = None) -> int:
    """Run `step` now and every `every` seconds, `count` times (None: until stopped).
    Returns how many runs completed. An exception in a run is passed to `on_error` (the
    loop goes on) or, without one, ends the loop."""
    if every <= 0:
        raise ValueError("every must be positive")
    stop = stop or threading.Event()
    previous: dict[Any, Any] = {}
    if threading.current_thread() is threading.main_thread():
        def _stop(signum: int, _frame: Any) -> None:
            stop.set()
        for sig in (signal.SIGINT, signal.SIGTERM):
            previous[sig] = signal.signal(sig, _stop)
    runs = 0
    try:
        while not stop.is_set() and (count is None or runs < count):
            started = time.monotonic()
            try:
                step()
            except Exception as exc:
                if on_error is None:
                    raise
                on_error(exc)
            runs += 1
            if count is not None and runs >= count:
                break
            stop.wait(max(0.0, started + every - time.monotonic()))
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return runs


def scheduled(step: Callable[[Any], int], args: Any) -> int:
    """Wrap a CLI command `step(args) -> exit code` for `--every DURATION [--count N]`.

    Without ``args.every`` it runs once. With it, each failing run is reported and the
    schedule goes on; the exit code is that of the last run."""
    every = getattr(args, "every", None)
    if not every:
        return step(args)
    import sys

    period = parse_duration(every) if isinstance(every, str) else float(every)
    last = [0]

    def once() -> None:
        last[0] = step(args)
        print(f"next run in {period:g}s", file=sys.stderr, flush=True)

    run_every(once, every=period, count=getattr(args, "count", None))
    return last[0]
