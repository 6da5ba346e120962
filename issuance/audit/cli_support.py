"""What every issuance command shares: --operator, --db, --json, and its audit entry."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from issuance.audit.operator import OPERATOR_ENV, OperatorError, resolve_operator
from issuance.errors import IssuanceError
from issuance.storage import Database, open_database
from issuance.storage.config import DB_ENV, resolve_db_url

EXIT_OK = 0
EXIT_REFUSED = 1  # the command ran and refused (a rule, bad rows, a broken chain)
EXIT_USAGE = 2  # no operator, bad options
EXIT_ERROR = 3  # storage or file problems


def add_common_options(parser: argparse.ArgumentParser, *, json_output: bool = True) -> None:
    parser.add_argument(
        "--operator", metavar="NAME",
        help=f"who is acting (required by commands that change anything; "
             f"default ${OPERATOR_ENV})",
    )
    parser.add_argument(
        "--db", metavar="URL",
        help=f"sqlite:///PATH or postgresql://… (default ${DB_ENV}, else SQLite in the home)",
    )
    if json_output:
        parser.add_argument("--json", action="store_true", help="machine-readable output")


def fail(message: str) -> None:
    print(f"mynacard: {message}", file=sys.stderr)


def operator_or_none(args: argparse.Namespace) -> str | None:
    try:
        return resolve_operator(getattr(args, "operator", None))
    except OperatorError as exc:
        fail(str(exc))
        return None


@contextmanager
def open_store(args: argparse.Namespace) -> Iterator[Database]:
    db = open_database(resolve_db_url(getattr(args, "db", None), args.home))
    try:
        yield db
    finally:
        db.close()


def emit_json(value: Any) -> None:
    print(json.dumps(value, ensure_ascii=False, indent=2, default=str))


def guarded(run: Any) -> Any:
    """Wrap a command body: turn IssuanceError into a message and exit code 3."""

    def wrapper(args: argparse.Namespace) -> int:
        try:
            return int(run(args))
        except IssuanceError as exc:
            fail(str(exc))
            return EXIT_ERROR

    wrapper.__doc__ = run.__doc__
    return wrapper
