"""`mynacard ocsp`: the responder over HTTP and its pre-generated responses."""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import sys
from pathlib import Path
from typing import Any

from pki.cli.common import (
    _add_db_option,
    _add_hsm_options,
    _guarded,
)

_OCSP_ENV = "MYNACARD_OCSP_CONFIG"


def _ocsp_authorizer(db: str | Path | None, home: Path, open_access: bool) -> Any:
    """None (anyone) with --open, else the relying-party token check."""
    if open_access:
        return None
    from pki.relying_parties.registry import TokenAuthorizer

    return TokenAuthorizer(db or home / "store.sqlite")


def _ocsp_responder(home: Path, token: str, pin_source: str, db: str | None,
                    validity: int) -> tuple[Any, Any]:
    from hsm import PinSource, open_key_manager
    from hsm.softhsm import use_softhsm
    from pki.ca import load_ca
    from pki.ocsp import OcspResponder
    from pki.store import open_readonly_store

    ca = load_ca(home / "ca")
    use_softhsm(home)
    km = open_key_manager(f"pkcs11:token={token}", pin_source=PinSource.from_spec(pin_source))
    store = open_readonly_store(db or home / "store.sqlite")
    responder = OcspResponder.from_ca(key_source=km, ca=ca, store=store,
                                      validity=dt.timedelta(seconds=validity))
    return responder, (km, store)


def ocsp_app_from_env() -> Any:
    """uvicorn factory for `ocsp serve --workers N`: each worker process opens its own
    HSM session and read-only store from the (PIN-free) settings in $MYNACARD_OCSP_CONFIG."""

    from pki.ocsp.server import build_app
    from pki.serving import Guard, Limits

    cfg = json.loads(os.environ[_OCSP_ENV])
    responder, _resources = _ocsp_responder(Path(cfg["home"]), cfg["token"], cfg["pin_source"],
                                            cfg["db"], cfg["validity"])
    app = build_app(responder, authorizer=_ocsp_authorizer(cfg["db"], Path(cfg["home"]),
                                                           cfg.get("open", False)))
    app.state.resources = _resources  # keep the HSM session and store open
    return Guard(app, Limits(**cfg["limits"]))


def _ocsp_serve(args: argparse.Namespace) -> int:

    import uvicorn

    from pki.ocsp.server import MAX_REQUEST, serve
    from pki.serving import (
        LIMITS_ENV,
        ServingError,
        check_transport,
        limits_from_args,
        limits_to_env,
        tls_from_args,
    )

    tls = tls_from_args(args)
    limits = limits_from_args(args, max_body=MAX_REQUEST)
    try:
        check_transport(tls, tokens=not args.open, insecure_http=args.insecure_http)
    except ServingError as exc:
        print(f"mynacard: {exc}", file=sys.stderr)
        return 2
    # open everything once in this process first, so configuration errors surface here
    responder, (km, store) = _ocsp_responder(Path(args.home), args.token, args.pin_source,
                                             args.db, args.validity)
    scheme = "https" if tls.enabled else "http"
    print(f"OCSP responder on {scheme}://{args.host}:{args.port}/ ({args.workers} worker(s))",
          file=sys.stderr, flush=True)
    if args.workers <= 1:
        try:
            serve(responder, host=args.host, port=args.port,
                  authorizer=_ocsp_authorizer(args.db, Path(args.home), args.open),
                  tls=tls, limits=limits)
        finally:
            store.close()
            km.close()
        return 0
    store.close()
    km.close()
    os.environ[_OCSP_ENV] = json.dumps({
        "home": str(args.home), "token": args.token, "pin_source": args.pin_source,
        "db": str(args.db) if args.db else None, "validity": args.validity,
        "open": args.open, "limits": limits.__dict__})
    os.environ[LIMITS_ENV] = limits_to_env(limits)
    ssl_options: dict[str, Any] = {}
    if tls.enabled:
        ssl_options = {"ssl_certfile": str(tls.cert), "ssl_keyfile": str(tls.key)}
    uvicorn.run("pki.cli.ocsp:ocsp_app_from_env", factory=True, host=args.host, port=args.port,
                workers=args.workers, log_level="warning", access_log=False,
                server_header=False, http="pki.serving:protocol_from_env",
                timeout_keep_alive=int(max(1, limits.keep_alive)), **ssl_options)
    return 0


def register(subparsers: Any) -> None:
    """Add `ocsp` and its commands."""
    ocsp = subparsers.add_parser("ocsp", help="OCSP responder")
    ocsp_sub = ocsp.add_subparsers(title="commands", metavar="COMMAND", required=True)
    p = ocsp_sub.add_parser("serve", help="run the OCSP responder over HTTP",
                            description="Answer RFC 6960 GET and POST requests for both "
                                        "hierarchies from the read-only store, signing with "
                                        "the delegated responder keys in the HSM.")
    _add_hsm_options(p)
    _add_db_option(p)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8080)
    p.add_argument("--validity", type=int, default=3600, metavar="SECONDS",
                   help="response validity (nextUpdate - thisUpdate), default 3600")
    p.add_argument("--workers", type=int, default=1,
                   help="worker processes (one per core; each opens its own HSM session)")
    p.add_argument("--open", action="store_true",
                   help="answer anyone (tests, development); by default only registered "
                        "relying parties (Authorization: Bearer TOKEN, see `mynacard rp add`)")
    from pki.serving import add_serving_options

    add_serving_options(p, client_ca=False)
    p.set_defaults(func=_guarded(_ocsp_serve), changes=False, roles="*")
