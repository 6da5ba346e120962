"""Where the notice commands find the certificate store: the `--store` option and its
default, shared by `notices ingest|process` (cli) and `notices serve` (http), so neither
command module imports the other."""

from __future__ import annotations

import argparse
from pathlib import Path

STORE_DEFAULT = "store.sqlite"  # pki's default: HOME/store.sqlite


def add_store_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--store", metavar="PATH|URL",
                        help="certificate store: SQLite file or postgresql:// URL "
                        f"(default HOME/{STORE_DEFAULT}, as `mynacard pki`)")


def store_location(args: argparse.Namespace) -> str | Path:
    return args.store if getattr(args, "store", None) else Path(args.home) / STORE_DEFAULT
