"""`mynacard console serve`: the counter console (a web application) for staff and the
holder's PIN pad."""

from __future__ import annotations

import argparse
import threading
from pathlib import Path
from typing import Any

from issuance.audit.cli_support import (
    EXIT_ERROR,
    EXIT_OK,
    EXIT_USAGE,
    add_common_options,
    fail,
    guarded,
    operator_or_none,
)

DEFAULT_LISTEN = "127.0.0.1:8480"


class LockedKeyer:
    """The center's audit keyer, used by one thread at a time (the console's requests and
    jobs run in several)."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.name = getattr(inner, "name", "center")
        self._lock = threading.Lock()

    def mac(self, data: bytes) -> bytes:
        with self._lock:
            return bytes(self.inner.mac(data))

    def check(self, data: bytes, mac: bytes) -> bool:
        with self._lock:
            return bool(self.inner.check(data, mac))


def parse_listen(text: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"--listen {text!r}: HOST:PORT, e.g. {DEFAULT_LISTEN}")
    return host.strip("[]"), int(port)


def register(subparsers: Any) -> None:
    from pki.serving import add_serving_options

    parser = subparsers.add_parser(
        "console", help="the counter console: a web application for staff and the PIN pad")
    sub = parser.add_subparsers(title="console commands", metavar="COMMAND")
    serve = sub.add_parser(
        "serve", help="serve the counter console over HTTP(S)",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Serve the counter console: staff log in with their operator password, "
        "take applications, issue and hand over cards (the holder sets the PINs on the PIN "
        "pad page, paired by a one-time link), serve the counter and read statistics. Every "
        "action needs the roles of the CLI command that does the same and is audited.",
        epilog="Example:\n  mynacard console serve --home H --listen 0.0.0.0:8443 \\\n"
               "      --tls-cert console.pem --tls-key console.key")
    serve.add_argument("--listen", default=DEFAULT_LISTEN, metavar="HOST:PORT",
                       help=f"where to listen (default {DEFAULT_LISTEN})")
    add_serving_options(serve, client_ca=False)
    add_common_options(serve, json_output=False)
    serve.set_defaults(func=guarded(_serve), changes=True, roles=("supervisor",),
                       audit_action="console.serve", audits_itself=True,
                       audit_detail=("listen",))


def _serve(args: argparse.Namespace) -> int:
    import logging

    from issuance.audit.keyer import current_keyer, keyed_by, keyer_available
    from issuance.audit.log import AuditLog
    from issuance.audit.operator import acting
    from issuance.console.app import create_app
    from issuance.storage import open_database
    from issuance.storage.config import resolve_db_url
    from pki.serving import (
        ServingError,
        check_transport,
        limits_from_args,
        run,
        tls_from_args,
        uvicorn_config,
    )

    try:
        host, port = parse_listen(args.listen)
    except ValueError as exc:
        fail(str(exc))
        return EXIT_USAGE
    tls = tls_from_args(args)
    try:
        check_transport(tls, tokens=False, insecure_http=args.insecure_http)
    except ServingError as exc:
        fail(str(exc))
        return EXIT_USAGE
    operator = operator_or_none(args)
    if operator is None:
        return EXIT_USAGE
    keyer = keyer_available(current_keyer())
    if keyer is None:
        fail("the console needs a center (its audit key): run `mynacard center init` first")
        return EXIT_ERROR
    db_url = resolve_db_url(getattr(args, "db", None), Path(args.home))
    with open_database(db_url) as db:
        AuditLog(db).append(operator=operator, action="console.serve",
                            subject=f"{host}:{port}", outcome="ok",
                            detail={"tls": tls.enabled})
        app = create_app(Path(args.home), db_url, db, tls=tls.enabled)
        logging.basicConfig(level=logging.INFO)
        # requests act as the operator logged in at each browser, never as the starter;
        # no access log: a PIN pad's URL holds its pairing token
        with keyed_by(LockedKeyer(keyer)), acting(None):
            run(uvicorn_config(app, host=host, port=port, tls=tls,
                               limits=limits_from_args(args, max_body=8 << 20),
                               log_level="info", access_log=False))
    return EXIT_OK
