"""`mynacard notices serve`: POST JSON Lines of notices from authenticated senders.

`POST /notices` with `Authorization: Bearer <token>` (see `mynacard notices sender add`)
and a JSON Lines body; under mutual TLS (`--client-ca`) a client certificate registered
for a sender (`sender add --client-cert`) stands for that sender, with or without a
token (a token naming another sender is refused). Each sender may send the sources it was
added with (juki, fuhyo): a notice of another source is rejected for its line, with the
reason, and the rest stored. The notices are stored (committed) under the sender's name
before the 200 answer, which lists the outcome counts and every line not accepted.

Accepted notices are applied in the background after each POST, at start-up, and every
`apply_interval` seconds (so notices a crash or a database outage left accepted are not
waiting for the next POST). While the database is unreachable every request gets 503
with Retry-After and `GET /health` (no authentication) says so; the PostgreSQL
connection is opened afresh once the server is back, without a restart.

Refusals of unauthenticated clients (401) are counted per source address and reason and
written to the audit log (and logger `mynacard.notices.http`) once per window with the
count, never per request and never with the token; refusals of a known sender (413) are
written each time. The connection guard of `pki.serving` (TLS, header deadline, idle
timeout, connection and in-flight limits) stands in front.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import threading
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from issuance.audit.log import AuditLog
from issuance.notices.certificates import CertificateGateway
from issuance.notices.intake import NoticeIntake
from issuance.notices.processor import NoticeProcessor
from issuance.notices.senders import Sender, authenticate, sender_for_certificate
from issuance.notices.store_option import add_store_option, store_location
from issuance.storage import Database, StorageError
from pki.serving import RefusalCounter, client_certificate

log = logging.getLogger("mynacard.notices.http")
MAX_BODY = 32 * 1024 * 1024
# lines per POST: each line not accepted is kept (rejected, for review) and answered,
# so a body of tiny junk lines would cost far more memory and rows than its bytes
MAX_LINES = 10_000
APPLY_INTERVAL = 30.0  # seconds between runs of the processor when no POST comes
REFUSAL_WINDOW = 60.0  # seconds over which unauthenticated refusals are counted
RETRY_AFTER = "5"
Clock = Callable[[], datetime]


class _Refused(Exception):
    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


def create_app(db: Database, store: str | Path | None, *, clock: Clock,
               max_body: int = MAX_BODY, apply_interval: float = APPLY_INTERVAL,
               refusal_window: float = REFUSAL_WINDOW, max_lines: int = MAX_LINES) -> Any:
    """The Starlette app over an open issuance database; `store` None: store only.
    `app.state.refusals` is its refusal counter (hand it to `pki.serving.uvicorn_config`
    so connection-level refusals, e.g. header timeouts, are counted with the rest)."""
    from starlette.applications import Starlette
    from starlette.background import BackgroundTask
    from starlette.concurrency import run_in_threadpool
    from starlette.requests import Request
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    audit = AuditLog(db, clock=clock)
    refusals = RefusalCounter(refusal_window)
    process_lock = threading.Lock()
    intakes: dict[Sender, NoticeIntake] = {}

    def intake_for(sender: Sender) -> NoticeIntake:
        if sender not in intakes:
            intakes[sender] = NoticeIntake(db, clock=clock, sender=sender.name,
                                           sources=sender.sources)
        return intakes[sender]

    def peer_of(request: Request) -> str:
        return request.client.host if request.client else "?"

    def report_refusals(peer: str, reason: str, count: int, since: float) -> None:
        """One audit entry per window, address and reason (RefusalCounter)."""
        log.warning("refused %d request(s) from %s: %s", count, peer, reason)
        audit.append(operator="http:anonymous", action="notices.http", subject=peer,
                     outcome="refused", detail={
                         "status": _STATUS.get(reason, 401),
                         "reason": reason, "count": count, "window_s": refusal_window,
                         "since": datetime.fromtimestamp(since, UTC).isoformat()})

    def refuse_sender(request: Request, status: int, reason: str, sender: str) -> Any:
        """A refusal of an authenticated sender: logged and audited each time."""
        peer = peer_of(request)
        log.warning("refused notices from %s (sender %s): %s", peer, sender, reason)
        audit.append(operator=f"http:{sender}", action="notices.http", subject=peer,
                     outcome="refused", detail={"status": status, "reason": reason})
        return JSONResponse({"error": reason}, status_code=status)

    def unavailable(request: Request) -> Any:
        """503 while the database is away; counted like a refusal, as anyone can cause it
        (kept until the audit log can be written again)."""
        refusals.count(peer_of(request), "database unavailable")
        return JSONResponse({"error": "database unavailable, retry later"}, status_code=503,
                            headers={"Retry-After": RETRY_AFTER})

    # opened on first use and kept for the server's life (under process_lock): a POST
    # then costs no store connection and no migration check
    processor: list[NoticeProcessor] = []

    def apply_waiting() -> None:
        if store is None:
            return
        with process_lock:
            try:
                if not processor:
                    processor.append(NoticeProcessor(db, CertificateGateway.open(store),
                                                     clock=clock))
                processor[0].process()
            except Exception as exc:  # the notices stay accepted; the next run applies them
                log.warning("applying notices failed (they stay accepted): %s",
                            str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
                close_processor()  # opened afresh next time (e.g. the store was away)

    def close_processor() -> None:
        while processor:
            with contextlib.suppress(Exception):
                processor.pop().certificates.close()

    async def apply_forever() -> None:
        """At start-up, then every `apply_interval` seconds."""
        while True:
            await run_in_threadpool(apply_waiting)
            await asyncio.sleep(apply_interval)

    @contextlib.asynccontextmanager
    async def lifespan(app: Any) -> AsyncIterator[None]:
        tasks = [asyncio.create_task(refusals.report_forever(report_refusals))]
        if store is not None:
            tasks.append(asyncio.create_task(apply_forever()))
        try:
            yield
        finally:
            for task in tasks:
                task.cancel()
            for task in tasks:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
            with process_lock:
                close_processor()

    def identify(request: Request) -> Sender:
        """The sender of this request, from its client certificate and/or bearer token."""
        der = client_certificate(request.scope)
        by_cert = sender_for_certificate(db, der) if der is not None else None
        auth = request.headers.get("authorization")
        if auth is None and by_cert is not None:
            return by_cert
        scheme, _, token = (auth or "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise _Refused(401, "no bearer token")
        by_token = authenticate(db, token.strip())
        if by_token is None:
            raise _Refused(401, "unknown or disabled token")
        if by_cert is not None and by_cert.name != by_token.name:
            raise _Refused(401, "token and client certificate of different senders")
        return by_token

    async def post_notices(request: Request) -> Any:
        try:
            sender = await run_in_threadpool(identify, request)
        except _Refused as exc:
            refusals.count(peer_of(request), exc.reason)
            return JSONResponse({"error": exc.reason}, status_code=exc.status,
                                headers={"WWW-Authenticate": 'Bearer realm="mynacard-notices"'})
        except StorageError:
            return unavailable(request)
        try:
            declared = request.headers.get("content-length")
            if declared is not None and declared.isdigit() and int(declared) > max_body:
                return await run_in_threadpool(refuse_sender, request, 413, "body too large",
                                               sender.name)
            body = bytearray()
            async for chunk in request.stream():
                body.extend(chunk)
                if len(body) > max_body:
                    return await run_in_threadpool(refuse_sender, request, 413,
                                                   "body too large", sender.name)
            if body.count(b"\n") + (not body.endswith(b"\n")) > max_lines:
                return await run_in_threadpool(
                    refuse_sender, request, 413,
                    f"too many lines: at most {max_lines} per request", sender.name)
            lines = bytes(body).split(b"\n")
            intake = await run_in_threadpool(intake_for, sender)
            report = await run_in_threadpool(intake.accept_lines, lines)
            await run_in_threadpool(
                audit.append, operator=f"http:{sender.name}", action="notices.http",
                subject=peer_of(request),
                outcome="ok" if not report.counts["rejected"] else "partial",
                detail={**report.counts, "lines": report.lines})
        except StorageError:
            return unavailable(request)
        return JSONResponse({"sender": sender.name, **report.to_json()},
                            background=BackgroundTask(apply_waiting))

    def database_state() -> bool:
        try:
            with db.transaction() as tx:
                tx.query_one("SELECT 1 AS one")
        except StorageError:
            return False
        return True

    async def health(request: Request) -> Any:
        up = await run_in_threadpool(database_state)
        return JSONResponse({"ok": up, "database": "up" if up else "down"},
                            status_code=200 if up else 503,
                            headers=None if up else {"Retry-After": RETRY_AFTER})

    app = Starlette(routes=[Route("/notices", post_notices, methods=["POST"]),
                            Route("/health", health, methods=["GET"])], lifespan=lifespan)
    app.state.refusals = refusals
    return app


# connection-level refusals counted by the guard (pki.serving); the others are 401
_STATUS = {"header timeout": 408, "headers too large": 431, "too many connections": 503,
           "database unavailable": 503}


def register_http(sub: Any, *, clock: Clock) -> None:
    """Add `notices serve` and `notices sender add|disable|list`."""
    from issuance.audit.cli_support import add_common_options, guarded

    serve = sub.add_parser("serve", help="accept notices over HTTP from known senders")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8470)
    serve.add_argument("--no-process", action="store_true", help="store only, apply later")
    serve.add_argument("--apply-every", type=float, default=APPLY_INTERVAL, metavar="SECONDS",
                       help="apply waiting notices at start-up and this often, besides after "
                            f"each POST (default {APPLY_INTERVAL:g})")
    from pki.serving import add_serving_options

    add_store_option(serve)
    add_serving_options(serve, client_ca=True)
    add_common_options(serve, json_output=False)
    serve.set_defaults(func=guarded(lambda a: _serve(a, clock)), changes=True,
                       roles=("supervisor",),
                       audit_action="notices.serve", audits_itself=True,
                       audit_detail=("host", "port"), serves=True)

    sender = sub.add_parser("sender", help="senders allowed to POST notices")
    sender_sub = sender.add_subparsers(title="sender commands", metavar="COMMAND")
    add = sender_sub.add_parser("add", help="add a sender; prints its token once")
    add.add_argument("name", metavar="NAME")
    add.add_argument("--source", action="append", choices=["juki", "fuhyo"], required=True,
                     dest="sources", metavar="SOURCE",
                     help="a source this sender may send (juki, fuhyo); repeatable")
    add.add_argument("--client-cert", type=Path, metavar="PEM",
                     help="mutual TLS: a client presenting this certificate is this sender")
    add_common_options(add, json_output=False)
    add.set_defaults(func=guarded(lambda a: _sender_add(a, clock)), changes=True,
                     roles=("supervisor",),
                     audit_action="notices.sender.add", audits_itself=True, audit_subject="name")
    off = sender_sub.add_parser(
        "disable", help="refuse a sender from now on (a leaked token, a retired gateway)",
        description="Refuse NAME's token and client certificate from its next request on; "
                    "the notices it sent stay. There is no enabling again: add the gateway "
                    "under a new name, which gets a new token.")
    off.add_argument("name", metavar="NAME")
    add_common_options(off, json_output=False)
    off.set_defaults(func=guarded(lambda a: _sender_disable(a, clock)), changes=True,
                     roles=("supervisor",), audit_action="notices.sender.disable",
                     audits_itself=True, audit_subject="name")
    lst = sender_sub.add_parser("list", help="list senders (never their tokens)")
    add_common_options(lst)
    lst.set_defaults(func=guarded(lambda a: _sender_list(a, clock)), changes=False, roles="*")


def _serve(args: argparse.Namespace, clock: Clock) -> int:
    from issuance.audit.cli_support import (
        EXIT_OK,
        EXIT_USAGE,
        fail,
        open_store,
        operator_or_none,
    )
    from pki.serving import ServingError, run, serving_from_args, uvicorn_config

    try:
        tls, limits = serving_from_args(args, tokens=True)
    except ServingError as exc:
        fail(str(exc))
        return EXIT_USAGE
    operator = operator_or_none(args)
    if operator is None:
        return EXIT_USAGE
    with open_store(args) as db:
        AuditLog(db, clock=clock).append(
            operator=operator, action="notices.serve", subject=f"{args.host}:{args.port}",
            outcome="ok", detail={"tls": tls.enabled, "mutual_tls": tls.client_ca is not None})
        store = None if args.no_process else store_location(args)
        app = create_app(db, store, clock=clock, apply_interval=args.apply_every)
        logging.basicConfig(level=logging.INFO)
        run(uvicorn_config(app, host=args.host, port=args.port, tls=tls,
                           limits=limits, refusals=app.state.refusals,
                           log_level="info"))
    return EXIT_OK


def _sender_add(args: argparse.Namespace, clock: Clock) -> int:
    from issuance.notices.senders import add_sender

    def add(db: Database) -> tuple[dict[str, Any], str]:
        der = _certificate_der(args.client_cert) if args.client_cert else None
        token = add_sender(db, args.name, sources=args.sources, cert_der=der)
        return ({"sources": sorted(args.sources), "client_certificate": bool(args.client_cert)},
                token)

    return _sender_change(args, clock, "notices.sender.add", add)


def _sender_disable(args: argparse.Namespace, clock: Clock) -> int:
    from issuance.notices.senders import disable_sender

    def disable(db: Database) -> tuple[dict[str, Any], str]:
        changed = disable_sender(db, args.name)
        return ({"was_enabled": changed},
                f"sender {args.name} disabled" + ("" if changed else " (already)"))

    return _sender_change(args, clock, "notices.sender.disable", disable)


def _sender_change(args: argparse.Namespace, clock: Clock, action: str,
                   change: Callable[[Database], tuple[dict[str, Any], str]]) -> int:
    """One change to the senders by `args`' operator: `change(db)` gives the audit detail
    and what to print; a SenderError is refused (exit 1), both recorded under `action`."""
    from issuance.audit.cli_support import (
        EXIT_OK,
        EXIT_REFUSED,
        EXIT_USAGE,
        fail,
        open_store,
        operator_or_none,
    )
    from issuance.notices.senders import SenderError

    operator = operator_or_none(args)
    if operator is None:
        return EXIT_USAGE
    with open_store(args) as db:
        audit = AuditLog(db, clock=clock)
        try:
            detail, shown = change(db)
        except SenderError as exc:
            audit.append(operator=operator, action=action, subject=args.name,
                         outcome="refused", detail={"reason": str(exc)})
            fail(str(exc))
            return EXIT_REFUSED
        audit.append(operator=operator, action=action, subject=args.name, outcome="ok",
                     detail=detail)
    print(shown)
    return EXIT_OK


def _sender_list(args: argparse.Namespace, clock: Clock) -> int:
    """Read-only: needs no operator and records nothing."""
    from issuance.audit.cli_support import EXIT_OK, emit_json, open_store
    from issuance.notices.senders import list_senders

    with open_store(args) as db:
        senders = list_senders(db)
    if args.json:
        emit_json(senders)
    else:
        for s in senders:
            print(f"{s['name']}\t{','.join(s['sources'])}\t{s['created_at']}"  # type: ignore[arg-type]
                  + ("\tdisabled" if s["disabled"] else ""))
    return EXIT_OK


def _certificate_der(path: Path) -> bytes:
    """The DER of a PEM (or DER) certificate file, for `sender add --client-cert`."""
    from cryptography import x509
    from cryptography.hazmat.primitives.serialization import Encoding

    from issuance.notices.senders import SenderError

    try:
        data = path.read_bytes()
    except OSError as exc:
        raise SenderError(f"{path}: {exc.strerror or exc}") from None
    try:
        cert = x509.load_pem_x509_certificate(data) if b"-----BEGIN" in data \
            else x509.load_der_x509_certificate(data)
    except ValueError:
        raise SenderError(f"{path}: not a certificate (PEM or DER)") from None
    return cert.public_bytes(Encoding.DER)
