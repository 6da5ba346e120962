"""`mynacard report daily` and `mynacard report expiring`."""

from __future__ import annotations

import argparse
import csv
import io
import re
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import date, datetime
from pathlib import Path
from typing import Any

from hsm.files import OutputExists, write_file
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
from issuance.notices.migrations import migrate_notices
from issuance.records.table import print_table
from issuance.registry.dates import japan_date, utc_now
from issuance.workflow.migrations import migrate_workflow
from pki.errors import PkiError
from pki.store import ReadOnlyStore, open_readonly_store

Clock = Callable[[], datetime]
STORE_DEFAULT = "store.sqlite"  # pki's default: HOME/store.sqlite
MAX_WITHIN_DAYS = 400


def _within(text: str) -> int:
    match = re.fullmatch(r"\s*(\d{1,4})\s*d?\s*", text)
    if match is None or int(match.group(1)) > MAX_WITHIN_DAYS:
        raise argparse.ArgumentTypeError(
            f"--within is a number of days up to {MAX_WITHIN_DAYS}, e.g. 90d")
    return int(match.group(1))


def _day(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a date (YYYY-MM-DD): {text!r}") from None


def register(subparsers: Any, *, clock: Clock = utc_now) -> None:
    """Add `report daily` and `report expiring`."""
    parser = subparsers.add_parser(
        "report", help="daily report; expiry notices",
        description="Reports for staff and the letters J-LIS mails.")
    sub = parser.add_subparsers(title="report commands", metavar="COMMAND")

    daily = sub.add_parser(
        "daily", help="what the center did on one day",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Applications, cards issued (express among them), handed over and "
        "activated, certificates revoked by reason, unmatched notices, express lead time "
        "against the one-week target (rule 4.6) and volume against 10,000 cards a day "
        "(rule 4.7), for one Japan day (default today).",
        epilog="Examples:\n  mynacard report daily\n"
        "  mynacard report daily --date 2026-12-02 --json\n"
        "  mynacard report daily --date 2026-12-02 --csv > day.csv")
    daily.add_argument("--date", type=_day, metavar="YYYY-MM-DD")
    daily.add_argument("--csv", action="store_true", help="metric,value rows on stdout")
    _store_option(daily)
    add_common_options(daily)
    daily.set_defaults(func=guarded(lambda a: _daily(a, clock)), changes=False, roles="*")

    exp = sub.add_parser(
        "expiring", help="certificates and cards about to expire; the notices (rule 1.7)",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Certificates and cards whose last day is within the window, and the "
        "expiry notices J-LIS mails 2-3 months ahead (rule 1.7): --pdf writes one Japanese "
        "letter per holder, --csv one row per holder for a mail merge. Files are created "
        "0600 and never overwritten; names and addresses are in their certificate form "
        "(代替文字).",
        epilog="Examples:\n  mynacard report expiring --within 90d\n"
        "  mynacard report expiring --within 90d --pdf notices.pdf --csv notices.csv "
        "--operator alice")
    exp.add_argument("--within", type=_within, default=90, metavar="DAYS",
                     help="window from today, e.g. 90d (default 90 days)")
    exp.add_argument("--csv", type=Path, metavar="FILE", help="write the mail-merge CSV")
    exp.add_argument("--pdf", type=Path, metavar="FILE", help="write the letters")
    _store_option(exp)
    add_common_options(exp)
    exp.set_defaults(func=guarded(lambda a: _expiring(a, clock)), changes=True,
                     roles=("clerk", "supervisor"), audit_action="report.expiring",
                     audit_detail=("within",))


def _store_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--store", metavar="PATH|URL",
                        help="certificate store: SQLite file or postgresql:// URL "
                        f"(default HOME/{STORE_DEFAULT})")


@contextmanager
def _cert_store(args: argparse.Namespace) -> Iterator[ReadOnlyStore | None]:
    """The certificate store, or None (with a note) when the home has none yet."""
    location: str | Path = (args.store if getattr(args, "store", None)
                            else Path(args.home) / STORE_DEFAULT)
    if isinstance(location, Path) and not location.exists():
        if not args.json:
            print(f"mynacard: no certificate store at {location}: certificates not included",
                  file=sys.stderr)
        yield None
        return
    store = open_readonly_store(location)
    try:
        yield store
    finally:
        store.close()


def _daily(args: argparse.Namespace, clock: Clock) -> int:
    """Read-only: needs no operator and records nothing."""
    from issuance.reports.daily import daily_report

    day = args.date or japan_date(clock())
    try:
        with open_store(args) as db, _cert_store(args) as store:
            migrate_workflow(db)
            migrate_notices(db)
            with db.transaction() as tx:
                report = daily_report(tx, day, store)
    except PkiError as exc:
        fail(f"certificate store: {exc}")
        return EXIT_ERROR
    if args.json:
        emit_json(report.to_json())
    elif args.csv:
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(("metric", "value"))
        writer.writerows(report.csv_rows())
        sys.stdout.write(out.getvalue())
    else:
        data = report.to_json()
        lead, volume = data["express_lead_time"], data["volume"]
        print(f"daily report for {day} (Japan time)")
        print_table(sys.stdout, ("metric", "value"), [
            ("applications taken", str(report.applications)),
            ("cards issued", str(report.issued)),
            ("  of them express", str(report.express_issued)),
            ("handed over", str(report.handed_over)),
            ("activated", str(report.activated)),
            (f"revoked ({report.revocation_source})", str(data["revoked_total"])),
            *[(f"  {reason}", str(n)) for reason, n in data["revoked"].items()],
            ("unmatched notices (waiting)", str(report.unmatched_notices)),
            ("  received this day", str(report.unmatched_received)),
            ("express lead time, median days",
             "-" if lead["median_days"] is None else str(lead["median_days"])),
            ("express lead time, max days",
             "-" if lead["max_days"] is None else str(lead["max_days"])),
            (f"express over {lead['target_days']} days", str(lead["over_target"])),
            (f"volume against {volume['capacity_per_day']:,}/day",
             f"{volume['share']:.2%}{' OVER CAPACITY' if volume['over_capacity'] else ''}"),
        ])
    return EXIT_OK


def _expiring(args: argparse.Namespace, clock: Clock) -> int:
    from issuance.reports.expiring import by_holder, csv_text, expiring, letters
    from issuance.reports.pdf import render

    if operator_or_none(args) is None:
        return EXIT_USAGE
    today = japan_date(clock())
    for path in (args.csv, args.pdf):
        if path is not None and (path.exists() or path.is_symlink()):
            fail(f"{path} exists; nothing written")
            return EXIT_REFUSED
    try:
        with open_store(args) as db, _cert_store(args) as store:
            migrate_workflow(db)
            with db.transaction() as tx:
                items = expiring(tx, store, today=today, within_days=args.within)
                notices = by_holder(tx, items)
    except PkiError as exc:
        fail(f"certificate store: {exc}")
        return EXIT_ERROR
    try:
        if args.csv is not None:
            write_file(args.csv, csv_text(notices))
        if args.pdf is not None and not notices:
            print(f"mynacard: no holder to write to: {args.pdf} not created", file=sys.stderr)
            args.pdf = None  # a PDF without pages is no document
        if args.pdf is not None:
            write_file(args.pdf, render(letters(notices, today=today),
                                        title="有効期限のお知らせ"))
    except OutputExists as exc:
        fail(str(exc))
        return EXIT_REFUSED
    except OSError as exc:
        fail(f"{exc.filename or 'output'}: {exc.strerror or exc}")
        return EXIT_ERROR
    if args.json:
        emit_json({"today": today.isoformat(), "within_days": args.within,
                   "items": [i.to_json() for i in items],
                   "holders": [n.to_json() for n in notices],
                   "csv": str(args.csv) if args.csv else None,
                   "pdf": str(args.pdf) if args.pdf else None})
        return EXIT_OK
    print_table(sys.stdout, ("expires", "what", "serial", "resident", "application"),
                [(i.expires_on.isoformat(), i.kind, i.serial, i.resident_code,
                  i.application_id or "") for i in items])
    print(f"{len(items)} item(s) of {len(notices)} holder(s) expire by "
          f"{today.isoformat()} + {args.within} days")
    for what, path in (("mail-merge CSV", args.csv), ("letters", args.pdf)):
        if path is not None:
            print(f"{what} written to {path}")
    return EXIT_OK
