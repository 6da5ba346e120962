"""`mynacard ocsp`: the responder over HTTP and its pre-generated responses."""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import sys
import threading
from pathlib import Path
from typing import Any

from pki.cli.common import (
    _add_db_option,
    _add_hsm_options,
    _guarded,
    _key_manager,
    _print_json,
    token_uri,
)

_OCSP_ENV = "MYNACARD_OCSP_CONFIG"


def _ocsp_authorizer(db: str | Path | None, home: Path, open_access: bool) -> Any:
    """None (anyone) with --open, else the relying-party token check."""
    if open_access:
        return None
    from pki.relying_parties.registry import TokenAuthorizer

    return TokenAuthorizer(db or home / "store.sqlite")


def _ocsp_responder(home: Path, token: str, pin_source: str, db: str | None,
                    validity: int, nonces: str = "sign") -> tuple[Any, Any]:
    from hsm import PinSource, open_key_manager
    from hsm.softhsm import use_softhsm
    from pki.ca import load_ca
    from pki.ocsp import OcspResponder
    from pki.store import open_readonly_store

    ca = load_ca(home / "ca")
    use_softhsm(home)
    km = open_key_manager(token_uri(token), pin_source=PinSource.from_spec(pin_source))
    store = open_readonly_store(db or home / "store.sqlite")
    responder = OcspResponder.from_ca(key_source=km, ca=ca, store=store,
                                      validity=dt.timedelta(seconds=validity), nonces=nonces)
    return responder, (km, store)


def ocsp_app_from_env() -> Any:
    """uvicorn factory for `ocsp serve --workers N`: each worker process opens its own
    HSM session and read-only store from the (PIN-free) settings in $MYNACARD_OCSP_CONFIG."""

    from pki.ocsp.server import build_app
    from pki.serving import Guard, Limits

    cfg = json.loads(os.environ[_OCSP_ENV])
    responder, _resources = _ocsp_responder(Path(cfg["home"]), cfg["token"], cfg["pin_source"],
                                            cfg["db"], cfg["validity"], cfg["nonces"])
    app = build_app(responder, authorizer=_ocsp_authorizer(cfg["db"], Path(cfg["home"]),
                                                           cfg.get("open", False)))
    app.state.resources = _resources  # keep the HSM session and store open
    return Guard(app, Limits(**cfg["limits"]))


def _ocsp_serve(args: argparse.Namespace) -> int:

    import uvicorn

    from pki.ocsp.server import MAX_REQUEST, serve
    from pki.serving import LIMITS_ENV, ServingError, limits_to_env, serving_from_args

    try:
        tls, limits = serving_from_args(args, tokens=not args.open, max_body=MAX_REQUEST)
    except ServingError as exc:
        print(f"mynacard: {exc}", file=sys.stderr)
        return 2
    if args.pregenerated:
        return _serve_pregenerated(args, tls, limits)
    # open everything once in this process first, so configuration errors surface here
    responder, (km, store) = _ocsp_responder(Path(args.home), args.token, args.pin_source,
                                             args.db, args.validity, args.nonce)
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
        "open": args.open, "limits": limits.__dict__, "nonces": args.nonce})
    os.environ[LIMITS_ENV] = limits_to_env(limits)
    ssl_options: dict[str, Any] = {}
    if tls.enabled:
        ssl_options = {"ssl_certfile": str(tls.cert), "ssl_keyfile": str(tls.key)}
    uvicorn.run("pki.cli.ocsp:ocsp_app_from_env", factory=True, host=args.host, port=args.port,
                workers=args.workers, log_level="warning", access_log=False,
                server_header=False, http="pki.serving:protocol_from_env",
                timeout_keep_alive=int(max(1, limits.keep_alive)), **ssl_options)
    return 0


# -- pre-generated responses -------------------------------------------------------------
def _duration(text: str) -> dt.timedelta:
    from pki.relying_parties.schedule import parse_duration

    try:
        return dt.timedelta(seconds=parse_duration(text))
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _pregenerator(home: Path, km: Any, db: str | None, validity: dt.timedelta,
                  refresh_before: dt.timedelta | None) -> tuple[Any, Any]:
    from pki.ca import load_ca
    from pki.ocsp import Pregenerator
    from pki.store import open_store

    ca = load_ca(home / "ca")
    store = open_store(db or home / "store.sqlite")
    try:
        return Pregenerator.from_ca(key_source=km, ca=ca, store=store, validity=validity,
                                    refresh_before=refresh_before), store
    except BaseException:
        store.close()
        raise


def _ocsp_pregenerate(args: argparse.Namespace) -> int:
    with _key_manager(args) as km:
        pregen, store = _pregenerator(Path(args.home), km, args.db, args.validity,
                                      args.refresh_before)
        try:
            report = pregen.run_once()
            total = store.pregenerated_count()
        finally:
            store.close()
    if args.json:
        _print_json({"signed": report.signed, "by_status": report.by_status,
                     "seconds": round(report.seconds, 3), "stored": total})
    else:
        detail = ", ".join(f"{n} {s}" for s, n in sorted(report.by_status.items()))
        print(f"signed {report.signed} OCSP response(s){f' ({detail})' if detail else ''}; "
              f"{total} stored")
    return 0


def _refresh_loop(args: argparse.Namespace, stop: threading.Event) -> None:
    """Sign what is due now and then every --refresh-every until `stop`; a failure is
    logged and retried (the responder signs on demand meanwhile)."""
    import logging

    from hsm import PinSource, open_key_manager

    log = logging.getLogger("mynacard.ocsp")
    km = open_key_manager(token_uri(args.token),
                          pin_source=PinSource.from_spec(args.pin_source))
    try:
        pregen, store = _pregenerator(Path(args.home), km, args.db, args.response_validity,
                                      args.refresh_before)
        try:
            while not stop.is_set():
                try:
                    report = pregen.run_once()
                    if report.signed:
                        log.info("pre-generated %d OCSP response(s)", report.signed)
                except Exception as exc:
                    log.warning("pre-generating OCSP responses failed (retrying): %s",
                                str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
                stop.wait(args.refresh_every.total_seconds())
        finally:
            store.close()
    finally:
        km.close()


def lean_worker(cfg: dict[str, Any]) -> None:
    """One responder process of `ocsp serve --pregenerated`: its own HSM session (for
    on-demand answers), read-only store and SO_REUSEPORT socket."""
    import asyncio
    import signal

    from pki.ocsp.lean import Server, reuse_port_socket, serve_socket
    from pki.serving import Limits, Tls

    responder, (km, store) = _ocsp_responder(Path(cfg["home"]), cfg["token"], cfg["pin_source"],
                                             cfg["db"], cfg["validity"], cfg["nonces"])
    tls = Tls(*(Path(p) if p else None for p in cfg["tls"]))
    authorizer = _ocsp_authorizer(cfg["db"], Path(cfg["home"]), cfg["open"])
    server = Server(responder, authorizer=authorizer, limits=Limits(**cfg["limits"]))
    sock = reuse_port_socket(cfg["host"], cfg["port"])

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await serve_socket(server, sock, tls=tls, stop=stop)

    try:
        try:
            import uvloop  # a declared dependency; the stdlib loop is the fallback

            uvloop.run(main())
        except ImportError:
            asyncio.run(main())
    finally:
        sock.close()
        store.close()
        km.close()
        if authorizer is not None:
            authorizer.close()


def _serve_pregenerated(args: argparse.Namespace, tls: Any, limits: Any) -> int:
    import multiprocessing
    import signal

    # open everything once here first, so configuration errors surface before any worker
    _responder, (km, store) = _ocsp_responder(Path(args.home), args.token, args.pin_source,
                                              args.db, args.validity, args.nonce)
    store.close()
    km.close()
    cfg = {"home": str(args.home), "token": args.token, "pin_source": args.pin_source,
           "db": str(args.db) if args.db else None, "validity": args.validity,
           "open": args.open, "limits": limits.__dict__, "nonces": args.nonce,
           "host": args.host, "port": args.port,
           "tls": [str(p) if p else None for p in (tls.cert, tls.key, tls.client_ca)]}
    stop = threading.Event()
    refresher = None
    if not args.no_refresh:
        refresher = threading.Thread(target=_refresh_loop, args=(args, stop),
                                     name="ocsp-pregenerate", daemon=True)
        refresher.start()
    scheme = "https" if tls.enabled else "http"
    print(f"OCSP responder (pre-generated responses) on {scheme}://{args.host}:{args.port}/ "
          f"({args.workers} process(es))", file=sys.stderr, flush=True)
    ctx = multiprocessing.get_context("spawn")  # no HSM session or DB handle crosses a fork
    workers = [ctx.Process(target=lean_worker, args=(cfg,), name=f"ocsp-{n}", daemon=True)
               for n in range(max(1, args.workers))]
    for w in workers:
        w.start()

    def stopping(signum: int, frame: Any) -> None:
        stop.set()

    previous = {sig: signal.signal(sig, stopping) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        while not stop.is_set() and all(w.is_alive() for w in workers):
            stop.wait(0.2)
    finally:
        stop.set()
        for w in workers:
            if w.is_alive() and w.pid is not None:
                os.kill(w.pid, signal.SIGTERM)
        for w in workers:
            w.join(15)
            if w.is_alive():
                w.kill()
        if refresher is not None:
            refresher.join(30)
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    failed = [w for w in workers if w.exitcode not in (0, -signal.SIGTERM)]
    if failed:
        print(f"mynacard: error: OCSP worker {failed[0].name} exited with {failed[0].exitcode}",
              file=sys.stderr)
        return 3
    return 0


def register(subparsers: Any) -> None:
    """Add `ocsp` and its commands."""
    ocsp = subparsers.add_parser("ocsp", help="OCSP responder")
    ocsp_sub = ocsp.add_subparsers(title="commands", metavar="COMMAND", required=True)
    p = ocsp_sub.add_parser("serve", help="run the OCSP responder over HTTP",
                            description="Answer RFC 6960 GET and POST requests for every "
                                        "hierarchy from the read-only store, signing with "
                                        "the delegated responder keys in the HSM. With "
                                        "--pregenerated, answer from responses signed ahead "
                                        "(`ocsp pregenerate`) without signing, and keep them "
                                        "fresh; a response signed for an older status is "
                                        "never served.")
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
    p.add_argument("--nonce", choices=("sign", "ignore"), default="sign",
                   help="a request with a nonce: sign an answer echoing it (default), or "
                        "ignore the nonce and serve the pre-generated answer (RFC 5019)")
    p.add_argument("--pregenerated", action="store_true",
                   help="serve pre-generated responses (no signature per request) with the "
                        "lean server, one process per --workers on one port (SO_REUSEPORT), "
                        "and keep them fresh in this process (see `ocsp pregenerate`)")
    p.add_argument("--refresh-every", type=_duration, default=dt.timedelta(seconds=30),
                   metavar="DURATION", help="with --pregenerated: sign due responses this "
                   "often (default 30s)")
    p.add_argument("--refresh-before", type=_duration, metavar="DURATION",
                   help="with --pregenerated: re-sign responses ending within DURATION "
                        "(default half of --response-validity)")
    p.add_argument("--response-validity", type=_duration, default=dt.timedelta(days=1),
                   metavar="DURATION",
                   help="with --pregenerated: validity of pre-generated responses (default 1d)")
    p.add_argument("--no-refresh", action="store_true",
                   help="with --pregenerated: only serve; another process (`ocsp pregenerate` "
                        "on a schedule, or one responder) keeps the responses fresh")
    from pki.serving import add_serving_options

    add_serving_options(p, client_ca=False)
    p.set_defaults(func=_guarded(_ocsp_serve), changes=False, roles="*", serves=True)

    p = ocsp_sub.add_parser(
        "pregenerate", help="sign the OCSP responses that are due into the store",
        description="Sign, with the delegated responder keys in the HSM, a response for "
                    "every unexpired certificate that has none, whose status changed since "
                    "its response was signed, or whose response ends within "
                    "--refresh-before; store them (DER, thisUpdate, nextUpdate) in the "
                    "certificate store, where `ocsp serve` answers from them without "
                    "signing. A response signed for an older status is never served.")
    _add_hsm_options(p)
    _add_db_option(p)
    p.add_argument("--validity", type=_duration, default=dt.timedelta(days=1),
                   metavar="DURATION", help="nextUpdate - thisUpdate (default 1d)")
    p.add_argument("--refresh-before", type=_duration, metavar="DURATION",
                   help="re-sign responses ending within DURATION (default half the validity)")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=_guarded(_ocsp_pregenerate), changes=True,
                   roles=("supervisor", "ca-officer"), audit_action="ocsp.pregenerate",
                   audit_detail=("validity", "refresh_before"))
