"""`mynacard registry …`: load and generate registry rows.

Registry rows (schema: issuance/registry/schema.json), one resident per row, as CSV
with a header or as JSON Lines objects with these columns:

    resident_code, my_number, name, name_kana, address, birth_date, sex, nationality,
    status, status_date, adult_ward, municipality_code, residence_expiry,
    fuhyo_municipality_code, fuhyo_address, continued_use

Required: resident_code, my_number, name, address, birth_date, sex, nationality,
status, municipality_code. Dates are YYYY-MM-DD; sex is 1, 2, 9 or 0; nationality
japanese|foreign; status resident|emigrated|deceased|deleted; flags true/false.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from collections.abc import Callable
from datetime import date, datetime
from pathlib import Path
from typing import Any

from hsm.files import OutputExists, private_writer
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
from issuance.registry.dates import japan_date, utc_now
from issuance.registry.generator import ResidentGenerator
from issuance.registry.loader import LoadFileError, load_file
from issuance.registry.model import COLUMNS, REQUIRED
from issuance.registry.store import ResidentStore

Clock = Callable[[], datetime]

SCHEMA_PATH = Path(__file__).with_name("schema.json")

COLUMNS_HELP = (
    "Columns (schema: issuance/registry/schema.json):\n  "
    + ", ".join(COLUMNS)
    + "\nRequired: " + ", ".join(REQUIRED)
    + "\nDates YYYY-MM-DD; sex 1|2|9|0; nationality japanese|foreign;"
    " status resident|emigrated|deceased|deleted; flags true|false."
)


def register(subparsers: Any, *, clock: Clock = utc_now) -> None:
    """Add `registry load`, `registry generate`, `registry show`, `registry update` and
    `registry schema`."""
    parser = subparsers.add_parser(
        "registry", help="the registry view: load, generate and show residents",
        description="The registry view (本人確認情報 and 附票 entries).\n\n" + COLUMNS_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(title="registry commands", metavar="COMMAND")

    load = sub.add_parser(
        "load", help="import residents from CSV or JSON Lines",
        description="Import residents. Bad rows are rejected with their row number and "
        "reason (and written to NAME.rejects.csv|jsonl beside the input); good rows are "
        "loaded, replacing any stored record with the same resident code.\n\n" + COLUMNS_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    load.add_argument("file", type=Path, metavar="FILE")
    load.add_argument("--format", choices=("csv", "jsonl"), help="default: from the suffix")
    load.add_argument("--no-rejects-file", action="store_true",
                      help="do not write the rejects file")
    add_common_options(load)
    load.set_defaults(func=guarded(lambda a: _load(a, clock)), changes=True, roles=("supervisor",),
                      audit_action="registry.load", audits_itself=True, audit_subject="file")

    gen = sub.add_parser(
        "generate", help="write synthetic residents (Faker ja_JP)",
        description="Write realistic synthetic residents with valid check digits.\n\n"
        + COLUMNS_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    gen.add_argument("--count", type=int, required=True, metavar="N")
    gen.add_argument("--seed", type=int, metavar="S", help="same seed, same residents")
    gen.add_argument("--as-of", type=date.fromisoformat, metavar="YYYY-MM-DD",
                     help="the date ages are counted on (default: today in Japan)")
    gen.add_argument("--out", type=Path, metavar="FILE",
                     help="default: standard output (a file is written 0600)")
    gen.add_argument("--force", action="store_true", help="overwrite --out if it exists")
    gen.add_argument("--format", choices=("jsonl", "csv"), help="default: from --out, else jsonl")
    gen.add_argument("--quiet", action="store_true",
                     help="no progress on stderr (there is none when it is not a terminal)")
    add_common_options(gen, json_output=False)
    gen.set_defaults(func=guarded(lambda a: _generate(a, clock)), changes=True,
                     roles=("supervisor",),
                     audit_action="registry.generate", audits_itself=True, audit_subject="out")

    show = sub.add_parser("show", help="print one resident's record")
    show.add_argument("resident_code", metavar="RESIDENT_CODE")
    add_common_options(show)
    show.set_defaults(func=guarded(lambda a: _show(a, clock)), changes=False, roles="*")

    update = sub.add_parser(
        "update", help="a move or a substitute-character choice entered at the counter",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Change one resident's record at the counter: the new address after a "
        "move (転居/転入; the signing certificate carries the address, so it lapses: rule 2a, "
        "and `mynacard card update` writes a new one), the kana reading, or the holder's "
        "choice of the character that replaces one JIS X 0208 cannot show on the "
        "certificate (代替文字, ORIGINAL=REPLACEMENT; used for certificates issued from now "
        "on). Audited with what changed, never the address itself.",
        epilog="Examples:\n"
        "  mynacard registry update 12345678903 --address '東京都千代田区千代田２－２' "
        "--operator alice\n"
        "  mynacard registry update 12345678903 --substitute 髙=〓 --operator alice")
    update.add_argument("resident_code", metavar="RESIDENT_CODE")
    update.add_argument("--address", metavar="TEXT", help="the new address")
    update.add_argument("--name-kana", metavar="KANA", help="the kana reading of the name")
    update.add_argument("--substitute", action="append", default=[],
                        metavar="ORIGINAL=REPLACEMENT",
                        help="the character the certificate shows for one JIS X 0208 lacks")
    add_common_options(update)
    update.set_defaults(func=guarded(lambda a: _update(a, clock)), changes=True,
                        roles=("clerk", "supervisor"), audit_action="registry.update",
                        audits_itself=True, audit_subject="resident_code")

    schema = sub.add_parser("schema", help="print the published JSON Schema of a row")
    add_common_options(schema, json_output=False)
    schema.set_defaults(func=guarded(lambda a: _print_schema(a, clock)), changes=False, roles="*")


def _print_schema(args: argparse.Namespace, clock: Clock) -> int:
    """Read-only: needs no operator and records nothing."""
    sys.stdout.write(SCHEMA_PATH.read_text(encoding="utf-8"))
    return EXIT_OK


def _load(args: argparse.Namespace, clock: Clock) -> int:
    operator = operator_or_none(args)
    if operator is None:
        return EXIT_USAGE
    with open_store(args) as db:
        log = AuditLog(db, clock=clock)
        subject = str(args.file)
        from hsm.terminal import Progress

        rows = Progress("rows read")
        try:
            report = load_file(db, args.file, fmt=args.format, today=japan_date(clock()),
                               write_rejects=not args.no_rejects_file, progress=rows.add)
        except LoadFileError as exc:
            log.append(operator=operator, action="registry.load", subject=subject,
                       outcome="refused", detail={"reason": str(exc)})
            fail(str(exc))
            return EXIT_REFUSED  # a file the operator named: invalid input, as recorded
        finally:
            rows.done()
        outcome = "ok" if not report.rejected else "partial"
        log.append(operator=operator, action="registry.load", subject=subject, outcome=outcome,
                   detail={"loaded": report.loaded, "rejected": len(report.rejected),
                           "rejected_rows": [r.row for r in report.rejected[:1000]]})
    if args.json:
        emit_json(report.to_json())
    else:
        for r in report.rejected:
            print(f"{args.file}: row {r.row}: {r.reason}", file=sys.stderr)
        print(f"loaded {report.loaded} resident(s), rejected {len(report.rejected)} row(s)")
        if report.rejects_file:
            print(f"rejected rows written to {report.rejects_file}")
    return EXIT_OK if not report.rejected else EXIT_REFUSED


def _generate(args: argparse.Namespace, clock: Clock) -> int:
    operator = operator_or_none(args)
    if operator is None:
        return EXIT_USAGE
    if args.count < 0:
        fail("--count must not be negative")
        return EXIT_USAGE
    fmt = args.format or ("csv" if args.out and args.out.suffix.lower() == ".csv" else "jsonl")
    as_of = args.as_of or japan_date(clock())
    from hsm.terminal import Progress

    residents = Progress("generated", total=args.count, quiet=args.quiet
                         ).over(ResidentGenerator(seed=args.seed, as_of=as_of)
                                .generate(args.count))
    try:
        if args.out is None:
            _write_residents(sys.stdout, fmt, residents)
        else:  # personal data: 0600, never through a symlink, replaced only with --force
            with private_writer(args.out, force=args.force, text=True) as out:
                _write_residents(out, fmt, residents)
    except OutputExists as exc:
        fail(str(exc))
        return EXIT_REFUSED
    except OSError as exc:
        fail(f"{exc.filename or args.out}: {exc.strerror or exc}")
        return EXIT_ERROR
    with open_store(args) as db:
        AuditLog(db, clock=clock).append(
            operator=operator, action="registry.generate",
            subject=str(args.out) if args.out else "<stdout>", outcome="ok",
            detail={"count": args.count, "seed": args.seed, "as_of": as_of.isoformat(),
                    "format": fmt},
        )
    return EXIT_OK


def _write_residents(out: Any, fmt: str, residents: Any) -> None:
    if fmt == "csv":
        writer = csv.DictWriter(out, fieldnames=list(COLUMNS))
        writer.writeheader()
        for r in residents:
            writer.writerow({k: _csv_cell(v) for k, v in r.to_row().items()})
    else:
        for r in residents:
            out.write(json.dumps(r.to_row(), ensure_ascii=False) + "\n")


def _csv_cell(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _show(args: argparse.Namespace, clock: Clock) -> int:
    """Read-only: needs no operator and records nothing."""
    with open_store(args) as db:
        resident = ResidentStore(db).get(args.resident_code)
    if resident is None:
        fail(f"no resident with code {args.resident_code}")
        return EXIT_REFUSED
    row = resident.to_row()
    if args.json:
        emit_json(row)
    else:
        for key, value in row.items():
            if value is not None:
                print(f"{key}: {value}")
    return EXIT_OK


def _update(args: argparse.Namespace, clock: Clock) -> int:
    from issuance.records.moves import ChangeRefused, update_resident

    operator = operator_or_none(args)
    if operator is None:
        return EXIT_USAGE
    substitutions: list[tuple[str, str]] = []
    for text in args.substitute:
        original, sep, replacement = text.partition("=")
        substitutions.append((original.strip(), replacement.strip()) if sep else (text, ""))
    with open_store(args) as db:
        try:
            change = update_resident(db, args.resident_code.strip(), operator=operator,
                                     address=args.address, name_kana=args.name_kana,
                                     substitutions=substitutions, now=clock())
        except ChangeRefused as exc:
            fail(f"refused{f' (rule {exc.rule})' if exc.rule else ''}: {exc}")
            return EXIT_REFUSED
    if args.json:
        emit_json(change)
    else:
        print(f"resident {change['resident_code']}: changed {', '.join(change['changed'])}")
        if change["signing_certificate_lapses"]:
            print("  the signing certificate carries the old address and lapses (rule 2a); "
                  "`mynacard card update` at the counter writes a new one")
    return EXIT_OK
