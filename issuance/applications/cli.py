"""`mynacard apply`: take a card application at the counter."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from datetime import date, datetime
from pathlib import Path
from typing import Any

from card import images
from issuance.applications.express import ExpressReason
from issuance.applications.intake import take_application
from issuance.applications.photos import put_photo
from issuance.applications.rules import ApplicationRequest
from issuance.audit.cli_support import (
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
from issuance.records.identity_options import add_identity_options, identity_from_args
from issuance.registry.dates import utc_now

Clock = Callable[[], datetime]

REASONS_HELP = "Express reasons (rule 4.8; name or number):\n" + "\n".join(
    f"  {r.number} {r.value:<28} event: {r.event}" for r in ExpressReason
)


def _reason(text: str) -> ExpressReason:
    try:
        return ExpressReason.parse(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"unknown express reason {text!r}") from None


def register(subparsers: Any, *, clock: Clock = utc_now) -> None:
    """Add `apply`."""
    parser = subparsers.add_parser(
        "apply", help="take a card application (intake rules, express issuance)",
        description="Take a My Number Card application. Intake checks the registry record, "
        "duplicate applications and any card already issued; each refusal names its rule. "
        "--express without a reason looks for one that applies.\n\n" + REASONS_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="Example:\n  mynacard apply --resident-code 12345678903 "
        "--identity-document passport:TK1234567 --operator alice",
    )
    parser.add_argument("--resident-code", required=True, metavar="CODE")
    parser.add_argument("--express", nargs="?", const="", default=None, metavar="REASON",
                        help="express issuance (特急発行) for REASON")
    parser.add_argument("--event-date", type=date.fromisoformat, metavar="YYYY-MM-DD",
                        help="date of the event behind the express reason")
    parser.add_argument("--no-certificates", action="store_true",
                        help="decline both certificates")
    parser.add_argument("--no-signing-certificate", action="store_true",
                        help="decline the signing certificate")
    parser.add_argument("--photo", type=Path, metavar="FILE",
                        help="the applicant's face photo (any image Pillow reads; kept as the "
                        "card's JPEG 2000). Without it a portrait is drawn; none under 1 "
                        "(rule 4.5)")
    add_identity_options(parser)
    add_common_options(parser)
    parser.set_defaults(func=guarded(lambda a: _apply(a, clock)), changes=True,
                        roles=("clerk", "supervisor"),
                        audit_action="application.apply", audits_itself=True,
                        audit_subject="resident_code")


def _apply(args: argparse.Namespace, clock: Clock) -> int:
    operator = operator_or_none(args)
    if operator is None:
        return EXIT_USAGE
    reason: ExpressReason | None = None
    if args.express:
        try:
            reason = _reason(args.express)
        except argparse.ArgumentTypeError as exc:
            fail(str(exc))
            return EXIT_USAGE
    photo: bytes | None = None
    if args.photo is not None:
        try:
            photo = images.photo_from_file(args.photo.read_bytes())
        except (OSError, ValueError) as exc:
            fail(f"invalid photo: {exc}")
            return EXIT_REFUSED
    request = ApplicationRequest(
        resident_code=args.resident_code.strip(),
        express=reason,
        express_requested=args.express is not None,
        event_date=args.event_date,
        certificates=not args.no_certificates,
        signing_certificate=not args.no_signing_certificate,
    )
    with open_store(args) as db:
        result = take_application(db, request, operator=operator, clock=clock,
                                  identity=identity_from_args(args))
        if (photo is not None and result.application is not None
                and not result.application.photo_less):
            put_photo(db, result.application.id, photo)
    if args.json:
        emit_json(result.to_json())
    elif result.refusal is not None:
        print(f"refused: {result.refusal}", file=sys.stderr)
    else:
        assert result.application is not None and result.decision is not None
        d = result.decision
        print(f"application {result.application.id} accepted")
        print(f"  card: {'photo-less' if d.photo_less else 'with photo'}"
              f"{' (the photo given is not used: rule 4.5)' if d.photo_less and photo else ''}"
              f", valid "
              f"{d.validity_years} years (provisional expiry {d.card_expiry})")
        certs = [n for n, on in (("user-authentication", d.user_certificate),
                                 ("signing", d.signing_certificate)) if on]
        print(f"  certificates: {', '.join(certs) or 'none'}")
        if d.express:
            print(f"  express: {d.express.reason.value} (rule {d.express.reason.rule}), "
                  f"deadline {d.express.deadline}")
        for note in d.notes:
            print(f"  {note}")
    return EXIT_OK if result.accepted else EXIT_REFUSED
