"""HOME/config.toml: the defaults `center init` chose, read by every command.

`center init` knows the token, where its PIN is read, the certificate store, the
OCSP and CRL URLs and the CRL folder; before this file each later command had to be
told again (and the token PIN one command generated was one the next could not
find). The root command fills every option the operator left unset from here, so
`ocsp serve` and `crl publish` work right after `center init`. Never a PIN in it:
only where one is read (env:NAME or file:PATH).
"""

from __future__ import annotations

import argparse
import json
import sys
import tomllib
from pathlib import Path
from typing import Any

CONFIG_NAME = "config.toml"
SECTION = "center"

# Which option (argparse dest) of which command group a key fills when unset.
# The CA's groups name the certificate store `--db` (alias of `--store`).
_PKI_GROUPS = ("ca", "crl", "ocsp", "rp", "verify")
_FILLS: dict[str, tuple[str, tuple[str, ...]]] = {
    "token": ("token", _PKI_GROUPS),
    # a center on another vendor's module records only the URI; `--token` takes one too
    "token_uri": ("token", _PKI_GROUPS),
    "pin_source": ("pin_source", ("ca", "crl", "ocsp")),
    "store": ("db", _PKI_GROUPS),
    "crl_dir": ("out", ("crl publish",)),
    "ocsp_url": ("ocsp_url", ("ca init",)),
    "crl_base_url": ("crl_base_url", ("ca init",)),
}


class ConfigError(Exception):
    """HOME/config.toml exists but cannot be read (exit 3: a part, the home, is broken)."""


def config_path(home: Path) -> Path:
    return Path(home) / CONFIG_NAME


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    return json.dumps(str(value), ensure_ascii=False)  # a TOML basic string is JSON's


def render(values: dict[str, Any]) -> str:
    lines = ["# Written by `mynacard center init`: the defaults every command uses.",
             "# Never a PIN here, only where one is read. Edit with care.", f"[{SECTION}]"]
    lines += [f"{key} = {_toml_value(v)}" for key, v in sorted(values.items()) if v is not None]
    return "\n".join(lines) + "\n"


def write_config(home: Path, values: dict[str, Any]) -> Path:
    """Write (replace) HOME/config.toml through the exclusive 0600 file helpers."""
    from hsm.files import write_file

    path = config_path(home)
    write_file(path, render(values), force=True)
    return path


def load_config(home: Path) -> dict[str, Any]:
    """The [center] table of HOME/config.toml; empty when there is none."""
    path = config_path(home)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return {}
    except OSError as exc:
        raise ConfigError(f"{path}: {exc.strerror}") from None
    try:
        doc = tomllib.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    table = doc.get(SECTION, {})
    if not isinstance(table, dict):
        raise ConfigError(f"{path}: [{SECTION}] is not a table")
    return table


def apply_config(args: argparse.Namespace, command: str, config: dict[str, Any]) -> list[str]:
    """Fill the options of `command` the operator left unset; the keys used."""
    used = []
    words = command.split()
    for key, (dest, scopes) in _FILLS.items():
        in_scope = any(words[:len(s.split())] == s.split() for s in scopes)
        if key in config and in_scope and hasattr(args, dest) and getattr(args, dest) is None:
            setattr(args, dest, config[key])
            used.append(key)
    return used


def cmd_show(args: argparse.Namespace) -> int:
    path = config_path(args.home)
    try:
        config = load_config(args.home)
    except ConfigError as exc:
        print(f"mynacard config show: error: {exc}", file=sys.stderr)
        return 3
    from hsm.advice import redacted

    # a database URL may carry its password (the file is private; what is printed is not)
    config = {k: redacted(v) if isinstance(v, str) and "://" in v else v
              for k, v in config.items()}
    if args.json:
        print(json.dumps({"path": str(path), "exists": path.exists(), SECTION: config},
                         indent=2, ensure_ascii=False))
    elif not config:
        print(f"no configuration in {path}; `mynacard center init` writes it",
              file=sys.stderr)
    else:
        print(f"# {path}")
        print(render(config), end="")
    return 0


def register(subparsers: Any) -> None:
    """Add `config show`."""
    p = subparsers.add_parser("config", help="the defaults center init chose (HOME/config.toml)")
    sub = p.add_subparsers(title="config commands", metavar="COMMAND")
    show = sub.add_parser("show", help="print HOME/config.toml",
                          description="Print the defaults every command reads from "
                                      "HOME/config.toml (written by `center init`).")
    show.add_argument("--json", action="store_true", help="print JSON")
    show.set_defaults(func=cmd_show, changes=False, roles="*")

    def usage(args: argparse.Namespace) -> int:
        p.print_help(sys.stderr)
        return 2

    p.set_defaults(func=usage, changes=False, roles="*")
