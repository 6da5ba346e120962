"""OCSP over HTTP (RFC 6960 appendix A, RFC 5019): GET with the base64 request in the
path, POST with ``application/ocsp-request``. Nonce-less answers carry caching headers
(Cache-Control max-age until nextUpdate, ETag, Last-Modified, Expires)."""

from __future__ import annotations

import base64
import binascii
import email.utils
import urllib.parse
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from pki.ocsp.responder import OcspResponder, OcspResult

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
        max_age = max(0, int((result.next_update - now).total_seconds()))
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


def build_app(responder: OcspResponder) -> Starlette:
    """The ASGI application for one responder (any path, GET or POST)."""

    async def handle(request: Request) -> Response:
        if request.method == "POST":
            body = await request.body()
            der = body if len(body) <= MAX_REQUEST else b""
        else:
            der = _decode_get_path(request.scope.get("raw_path") or request.url.path.encode()) \
                or b""
        return _response(responder.respond(der), responder, request)

    return Starlette(routes=[
        Route("/", handle, methods=["GET", "POST"]),
        Route("/{path:path}", handle, methods=["GET", "POST"]),
    ])


def serve(responder: OcspResponder, *, host: str = "127.0.0.1", port: int = 8080) -> None:
    """Run the responder with uvicorn until interrupted."""
    import uvicorn

    uvicorn.run(build_app(responder), host=host, port=port, log_level="warning",
                access_log=False, server_header=False)
