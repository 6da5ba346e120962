"""`mynacard notices serve`: POST JSON Lines of notices from authenticated senders.

`POST /notices` with `Authorization: Bearer <token>` (see `mynacard notices sender add`)
and a JSON Lines body. The notices are stored (committed) before the 200 answer, which
lists the outcome counts and every line not accepted; the accepted ones are then applied
in the background. Refusals (401 no or unknown token, 413 body too large) are logged
(logger `mynacard.notices.http`) and written to the audit log, never with the token.
`GET /health` answers 200 without authentication.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import threading
from collections.abc import AsyncIterator, Callable
from datetime import datetime
from pathlib import Path
from typing import Any

from issuance.audit.log import AuditLog
from issuance.notices.certificates import CertificateGateway
from issuance.notices.intake import NoticeIntake
from issuance.notices.processor import NoticeProcessor
from issuance.notices.senders import authenticate
from issuance.storage import Database

log = logging.getLogger("mynacard.notices.http")
MAX_BODY = 32 * 1024 * 1024
Clock = Callable[[], datetime]


def create_app(db: Database, store: str | Path | None, *, clock: Clock,
               max_body: int = MAX_BODY) -> Any:
    """The Starlette app over an open issuance database; `store` None: store only."""
    from starlette.applications import Starlette
    from starlette.background import BackgroundTask
    from starlette.concurrency import run_in_threadpool
    from starlette.requests import Request
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    intake = NoticeIntake(db, clock=clock)
    audit = AuditLog(db, clock=clock)
    process_lock = threading.Lock()

    def refuse(request: Request, status: int, reason: str, sender: str | None = None) -> Any:
        peer = request.client.host if request.client else "?"
        log.warning("refused notices from %s (sender %s): %s", peer, sender or "unknown",
                    reason)
        audit.append(operator=f"http:{sender or 'anonymous'}", action="notices.http",
                     subject=peer, outcome="refused", detail={"status": status,
                                                              "reason": reason})
        headers = {"WWW-Authenticate": 'Bearer realm="mynacard-notices"'} if status == 401 \
            else None
        return JSONResponse({"error": reason}, status_code=status, headers=headers)

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
            except Exception:  # the notices stay accepted; the next run applies them
                log.exception("applying notices failed")
                close_processor()  # opened afresh next time (e.g. the store was away)

    def close_processor() -> None:
        while processor:
            processor.pop().certificates.close()

    @contextlib.asynccontextmanager
    async def lifespan(app: Any) -> AsyncIterator[None]:
        yield
        with process_lock:
            close_processor()

    async def post_notices(request: Request) -> Any:
        auth = request.headers.get("authorization", "")
        scheme, _, token = auth.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return await run_in_threadpool(refuse, request, 401, "no bearer token")
        sender = await run_in_threadpool(authenticate, db, token.strip())
        if sender is None:
            return await run_in_threadpool(refuse, request, 401, "unknown or disabled token")
        declared = request.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > max_body:
            return await run_in_threadpool(refuse, request, 413, "body too large", sender)
        body = bytearray()
        async for chunk in request.stream():
            body.extend(chunk)
            if len(body) > max_body:
                return await run_in_threadpool(refuse, request, 413, "body too large", sender)
        lines = bytes(body).split(b"\n")
        report = await run_in_threadpool(intake.accept_lines, lines)
        peer = request.client.host if request.client else "?"
        await run_in_threadpool(
            audit.append, operator=f"http:{sender}", action="notices.http", subject=peer,
            outcome="ok" if not report.counts["rejected"] else "partial",
            detail={**report.counts, "lines": report.lines})
        return JSONResponse({"sender": sender, **report.to_json()},
                            background=BackgroundTask(apply_waiting))

    async def health(request: Request) -> Any:
        return JSONResponse({"ok": True})

    return Starlette(routes=[Route("/notices", post_notices, methods=["POST"]),
                             Route("/health", health, methods=["GET"])], lifespan=lifespan)


def register_http(sub: Any, *, clock: Clock) -> None:
    """Add `notices serve` and `notices sender add|list`."""
    from issuance.audit.cli_support import add_common_options, guarded

    serve = sub.add_parser("serve", help="accept notices over HTTP from known senders")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8470)
    serve.add_argument("--no-process", action="store_true", help="store only, apply later")
    from issuance.notices.cli import _store_option

    _store_option(serve)
    add_common_options(serve, json_output=False)
    serve.set_defaults(func=guarded(lambda a: _serve(a, clock)), changes=True,
                       audit_action="notices.serve", audits_itself=True,
                       audit_detail=("host", "port"))

    sender = sub.add_parser("sender", help="senders allowed to POST notices")
    sender_sub = sender.add_subparsers(title="sender commands", metavar="COMMAND")
    add = sender_sub.add_parser("add", help="add a sender; prints its token once")
    add.add_argument("name", metavar="NAME")
    add_common_options(add, json_output=False)
    add.set_defaults(func=guarded(lambda a: _sender_add(a, clock)), changes=True,
                     audit_action="notices.sender.add", audits_itself=True, audit_subject="name")
    lst = sender_sub.add_parser("list", help="list senders (never their tokens)")
    add_common_options(lst)
    lst.set_defaults(func=guarded(lambda a: _sender_list(a, clock)), changes=False)


def _serve(args: argparse.Namespace, clock: Clock) -> int:
    import uvicorn

    from issuance.audit.cli_support import EXIT_OK, EXIT_USAGE, open_store, operator_or_none
    from issuance.notices.cli import store_location

    operator = operator_or_none(args)
    if operator is None:
        return EXIT_USAGE
    with open_store(args) as db:
        AuditLog(db, clock=clock).append(
            operator=operator, action="notices.serve", subject=f"{args.host}:{args.port}",
            outcome="ok")
        store = None if args.no_process else store_location(args)
        app = create_app(db, store, clock=clock)
        logging.basicConfig(level=logging.INFO)
        uvicorn.run(app, host=args.host, port=args.port, log_level="info")
    return EXIT_OK


def _sender_add(args: argparse.Namespace, clock: Clock) -> int:
    from issuance.audit.cli_support import (
        EXIT_OK,
        EXIT_REFUSED,
        EXIT_USAGE,
        fail,
        open_store,
        operator_or_none,
    )
    from issuance.notices.senders import SenderError, add_sender

    operator = operator_or_none(args)
    if operator is None:
        return EXIT_USAGE
    with open_store(args) as db:
        audit = AuditLog(db, clock=clock)
        try:
            token = add_sender(db, args.name)
        except SenderError as exc:
            audit.append(operator=operator, action="notices.sender.add", subject=args.name,
                         outcome="refused", detail={"reason": str(exc)})
            fail(str(exc))
            return EXIT_REFUSED
        audit.append(operator=operator, action="notices.sender.add", subject=args.name,
                     outcome="ok")
    print(token)
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
            print(f"{s['name']}\t{s['created_at']}" + ("\tdisabled" if s["disabled"] else ""))
    return EXIT_OK
