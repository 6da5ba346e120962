"""`mynacard hsm …`: SoftHSM2 tokens in the state directory and the keys on them."""

from __future__ import annotations

import argparse
import json
import re
import secrets
import sys
from pathlib import Path
from typing import Any

from hsm.errors import HsmError
from hsm.files import private_dir, write_file
from hsm.keys import KeyKind, open_key_manager
from hsm.mechanisms import MechanismMissing
from hsm.module import SOFTHSM2_CONF_ENV, load_module
from hsm.options import add_deprecated_alias, add_pin_source
from hsm.pin_source import PinSource
from hsm.softhsm import init_token, softhsm_conf_path, softhsm_dir, use_softhsm
from hsm.uri import Pkcs11Uri

_LABEL_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,31}$")

HSM_EPILOG = """\
Keys live in a PKCS#11 token and never leave it. For development the token is a
SoftHSM2 token kept in the state directory (DIR/hsm/, configured by
DIR/hsm/softhsm2.conf); any other program that should see it needs
SOFTHSM2_CONF=DIR/hsm/softhsm2.conf in its environment.

PINs are never given on the command line. A pin source is one of
  file:/path/to/pin-file    the first line of a file (keep it 0600)
  env:NAME                  the value of an environment variable

Examples:
  mynacard hsm init --token mynacard-dev
  mynacard hsm create-key --token mynacard-dev --label jpki-sign-root --kind rsa-2048
  mynacard hsm keys --token mynacard-dev --json
"""

INIT_EPILOG = """\
Without --pin-source a random user PIN is generated and stored (mode 0600) in
DIR/hsm/LABEL.pin; without --pin-source so=SPEC a random SO PIN goes to DIR/hsm/LABEL.so.pin.
The token's pkcs11: URI (RFC 7512) is printed on stdout, with pin-source= pointing at
where the PIN is, so it can be passed as is to anything that opens the HSM.
An existing token is never re-created.

Example:
  MYNACARD_HSM_PIN=... mynacard hsm init --token mynacard-dev --pin-source env:MYNACARD_HSM_PIN
"""

KEYS_EPILOG = """\
Lists label, kind, CKA_ID and pkcs11: URI of every private and secret key on the
token. Nothing secret is ever shown. The token is --uri, else --token LABEL in the
state directory, else the only token there; the PIN comes from --pin-source, else the
URI's pin-source, else DIR/hsm/LABEL.pin.
"""


class CliError(Exception):
    """A usage problem reported as one line, exit status 2."""


class InvalidInput(CliError):
    """Invalid input or a refusal by a rule (a bad label, an existing token): exit 1."""


# HSM errors that say the operator asked for something wrong, not that a part failed.
_REFUSALS = ("TokenExists", "TokenNotFound", "KeyExists", "KeyNotFound", "PinIncorrect",
             "PinSourceError", "UriError", "UnsupportedAlgorithm", "KeyNotExportable")


def exit_code(exc: BaseException) -> int:
    """The README's exit code: 1 refused or invalid, 2 usage, 3 a part failed."""
    if isinstance(exc, InvalidInput | ValueError):
        return 1
    if isinstance(exc, CliError):
        return 2
    if type(exc).__name__ in _REFUSALS:
        return 1
    return 3


def register(subparsers: Any) -> None:
    """Add the `hsm` command group to the root command's subparsers."""
    hsm = subparsers.add_parser(
        "hsm",
        help="HSM tokens and keys (PKCS#11; SoftHSM2 by default)",
        description="Manage PKCS#11 tokens and the CA keys in them.",
        epilog=HSM_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    hsm.set_defaults(func=lambda args: _usage(hsm), changes=False, roles="*")
    sub = hsm.add_subparsers(title="hsm commands", metavar="COMMAND")

    init = sub.add_parser(
        "init",
        help="create a SoftHSM2 token in the state directory",
        description="Create a SoftHSM2 token in the state directory and print its pkcs11: URI.",
        epilog=INIT_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    init.add_argument("--token", required=True, metavar="LABEL",
                      help="token label (letters, digits, . _ -; at most 32)")
    add_pin_source(init, {"user": "pin_source", "so": "so_pin_source"},
                   help="where the user PIN (user=) and the SO PIN (so=) are; default:"
                        " generate them")
    add_deprecated_alias(init, "--so-pin-source", new="--pin-source so=SPEC",
                         dest="so_pin_source")
    init.add_argument("--json", action="store_true", help="print a JSON object instead of the URI")
    init.set_defaults(func=lambda args: _run(_cmd_init, args), changes=True,
                      roles=("ca-officer",), dual_control=True,
                      audit_action="hsm.init", audit_subject="token", creates_home=True)

    keys = sub.add_parser(
        "keys",
        help="list the keys on a token (never any secret)",
        description="List the keys on a token: label, kind, id and pkcs11: URI.",
        epilog=KEYS_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _token_options(keys)
    keys.add_argument("--json", action="store_true", help="print a JSON array")
    keys.set_defaults(func=lambda args: _run(_cmd_keys, args), changes=False, roles="*")

    create = sub.add_parser(
        "create-key",
        help="generate a signing key pair inside the token",
        description="Generate a key pair inside the token; the private key never leaves it.",
        epilog="Kinds: " + ", ".join(k.value for k in KeyKind if k is not KeyKind.AES_128),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _token_options(create)
    create.add_argument("--label", required=True, help="key label (CKA_LABEL), unique on the token")
    create.add_argument("--kind", default="rsa-2048", help="key kind (default: rsa-2048)")
    create.add_argument("--json", action="store_true", help="print a JSON object")
    create.set_defaults(func=lambda args: _run(_cmd_create, args), changes=True,
                        roles=("ca-officer",), dual_control=True,
                        audit_action="hsm.create-key", audit_subject="label",
                        audit_detail=("token", "kind"))


def _token_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--token", metavar="LABEL", help="token label in the state directory")
    parser.add_argument("--uri", metavar="URI", help="pkcs11: URI of the token (any module)")
    add_pin_source(parser, {"user": "pin_source"}, help="where the token's user PIN is")


def _usage(parser: argparse.ArgumentParser) -> int:
    parser.print_help(sys.stderr)
    return 2


def _run(cmd: Any, args: argparse.Namespace) -> int:
    try:
        return int(cmd(args) or 0)
    except (HsmError, CliError, ValueError) as exc:
        print(f"mynacard hsm: error: {exc}", file=sys.stderr)
        return exit_code(exc)


def _pin_file(home: Path, label: str, suffix: str) -> Path:
    return softhsm_dir(home) / f"{label}{suffix}"


def _write_secret(path: Path, value: str) -> None:
    """A PIN file, 0600, replaced whole (a symlink there is replaced, never followed)."""
    private_dir(path.parent)
    write_file(path, value + "\n", force=True)


def _cmd_init(args: argparse.Namespace) -> int:
    home = Path(args.home)
    label = args.token
    if not _LABEL_RE.match(label):
        raise InvalidInput("token label must be 1-32 of letters, digits, '.', '_', '-'")
    use_softhsm(home)
    if label in load_module().token_labels():
        raise InvalidInput(
            f"token {label!r} already exists in {softhsm_dir(home)}; refusing to re-create it"
        )
    written: list[Path] = []

    def pin_from(spec: str | None, suffix: str) -> tuple[str, str]:
        """(PIN, its pin-source spec): read from `spec`, or made up and kept 0600."""
        if spec:
            return PinSource.from_spec(spec).read(), spec
        pin = secrets.token_hex(8)
        path = _pin_file(home, label, suffix)
        _write_secret(path, pin)
        written.append(path)
        return pin, f"file:{path}"

    try:
        user_pin, pin_spec = pin_from(args.pin_source, ".pin")
        so_pin, so_spec = pin_from(args.so_pin_source, ".so.pin")
        uri = init_token(home, label, so_pin, user_pin)
    except BaseException:
        for path in written:
            path.unlink(missing_ok=True)
        raise
    full = Pkcs11Uri.parse(uri).replace(pin_source=pin_spec).format()
    conf = str(softhsm_conf_path(home).resolve())
    if args.json:
        print(json.dumps({"uri": full, "token": label, "pin_source": pin_spec,
                          "so_pin_source": so_spec, SOFTHSM2_CONF_ENV: conf}))
    else:
        print(full)
    for path in written:
        print(f"stored a generated {'SO ' if path.name.endswith('.so.pin') else ''}PIN in {path} "
              "(mode 0600)", file=sys.stderr)
    print(f"created token {label!r}; programs using it need {SOFTHSM2_CONF_ENV}={conf}",
          file=sys.stderr)
    return 0


def _open(args: argparse.Namespace) -> Any:
    home = Path(args.home)
    uri = Pkcs11Uri.parse(args.uri) if args.uri else Pkcs11Uri()
    if args.token:
        if uri.token is not None and uri.token != args.token:
            raise CliError("--token and the token in --uri differ")
        uri = uri.replace(token=args.token)
    module_path = uri.module_path
    uses_softhsm = module_path is None or "softhsm" in Path(module_path).name.lower()
    if uses_softhsm and softhsm_conf_path(home).exists():
        use_softhsm(home)
    elif uses_softhsm and not args.uri:
        raise CliError(
            f"no HSM tokens in {softhsm_dir(home)}; create one with "
            "'mynacard hsm init --token LABEL' (or name another module with --uri)"
        )
    if uri.token is None and uri.serial is None:
        labels = load_module(module_path).token_labels()
        if len(labels) != 1:
            raise CliError(
                "no tokens found; create one with 'mynacard hsm init --token LABEL'" if not labels
                else "several tokens: choose one with --token LABEL"
            )
        uri = uri.replace(token=labels[0])
    if args.pin_source:
        pin = PinSource.from_spec(args.pin_source)
    elif uri.pin_source:
        pin = PinSource.from_spec(uri.pin_source)
    else:
        default = _pin_file(home, uri.token or "", ".pin")
        if not (uri.token and default.exists()):
            raise CliError("no PIN source: pass --pin-source file:PATH or env:NAME")
        pin = PinSource.from_file(default)
    return open_key_manager(uri, pin_source=pin)


def _cmd_keys(args: argparse.Namespace) -> int:
    with _open(args) as km:
        keys = km.list_keys()
        offered = km.mechanisms()
    if args.json:
        print(json.dumps([k.to_json() for k in keys], indent=2))
        return 0
    if not keys:
        print("no keys", file=sys.stderr)
    else:
        width = max(len(k.label) for k in keys)
        for k in keys:
            print(f"{k.label:<{width}}  {k.kind.value:<8}  {k.id.hex()}  {k.uri}")
    try:
        method = offered.derivation()
        note = (f"{method.value} ({method.describe()}; cards hold AES-ECB-"
                f"{method.card_function} keys), CMAC by {offered.card_mac().describe()}")
    except MechanismMissing as exc:
        note = f"none: {exc}"
    print(f"card-key derivation on this token: {note}", file=sys.stderr)
    return 0


def _cmd_create(args: argparse.Namespace) -> int:
    kind = KeyKind.parse(args.kind)
    with _open(args) as km:
        info = km.create_key(args.label, kind=kind)
    print(json.dumps(info.to_json()) if args.json else info.uri)
    return 0
