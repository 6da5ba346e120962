"""What every `mynacard ca|crl|ocsp|verify` command shares: exit codes, error printing,
the HSM and store options, opening the key manager.

PINs come only from pin sources (``env:NAME`` or ``file:PATH``), never from the command
line, and are never printed.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from pki.errors import PkiError, StoreError, UnknownCertificateError

DEFAULT_TOKEN = "jpki"
PIN_ENV = "MYNACARD_HSM_PIN"
SO_PIN_ENV = "MYNACARD_HSM_SO_PIN"
REASONS = ["unspecified", "keyCompromise", "affiliationChanged", "superseded",
           "cessationOfOperation", "cACompromise", "privilegeWithdrawn"]

_RAW = argparse.RawDescriptionHelpFormatter


EXIT_REFUSED = 1  # refused by a rule, or invalid input
EXIT_FAILURE = 3  # a part failed: the store, the HSM, a file, the network
EXIT_UNCHECKED = 4  # verify: revocation could not be checked (not the same as INVALID)


def _err(msg: str, code: int = EXIT_REFUSED) -> int:
    print(f"mynacard: error: {msg}", file=sys.stderr)
    return code


def _guarded(fn: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    def run(args: argparse.Namespace) -> int:
        _hsm_defaults(args)
        try:
            from hsm import HsmError
        except ImportError:  # pragma: no cover - hsm always ships with pki
            HsmError = PkiError  # type: ignore[misc,assignment]  # noqa: N806
        try:
            return fn(args)
        except (PkiError, HsmError) as exc:
            return _err(str(exc).splitlines()[0] if str(exc) else type(exc).__name__,
                        _exit_code(exc))
        except (FileExistsError, FileNotFoundError) as exc:  # a path the operator named
            return _err(f"{exc.filename or ''}: {exc.strerror or exc}".lstrip(": "))
        except OSError as exc:
            return _err(f"{exc.filename or ''}: {exc.strerror or exc}".lstrip(": "),
                        EXIT_FAILURE)
        except ValueError as exc:  # bad input the parsers let through (e.g. a serial)
            return _err(str(exc).splitlines()[0])

    return run


def _hsm_defaults(args: argparse.Namespace) -> None:
    """Options the operator and HOME/config.toml left unset get the built-in defaults."""
    if hasattr(args, "token") and args.token is None:
        args.token = DEFAULT_TOKEN
    if hasattr(args, "pin_source") and args.pin_source is None:
        args.pin_source = f"env:{PIN_ENV}"


def _exit_code(exc: BaseException) -> int:
    """Refusals and invalid input exit 1; a store or HSM that failed exits 3."""
    from hsm.cli import exit_code as hsm_exit_code

    if isinstance(exc, StoreError) and not isinstance(exc, UnknownCertificateError):
        return EXIT_FAILURE
    if isinstance(exc, PkiError):
        return EXIT_REFUSED
    return hsm_exit_code(exc)


def _db(args: argparse.Namespace) -> str | Path:
    return args.db if args.db else Path(args.home) / "store.sqlite"


def _ca_dir(args: argparse.Namespace) -> Path:
    return Path(args.home) / "ca"


@contextmanager
def _key_manager(args: argparse.Namespace, *, create: bool = False) -> Iterator[Any]:
    from hsm import open_key_manager
    from hsm.pin_source import PinSource
    from hsm.softhsm import init_token, use_softhsm

    home = Path(args.home)
    pin = PinSource.from_spec(args.pin_source)
    use_softhsm(home)
    uri = token_uri(args.token)
    if create and uri != args.token:  # a SoftHSM2 token of the home's, made when missing
        from hsm.errors import TokenExists

        so_pin = PinSource.from_spec(args.so_pin_source)
        try:
            uri = init_token(home, args.token, so_pin.read(), pin.read())
        except TokenExists:
            pass
    with open_key_manager(uri, pin_source=pin) as km:
        yield km


def token_uri(token: str) -> str:
    """A `--token` value as a `pkcs11:` URI: a label (of the home's SoftHSM2 token) or a
    whole URI naming another module's token (`pkcs11:token=…?module-path=…`)."""
    return token if token.startswith("pkcs11:") else f"pkcs11:token={token}"


def _add_hsm_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--token", metavar="LABEL|URI",
                   help="HSM token: a label of the home's SoftHSM2 token, or a pkcs11: URI "
                        "with module-path= for another module (default: HOME/config.toml, "
                        f"else {DEFAULT_TOKEN})")
    from hsm.options import add_pin_source

    add_pin_source(p, {"user": "pin_source"},
                   help=f"where the token user PIN is read (default: HOME/config.toml,"
                        f" else env:{PIN_ENV})")


def _add_db_option(p: argparse.ArgumentParser) -> None:
    from hsm.options import add_deprecated_alias

    p.add_argument("--store", dest="db", metavar="PATH|URL",
                   help="certificate store: SQLite file or postgresql:// URL "
                        "(default HOME/config.toml, else HOME/store.sqlite)")
    add_deprecated_alias(p, "--db", new="--store", dest="db")


def _print_json(obj: Any) -> None:
    print(json.dumps(obj, indent=2, ensure_ascii=False))
