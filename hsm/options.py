"""Option spellings shared by every command: old names stay as hidden aliases that warn.

One way to give a PIN or a password: `--pin-source [KIND=]SPEC`, SPEC in the grammar of
`hsm.pin_source` (env:NAME, file:PATH, fd:N, prompt). A command that takes several
secrets names them by KIND (`hsm init --pin-source so=env:SO_PIN`); without KIND= the
source is the command's first kind. An old spelling (`--so-pin-source`,
`--password-source`, ...) keeps working for scripts but says once, on stderr, what to
type instead.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Mapping, Sequence
from typing import Any

from hsm.pin_source import GRAMMAR

PIN_SOURCE = "--pin-source"
_SCHEMES = ("env:", "file:", "fd:", "prompt:", "tty:")
_KIND = re.compile(r"([a-z][a-z0-9-]*)=(.*)", re.S)


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
                         dest: str, **kwargs: Any) -> None:
    """Accept `old` (hidden from --help) as a spelling of `new`."""
    parser.add_argument(old, dest=dest, action=DeprecatedAlias, new=new, metavar="SPEC",
                        **kwargs)


def split_kind(value: str) -> tuple[str | None, str]:
    """`so=env:X` -> ("so", "env:X"); `env:X` -> (None, "env:X"). A KIND is lower-case
    letters, digits and dashes before the first `=`, so a path with `=` is no kind."""
    m = _KIND.fullmatch(value)
    return (m.group(1), m.group(2)) if m else (None, value)


class PinSourceOption(argparse.Action):
    """`--pin-source [KIND=]SPEC`: each source goes to the attribute its KIND names
    (`kinds`: KIND -> dest); no KIND= means the first kind."""

    def __init__(self, option_strings: Sequence[str], dest: str, *,
                 kinds: Mapping[str, str], help: str, **kwargs: Any) -> None:
        self.kinds = dict(kinds)
        self.about = help
        super().__init__(option_strings, dest, **kwargs)
        self._describe()

    def _describe(self) -> None:
        names = list(self.kinds)
        self.metavar = "SPEC" if len(names) == 1 else f"[{'|'.join(names)}=]SPEC"
        self.help = f"{self.about} ({GRAMMAR})" if len(names) == 1 else \
            f"{self.about} ({GRAMMAR}; KIND {', '.join(names)}, default {names[0]})"

    def add_kind(self, kind: str, dest: str) -> None:
        """One more secret of the command, given as `--pin-source KIND=SPEC`."""
        self.kinds[kind] = dest
        self._describe()

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace,
                 values: Any, option_string: str | None = None) -> None:
        kind, spec = split_kind(str(values))
        kind = kind or next(iter(self.kinds))
        if kind not in self.kinds:
            parser.error(f"{PIN_SOURCE} {kind}=…: KIND is one of {', '.join(self.kinds)}")
        if not spec:
            parser.error(f"{PIN_SOURCE} {kind}=: give a source ({GRAMMAR})")
        if not spec.startswith(_SCHEMES) and spec not in ("prompt", "tty"):
            # never echoed: it may be the secret itself, typed where its source belongs
            parser.error(f"{PIN_SOURCE} takes where the secret is ({GRAMMAR}), never the"
                         " secret itself")
        setattr(namespace, self.kinds[kind], spec)


def add_pin_source(parser: argparse.ArgumentParser, kinds: Mapping[str, str], *,
                   help: str, **kwargs: Any) -> PinSourceOption:
    """`--pin-source [KIND=]SPEC` for the secrets `kinds` names (KIND -> dest, the
    first the default). Other dests get default None unless `kwargs` say otherwise."""
    action = parser.add_argument(PIN_SOURCE, dest=next(iter(kinds.values())),
                                 action=PinSourceOption, kinds=kinds, help=help, **kwargs)
    assert isinstance(action, PinSourceOption)
    parser.set_defaults(**{dest: None for dest in list(kinds.values())[1:]
                           if dest not in parser._defaults})
    return action


def pin_source_action(parser: argparse.ArgumentParser) -> PinSourceOption | None:
    """The parser's `--pin-source`, when it is the kinded one."""
    for action in parser._actions:
        if PIN_SOURCE in action.option_strings and isinstance(action, PinSourceOption):
            return action
    return None
