"""Wait for readers of one pcscd to show (or lose) their cards.

libpcsclite reads `PCSCLITE_CSOCK_NAME` once per process and keeps the socket name for
the rest of the process's life. A process that already talks to one pcscd therefore
cannot ask another one; the launcher then runs this module as a child process with the
other pcscd's socket in its environment:

    python -m emulator.probe --present|--absent [--timeout S] READER...

Exit 0 when every reader reached the state, 1 otherwise (the readers that did not are
printed one per line on stdout).
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable, Sequence

from card.transport import reader_has_card


def pending(readers: Sequence[str], present: bool) -> list[str]:
    """The readers (of the process's pcscd) that are not yet in the wanted state."""
    # reader_has_card is False for a reader pcscd does not know, too.
    return [name for name in readers if reader_has_card(name) != present]


def wait(
    readers: Sequence[str],
    present: bool,
    timeout: float,
    interval: float = 0.02,
    alive: Callable[[], None] | None = None,
) -> list[str]:
    """Poll until every reader is in the wanted state; return those that never got there.

    `alive` is called between polls and may raise to stop waiting early.
    """
    deadline = time.monotonic() + timeout
    while True:
        left = pending(readers, present)
        if not left or time.monotonic() >= deadline:
            return left
        if alive is not None:
            alive()
        time.sleep(interval)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m emulator.probe")
    state = parser.add_mutually_exclusive_group(required=True)
    state.add_argument("--present", action="store_true")
    state.add_argument("--absent", action="store_true")
    parser.add_argument("--timeout", type=float, default=10.0)
    parser.add_argument("readers", nargs="+")
    args = parser.parse_args(argv)
    left = wait(args.readers, present=args.present, timeout=args.timeout)
    for name in left:
        print(name)
    return 1 if left else 0


if __name__ == "__main__":
    sys.exit(main())
