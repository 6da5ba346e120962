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
store's status-change counter.

The check is shared: the requests parsed in one event-loop iteration (from every
connection) are queued, and one callback scheduled with ``call_soon`` runs in the next
iteration, reads the counter once and answers them all (`Server.flush`). Every request
of the batch was received before that read began, so a revocation committed before a
request arrived is seen by its answer; on PostgreSQL this turns one round trip per
request into one per batch (under load, many requests).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import email.utils
import hashlib
import logging
import re
import socket
import ssl
import time
from collections.abc import Callable
from typing import Any

from pki.ocsp.memory import MemoryResponses
from pki.ocsp.responder import HTTP_MAX_AGE, OcspResponder, OcspResult
from pki.serving import Limits, Linger, RefusalCounter, Tls, linger, log_refusals

log = logging.getLogger(__name__)

MAX_REQUEST = 16 * 1024
LIMITS = Limits(max_body=MAX_REQUEST)
_SWEEP = 0.5  # seconds between deadline checks
_PARSED_BYTES, _PARSED_MAX = 2048, 4096  # requests whose parse is kept: size, number
# the header names the parser acts on: a header block without any of them (anywhere, in
# any case) is not split into lines at all
_NAMES_READ = re.compile(rb"(?i)content-length|authorization|if-none-match|connection"
                         rb"|transfer-encoding")
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
            max_age = max(0, min(HTTP_MAX_AGE, int(result.next_update.timestamp() - now)))
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
        # whole requests (as read) and their parse, for requests sent again byte for byte
        self.parsed: dict[bytes, tuple[bytes, bytes, bytes, str | None, bytes | None]] = {}
        self.pending: list[_Connection] = []  # connections with requests to answer
        self._flush_scheduled = False
        self._loop: asyncio.AbstractEventLoop | None = None

    def protocol(self) -> _Connection:
        return _Connection(self)

    def answer(self, method: bytes, target: bytes, body: bytes, authorization: str | None,
               if_none_match: bytes | None, peer: str) -> tuple[bytes, bool]:
        """(the whole HTTP response, whether to close afterwards) for one request, with a
        change check of its own."""
        if self.memory is not None:
            self.memory.check()
        return self.answer_checked(method, target, body, authorization, if_none_match, peer,
                                   self.clock()), False

    def queue(self, conn: _Connection) -> None:
        """`conn` has parsed requests to answer: answer them in the next loop iteration,
        with every other connection's that arrive before it (`flush`)."""
        self.pending.append(conn)
        if not self._flush_scheduled:
            self._flush_scheduled = True
            loop = self._loop
            if loop is None:
                loop = self._loop = asyncio.get_running_loop()
            loop.call_soon(self.flush)

    def flush(self) -> None:
        """Answer every queued request after one change check: the check begins after
        all of them arrived (they were parsed in callbacks that ran before this one), so
        a revocation committed before any of them arrived is seen by all."""
        self._flush_scheduled = False
        pending, self.pending = self.pending, []
        if self.memory is not None:
            self.memory.check()
        now, deadline = self.clock(), time.monotonic()
        for conn in pending:
            try:
                conn.answer_queued(now, deadline)
            except Exception:  # one connection's failure must not strand the batch
                log.exception("OCSP: answering failed; closing the connection")
                conn.transport.close()
                self.connections.discard(conn)

    def answer_checked(self, method: bytes, target: bytes, body: bytes,
                       authorization: str | None, if_none_match: bytes | None,
                       peer: str, now: float) -> bytes:
        """As `answer`, relying on a change check made after the request arrived; `now`
        (`clock`, taken once per batch) dates the caching headers."""
        allowed = None
        if self.authorizer is not None:
            if self.authorizer.party_for(authorization) is None:
                self.refusals.count(peer, "no bearer token" if not authorization
                                    else "unknown token")
                return (b"HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Bearer "
                        b"realm=\"mynacard-ocsp\"\r\nCache-Control: no-store\r\nContent-Type:"
                        b" text/plain; charset=utf-8\r\nContent-Length: "
                        + str(len(_UNAUTHORIZED)).encode() + b"\r\n\r\n" + _UNAUTHORIZED)
            if self._scope_of is not None:
                allowed = self._scope_of(authorization)
        # memory: a GET is keyed by its target (decoded only on a miss), a POST by its
        # body (DER starts with 0x30, a target with '/': the two never meet)
        key = body if method == b"POST" else target
        memory = self.memory
        entry = memory.peek(key, allowed) if memory is not None else None
        if entry is not None:
            if entry.second == int(now) and if_none_match is None:
                return entry.http  # rendered already this second
            result = entry.result
        else:
            der = body if method == b"POST" else decode_get_target(target) or b""
            if memory is not None and (method == b"POST" or target[:1] == b"/"):
                result, entry = memory.missed(key, der, allowed)
            else:
                result = self.responder.respond(der, hierarchies=allowed)
        second = int(now)
        if result.cacheable and result.this_update and result.next_update:
            etag = entry.etag if entry is not None else None
            if etag is None:
                etag = b'"' + hashlib.sha256(result.der).hexdigest()[:32].encode() + b'"'
                if entry is not None:
                    entry.etag = etag
            head = self.headers.caching(result, now) + b"ETag: " + etag + b"\r\n"
            if method == b"GET" and if_none_match == etag:
                return b"HTTP/1.1 304 Not Modified\r\n" + head + b"Content-Length: 0\r\n\r\n"
        else:
            head = b"Cache-Control: no-store\r\n"
        http = (b"HTTP/1.1 200 OK\r\nContent-Type: application/ocsp-response\r\n" + head
                + b"Content-Length: " + str(len(result.der)).encode() + b"\r\n\r\n"
                + result.der)
        if entry is not None:
            entry.http, entry.second = http, second
        return http

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
        self.lingering: Linger | None = None  # answered and closing: input is dropped
        # parsed requests waiting for the next change check (`Server.flush`)
        self.requests: list[tuple[bytes, bytes, bytes, str | None, bytes | None]] = []
        self.refuse: bytes | None = None  # a status to close with once those are answered
        self.last = False  # the last request queued asked to close (or was HTTP/1.0)

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
            self.lingering = linger(self.transport, asyncio.get_running_loop())
        self.server.connections.discard(self)

    # -- parsing -----------------------------------------------------------------------
    def data_received(self, data: bytes) -> None:
        if self.lingering is not None:
            self.lingering.drop(len(data))
            return
        if self.refuse is not None or self.last:
            return  # answering what came before, then closing: the rest is not read
        if not self.buf and not self.deadline_is_header:
            # first byte of the next request: its headers have header_timeout from now
            self.deadline = time.monotonic() + self.server.limits.header_timeout
            self.deadline_is_header = True
        queue = self.requests
        queued = len(queue)
        if not self.buf:
            # the same bytes as a request parsed before (a client asks the same way every
            # time): its parse again, without parsing
            request = self.server.parsed.get(data)
            if request is not None:
                queue.append(request)
                if not queued:
                    self.server.queue(self)
                return
        fresh = not self.buf
        buf = self.buf + data if self.buf else data
        limits = self.server.limits
        while buf:
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                if len(buf) > limits.max_header_bytes:
                    self.refuse = b"431 Request Header Fields Too Large"
                break
            if end > limits.max_header_bytes:
                self.refuse = b"431 Request Header Fields Too Large"
                break
            head = buf[:end]
            eol = head.find(b"\r\n")
            line = head if eol < 0 else head[:eol]
            try:
                method, target, version = line.split(b" ")
            except ValueError:
                self.refuse = b"400 Bad Request"
                break
            length = 0
            authorization = if_none_match = None
            keep = version == b"HTTP/1.1"
            if eol >= 0 and _NAMES_READ.search(head, eol) is not None:
                # (most requests carry none of these: Host, User-Agent, Accept only)
                for line in head[eol + 2:].split(b"\r\n"):
                    name, _, value = line.partition(b":")
                    name = name.strip().lower()
                    if name == b"content-length":
                        try:
                            length = int(value)
                        except ValueError:
                            self.refuse = b"400 Bad Request"
                            break
                    elif name == b"authorization":
                        authorization = value.strip().decode("latin-1")
                    elif name == b"if-none-match":
                        if_none_match = value.strip()
                    elif name == b"connection":  # HTTP/1.0 always closes (openssl ocsp)
                        keep = keep and value.strip().lower() != b"close"
                    elif name == b"transfer-encoding":
                        self.refuse = b"411 Length Required"
                        break
                if self.refuse is not None:
                    break
            if length < 0 or length > self.server.max_body:
                self.server.refusals.count(self.peer, "body too large")
                self.refuse = b"413 Content Too Large"
                break
            if length:
                if len(buf) < end + 4 + length:
                    break  # the body is still coming (still under the header deadline)
                body = buf[end + 4:end + 4 + length]
            else:
                body = b""
            buf = buf[end + 4 + length:]
            if method != b"GET" and method != b"POST":
                self.refuse = b"405 Method Not Allowed"
                break
            queue.append((method, target, body, authorization, if_none_match))
            if not keep:
                self.last = True  # answered, then closed: what follows is not read
                break
        self.buf = buf
        if fresh and not buf and len(queue) == queued + 1 and self.refuse is None \
                and not self.last and len(data) <= _PARSED_BYTES:
            parsed = self.server.parsed
            if len(parsed) >= _PARSED_MAX:
                parsed.clear()
            parsed[data] = queue[-1]
        if self.refuse is not None and not queue:
            self.close_with(self.refuse)
        elif queue and not queued:
            self.server.queue(self)  # answered after the next change check (`flush`)

    def answer_queued(self, now: float, deadline: float) -> None:
        """Answer the parsed requests (`Server.flush` made the change check after they
        arrived), in order, in one write; then close or wait for the next request (from
        `deadline`, the flush's monotonic time)."""
        requests, self.requests = self.requests, []
        transport = self.transport
        if transport.is_closing() or self.lingering is not None:
            return  # expired or closed by the client meanwhile
        answer, peer = self.server.answer_checked, self.peer
        if len(requests) == 1:
            transport.write(answer(*requests[0], peer, now))
        else:
            transport.write(b"".join([answer(*r, peer, now) for r in requests]))
        if self.refuse is not None:
            self.close_with(self.refuse)
        elif self.last:
            transport.close()
            self.server.connections.discard(self)
        elif not self.buf:
            self.deadline = deadline + self.server.limits.keep_alive
            self.deadline_is_header = False
        else:
            # a pipelined request began: its own header deadline from now
            self.deadline = deadline + self.server.limits.header_timeout


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
