"""`mynacard notices …`: ingest, apply and report notices from 住基ネット and 附票ネット.

Notices are JSON Lines, one notice per line (schema: issuance/notices/schema.json, also
printed by `mynacard notices schema`). Exit codes as every issuance command: 0 done,
1 some notices rejected, 2 usage (no operator), 3 storage or file problem.

A large file (8 MiB or more, or with --apply-alongside always) is applied while it is
stored: a second process applies what has been committed, so a million notices take
about as long as storing them or applying them, whichever is longer, not the sum.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

from issuance.audit.cli_support import (
    EXIT_ERROR,
    EXIT_OK,
    EXIT_REFUSED,
    EXIT_USAGE,
    add_common_options,
    emit_json,
    fail,
    guarded,
    open_store,
    operator_or_none,
)
from issuance.audit.log import AuditLog
from issuance.notices.alongside import ApplyAlongside, ApplyAlongsideError
from issuance.notices.certificates import CertificateGateway, CertificateStoreError
from issuance.notices.intake import IntakeReport, NoticeIntake, bounded_lines
from issuance.notices.model import SCHEMA_PATH
from issuance.notices.processor import NoticeProcessor, ProcessReport
from issuance.notices.queries import notice_counts, problem_notices
from issuance.notices.store_option import add_store_option, store_location
from issuance.notices.workers import WorkerError, process_with_workers, workers_useful
from issuance.registry.dates import japan_date, utc_now

Clock = Callable[[], datetime]
ALONGSIDE_MIN_BYTES = 8 << 20  # about 40,000 notices: worth a second process


def register(subparsers: Any, *, clock: Clock = utc_now) -> None:
    """Add `notices ingest|process|status|unmatched|schema` (and `serve`, `sender`)."""
    parser = subparsers.add_parser(
        "notices", help="death, emigration and change notices that revoke certificates",
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(title="notices commands", metavar="COMMAND")

    ingest = sub.add_parser(
        "ingest", help="store the notices of a JSON Lines file, then apply them",
        description="Store every notice of FILE (accepted means stored), then apply the "
        "waiting ones. Duplicates change nothing; malformed lines are kept as rejected and "
        "notices for unknown residents as unmatched; both are listed.")
    ingest.add_argument("file", type=Path, metavar="FILE", help="JSON Lines; - for stdin")
    ingest.add_argument("--no-process", action="store_true", help="store only")
    ingest.add_argument("--source", action="append", choices=["juki", "fuhyo"],
                        dest="sources", metavar="SOURCE",
                        help="accept only notices of this source (juki, fuhyo; repeatable); "
                             "others are rejected for their line (default: both). The file "
                             "intake's notices are stored as sent by 'local'")
    ingest.add_argument("--batch", type=int, default=None, metavar="N",
                        help="lines per transaction (default 500; 5000 for bulk files)")
    ingest.add_argument(
        "--apply-alongside", choices=["auto", "always", "never"], default="auto",
        help="apply in a second process while storing (about halves the time of a large "
             f"file on 2 cores); auto: for files of {ALONGSIDE_MIN_BYTES >> 20} MiB or more")
    add_store_option(ingest)
    add_common_options(ingest)
    ingest.set_defaults(func=guarded(lambda a: _ingest(a, clock)), changes=True,
                        roles=("clerk", "supervisor"),
                        audit_action="notices.ingest", audits_itself=True, audit_subject="file")

    process = sub.add_parser("process", help="apply the waiting (accepted) notices")
    process.add_argument("--workers", type=int, default=1, metavar="N",
                         help="PostgreSQL: N processor processes sharing the notices by "
                              "resident bucket (as N `notices process` on one or several "
                              "machines); SQLite has one writer and applies in one process")
    add_store_option(process)
    add_common_options(process)
    process.set_defaults(func=guarded(lambda a: _process(a, clock)), changes=True,
                         roles=("clerk", "supervisor"),
                         audit_action="notices.process", audits_itself=True)

    status = sub.add_parser("status", help="counts: arrived, applied, waiting, unmatched, "
                            "rejected")
    add_common_options(status)
    status.set_defaults(func=guarded(lambda a: _status(a, clock)), changes=False, roles="*")

    unmatched = sub.add_parser("unmatched", help="list unmatched notices and rejected ones "
                               "with their reasons")
    unmatched.add_argument("--limit", type=int, metavar="N", help="at most N of each")
    add_common_options(unmatched)
    unmatched.set_defaults(func=guarded(lambda a: _unmatched(a, clock)), changes=False, roles="*")

    schema = sub.add_parser("schema", help="print the published JSON Schema of a notice")
    schema.set_defaults(func=lambda a: _print_schema(), changes=False, roles="*")

    try:
        from issuance.notices.http import register_http
    except ImportError:  # Starlette/uvicorn missing: the other commands still work
        return
    register_http(sub, clock=clock)


def _print_schema() -> int:
    sys.stdout.write(SCHEMA_PATH.read_text(encoding="utf-8"))
    return EXIT_OK


def _progress(label: str) -> Callable[[Any], None]:
    """Counts and rate on stderr while a terminal watches (hsm.terminal.Progress)."""
    from hsm.terminal import Progress

    bar = Progress(label)

    def show(report: Any) -> None:
        if isinstance(report, IntakeReport):
            bar.update(report.lines, "lines read; " + ", ".join(
                f"{k} {v}" for k, v in report.counts.items()), force=True)
        elif isinstance(report, ProcessReport):
            bar.update(report.applied, f"notices applied, {report.revoked} certificate(s)"
                                       " revoked", force=True)
    return show


def _ingest(args: argparse.Namespace, clock: Clock) -> int:
    operator = operator_or_none(args)
    if operator is None:
        return EXIT_USAGE
    subject = str(args.file)
    with open_store(args) as db:
        log = AuditLog(db, clock=clock)
        intake = NoticeIntake(db, clock=clock, sources=args.sources,
                              **({"batch": args.batch} if args.batch else {}))
        show = _progress("ingest") if not args.json else None
        applier = None
        if not args.no_process and _alongside(args):
            applier = ApplyAlongside(db.url, store_location(args))
        try:
            if subject == "-":
                report = intake.accept_lines(bounded_lines(sys.stdin.buffer), progress=show)
            else:
                with args.file.open("rb") as fh:
                    report = intake.accept_lines(bounded_lines(fh), progress=show)
        except OSError as exc:
            if applier is not None:
                applier.abort()
            log.append(operator=operator, action="notices.ingest", subject=subject,
                       outcome="refused", detail={"reason": str(exc)})
            fail(f"{args.file}: {exc.strerror or exc}")
            return EXIT_ERROR
        except BaseException:
            if applier is not None:
                applier.abort()
            raise
        processed: ProcessReport | None = None
        if not args.no_process:
            try:
                if applier is not None:
                    processed = applier.finish()
                else:
                    with CertificateGateway.open(store_location(args)) as certs:
                        processed = NoticeProcessor(db, certs, clock=clock).process(
                            progress=_progress("process") if not args.json else None)
            except (CertificateStoreError, ApplyAlongsideError) as exc:
                log.append(operator=operator, action="notices.ingest", subject=subject,
                           outcome="stored_not_applied",
                           detail={**report.counts, "lines": report.lines,
                                   "reason": str(exc)})
                fail(f"notices stored but not applied: {exc}")
                return EXIT_ERROR
        outcome = "ok" if not report.counts["rejected"] else "partial"
        log.append(operator=operator, action="notices.ingest", subject=subject,
                   outcome=outcome, detail={
                       **report.counts, "lines": report.lines,
                       "rejected_lines": [p.line for p in report.problems
                                          if p.outcome == "rejected"][:1000],
                       "processed": processed.to_json() if processed else None})
    if args.json:
        emit_json({"intake": report.to_json(),
                   "processed": processed.to_json() if processed else None})
    else:
        for p in report.problems:
            what = f"{p.source or '?'}:{p.id or '?'}"
            print(f"{args.file}: line {p.line}: {p.outcome} ({what})"
                  + (f": {p.reason}" if p.reason and p.outcome != "unmatched" else ""),
                  file=sys.stderr)
        print("stored: " + ", ".join(f"{k} {v}" for k, v in report.counts.items()))
        if processed:
            _print_processed(processed)
    return EXIT_OK if not report.counts["rejected"] else EXIT_REFUSED


def _alongside(args: argparse.Namespace) -> bool:
    if args.apply_alongside != "auto":
        return bool(args.apply_alongside == "always")
    try:
        return str(args.file) != "-" and args.file.stat().st_size >= ALONGSIDE_MIN_BYTES
    except OSError:
        return False  # reported when the file is opened


def _print_processed(p: ProcessReport) -> None:
    print(f"applied {p.applied} notice(s): revoked {p.revoked} certificate(s)"
          f" ({p.already_revoked} already revoked), kept {p.kept}, cards {p.cards};"
          f" re-matched {p.rematched}, not yet effective {p.waiting_until_effective}")


def _process(args: argparse.Namespace, clock: Clock) -> int:
    operator = operator_or_none(args)
    if operator is None:
        return EXIT_USAGE
    if args.workers < 1:
        fail("--workers must be at least 1")
        return EXIT_USAGE
    with open_store(args) as db:
        if workers_useful(db, args.workers):
            try:
                report = process_with_workers(db.url, store_location(args), args.workers,
                                              operator=operator)
            except WorkerError as exc:
                AuditLog(db, clock=clock).append(
                    operator=operator, action="notices.process", subject="notices",
                    outcome="failed", detail={"workers": args.workers, "reason": str(exc)})
                fail(str(exc))
                return EXIT_ERROR
            detail = {**report.to_json(), "workers": args.workers}
        else:
            with CertificateGateway.open(store_location(args)) as certs:
                report = NoticeProcessor(db, certs, clock=clock).process(
                    progress=_progress("process") if not args.json else None, until_free=True)
            detail = report.to_json()
        AuditLog(db, clock=clock).append(operator=operator, action="notices.process",
                                         subject="notices", outcome="ok", detail=detail)
    if args.json:
        emit_json(report.to_json())
    else:
        _print_processed(report)
    return EXIT_OK


def _status(args: argparse.Namespace, clock: Clock) -> int:
    """Read-only: needs no operator and records nothing."""
    with open_store(args) as db:
        counts = notice_counts(db, today=japan_date(clock()).isoformat())
    if args.json:
        emit_json(counts)
    else:
        for key, value in counts.items():
            print(f"{key}: {value}")
    return EXIT_OK


def _unmatched(args: argparse.Namespace, clock: Clock) -> int:
    """Read-only: needs no operator and records nothing."""
    with open_store(args) as db:
        found = problem_notices(db, limit=args.limit)
    if args.json:
        emit_json(found)
    else:
        print(f"unmatched: {len(found['unmatched'])}")
        for n in found["unmatched"]:
            print(f"  {n['source']}:{n['id']} {n['kind']} resident {n['resident_code']}"
                  f" effective {n['effective_date']} received {n['received_at']}")
        print(f"rejected: {len(found['rejected'])}")
        for r in found["rejected"]:
            raw = r["raw"] if len(r["raw"]) <= 120 else r["raw"][:117] + "..."
            print(f"  {r['stored_as']} received {r['received_at']}: {r['reason']}\n"
                  f"    {raw}")
    return EXIT_OK
