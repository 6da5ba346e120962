"""OCSP over HTTP (RFC 6960 appendix A, RFC 5019): GET with the base64 request in the
path, POST with ``application/ocsp-request``. Nonce-less answers carry caching headers
(Cache-Control max-age until nextUpdate, an hour at most; ETag, Last-Modified, Expires).

With an `authorizer` (see `pki.relying_parties.registry.TokenAuthorizer`), only
registered relying parties are answered (jpki-rules 5.1): a request must carry
``Authorization: Bearer <token>`` of a party in the registry; anything else gets a plain
HTTP 401, not an OCSP response. Refusals are counted per source address and reason and
logged once per window with the count (`pki.serving.RefusalCounter`), never with the
token. Without one the responder answers anyone (tests, development: ``ocsp serve
--open``). An authorizer with ``hierarchies_for`` also limits each party to its kind's
certificates (a user verifier: user authentication; a signature verifier: signing; a
platform operator: both); a question about the others gets OCSP ``unauthorized``.
`serve` puts the connection guard of `pki.serving` in front (TLS, header
deadline, idle timeout, connection, in-flight and body limits: a body over 16 KiB gets
413)."""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import email.utils
import logging
import urllib.parse
from collections.abc import AsyncIterator
from typing import Any, Protocol

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from pki.ocsp.responder import HTTP_MAX_AGE, OcspResponder, OcspResult
from pki.serving import Limits, RefusalCounter, Tls, log_refusals, run, uvicorn_config

log = logging.getLogger(__name__)

MAX_REQUEST = 16 * 1024
CONTENT_TYPE = "application/ocsp-response"


def _http_date(t: Any) -> str:
    return email.utils.format_datetime(t, usegmt=True)


def _decode_get_path(raw_path: bytes) -> bytes | None:
    """The DER request from a GET path; the base64 text may itself contain '/'."""
    path = urllib.parse.unquote(raw_path.decode("latin-1"))
    parts = path.split("/")
    for i in range(1, len(parts)):
        candidate = "/".join(parts[i:])
        if not candidate.startswith("M"):  # base64 of a DER SEQUENCE starts with 'M'
            continue
        try:
            return base64.b64decode(candidate + "=" * (-len(candidate) % 4), validate=True)
        except (binascii.Error, ValueError):
            continue
    return None


def _response(result: OcspResult, responder: OcspResponder, request: Request) -> Response:
    headers = {}
    if result.cacheable and result.this_update and result.next_update:
        now = responder._clock()
        max_age = max(0, min(HTTP_MAX_AGE, int((result.next_update - now).total_seconds())))
        etag = result.etag
        headers = {
            "Cache-Control": f"max-age={max_age}, public, no-transform, must-revalidate",
            "ETag": etag,
            "Last-Modified": _http_date(result.this_update),
            "Expires": _http_date(result.next_update),
        }
        if request.method == "GET" and request.headers.get("if-none-match") == etag:
            return Response(status_code=304, headers=headers)
    else:
        headers = {"Cache-Control": "no-store"}
    return Response(result.der, media_type=CONTENT_TYPE, headers=headers)


class Authorizer(Protocol):
    def party_for(self, authorization: str | None) -> str | None: ...


_UNAUTHORIZED_HEADERS = {"WWW-Authenticate": 'Bearer realm="mynacard-ocsp"',
                         "Cache-Control": "no-store"}


def build_app(responder: OcspResponder, *, authorizer: Authorizer | None = None,
              refusals: RefusalCounter | None = None) -> Starlette:
    """The ASGI application for one responder (any path, GET or POST). With `authorizer`
    (`party_for(Authorization header) -> name or None`) unregistered callers get 401,
    counted in `refusals` (logged once per window by the app while it runs)."""
    counter = refusals if refusals is not None else RefusalCounter()

    @contextlib.asynccontextmanager
    async def lifespan(app: Any) -> AsyncIterator[None]:
        task = asyncio.create_task(counter.report_forever(log_refusals(log, "OCSP")))
        try:
            yield
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def handle(request: Request) -> Response:
        allowed = None
        if authorizer is not None:
            header = request.headers.get("authorization")
            if authorizer.party_for(header) is None:
                client = request.client.host if request.client else "?"
                counter.count(client, "no bearer token" if not header else "unknown token")
                return PlainTextResponse("401 Unauthorized: OCSP is served to registered "
                                         "relying parties only\n", status_code=401,
                                         headers=_UNAUTHORIZED_HEADERS)
            scope_of = getattr(authorizer, "hierarchies_for", None)
            if scope_of is not None:  # access by kind (a party of one kind, one hierarchy)
                allowed = scope_of(header)
        if request.method == "POST":
            body = await request.body()  # at most MAX_REQUEST: the guard answers 413 beyond
            der = body if len(body) <= MAX_REQUEST else b""
        else:
            der = _decode_get_path(request.scope.get("raw_path") or request.url.path.encode()) \
                or b""
        return _response(responder.respond(der, hierarchies=allowed), responder, request)

    return Starlette(routes=[
        Route("/", handle, methods=["GET", "POST"]),
        Route("/{path:path}", handle, methods=["GET", "POST"]),
    ], lifespan=lifespan)


LIMITS = Limits(max_body=MAX_REQUEST)


def serve(responder: OcspResponder, *, host: str = "127.0.0.1", port: int = 8080,
          authorizer: Authorizer | None = None, tls: Tls | None = None,
          limits: Limits = LIMITS) -> None:
    """Run the responder with uvicorn, behind the connection guard, until interrupted."""
    refusals = RefusalCounter()
    run(uvicorn_config(build_app(responder, authorizer=authorizer, refusals=refusals),
                       host=host, port=port, tls=tls or Tls(), limits=limits, refusals=refusals,
                       access_log=False, server_header=False))
