"""`mynacard audit verify|show`: check and read the operator audit log."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from datetime import datetime
from typing import Any

from issuance.audit.cli_support import (
    EXIT_OK,
    EXIT_REFUSED,
    add_common_options,
    emit_json,
    guarded,
    open_store,
)
from issuance.audit.log import AuditLog, head_ref
from issuance.registry.dates import utc_now

Clock = Callable[[], datetime]


def register(subparsers: Any, *, clock: Clock = utc_now) -> None:
    """Add `audit verify` and `audit show`."""
    parser = subparsers.add_parser("audit", help="verify and read the operator audit log")
    sub = parser.add_subparsers(title="audit commands", metavar="COMMAND")
    verify = sub.add_parser(
        "verify", help="check the keyed hash chain; name every edited, removed, reordered "
                       "or forged entry",
        description="Walk the chain from seq 1: each entry's hash, its link to the one "
                    "before, and its MAC made by the audit key in the center's HSM. Exit 0 "
                    "when intact, 1 when not. Read-only: it records nothing.")
    verify.add_argument("--head", metavar="SEQ:HASH",
                        help="a head you recorded (printed by verify and show): the log must "
                             "extend it, so removing entries from its end is found")
    add_common_options(verify)
    verify.set_defaults(func=guarded(lambda a: _verify(a, clock)), changes=False, roles="*")
    show = sub.add_parser("show", help="print entries")
    show.add_argument("--since", type=int, default=1, metavar="SEQ")
    show.add_argument("--limit", type=int, metavar="N")
    add_common_options(show)
    show.set_defaults(func=guarded(lambda a: _show(a, clock)), changes=False, roles="*")


def _verify(args: argparse.Namespace, clock: Clock) -> int:
    """Read-only: needs no operator and writes nothing, so it never breaks its own check."""
    with open_store(args) as db:
        result = AuditLog(db, clock=clock).verify(expected_head=args.head)
    if args.json:
        emit_json(result.to_json())
    elif result.ok:
        keyed = (f", {result.macs} keyed by the HSM audit key" if result.keyed
                 else ", not keyed (no center audit key here)")
        print(f"audit log intact: {result.count} entries{keyed}; head {result.head_ref}")
    else:
        for p in result.problems:
            print(f"seq {p.seq}: {p.kind}: {p.message}", file=sys.stderr)
        print(f"audit log BROKEN: {len(result.problems)} problem(s) in {result.count} entries")
    return EXIT_OK if result.ok else EXIT_REFUSED


def _show(args: argparse.Namespace, clock: Clock) -> int:
    """Read-only: needs no operator and writes nothing."""
    with open_store(args) as db:
        entries = AuditLog(db, clock=clock).entries(since=args.since, limit=args.limit)
    if args.json:
        emit_json([e.to_json() for e in entries])
    else:
        for e in entries:
            print(f"{e.seq:>6} {e.at} {e.operator} {e.action} {e.subject} {e.outcome}"
                  f" {head_ref(e.seq, e.hash)}{'' if e.mac else ' (no MAC)'}")
    return EXIT_OK
