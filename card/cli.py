"""`mynacard card ...`: look at cards in readers.

Registered through the `mynacard.commands` entry point; the root command sets
`args.home` and calls `args.func(args)`, whose return value is the exit code.
Card and reader errors are one line on stderr and exit code 2, never a traceback.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from card.errors import CardError
from card.info import card_info, format_info
from card.transport import PcscTransport, list_readers, reader_has_card

SOCKET_ENV = "PCSCLITE_CSOCK_NAME"


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add the `card` command group."""
    parser = subparsers.add_parser(
        "card", help="look at cards in readers", description="Look at cards in PC/SC readers."
    )
    sub = parser.add_subparsers(title="card commands", metavar="COMMAND")

    info = sub.add_parser(
        "info",
        help="what a card says without a PIN",
        description="Applications, serial, life cycle, tries left of every PIN and code, "
        "and the certificates anyone may read. Uses no PIN try.",
    )
    info.add_argument("--reader", metavar="NAME",
                      help="reader name (default: the only reader with a card)")
    info.add_argument("--json", action="store_true", help="print JSON")
    info.set_defaults(func=cmd_info)

    readers = sub.add_parser("readers", help="list PC/SC readers and whether they hold a card")
    readers.add_argument("--json", action="store_true", help="print JSON")
    readers.set_defaults(func=cmd_readers)

    def usage(args: argparse.Namespace) -> int:
        parser.print_help(sys.stderr)
        return 2

    parser.set_defaults(func=usage)


def _use_emulator(home: Path | str | None) -> None:
    """Point PC/SC at a running emulator under `home` unless the socket is set already.

    `mynacard emulator up` writes `emulator/pcscd.env`; an explicit environment wins.
    """
    if home is None or SOCKET_ENV in os.environ:
        return
    try:
        lines = (Path(home) / "emulator" / "pcscd.env").read_text().splitlines()
    except OSError:
        return
    for line in lines:
        key, sep, value = line.strip().removeprefix("export ").partition("=")
        if sep and key.strip() == SOCKET_ENV:
            socket = value.strip().strip("'\"")
            if Path(socket).exists():
                os.environ[SOCKET_ENV] = socket


def _fail(message: str) -> int:
    print(f"mynacard card: error: {message}", file=sys.stderr)
    return 2


def choose_reader(requested: str | None) -> str:
    """The requested reader, or the only reader that holds a card."""
    if requested:
        return requested
    names = list_readers()
    with_card = [name for name in names if reader_has_card(name)]
    if len(with_card) == 1:
        return with_card[0]
    if not names:
        raise CardError("no PC/SC reader found (is pcscd running? is the emulator up?)")
    if not with_card:
        raise CardError("no reader holds a card; name one with --reader")
    raise CardError(f"{len(with_card)} readers hold a card; name one with --reader: "
                    + ", ".join(repr(n) for n in with_card))


def cmd_info(args: argparse.Namespace) -> int:
    _use_emulator(getattr(args, "home", None))
    try:
        reader = choose_reader(args.reader)
        with PcscTransport(reader) as transport:
            info = card_info(transport)
    except CardError as exc:
        return _fail(str(exc))
    if args.json:
        print(json.dumps({"reader": reader, **info}, ensure_ascii=False, indent=2))
    else:
        print(format_info(info, reader))
    return 0


def cmd_readers(args: argparse.Namespace) -> int:
    _use_emulator(getattr(args, "home", None))
    try:
        rows = [{"reader": name, "card": reader_has_card(name)} for name in list_readers()]
    except CardError as exc:
        return _fail(str(exc))
    if args.json:
        print(json.dumps(rows, ensure_ascii=False, indent=2))
    elif not rows:
        print("no PC/SC readers", file=sys.stderr)
    else:
        for row in rows:
            print(f"{row['reader']}\t{'card' if row['card'] else 'empty'}")
    return 0
