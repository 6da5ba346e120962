"""`mynacard applications list|show|notice` and `mynacard cards list|show`: the counter's
records, searched by staff."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
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
from issuance.records import queries
from issuance.records.table import print_table
from issuance.registry.dates import japan_date, utc_now
from issuance.storage import Database
from issuance.workflow.migrations import CARD_STATES, migrate_workflow

Clock = Callable[[], datetime]
READERS = "*"  # reading is open to every operator (the rule of read-only commands)


def _day(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a date (YYYY-MM-DD): {text!r}") from None


def _filters(parser: Any, states: tuple[str, ...]) -> None:
    parser.add_argument("--resident-code", metavar="CODE")
    parser.add_argument("--name", metavar="TEXT",
                        help="part of the name in kanji or its kana reading")
    parser.add_argument("--state", choices=states)
    parser.add_argument("--since", type=_day, metavar="YYYY-MM-DD", help="from this day")
    parser.add_argument("--until", type=_day, metavar="YYYY-MM-DD", help="to this day")
    parser.add_argument("--limit", type=int, default=200, metavar="N",
                        help=f"at most N rows (1-{queries.MAX_ROWS}, default 200)")


def register(subparsers: Any, *, clock: Clock = utc_now) -> None:
    """Add `applications` and `cards`."""
    apps = subparsers.add_parser(
        "applications", help="list, show and write notices for applications",
        description="Applications as staff look them up: list with filters, show one with "
        "its identity checks, cards and certificates, and write the hand-over notice "
        "(交付通知書) of a card that is ready.")
    sub = apps.add_subparsers(title="applications commands", metavar="COMMAND")

    ls = sub.add_parser(
        "list", help="applications matching filters (newest first)",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Applications matching every filter given.",
        epilog="Examples:\n  mynacard applications list --name やまだ --state personalised\n"
        "  mynacard applications list --since 2026-12-01 --until 2026-12-03 --json")
    _filters(ls, queries.APPLICATION_STATES)
    add_common_options(ls)
    ls.set_defaults(func=guarded(_list_applications), changes=False, roles=READERS)

    show = sub.add_parser(
        "show", help="one application with its checks, cards and certificates",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="Example:\n  mynacard applications show APP-0123456789ABCDEF0123")
    show.add_argument("application", metavar="APPLICATION")
    add_common_options(show)
    show.set_defaults(func=guarded(_show_application), changes=False, roles=READERS)

    notice = sub.add_parser(
        "notice", help="write the hand-over notice (交付通知書) as a PDF",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Write the hand-over notice of a personalised card: what to bring, who "
        "comes along (the legal representative of a minor under 15 or an adult ward), the "
        "card and its certificates. The file is created 0600 and never overwritten.",
        epilog="Examples:\n  mynacard applications notice APP-0123456789ABCDEF0123 "
        "--out notice.pdf --operator alice\n"
        "  mynacard applications notice --all-ready --out notices.pdf --operator alice")
    notice.add_argument("application", nargs="?", metavar="APPLICATION")
    notice.add_argument("--all-ready", action="store_true",
                        help="one letter for every personalised application, in one PDF")
    notice.add_argument("--out", type=Path, required=True, metavar="FILE.pdf")
    add_common_options(notice)
    notice.set_defaults(func=guarded(lambda a: _notice(a, clock)), changes=True,
                        roles=("clerk", "supervisor"), audit_action="application.notice",
                        audit_subject="application")

    cards = subparsers.add_parser(
        "cards", help="list and show cards",
        description="Cards the center made, with their holder and state.")
    csub = cards.add_subparsers(title="cards commands", metavar="COMMAND")
    cls = csub.add_parser(
        "list", help="cards matching filters (newest first)",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Cards matching every filter given (dates: the day the card was made).",
        epilog="Examples:\n  mynacard cards list --state active --name 山田\n"
        "  mynacard cards list --resident-code 12345678903 --json")
    _filters(cls, CARD_STATES)
    add_common_options(cls)
    cls.set_defaults(func=guarded(_list_cards), changes=False, roles=READERS)

    cshow = csub.add_parser(
        "show", help="one card with its holder and certificates",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="Example:\n  mynacard cards show 123456789012345")
    cshow.add_argument("serial", metavar="SERIAL")
    add_common_options(cshow)
    cshow.set_defaults(func=guarded(_show_card), changes=False, roles=READERS)


def _filter(args: argparse.Namespace) -> queries.Filter:
    return queries.Filter(
        resident_code=args.resident_code.strip() if args.resident_code else None,
        name=args.name.strip() if args.name else None, state=args.state,
        since=args.since, until=args.until, limit=args.limit)


def _open(args: argparse.Namespace) -> Any:
    return open_store(args)


def _ready(db: Database) -> None:
    migrate_workflow(db)  # the card tables exist before a first card is made


def _list_applications(args: argparse.Namespace) -> int:
    """Read-only: needs no operator and records nothing."""
    with _open(args) as db:
        _ready(db)
        try:
            with db.transaction() as tx:
                rows = queries.list_applications(tx, _filter(args))
        except queries.QueryError as exc:
            fail(str(exc))
            return EXIT_REFUSED
    if args.json:
        emit_json([r.to_json() for r in rows])
        return EXIT_OK
    print_table(sys.stdout, ("application", "resident", "name", "kana", "state", "applied",
                             "express", "expiry"),
                [(r.id, r.resident_code, r.name, r.name_kana or "", r.state,
                  r.applied_on.isoformat(), r.express_reason or "",
                  r.card_expiry.isoformat()) for r in rows])
    return EXIT_OK


def _show_application(args: argparse.Namespace) -> int:
    """Read-only: needs no operator and records nothing."""
    with _open(args) as db:
        _ready(db)
        with db.transaction() as tx:
            detail = queries.application_detail(tx, args.application.strip())
    if detail is None:
        fail(f"no application {args.application}")
        return EXIT_REFUSED
    if args.json:
        emit_json(detail.to_json())
        return EXIT_OK
    a = detail.application
    print(f"application {a.id}: {a.state.value}")
    for key, value in a.to_json().items():
        if key not in ("id", "state") and value is not None:
            print(f"  {key}: {value}")
    if detail.holder:
        h = detail.holder
        print(f"holder {h.resident_code}: {h.name}"
              f"{f' ({h.name_kana})' if h.name_kana else ''}, born {h.birth_date}, "
              f"{h.status}{', adult ward' if h.adult_ward else ''}")
        print(f"  address: {h.address}")
        if h.name_substitute or h.address_substitute:
            print(f"  on the certificate (代替文字): {h.name_on_certificate} / "
                  f"{h.address_on_certificate}")
    print("identity checks:" if detail.identity_documents else "identity checks: none recorded")
    for d in detail.identity_documents:
        print(f"  {d.step:8} {d.person:14} {d.kind:32} digest {d.digest[:16]}…  "
              f"by {d.operator} at {d.checked_at}")
    for r in detail.legal_representatives:
        print(f"  legal representative at {r.step}: {r.name} ({r.relation})")
    for c in detail.cards:
        print(f"card {c.serial}: {c.state}"
              f"{f', expires {c.expiry}' if c.expiry else ''}{f' ({c.note})' if c.note else ''}")
    for cert in detail.certificates:
        print(f"certificate {cert.serial}: {cert.kind}, {cert.status} (card {cert.card_serial})")
    return EXIT_OK


def _list_cards(args: argparse.Namespace) -> int:
    """Read-only: needs no operator and records nothing."""
    with _open(args) as db:
        _ready(db)
        try:
            with db.transaction() as tx:
                rows = queries.list_cards(tx, _filter(args))
        except queries.QueryError as exc:
            fail(str(exc))
            return EXIT_REFUSED
    if args.json:
        emit_json([r.to_json() for r in rows])
        return EXIT_OK
    print_table(sys.stdout, ("card", "application", "resident", "name", "kana", "state",
                             "made", "expiry"),
                [(r.serial, r.application_id, r.resident_code, r.name, r.name_kana or "",
                  r.state, r.created_at[:10],
                  r.expiry.isoformat() if r.expiry else "") for r in rows])
    return EXIT_OK


def _show_card(args: argparse.Namespace) -> int:
    """Read-only: needs no operator and records nothing."""
    with _open(args) as db:
        _ready(db)
        with db.transaction() as tx:
            detail = queries.card_detail(tx, args.serial.strip())
    if detail is None:
        fail(f"no card {args.serial}")
        return EXIT_REFUSED
    if args.json:
        emit_json(detail.to_json())
        return EXIT_OK
    c = detail.card
    print(f"card {c.serial}: {c.state} (application {c.application_id}, "
          f"{detail.application_state})")
    print(f"  holder: {c.resident_code} {c.name}{f' ({c.name_kana})' if c.name_kana else ''}")
    print(f"  made: {c.created_at}; expires: {c.expiry or 'unknown'}")
    for cert in detail.certificates:
        print(f"  certificate {cert.serial}: {cert.kind}, {cert.status}")
    return EXIT_OK


def _notice(args: argparse.Namespace, clock: Clock) -> int:
    from issuance.reports.handover import NoticeRefused, handover_letter
    from issuance.reports.pdf import render

    if operator_or_none(args) is None:
        return EXIT_USAGE
    if bool(args.application) == bool(args.all_ready):
        fail("give one APPLICATION or --all-ready")
        return EXIT_USAGE
    today = japan_date(clock())
    with _open(args) as db:
        _ready(db)
        try:
            with db.transaction() as tx:
                if args.all_ready:
                    ready = queries.list_applications(
                        tx, queries.Filter(state="personalised", limit=queries.MAX_ROWS))
                    ids = sorted(r.id for r in ready)
                else:
                    ids = [args.application.strip()]
                letters = [handover_letter(tx, i, today=today) for i in ids]
        except NoticeRefused as exc:
            fail(f"refused (rule {exc.rule}): {exc}")
            return EXIT_REFUSED
    if not letters:
        fail("no personalised application waits for its notice; nothing written")
        return EXIT_REFUSED
    try:
        write_file(args.out, render(letters, title="個人番号カード交付通知書"))
    except OutputExists as exc:
        fail(str(exc))
        return EXIT_REFUSED
    except OSError as exc:
        fail(f"{args.out}: {exc.strerror or exc}")
        return EXIT_ERROR
    if args.json:
        emit_json({"applications": ids, "out": str(args.out)})
    else:
        print(f"hand-over notice(s) for {len(ids)} application(s) written to {args.out}")
    return EXIT_OK
