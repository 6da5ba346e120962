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
    EXIT_USAGE,
    add_common_options,
    emit_json,
    guarded,
    open_store,
    operator_or_none,
)
from issuance.audit.log import AuditLog
from issuance.registry.dates import utc_now

Clock = Callable[[], datetime]


def register(subparsers: Any, *, clock: Clock = utc_now) -> None:
    """Add `audit verify` and `audit show`."""
    parser = subparsers.add_parser("audit", help="verify and read the operator audit log")
    sub = parser.add_subparsers(title="audit commands", metavar="COMMAND")
    verify = sub.add_parser(
        "verify", help="check the hash chain; name every edited, removed or reordered entry",
    )
    verify.add_argument("--head", metavar="HASH",
                        help="the last head you recorded: also detects a truncated log")
    add_common_options(verify)
    verify.set_defaults(func=guarded(lambda a: _verify(a, clock)))
    show = sub.add_parser("show", help="print entries")
    show.add_argument("--since", type=int, default=1, metavar="SEQ")
    show.add_argument("--limit", type=int, metavar="N")
    add_common_options(show)
    show.set_defaults(func=guarded(lambda a: _show(a, clock)))


def _verify(args: argparse.Namespace, clock: Clock) -> int:
    operator = operator_or_none(args)
    if operator is None:
        return EXIT_USAGE
    with open_store(args) as db:
        log = AuditLog(db, clock=clock)
        result = log.verify(expected_head=args.head)
        # Recorded after verifying, so the check covers the log as it was found.
        log.append(operator=operator, action="audit.verify", subject="audit_log",
                   outcome="ok" if result.ok else "broken",
                   detail={"entries": result.count, "head": result.head,
                           "problems": [p.seq for p in result.problems]})
    if args.json:
        emit_json(result.to_json())
    elif result.ok:
        print(f"audit log intact: {result.count} entries, head {result.head}")
    else:
        for p in result.problems:
            print(f"seq {p.seq}: {p.kind}: {p.message}", file=sys.stderr)
        print(f"audit log BROKEN: {len(result.problems)} problem(s) in {result.count} entries")
    return EXIT_OK if result.ok else EXIT_REFUSED


def _show(args: argparse.Namespace, clock: Clock) -> int:
    operator = operator_or_none(args)
    if operator is None:
        return EXIT_USAGE
    with open_store(args) as db:
        log = AuditLog(db, clock=clock)
        entries = log.entries(since=args.since, limit=args.limit)
        log.append(operator=operator, action="audit.show", subject="audit_log", outcome="ok",
                   detail={"since": args.since, "count": len(entries)})
    if args.json:
        emit_json([e.to_json() for e in entries])
    else:
        for e in entries:
            print(f"{e.seq:>6} {e.at} {e.operator} {e.action} {e.subject} {e.outcome}"
                  f" {e.hash[:16]}")
    return EXIT_OK
