"""Option spellings shared by every command: old names stay as hidden aliases that warn.

One way to give a PIN (`--pin-source [KIND=]SPEC`), so an old spelling keeps working
for scripts but says once, on stderr, what to type instead.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import Any


class DeprecatedAlias(argparse.Action):
    """Stores like the new option; warns in one line that the spelling is deprecated."""

    def __init__(self, option_strings: Sequence[str], dest: str, *, new: str,
                 **kwargs: Any) -> None:
        self.new = new
        kwargs.setdefault("help", argparse.SUPPRESS)
        super().__init__(option_strings, dest, **kwargs)

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace,
                 values: Any, option_string: str | None = None) -> None:
        print(f"mynacard: warning: {option_string} is deprecated; use {self.new}",
              file=sys.stderr)
        setattr(namespace, self.dest, values)


def add_deprecated_alias(parser: argparse.ArgumentParser, old: str, *, new: str,
                         dest: str) -> None:
    """Accept `old` (hidden from --help) as a spelling of `new`."""
    parser.add_argument(old, dest=dest, action=DeprecatedAlias, new=new, metavar="SPEC")
