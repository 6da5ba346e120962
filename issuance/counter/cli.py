"""`mynacard pin reset`, `mynacard card update|report-loss|reissue`: the counter after issue.

Same conventions as `mynacard issue` (issuance/workflow/cli.py): `--operator`, `--db`,
`--json`, progress on stderr, one audit entry per command (a refusal too), exit codes
0 done / 1 refused / 2 usage / 3 failure. The operator confirms the holder's identity
check with `--identity-checked REF` (the document or case reference), which the audit
log keeps.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any

from card.readers import resolve_reader
from hsm import PinSource
from hsm.options import add_deprecated_alias
from issuance.audit.cli_support import (
    EXIT_OK,
    EXIT_REFUSED,
    EXIT_USAGE,
    add_common_options,
    emit_json,
    fail,
    open_store,
    operator_or_none,
)
from issuance.personalisation.pins import PinKind
from issuance.workflow.cli import (
    PIN_SOURCE_HELP,
    Progress,
    _card_subparsers,
    command,
    parse_pin_sources,
    pin_supplier,
)

IDENTITY_HELP = ("reference of the identity check the operator made (document type and "
                 "number, case id); required, kept in the audit log")


def register(subparsers: Any) -> None:
    """Add `pin reset` and `card update`, `card report-loss`, `card reissue`."""
    pin = subparsers.add_parser("pin", help="holder PINs at the counter (reset after a block)")
    pin_sub = pin.add_subparsers(title="pin commands", metavar="COMMAND")
    reset = pin_sub.add_parser(
        "reset", help="reset a holder PIN with issuer authentication",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Reset a blocked (or forgotten) holder PIN at the window after checking "
        "the holder's identity (rule 3.4): the issuer authenticates with the card key derived "
        "in the HSM, the holder sets a new value (asked for without echo, or from "
        "--pin-source) and the retry counter is back at its maximum. --keep-value resets "
        "only the counter.",
        epilog="Example:\n  mynacard pin reset --reader 'Virtual PCD 00 00' --pin sign \\\n"
        "      --identity-checked 'driving licence 1234' --operator alice")
    reset.add_argument("--reader", required=True, metavar="NAME")
    reset.add_argument("--pin", required=True, choices=[k.value for k in PinKind],
                       help="auth, sign, text or juki")
    reset.add_argument("--identity-checked", metavar="REF", help=IDENTITY_HELP)
    reset.add_argument("--pin-source", dest="new_pin_source", metavar="[KIND=]SPEC",
                       help="the new value: env:NAME, file:PATH, fd:N or prompt (KIND= as --pin,"
                            " optional)")
    add_deprecated_alias(reset, "--new-pin-source", new="--pin-source", dest="new_pin_source")
    reset.add_argument("--keep-value", action="store_true",
                       help="reset only the retry counter, keep the value")
    add_common_options(reset)
    reset.set_defaults(func=command(_pin_reset), changes=True, roles=("clerk", "supervisor"),
                       audit_action="pin.reset",
                       audits_itself=True, audit_subject="reader")

    card = _card_subparsers(subparsers)
    update = card.add_parser(
        "update", help="write new registry facts to the card after a move or name change",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="After a move, a name change or a correction (the registry view already "
        "holds the new facts): issuer authentication plus the holder's card-info PIN write "
        "the new basic four facts, card face and integrity record; the old signing "
        "certificate is revoked (affiliationChanged) and a new one is issued on a key the "
        "card generates, linked to the old one (the holder enters the signing password).")
    update.add_argument("--reader", required=True, metavar="NAME")
    update.add_argument("--identity-checked", metavar="REF", help=IDENTITY_HELP)
    update.add_argument("--pin-source", action="append", metavar="KIND=SPEC",
                        help=PIN_SOURCE_HELP + " (text and sign are used)")
    add_common_options(update)
    update.set_defaults(func=command(_card_update), changes=True, roles=("clerk", "supervisor"),
                        audit_action="card.update",
                        audits_itself=True, audit_subject="reader")

    loss = card.add_parser(
        "report-loss", help="a card was lost: hold or revoke its certificates",
        description="Record a lost card: both certificates are revoked (keyCompromise), or "
        "put on hold (一時保留) with --hold for a report by phone, and the application "
        "becomes lost. A new card is applied for with `mynacard card reissue`.")
    who = loss.add_mutually_exclusive_group(required=True)
    who.add_argument("--application", metavar="APP")
    who.add_argument("--resident-code", metavar="CODE")
    loss.add_argument("--hold", action="store_true", help="hold instead of revoking")
    loss.add_argument("--identity-checked", metavar="REF", help="identity check reference")
    add_common_options(loss)
    loss.set_defaults(func=command(_report_loss), changes=True, roles=("clerk", "supervisor"),
                      audit_action="card.report-loss", audits_itself=True,
                      audit_subject="application", audit_detail=("resident_code", "hold"))

    reissue = card.add_parser(
        "reissue", help="apply for a new card after a loss (express reason 3)",
        description="Take a new application for a resident whose card was reported lost: "
        "express issuance under rule 4.8(3) (4.8(11) with --stolen), within 30 days of the "
        "loss report. Certificates still on hold from a report by phone are revoked first "
        "(keyCompromise): a hold is never released.")
    reissue.add_argument("--resident-code", required=True, metavar="CODE")
    reissue.add_argument("--stolen", action="store_true",
                         help="the card was stolen (盗難): express reason 4.8(11)")
    add_common_options(reissue)
    reissue.set_defaults(func=command(_reissue), changes=True, roles=("clerk", "supervisor"),
                         audit_action="card.reissue",
                         audits_itself=True, audit_subject="resident_code")


    _register_life(subparsers, card)
    _register_emigrate(subparsers)
    _register_changes(card)


def _register_life(subparsers: Any, card: Any) -> None:
    """`renew`, `card certify|found|return|revoke-certificates`,
    `application cancel|refuse` (issuance/counter/life.py)."""
    renew = subparsers.add_parser(
        "renew", help="renew the card's certificates (from 3 months before expiry)",
        description="Renew the certificates of the card in the reader (rule 1.7: from three "
        "months before the earliest one expires): the card generates new keys and proves "
        "them (key attestation), the CA certifies them (to the 6th birthday when renewed in "
        "those months, rules 1.5/1.6), the old certificates are revoked as superseded and "
        "linked to the new ones. The holder enters the certificates' PINs.")
    certify = card.add_parser(
        "certify", help="issue certificates again onto the card the holder has",
        description="Issue new certificates onto the card in the reader without a new card: "
        "after a revocation request, or for an emigrant (the signing certificate from the "
        "附票 facts, rule 1.4). New keys on the card, attested; the previous certificates are "
        "linked to the new ones (and revoked as superseded if still current).")
    found = card.add_parser(
        "found", help="a card reported lost is back: new certificates",
        description="A card reported lost was found (rule 2a): certificates still on hold are "
        "revoked (a hold is never released), new certificates are issued on new keys, and "
        "the card is the holder's again.")
    for cmd, method, action in ((renew, "renew", "certificates.renew"),
                                (certify, "certify", "certificates.issue"),
                                (found, "card_found", "card.found")):
        _reader_pins(cmd)
        cmd.set_defaults(func=command(_life_reader(method)), changes=True,
                         roles=("clerk", "supervisor"), audit_action=action,
                         audits_itself=True, audit_subject="reader")
    for name, method, action, text in (
            ("return", "return_card", "card.return",
             "the holder returns the card (返納): certificates revoked, card returned"),
            ("revoke-certificates", "revoke_certificates", "certificates.revoke",
             "the holder's revocation request (失効申請): both certificates revoked")):
        cmd = card.add_parser(name, help=text, description=text[0].upper() + text[1:] + ".")
        who = cmd.add_mutually_exclusive_group(required=True)
        who.add_argument("--application", metavar="APP")
        who.add_argument("--resident-code", metavar="CODE")
        cmd.add_argument("--identity-checked", metavar="REF", help=IDENTITY_HELP)
        add_common_options(cmd)
        cmd.set_defaults(func=command(_life_holder(method)), changes=True,
                         roles=("clerk", "supervisor"), audit_action=action,
                         audits_itself=True, audit_subject="application")
    application = subparsers.add_parser(
        "application", help="end an application before its card is handed over")
    app_sub = application.add_subparsers(title="application commands", metavar="COMMAND")
    for name, refuse, text in (
            ("cancel", False, "the applicant withdraws: the application is cancelled (a card "
                              "already personalised is abolished, its certificates revoked)"),
            ("refuse", True, "the center refuses an application applied or registered "
                             "(e.g. a photo or form found wanting)")):
        cmd = app_sub.add_parser(name, help=text.split(":")[0].split(" (")[0],
                                 description=text[0].upper() + text[1:] + ".")
        cmd.add_argument("application", metavar="APP")
        cmd.add_argument("--reason", required=True, metavar="TEXT", help="why (audited)")
        add_common_options(cmd)
        cmd.set_defaults(func=command(_life_cancel(refuse)), changes=True,
                         roles=("clerk", "supervisor"),
                         audit_action="application.refuse" if refuse else "application.cancel",
                         audits_itself=True, audit_subject="application")


def _register_emigrate(subparsers: Any) -> None:
    emigrate = subparsers.add_parser(
        "emigrate", help="the holder leaves Japan: continued use, or the card lapses",
        description="Record an emigration (国外転出) at the window. With --continued-use "
        "(Japanese nationals, from 2024-05-27): the 附票 entry is recorded, the signing "
        "certificate lapses on the emigration date, the user-authentication certificate "
        "and the card stay, and the change is written to the card in --reader (the "
        "holder's card-info PIN: --pin-source text=SPEC). A new signing certificate on the "
        "附票 facts follows with `mynacard card certify`. Without it, or for a foreign "
        "national (rule 6.6), both certificates are revoked and the card lapses.")
    emigrate.add_argument("--resident-code", required=True, metavar="CODE")
    emigrate.add_argument("--date", required=True, type=date.fromisoformat,
                          metavar="YYYY-MM-DD", help="the emigration date")
    emigrate.add_argument("--continued-use", action="store_true",
                          help="continued use of the card abroad (継続利用)")
    emigrate.add_argument("--address-abroad", metavar="TEXT",
                          help="the address abroad, as the 附票 records it")
    emigrate.add_argument("--fuhyo-municipality", metavar="CODE",
                          help="the municipality keeping the 附票 (default: the last one)")
    emigrate.add_argument("--reader", metavar="NAME", help="the card (continued use)")
    emigrate.add_argument("--identity-checked", metavar="REF", help=IDENTITY_HELP)
    emigrate.add_argument("--pin-source", action="append", metavar="KIND=SPEC",
                          help=PIN_SOURCE_HELP + " (text is used)")
    add_common_options(emigrate)
    emigrate.set_defaults(func=command(_emigrate), changes=True,
                          roles=("clerk", "supervisor"), audit_action="card.emigrate",
                          audits_itself=True, audit_subject="resident_code")


def _emigrate(args: argparse.Namespace) -> int:
    operator = operator_or_none(args)
    if operator is None:
        return EXIT_USAGE
    text_pin = None
    if args.continued_use:
        if not args.reader:
            fail("--continued-use writes the change to the card: --reader NAME")
            return EXIT_USAGE
        args.reader = resolve_reader(args.reader)
        text_pin = pin_supplier(parse_pin_sources(args.pin_source))(PinKind.TEXT)
    return _at_counter(args, lambda db, center: _life(db, operator, center).emigrate(
        resident_code=args.resident_code, on=args.date,
        continued_use=args.continued_use, identity_check=args.identity_checked,
        address_abroad=args.address_abroad, fuhyo_municipality=args.fuhyo_municipality,
        reader=args.reader, text_pin=text_pin),
        lambda result: f"resident {args.resident_code} emigrated on {args.date}: "
        + ("continued use" if args.continued_use else "card lapsed")
        + f"; revoked: {', '.join(result.detail['revoked']) or 'none'}")


def _register_changes(card: Any) -> None:
    number = card.add_parser(
        "number-changed", help="the My Number or resident code changed: the card lapses",
        description="The My Number or the 住民票コード changed: the card lapses (rule "
        "4.8(6)): both certificates revoked, the card and its application abolished. A new "
        "card follows with `mynacard apply --express number_changed --event-date D`.")
    number.add_argument("--resident-code", required=True, metavar="CODE")
    number.add_argument("--my-number", metavar="NUMBER", help="the new My Number, recorded")
    number.add_argument("--identity-checked", metavar="REF", help=IDENTITY_HELP)
    add_common_options(number)
    number.set_defaults(func=command(_number_changed), changes=True,
                        roles=("clerk", "supervisor"), audit_action="card.number-changed",
                        audits_itself=True, audit_subject="resident_code")
    stay = card.add_parser(
        "extend-stay", help="a foreign resident's period of stay was renewed",
        description="Record a renewed period of stay: the card's validity follows it (rule "
        "4.4), up to the 10th/5th birthday.")
    stay.add_argument("--resident-code", required=True, metavar="CODE")
    stay.add_argument("--until", required=True, type=date.fromisoformat, metavar="YYYY-MM-DD")
    stay.add_argument("--identity-checked", metavar="REF", help=IDENTITY_HELP)
    add_common_options(stay)
    stay.set_defaults(func=command(_extend_stay), changes=True,
                      roles=("clerk", "supervisor"), audit_action="card.extend-stay",
                      audits_itself=True, audit_subject="resident_code")


def _number_changed(args: argparse.Namespace) -> int:
    operator = operator_or_none(args)
    if operator is None:
        return EXIT_USAGE
    return _at_counter(args, lambda db, center: _life(db, operator, center).number_changed(
        resident_code=args.resident_code, identity_check=args.identity_checked,
        new_my_number=args.my_number),
        lambda result: f"application {result.application_id}: the card lapsed; "
        f"revoked: {', '.join(result.detail['revoked']) or 'none'}")


def _extend_stay(args: argparse.Namespace) -> int:
    operator = operator_or_none(args)
    if operator is None:
        return EXIT_USAGE
    return _at_counter(args, lambda db, center: _life(db, operator, center).extend_stay(
        resident_code=args.resident_code, until=args.until,
        identity_check=args.identity_checked),
        lambda result: f"application {result.application_id}: card valid to "
        f"{result.detail['card_expiry']}", center=False)


def _reader_pins(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--reader", required=True, metavar="NAME")
    parser.add_argument("--identity-checked", metavar="REF", help=IDENTITY_HELP)
    parser.add_argument("--pin-source", action="append", metavar="KIND=SPEC",
                        help=PIN_SOURCE_HELP + " (auth and sign are used)")
    add_common_options(parser)


def _life(db: Any, operator: str, center: Any) -> Any:
    from issuance.counter.life import CardLife

    return CardLife(db, operator=operator, center=center, progress=Progress())


def _life_reader(method: str) -> Any:
    def run(args: argparse.Namespace) -> int:
        operator = operator_or_none(args)
        if operator is None:
            return EXIT_USAGE
        supply = pin_supplier(parse_pin_sources(args.pin_source))
        args.reader = resolve_reader(args.reader)

        def describe(result: Any) -> str:
            issued = ", ".join(f"{k.replace('_', '-')} {v}"
                               for k, v in result.detail.get("issued", {}).items())
            return f"card {result.card_serial}: new certificates: {issued or 'none'}"

        return _at_counter(args, lambda db, center: getattr(_life(db, operator, center), method)(
            args.reader, identity_check=args.identity_checked, pins=supply), describe)

    return run


def _life_holder(method: str) -> Any:
    def run(args: argparse.Namespace) -> int:
        operator = operator_or_none(args)
        if operator is None:
            return EXIT_USAGE
        return _at_counter(args, lambda db, center: getattr(_life(db, operator, center), method)(
            application_id=args.application, resident_code=args.resident_code,
            identity_check=args.identity_checked),
            lambda result: f"application {result.application_id}: certificates revoked: "
            f"{', '.join(result.detail['revoked']) or 'none'}")

    return run


def _life_cancel(refuse: bool) -> Any:
    def run(args: argparse.Namespace) -> int:
        operator = operator_or_none(args)
        if operator is None:
            return EXIT_USAGE
        return _at_counter(args, lambda db, center: _life(db, operator, center).cancel(
            args.application, why=args.reason, refuse=refuse),
            lambda result: f"application {result.application_id} "
            f"{'refused' if refuse else 'cancelled'}")

    return run


def _counter(args: argparse.Namespace, db: Any, operator: str, center: Any = None) -> Any:
    from issuance.counter.operations import Counter

    return Counter(db, operator=operator, center=center, progress=Progress())


def _at_counter(args: argparse.Namespace, call: Callable[[Any, Any], Any],
                describe: Callable[[Any], str], *, center: bool = True) -> int:
    """Open the store (and the center's keys, unless the step needs none), run
    `call(db, center)` and report it: a refusal with its rule (exit 1), else the result
    as JSON or as `describe(result)`; every counter step ends the same way."""
    from issuance.workflow.center import Center
    from issuance.workflow.machine import Refused

    keys = Center.open(Path(args.home)) if center else contextlib.nullcontext()
    with open_store(args) as db, keys as opened:
        try:
            result = call(db, opened)
        except Refused as exc:
            return _refused(exc, args)
    return _done(result, args, describe(result))


def _refused(exc: Any, args: argparse.Namespace) -> int:
    fail(f"refused (rule {exc.rule}): {exc.message}")
    if getattr(args, "json", False):
        emit_json({"refused": True, "rule": exc.rule, "reason": exc.message})
    return EXIT_REFUSED


def _done(result: Any, args: argparse.Namespace, text: str) -> int:
    if args.json:
        emit_json(result.to_json())
    else:
        print(text)
    return EXIT_OK


def _pin_reset(args: argparse.Namespace) -> int:
    operator = operator_or_none(args)
    if operator is None:
        return EXIT_USAGE
    kind = PinKind(args.pin)
    args.reader = resolve_reader(args.reader)
    new: str | None = None
    if not args.keep_value:
        spec = args.new_pin_source
        if spec and spec.split("=", 1)[0] in {k.value for k in PinKind}:
            named, spec = spec.split("=", 1)
            if named != kind.value:
                fail(f"--pin-source {named}=... does not match --pin {kind.value}")
                return EXIT_USAGE
        sources = {kind: spec} if spec else {}
        new = pin_supplier(sources)(kind)
    return _at_counter(args, lambda db, center: _counter(args, db, operator, center).reset_pin(
        args.reader, kind, identity_check=args.identity_checked, new_pin=new),
        lambda result: f"card {result.card_serial}: {kind.value} PIN reset")


def _card_update(args: argparse.Namespace) -> int:
    operator = operator_or_none(args)
    if operator is None:
        return EXIT_USAGE
    sources = parse_pin_sources(args.pin_source)
    args.reader = resolve_reader(args.reader)
    supply = pin_supplier(sources)
    text_pin = supply(PinKind.TEXT) if PinKind.TEXT in sources or sys.stdin.isatty() else None
    if text_pin is None:
        fail("the holder's card-info input support PIN is needed: --pin-source text=SPEC")
        return EXIT_USAGE
    sign = PinSource.from_spec(sources[PinKind.SIGN]).read() if PinKind.SIGN in sources \
        else None
    return _at_counter(args, lambda db, center: _counter(args, db, operator, center).update_card(
        args.reader, identity_check=args.identity_checked, text_pin=text_pin,
        sign_password=sign),
        lambda result: f"card {result.card_serial} updated "
        f"({', '.join(result.detail['changed'])}); signing certificate "
        f"{result.detail['old_signing_certificate']} → {result.detail['new_signing_certificate']}")


def _report_loss(args: argparse.Namespace) -> int:
    operator = operator_or_none(args)
    if operator is None:
        return EXIT_USAGE
    state = "on hold" if args.hold else "revoked"
    return _at_counter(args, lambda db, center: _counter(args, db, operator, center).report_loss(
        application_id=args.application, resident_code=args.resident_code,
        hold=args.hold, identity_check=args.identity_checked),
        lambda result: f"application {result.application_id} lost; certificates "
        f"{state}: {', '.join(result.detail['certificates']) or 'none'}")


def _reissue(args: argparse.Namespace) -> int:
    from issuance.workflow.machine import Refused

    operator = operator_or_none(args)
    if operator is None:
        return EXIT_USAGE
    from issuance.workflow.center import Center

    with open_store(args) as db, Center.open(Path(args.home)) as center:
        try:
            result = _counter(args, db, operator, center).reissue(args.resident_code,
                                                                  stolen=args.stolen)
        except Refused as exc:
            return _refused(exc, args)
    if args.json:
        emit_json(result.to_json())
    elif result.refusal is not None:
        print(f"refused: {result.refusal}", file=sys.stderr)
    else:
        assert result.application is not None
        rule = "4.8(11)" if args.stolen else "4.8(3)"
        print(f"application {result.application.id} accepted (express, rule {rule})")
    return EXIT_OK if result.accepted else EXIT_REFUSED
