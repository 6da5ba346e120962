"""A lean HTTP/1.1 server for OCSP (`ocsp serve --pregenerated`): an asyncio protocol
that answers ``GET /<base64 request>`` and ``POST`` (``application/ocsp-request``) with
keep-alive and pipelining, and nothing else.

Why not the Starlette app of `pki.ocsp.server`: with pre-generated responses a request
costs one indexed read, and the ASGI layers (uvicorn's parser, Starlette's routing and
the guard's wrappers) then cost several times more than the answer. This server keeps
what the guard of `pki.serving` enforces - TLS, a header deadline, an idle timeout, a
cap on open connections, on header bytes (431) and on the body (413), bearer tokens of
registered relying parties (401, refusals counted per source and reason) with access by
kind - and answers with the same responder (`OcspResponder.respond`) and the same
caching headers. Requests are answered one at a time per process, in order (a lookup
does not wait on anything but the database); run one process per core
(``--workers N``: separate processes on one port with SO_REUSEPORT). Pre-generated
responses are held in memory per process (`pki.ocsp.memory`, keyed by the GET target or
the POST body, with the HTTP response rendered once per second), checked against the
store's status-change counter before every answer.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import email.utils
import hashlib
import logging
import socket
import ssl
import time
from collections.abc import Callable
from typing import Any

from pki.ocsp.memory import MemoryResponses
from pki.ocsp.responder import OcspResponder, OcspResult
from pki.serving import LINGER_BYTES, Limits, RefusalCounter, Tls, linger, log_refusals

log = logging.getLogger(__name__)

MAX_REQUEST = 16 * 1024
LIMITS = Limits(max_body=MAX_REQUEST)
_SWEEP = 0.5  # seconds between deadline checks
_UNAUTHORIZED = (b"401 Unauthorized: OCSP is served to registered relying parties only\n")


def _http_date(t: Any) -> str:
    return email.utils.format_datetime(t, usegmt=True)


def decode_get_target(target: bytes) -> bytes | None:
    """The DER request of a GET target (``/[prefix/]<base64>``, percent-encoded or not;
    the base64 text may itself contain '/')."""
    if b"%" in target:
        from urllib.parse import unquote_to_bytes

        target = unquote_to_bytes(target)
    parts = target.split(b"/")
    for i in range(1, len(parts)):
        candidate = b"/".join(parts[i:])
        if not candidate.startswith(b"M"):  # base64 of a DER SEQUENCE starts with 'M'
            continue
        try:
            return base64.b64decode(candidate + b"=" * (-len(candidate) % 4), validate=True)
        except (binascii.Error, ValueError):
            continue
    return None


class _Headers:
    """Rendered caching headers, memoised per (thisUpdate, nextUpdate, second)."""

    def __init__(self) -> None:
        self._cache: dict[tuple[Any, Any, int], bytes] = {}

    def caching(self, result: OcspResult, now: float) -> bytes:
        assert result.this_update is not None and result.next_update is not None
        key = (result.this_update, result.next_update, int(now))
        head = self._cache.get(key)
        if head is None:
            if len(self._cache) > 4096:
                self._cache.clear()
            max_age = max(0, int(result.next_update.timestamp() - now))
            head = (f"Cache-Control: max-age={max_age}, public, no-transform, must-revalidate"
                    f"\r\nLast-Modified: {_http_date(result.this_update)}"
                    f"\r\nExpires: {_http_date(result.next_update)}\r\n").encode()
            self._cache[key] = head
        return head


class Server:
    """State shared by the connections of one process: the responder, the authorizer,
    the limits, the open connections (for the connection cap and the deadline sweep)."""

    def __init__(self, responder: OcspResponder, *, authorizer: Any = None,
                 limits: Limits = LIMITS,
                 refusals: RefusalCounter | None = None,
                 clock: Callable[[], float] = time.time, memory: bool = True) -> None:
        self.responder, self.authorizer, self.limits = responder, authorizer, limits
        # pre-generated responses held per process (`pki.ocsp.memory`); False: SQL each time
        self.memory = MemoryResponses(responder) if memory else None
        self.refusals = refusals if refusals is not None else RefusalCounter()
        self.max_body = min(limits.max_body or MAX_REQUEST, MAX_REQUEST)
        self.connections: set[_Connection] = set()
        self.headers = _Headers()
        self.clock = clock
        self._scope_of = getattr(authorizer, "hierarchies_for", None)

    def protocol(self) -> _Connection:
        return _Connection(self)

    def answer(self, method: bytes, target: bytes, body: bytes, authorization: str | None,
               if_none_match: bytes | None, peer: str) -> tuple[bytes, bool]:
        """(the whole HTTP response, whether to close afterwards) for one request."""
        allowed = None
        if self.authorizer is not None:
            if self.authorizer.party_for(authorization) is None:
                self.refusals.count(peer, "no bearer token" if not authorization
                                    else "unknown token")
                return (b"HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Bearer "
                        b"realm=\"mynacard-ocsp\"\r\nCache-Control: no-store\r\nContent-Type:"
                        b" text/plain; charset=utf-8\r\nContent-Length: "
                        + str(len(_UNAUTHORIZED)).encode() + b"\r\n\r\n" + _UNAUTHORIZED, False)
            if self._scope_of is not None:
                allowed = self._scope_of(authorization)
        # memory: a GET is keyed by its target (decoded only on a miss), a POST by its
        # body (DER starts with 0x30, a target with '/': the two never meet)
        key = body if method == b"POST" else target
        memory = self.memory
        entry = memory.held(key, allowed) if memory is not None else None
        if entry is not None:
            if entry.second == int(self.clock()) and if_none_match is None:
                return entry.http, False  # rendered already this second
            result = entry.result
        else:
            der = body if method == b"POST" else decode_get_target(target) or b""
            if memory is not None and (method == b"POST" or target[:1] == b"/"):
                result, entry = memory.missed(key, der, allowed)
            else:
                result = self.responder.respond(der, hierarchies=allowed)
        if result.cacheable and result.this_update and result.next_update:
            now = self.clock()
            second = int(now)
            etag = entry.etag if entry is not None else None
            if etag is None:
                etag = b'"' + hashlib.sha256(result.der).hexdigest()[:32].encode() + b'"'
                if entry is not None:
                    entry.etag = etag
            head = self.headers.caching(result, now) + b"ETag: " + etag + b"\r\n"
            if method == b"GET" and if_none_match == etag:
                return b"HTTP/1.1 304 Not Modified\r\n" + head + b"Content-Length: 0\r\n\r\n", \
                    False
        else:
            head = b"Cache-Control: no-store\r\n"
        http = (b"HTTP/1.1 200 OK\r\nContent-Type: application/ocsp-response\r\n" + head
                + b"Content-Length: " + str(len(result.der)).encode() + b"\r\n\r\n"
                + result.der)
        if entry is not None:
            entry.http, entry.second = http, second
        return http, False

    async def sweep_forever(self) -> None:
        """Close connections past their deadline (header deadline or idle timeout)."""
        while True:
            await asyncio.sleep(_SWEEP)
            now = time.monotonic()
            for conn in [c for c in self.connections if c.deadline < now]:
                conn.expire()


class _Connection(asyncio.Protocol):
    def __init__(self, server: Server) -> None:
        self.server = server
        self.buf = b""
        self.transport: Any = None
        self.peer = "?"
        self.deadline = 0.0
        self.deadline_is_header = True  # False: idle between requests (keep-alive)
        self.lingering = -1  # >= 0: answered and closing; the input bytes dropped since

    # -- lifecycle ---------------------------------------------------------------------
    def connection_made(self, transport: Any) -> None:
        self.transport = transport
        peer = transport.get_extra_info("peername")
        self.peer = str(peer[0]) if peer else "?"
        s = self.server
        if len(s.connections) >= s.limits.max_connections:
            s.refusals.count(self.peer, "too many connections")
            transport.close()
            return
        s.connections.add(self)
        self.deadline = time.monotonic() + s.limits.header_timeout

    def connection_lost(self, exc: Exception | None) -> None:
        self.server.connections.discard(self)

    def expire(self) -> None:
        if self.deadline_is_header:
            self.server.refusals.count(self.peer, "header deadline")
            self.close_with(b"408 Request Timeout")
        else:
            self.transport.close()
        self.server.connections.discard(self)

    def close_with(self, status: bytes) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(b"HTTP/1.1 " + status + b"\r\nConnection: close\r\n"
                                 b"Content-Length: 0\r\n\r\n")
            # the client may still be sending: half-close and drop its input a while
            if linger(self.transport, asyncio.get_running_loop()):
                self.lingering = 0
        self.server.connections.discard(self)

    # -- parsing -----------------------------------------------------------------------
    def data_received(self, data: bytes) -> None:
        if self.lingering >= 0:
            self.lingering += len(data)
            if self.lingering > LINGER_BYTES:
                self.transport.close()
            return
        if not self.buf and not self.deadline_is_header:
            # first byte of the next request: its headers have header_timeout from now
            self.deadline = time.monotonic() + self.server.limits.header_timeout
            self.deadline_is_header = True
        self.buf += data
        out: list[bytes] = []
        close = out_done = False
        while self.buf and not close:
            end = self.buf.find(b"\r\n\r\n")
            if end < 0:
                if len(self.buf) > self.server.limits.max_header_bytes:
                    self._flush(out)
                    return self.close_with(b"431 Request Header Fields Too Large")
                break
            if end > self.server.limits.max_header_bytes:
                self._flush(out)
                return self.close_with(b"431 Request Header Fields Too Large")
            lines = self.buf[:end].split(b"\r\n")
            try:
                method, target, version = lines[0].split(b" ")
            except ValueError:
                self._flush(out)
                return self.close_with(b"400 Bad Request")
            length = 0
            authorization = if_none_match = None
            keep = version == b"HTTP/1.1"
            for line in lines[1:]:
                name, _, value = line.partition(b":")
                name = name.strip().lower()
                if name == b"content-length":
                    try:
                        length = int(value)
                    except ValueError:
                        self._flush(out)
                        return self.close_with(b"400 Bad Request")
                elif name == b"authorization":
                    authorization = value.strip().decode("latin-1")
                elif name == b"if-none-match":
                    if_none_match = value.strip()
                elif name == b"connection":  # HTTP/1.0 always closes (openssl ocsp)
                    keep = keep and value.strip().lower() != b"close"
                elif name == b"transfer-encoding":
                    self._flush(out)
                    return self.close_with(b"411 Length Required")
            if length < 0 or length > self.server.max_body:
                self._flush(out)
                self.server.refusals.count(self.peer, "body too large")
                return self.close_with(b"413 Content Too Large")
            if len(self.buf) < end + 4 + length:
                break  # the body is still coming (still under the header deadline)
            body = self.buf[end + 4:end + 4 + length]
            self.buf = self.buf[end + 4 + length:]
            if method not in (b"GET", b"POST"):
                self._flush(out)
                return self.close_with(b"405 Method Not Allowed")
            response, close = self.server.answer(method, target, body, authorization,
                                                 if_none_match, self.peer)
            out.append(response)
            out_done = True
            close = close or not keep
        self._flush(out)
        if close:
            self.transport.close()
            self.server.connections.discard(self)
        elif not self.buf:
            self.deadline = time.monotonic() + self.server.limits.keep_alive
            self.deadline_is_header = False
        elif out_done:
            # a pipelined request began: its own header deadline from now
            self.deadline = time.monotonic() + self.server.limits.header_timeout

    def _flush(self, out: list[bytes]) -> None:
        if out:
            self.transport.write(b"".join(out))
            out.clear()


def reuse_port_socket(host: str, port: int) -> socket.socket:
    """A listening socket with SO_REUSEPORT: several processes bind the same port and the
    kernel spreads new connections over them."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    sock.listen(1024)
    sock.setblocking(False)
    return sock


def ssl_context(tls: Tls) -> ssl.SSLContext | None:
    if not tls.enabled:
        return None
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(str(tls.cert), str(tls.key))
    return ctx


async def serve_socket(server: Server, sock: socket.socket, *, tls: Tls | None = None,
                       started: Callable[[], None] | None = None,
                       stop: asyncio.Event | None = None) -> None:
    """Serve on a listening socket until `stop` is set (or cancelled)."""
    loop = asyncio.get_running_loop()
    srv = await loop.create_server(server.protocol, sock=sock, ssl=ssl_context(tls or Tls()))
    sweeper = asyncio.create_task(server.sweep_forever())
    reporter = asyncio.create_task(server.refusals.report_forever(log_refusals(log, "OCSP")))
    if started is not None:
        started()
    try:
        if stop is None:
            await asyncio.Future()
        else:
            await stop.wait()
    finally:
        for task in (sweeper, reporter):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        srv.close()
        for conn in list(server.connections):
            conn.transport.close()
        await srv.wait_closed()
