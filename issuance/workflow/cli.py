"""`mynacard center init`, `mynacard issue`, `mynacard activate`.

Conventions of the issuance CLI (issuance/registry/cli.py): `--operator` (or
$MYNACARD_OPERATOR) is required, `--db` names the issuance database, `--json` prints a
summary on stdout, progress goes to stderr, every command appends one audit entry (a
refusal too). Exit codes: 0 done, 1 refused (a rule; nothing half-done is left), 2 usage,
3 storage, HSM, CA or card failure. PINs come from pin sources (env:NAME, file:PATH) or
are asked for without echo; they are never printed or logged.
"""

from __future__ import annotations

import argparse
import getpass
import re
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from card.errors import CardError, what_to_do
from card.readers import resolve_reader, resolve_readers
from hsm import HsmError, PinSource
from hsm.options import add_pin_source
from issuance.applications.rules import State
from issuance.audit.cli_support import (
    EXIT_ERROR,
    EXIT_OK,
    EXIT_REFUSED,
    EXIT_USAGE,
    add_common_options,
    emit_json,
    fail,
    open_store,
    operator_or_none,
)
from issuance.audit.log import AuditLog
from issuance.errors import IssuanceError
from issuance.personalisation.pins import PIN_KINDS, PinKind, check_pin, holder_pins
from issuance.records.identity_options import add_identity_options, identity_from_args
from pki.errors import PkiError

# what may be echoed back as a mistyped KIND: short and shaped like a kind name
_KIND_NAME = re.compile(r"[a-z][a-z0-9-]{0,15}")
PIN_SOURCE_HELP = ("KIND=SPEC: where the holder's PIN of KIND (auth, sign, text, juki) is "
                   "read: env:NAME, file:PATH, fd:N or prompt (repeatable; missing PINs are "
                   "asked for without echo)")


class Progress:
    """Numbered, timed progress lines on stderr."""

    def __init__(self, prefix: str = "", *, quiet: bool = False) -> None:
        self.started = time.monotonic()
        self.n = 0
        self.prefix = prefix
        self.quiet = quiet

    def __call__(self, message: str) -> None:
        self.n += 1
        if not self.quiet:
            elapsed = time.monotonic() - self.started
            print(f"{self.prefix}[{self.n:2d}] {elapsed:6.2f}s  {message}", file=sys.stderr,
                  flush=True)


def command(run: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    """Turn expected failures into one line on stderr and exit code 3."""

    def wrapper(args: argparse.Namespace) -> int:
        try:
            return int(run(args))
        except CardError as exc:  # a removed card, pcscd gone: what to do next
            fail(what_to_do(exc, getattr(args, "reader", None)))
            return EXIT_ERROR
        except (IssuanceError, HsmError, PkiError) as exc:
            fail(f"{type(exc).__name__}: {exc}" if not str(exc) else str(exc))
            return EXIT_ERROR
        except ValueError as exc:
            fail(str(exc))
            return EXIT_USAGE

    return wrapper


def parse_pin_sources(items: list[str] | None) -> dict[PinKind, str]:
    """`--pin-source KIND=SPEC` items by kind. A bad KIND is echoed only when it looks
    like a kind name: a mistyped value may be the secret itself (as hsm.options)."""
    out: dict[PinKind, str] = {}
    for item in items or []:
        kind, sep, spec = item.partition("=")
        if not sep or kind not in {k.value for k in PinKind}:
            if sep and _KIND_NAME.fullmatch(kind):
                raise ValueError(f"--pin-source {kind}=…: KIND is auth, sign, text or juki")
            raise ValueError("--pin-source takes KIND=SPEC: KIND auth, sign, text or juki,"
                             " SPEC where that PIN is read (env:NAME, file:PATH, fd:N or"
                             " prompt), never the PIN itself")
        out[PinKind(kind)] = spec
    return out


def pin_supplier(sources: dict[PinKind, str]) -> Callable[[PinKind], str]:
    def supply(kind: PinKind) -> str:
        spec = sources.get(kind)
        if spec is not None:
            return PinSource.from_spec(spec).read()
        if not sys.stdin.isatty():
            raise ValueError(f"no pin source for the {PIN_KINDS[kind].title} and no terminal "
                             f"to ask on: pass --pin-source {kind.value}=env:NAME")
        title = PIN_KINDS[kind].title
        for _ in range(3):
            first = getpass.getpass(f"holder: set the {title}: ")
            try:
                check_pin(kind, first)
            except ValueError as exc:
                print(f"  {exc}; try again", file=sys.stderr)
                continue
            if getpass.getpass("holder: the same again: ") == first:
                return first
            print("  the two entries differ; try again", file=sys.stderr)
        raise ValueError(f"the {title} was not set")

    return supply


def _card_subparsers(subparsers: Any) -> Any:
    """The `card` group's sub-command action (the group belongs to card.cli)."""
    parser = subparsers.choices.get("card")
    if parser is None:
        parser = subparsers.add_parser("card", help="cards at the counter")
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return action
    return parser.add_subparsers(title="card commands", metavar="COMMAND")


def register(subparsers: Any) -> None:
    """Add `center init`, `issue` and `activate`."""
    center = subparsers.add_parser(
        "center", help="set up an issuance center (HSM token, CA, issuer keys)",
        description="Set up the issuance center's keys and CA.")
    center_sub = center.add_subparsers(title="center commands", metavar="COMMAND")
    init = center_sub.add_parser(
        "init", help="create the HSM token, the CA, the issuer master key and integrity key",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="In one step: the SoftHSM2 token under HOME/hsm (or the token of "
        "--pkcs11-uri), the JPKI CA (`ca init`), the issuer master key from which each card's "
        "issuer key is derived inside the HSM, and the RSA key that signs the cards' "
        "integrity records. Idempotent: what exists is kept. Prints what it made.",
        epilog="Master key (--master-key):\n"
        "  test           the emulator's factory test key 404142…4F (development only)\n"
        "  generate       a new random key generated inside the HSM\n"
        "  file:PATH      import the key of your card manufacturer (16 bytes or 32 hex)\n\n"
        "Example:\n  mynacard center init --operator alice --master-key test")
    init.add_argument("--token", default="jpki", metavar="LABEL",
                      help="SoftHSM2 token label (default jpki, as `ca`/`ocsp` expect)")
    init.add_argument("--pkcs11-uri", metavar="URI", help="use this token instead of SoftHSM2")
    add_pin_source(init, {"user": "pin_source"},
                   help="the token user PIN (default: generated into HOME/hsm/LABEL.pin)")
    init.add_argument("--master-key", metavar="test|generate|file:PATH",
                      help="the issuer master key to create (required the first time)")
    init.add_argument("--store", metavar="PATH|URL",
                      help="certificate store (default HOME/store.sqlite)")
    init.add_argument("--shards", type=int, default=16, help="CRL shards per hierarchy")
    init.add_argument("--ocsp-url", default="http://ocsp.mynacard.test/jpki", metavar="URL")
    init.add_argument("--crl-base-url", default="http://crl.mynacard.test/jpki", metavar="URL")
    add_common_options(init)
    init.set_defaults(func=command(_center_init), changes=True, roles=("ca-officer",),
                      bootstrap=True, audit_action="center.init", audits_itself=True,
                      audit_detail=("token", "master_key"), creates_home=True,
                      preflight=_center_init_preflight)

    issue = subparsers.add_parser(
        "issue", help="personalise and issue cards for applications",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Personalise the blank card in --reader for APPLICATION: issuer "
        "authentication with the card key derived in the HSM, every area's data from the "
        "registry record, JPKI keys generated on the card, certificates from the HSM-backed "
        "CA (none the application declined), the integrity record, and the lock (issued). "
        "Run it again after an interruption: it resumes without duplicating a card or a "
        "certificate. --batch/--all-registered issue many over several --readers at once.",
        epilog="Examples:\n"
        "  mynacard issue APP-1234 --reader 'Virtual PCD 00 00' --operator alice\n"
        "  mynacard issue --batch APP-1,APP-2 --readers 'Virtual PCD 00 00,Virtual PCD 00 01'")
    issue.add_argument("application", nargs="?", metavar="APPLICATION")
    issue.add_argument("--reader", metavar="NAME")
    issue.add_argument("--batch", metavar="APP,APP,…", help="several applications")
    issue.add_argument("--all-registered", action="store_true",
                       help="every application that is applied or registered")
    issue.add_argument("--readers", metavar="R1,R2,…", help="the readers of a batch")
    issue.add_argument("--card-wait", type=float, default=0.0, metavar="S",
                       help="in a batch, how long a reader waits for its next blank card")
    issue.add_argument("--no-certificates", action="store_true",
                       help="issue the card without any certificate")
    issue.add_argument("--pin-source", action="append", metavar="KIND=SPEC",
                       help="express issuance (特急発行): the applicant's PINs, set at "
                            "issuance; " + PIN_SOURCE_HELP)
    issue.add_argument("--quiet", action="store_true", help="no progress on stderr")
    add_common_options(issue)
    issue.set_defaults(func=command(_issue), changes=True, roles=("clerk", "supervisor"),
                       audit_action="issue",
                       audits_itself=True, audit_subject="application",
                       audit_detail=("reader", "batch", "readers"),
                       on_interrupt="application {application} may be left half-personalised;"
                                    " run `mynacard issue {application} --reader {reader}`"
                                    " again to resume it (no card or certificate is"
                                    " duplicated)")

    activate = subparsers.add_parser(
        "activate", help="hand a card over and let the holder set the PINs",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Hand-over at the counter (交付): the application moves to handed_over, "
        "the holder sets the PINs the card requires (only those: no signing password without "
        "a signing certificate), the card becomes active and the application activated.",
        epilog="PIN formats (rule 3.1): signing password 6-16 of A-Z and 0-9 with at least "
        "one letter and one digit; the others 4 digits.\n\nExample:\n"
        "  mynacard activate --reader 'Virtual PCD 00 00' --operator alice \\\n"
        "      --identity-document driving-licence:123456789012 \\\n"
        "      --pin-source auth=env:AUTH_PIN --pin-source sign=env:SIGN_PW \\\n"
        "      --pin-source text=env:TEXT_PIN --pin-source juki=env:JUKI_PIN")
    activate.add_argument("--reader", required=True, metavar="NAME")
    activate.add_argument("--pin-source", action="append", metavar="KIND=SPEC",
                          help=PIN_SOURCE_HELP)
    add_identity_options(activate)
    add_common_options(activate)
    activate.set_defaults(func=command(_activate), changes=True, roles=("clerk", "supervisor"),
                          audit_action="activate",
                          audits_itself=True, audit_subject="reader")


# -- center init -------------------------------------------------------------------------
def _center_init_preflight(args: argparse.Namespace, home: Path) -> str | None:
    """Why `center init` must stop before creating anything (a usage problem), or None."""
    from issuance.workflow.center import CONFIG_NAME

    if args.master_key is None and not (home / CONFIG_NAME).exists():
        return ("a new center needs --master-key test|generate|file:PATH; nothing was "
                "created")
    return None


def _center_init(args: argparse.Namespace) -> int:
    from issuance.workflow.center import init_center

    operator = operator_or_none(args)
    if operator is None:
        return EXIT_USAGE
    made: list[dict[str, str]] = []

    def report(what: str, outcome: str) -> None:
        made.append({"item": what, "outcome": outcome})
        if not args.json:
            print(f"  {outcome:8} {what}")

    if not args.json:
        print(f"issuance center in {args.home}")
    config = init_center(Path(args.home), token=args.token, pkcs11_uri=args.pkcs11_uri,
                         pin_source=args.pin_source, master_key=args.master_key,
                         store=args.store, shards=args.shards, ocsp_url=args.ocsp_url,
                         crl_base_url=args.crl_base_url, report=report)
    with open_store(args) as db:
        from issuance.workflow.migrations import migrate_workflow

        migrate_workflow(db)
        AuditLog(db).append(operator=operator, action="center.init", subject=str(args.home),
                            outcome="ok", detail={"items": made})
    from hsm.advice import redacted
    from issuance.cli.config import write_config
    from issuance.storage.config import resolve_db_url

    # `store` fills the PKI commands' --db, so it is kept whole (config.toml is 0600);
    # `issuance_db` is only shown, never read back: it is kept without its password
    config_file = write_config(Path(args.home), {
        "token": None if args.pkcs11_uri else args.token, "token_uri": config.token_uri,
        "pin_source": config.pin_source, "store": config.store, "ocsp_url": args.ocsp_url,
        "crl_base_url": args.crl_base_url, "crl_dir": str(Path(args.home) / "crl"),
        "issuance_db": redacted(resolve_db_url(getattr(args, "db", None), Path(args.home)))})
    if not args.json:
        print(f"the token PIN is read from {config.pin_source}; the defaults are in "
              f"{config_file} (`mynacard config show`), so `ocsp serve` and `crl publish` "
              "need no further option")
    if args.json:
        emit_json({"home": str(args.home), "items": made, "token_uri": config.token_uri,
                   "pin_source": config.pin_source, "ca_dir": config.ca_dir,
                   "store": redacted(config.store)})
    return EXIT_OK


# -- issue -------------------------------------------------------------------------------
def _issue(args: argparse.Namespace) -> int:
    from issuance.workflow.center import Center
    from issuance.workflow.issue import Issuer
    from issuance.workflow.machine import Refused

    operator = operator_or_none(args)
    if operator is None:
        return EXIT_USAGE
    if args.batch or args.all_registered:
        return _issue_batch(args, operator)
    if not args.application or not args.reader:
        fail("issue needs APPLICATION and --reader (or --batch/--all-registered with --readers)")
        return EXIT_USAGE
    args.reader = resolve_reader(args.reader)
    pins = None
    if args.pin_source:
        sources = parse_pin_sources(args.pin_source)
        pins = holder_pins({k: PinSource.from_spec(s).read() for k, s in sources.items()})
    progress = Progress(quiet=args.quiet)
    progress(f"issuing application {args.application} on {args.reader!r}")
    with open_store(args) as db, Center.open(Path(args.home)) as center:
        issuer = Issuer(db, center, operator=operator, progress=progress)
        try:
            result = issuer.issue(args.application, args.reader,
                                  certificates=not args.no_certificates, holder_pins=pins)
        except Refused as exc:
            fail(f"refused (rule {exc.rule}): {exc.message}")
            if args.json:
                emit_json({"application_id": args.application, "refused": True,
                           "rule": exc.rule, "reason": exc.message})
            return EXIT_REFUSED
    progress(f"done in {result.seconds:.2f}s: application {result.application_id} "
             f"personalised, card {result.card_serial} {result.life_cycle}")
    if args.json:
        emit_json(result.to_json())
    else:
        print(f"application {result.application_id}: card {result.card_serial} "
              f"{result.life_cycle}")
    return EXIT_OK


def _issue_batch(args: argparse.Namespace, operator: str) -> int:
    from issuance.workflow.batch import issue_batch
    from issuance.workflow.center import Center
    from issuance.workflow.issue import Issuer

    readers = resolve_readers(args.readers or args.reader or "")
    if not readers:
        fail("a batch needs --readers R1,R2,…")
        return EXIT_USAGE
    with open_store(args) as db, Center.open(Path(args.home)) as center:
        if args.all_registered:
            with db.transaction() as tx:
                rows = tx.query("SELECT id FROM applications WHERE state IN (?, ?)"
                                " ORDER BY applied_on, created_at",
                                (State.APPLIED.value, State.REGISTERED.value))
            apps = [r["id"] for r in rows]
        else:
            apps = [a for a in args.batch.split(",") if a]
        print(f"batch: {len(apps)} application(s) over {len(readers)} reader(s)",
              file=sys.stderr)
        report = issue_batch(
            lambda reader: Issuer(db, center, operator=operator,
                                  progress=Progress(f"{reader}: ", quiet=args.quiet)),
            apps, readers, card_wait=args.card_wait, certificates=not args.no_certificates)
        AuditLog(db).append(operator=operator, action="issue.batch", subject=",".join(readers),
                            outcome="ok" if complete(report) else "partial",
                            detail={"issued": [r.application_id for r in report.issued],
                                    "refused": report.refused, "not_issued": report.not_issued,
                                    "reader_errors": report.errors,
                                    "seconds": round(report.seconds, 3)})
    if args.json:
        emit_json(report.to_json())
    else:
        for r in report.issued:
            print(f"application {r.application_id}: card {r.card_serial} {r.life_cycle}")
        for app, why in report.refused.items():
            print(f"application {app}: refused: {why}")
        for app in report.not_issued:
            print(f"application {app}: not issued (no blank card)")
        for reader, why in report.errors.items():
            print(f"reader {reader!r} stopped: {why}", file=sys.stderr)
        print(f"{len(report.issued)} card(s) in {report.seconds:.1f}s over {len(readers)} "
              f"reader(s): {report.cards_per_hour:.0f} cards/hour", file=sys.stderr)
    return EXIT_OK if complete(report) else EXIT_REFUSED


def complete(report: Any) -> bool:
    return not report.refused and not report.not_issued and not report.errors


# -- activate ----------------------------------------------------------------------------
def _activate(args: argparse.Namespace) -> int:
    from issuance.workflow.activate import Activator
    from issuance.workflow.machine import Refused

    operator = operator_or_none(args)
    if operator is None:
        return EXIT_USAGE
    sources = parse_pin_sources(args.pin_source)
    args.reader = resolve_reader(args.reader)
    progress = Progress()
    with open_store(args) as db:
        try:
            result = Activator(db, operator=operator, progress=progress).activate(
                args.reader, pin_supplier(sources), identity=identity_from_args(args))
        except Refused as exc:
            fail(f"refused (rule {exc.rule}): {exc.message}")
            return EXIT_REFUSED
    if args.json:
        emit_json(result.to_json())
    else:
        print(f"application {result.application_id}: card {result.card_serial} handed over "
              f"and active (PINs set: {', '.join(result.pins_set) or 'none needed'})")
    return EXIT_OK
