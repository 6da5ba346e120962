"""The `mynacard` command.

Sub-command groups register themselves through the `mynacard.commands` entry-point
group: each names a function `register(subparsers)` that adds its parser and sets
`func` (called with the parsed arguments, whose `home` is the resolved state
directory). The root command therefore imports no package it may not import.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from importlib.metadata import entry_points

from issuance.cli.home import HOME_ENV, HomeError, load_emulator_env, resolve_home

EPILOG = f"""\
State: everything the CLI keeps lives in one directory: --home DIR, else ${HOME_ENV},
else ~/.local/share/mynacard.

Examples:
  mynacard emulator up --cards 1 --sample     start a working sample card
  mynacard card info --reader "Virtual PCD 00 00"
  mynacard emulator down
"""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mynacard",
        description="My Number Card and JPKI: emulated cards, HSM-backed CA, issuance.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--home", metavar="DIR", help=f"state directory (default: ${HOME_ENV})")
    sub = parser.add_subparsers(title="commands", metavar="COMMAND")
    for ep in sorted(entry_points(group="mynacard.commands"), key=lambda e: e.name):
        try:
            register = ep.load()
        except ImportError as exc:  # a broken group must not take the others down
            print(f"mynacard: command group {ep.name!r} unavailable: {exc}", file=sys.stderr)
            continue
        register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    func = getattr(args, "func", None)
    if func is None:
        parser.print_help(sys.stderr)
        return 2
    try:  # only the commands that set a home up (creates_home) may create a missing one
        args.home = resolve_home(args.home, create=getattr(args, "creates_home", False))
    except (HomeError, OSError) as exc:
        print(f"mynacard: error: {exc}", file=sys.stderr)
        return 2
    load_emulator_env(args.home)
    try:
        result = func(args)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    return int(result or 0)


if __name__ == "__main__":
    sys.exit(main())
