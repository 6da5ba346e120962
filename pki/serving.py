"""Serving HTTP to a hostile network: what `ocsp serve` and `notices serve` share.

- TLS, optionally mutual (`--client-ca`: a client certificate is required and verified
  against that CA during the handshake; the verified certificate reaches the app as the
  ASGI TLS extension, `scope["extensions"]["tls"]["client_cert_chain"]`, PEM).
- Bearer tokens never travel in clear: a server that checks tokens refuses to start on
  plain HTTP unless `--insecure-http` is given (development only).
- A per-connection header deadline: a connection whose request line and headers are not
  complete `header_timeout` seconds after it opened (or after the first byte of its next
  request) is closed (408). This is what keeps slow-header clients (slowloris) from
  holding slots: stalled connections do not count against the in-flight limit, which
  counts requests whose headers arrived, so registered clients keep being answered while
  the stalled ones wait for their deadline.
- An idle (keep-alive) timeout, a cap on open connections (beyond it a new connection is
  closed at once), a cap on header bytes (431), on requests in flight (503 with
  Retry-After) and on the body (413, declared or streamed).
- A lingering close (RFC 9112 §9.6): a connection the server closes while the client may
  still be sending (a 413 in mid-body, a 408, a 431) is half-closed first and its input
  read and dropped for up to `LINGER_SECONDS` (at most `LINGER_BYTES`), so the client
  reads the answer instead of a TCP reset that would destroy it.
- `RefusalCounter`: refusals of unauthenticated clients counted per source address and
  reason and reported once per window with the count, not once per request, so a
  flood cannot flood the log that records it.

uvicorn's own `limit_concurrency` counts connections as well as requests, so stalled
connections would turn registered clients away with 503; it is left unset and the limits
here are used instead.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import ssl
import threading
import time
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pki.errors import PkiError

log = logging.getLogger("mynacard.serving")

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
Asgi = Callable[[Scope, Receive, Send], Awaitable[None]]


class ServingError(PkiError):
    """A server cannot start as asked (plain HTTP with tokens, half a TLS setting)."""


@dataclass(frozen=True)
class Limits:
    header_timeout: float = 10.0  # seconds for a request line and headers
    keep_alive: float = 5.0  # idle seconds between requests on one connection
    max_connections: int = 1000  # open connections (stalled ones included)
    max_in_flight: int = 64  # requests whose headers arrived and are being answered
    max_header_bytes: int = 64 * 1024
    max_body: int | None = None  # bytes; None: the app checks the body itself


@dataclass(frozen=True)
class Tls:
    cert: Path | None = None
    key: Path | None = None
    client_ca: Path | None = None

    @property
    def enabled(self) -> bool:
        return self.cert is not None


def add_serving_options(parser: argparse.ArgumentParser, *, client_ca: bool,
                        defaults: Limits = Limits()) -> None:
    """--tls-cert/--tls-key[/--client-ca], --insecure-http and the connection limits."""
    parser.add_argument("--tls-cert", type=Path, metavar="PEM",
                        help="serve HTTPS with this certificate (chain) file")
    parser.add_argument("--tls-key", type=Path, metavar="PEM",
                        help="the private key of --tls-cert")
    if client_ca:
        parser.add_argument("--client-ca", type=Path, metavar="PEM",
                            help="mutual TLS: require a client certificate issued by this CA")
    parser.add_argument("--insecure-http", action="store_true",
                        help="allow plain HTTP although bearer tokens are checked "
                             "(development only: tokens travel in clear)")
    parser.add_argument("--header-timeout", type=float, default=defaults.header_timeout,
                        metavar="SECONDS", help="close connections whose request headers "
                        f"take longer (default {defaults.header_timeout:g})")
    parser.add_argument("--keep-alive-timeout", type=float, default=defaults.keep_alive,
                        metavar="SECONDS", help="close idle connections after this "
                        f"(default {defaults.keep_alive:g})")
    parser.add_argument("--max-connections", type=int, default=defaults.max_connections,
                        metavar="N", help=f"open connections (default "
                        f"{defaults.max_connections})")
    parser.add_argument("--max-in-flight", type=int, default=defaults.max_in_flight,
                        metavar="N", help="requests answered at once; more get 503 "
                        f"(default {defaults.max_in_flight})")


def tls_from_args(args: argparse.Namespace) -> Tls:
    return Tls(args.tls_cert, args.tls_key, getattr(args, "client_ca", None))


def limits_from_args(args: argparse.Namespace, *, max_body: int | None = None) -> Limits:
    return Limits(header_timeout=args.header_timeout, keep_alive=args.keep_alive_timeout,
                  max_connections=args.max_connections, max_in_flight=args.max_in_flight,
                  max_body=max_body)


def check_transport(tls: Tls, *, tokens: bool, insecure_http: bool) -> None:
    """Refuse settings that would send bearer tokens in clear, or half a TLS setting."""
    if (tls.cert is None) != (tls.key is None):
        raise ServingError("--tls-cert and --tls-key go together")
    if tls.client_ca is not None and not tls.enabled:
        raise ServingError("--client-ca needs --tls-cert and --tls-key")
    for path in (tls.cert, tls.key, tls.client_ca):
        if path is not None and not path.is_file():
            raise ServingError(f"{path}: no such file")
    if tokens and not tls.enabled and not insecure_http:
        raise ServingError("bearer tokens over plain HTTP are refused: pass --tls-cert and "
                           "--tls-key (or --insecure-http for development)")


def serving_from_args(args: argparse.Namespace, *, tokens: bool,
                      max_body: int | None = None) -> tuple[Tls, Limits]:
    """The TLS setting and connection limits of `add_serving_options`, checked
    (`check_transport`): what every server command does first. ServingError (usage,
    exit 2) for plain HTTP with tokens or half a TLS setting."""
    tls = tls_from_args(args)
    check_transport(tls, tokens=tokens, insecure_http=args.insecure_http)
    return tls, limits_from_args(args, max_body=max_body)


SHUTDOWN_GRACE = 10  # seconds a stopping server waits for open connections, then closes them


# -- refusals, counted --------------------------------------------------------------------
Report = Callable[[str, str, int, float], None]  # peer, reason, count, window start (epoch)


class RefusalCounter:
    """Refusals per (source address, reason), reported once per `window` seconds with
    their count (`take`); thread-safe."""

    def __init__(self, window: float = 60.0, *, max_keys: int = 10_000) -> None:
        self.window = window
        self.max_keys = max_keys
        self._lock = threading.Lock()
        self._counts: dict[tuple[str, str], list[float]] = {}  # -> [count, since]

    def count(self, peer: str, reason: str) -> None:
        with self._lock:
            key = (peer, reason)
            if key not in self._counts and len(self._counts) >= self.max_keys:
                key = ("*", reason)  # very many addresses: one line for the rest
            entry = self._counts.setdefault(key, [0, time.time()])
            entry[0] += 1

    def take(self, *, everything: bool = False) -> list[tuple[str, str, int, float]]:
        """The counts whose window has ended (all with `everything`), removed."""
        now = time.time()
        out: list[tuple[str, str, int, float]] = []
        with self._lock:
            for key, (n, since) in list(self._counts.items()):
                if everything or now - since >= self.window:
                    out.append((key[0], key[1], int(n), since))
                    del self._counts[key]
        return out

    def put_back(self, taken: list[tuple[str, str, int, float]]) -> None:
        """Counts a failed report could not write: kept for the next one."""
        with self._lock:
            for peer, reason, n, since in taken:
                entry = self._counts.setdefault((peer, reason), [0, since])
                entry[0] += n
                entry[1] = min(entry[1], since)

    async def report_forever(self, report: Report, *, every: float | None = None) -> None:
        """Report ended windows until cancelled (a lifespan task); the report runs in a
        thread, as it may write to a database."""
        from starlette.concurrency import run_in_threadpool

        tick = every if every is not None else max(0.05, min(self.window / 4, 5.0))
        try:
            while True:
                await asyncio.sleep(tick)
                await run_in_threadpool(self.flush, report)
        finally:
            self.flush(report, everything=True)

    def flush(self, report: Report, *, everything: bool = False) -> None:
        taken = self.take(everything=everything)
        done = 0
        try:
            for item in taken:
                report(*item)
                done += 1
        except Exception as exc:
            log.warning("reporting refusals failed (kept for the next report): %s", exc)
            self.put_back(taken[done:])


def log_refusals(logger: logging.Logger, what: str) -> Report:
    """A `Report` for servers without an audit log: one warning per window and reason."""

    def report(peer: str, reason: str, count: int, since: float) -> None:
        logger.warning("%s refused %d request(s) from %s since %s: %s", what, count, peer,
                       time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(since)), reason)

    return report


# -- the guard in front of the app ----------------------------------------------------------
async def _plain(send: Send, status: int, text: str,
                 headers: dict[str, str] | None = None) -> None:
    body = text.encode()
    head = [(b"content-type", b"text/plain; charset=utf-8"),
            (b"content-length", str(len(body)).encode()), (b"connection", b"close")]
    head += [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()]
    await send({"type": "http.response.start", "status": status, "headers": head})
    await send({"type": "http.response.body", "body": body})


LINGER_SECONDS = 2.0
LINGER_BYTES = 1 << 20


class Linger:
    """A lingering close under way: input that still arrives is dropped (`drop`), and past
    `LINGER_BYTES` of it the transport is closed at once."""

    def __init__(self, transport: Any) -> None:
        self._transport = transport
        self.dropped = 0

    def drop(self, n: int) -> None:
        self.dropped += n
        if self.dropped > LINGER_BYTES:
            self._transport.close()


def linger(transport: Any, loop: asyncio.AbstractEventLoop) -> Linger | None:
    """Half-close `transport` (after what it still has to write) and close it fully
    `LINGER_SECONDS` later, or when the client closes; the `Linger` through which the
    protocol drops the input that arrives meanwhile. A TLS transport cannot half-close in
    asyncio: it is closed at once (None)."""
    if transport.is_closing() or not transport.can_write_eof():
        transport.close()
        return None
    try:
        transport.write_eof()
        transport.resume_reading()
    except (OSError, RuntimeError):
        transport.close()
        return None
    loop.call_later(LINGER_SECONDS, transport.close)
    return Linger(transport)


class Lingering:
    """A transport whose `close()` is a lingering close, for a protocol (uvicorn's) that
    closes its transport itself; `unread()` says whether the client may still be sending
    (otherwise, as for an idle keep-alive connection, it closes at once). It reports
    closing from the moment it lingers."""

    def __init__(self, transport: Any, loop: asyncio.AbstractEventLoop,
                 unread: Callable[[], bool]) -> None:
        self._transport = transport
        self._loop = loop
        self._unread = unread
        self._linger: Linger | None = None

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)

    def is_closing(self) -> bool:
        return self._linger is not None or bool(self._transport.is_closing())

    def close(self) -> None:
        if self.is_closing():
            return
        if self._unread():
            self._linger = linger(self._transport, self._loop)
        else:
            self._transport.close()

    def drained(self, n: int) -> None:
        """`n` bytes read while closing were dropped."""
        if self._linger is not None:
            self._linger.drop(n)


class Guard:
    """ASGI middleware: requests in flight (503) and the body (413)."""

    def __init__(self, app: Asgi, limits: Limits) -> None:
        self.app = app
        self.limits = limits
        self.in_flight = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if self.in_flight >= self.limits.max_in_flight:
            await _plain(send, 503, "503 Service Unavailable: busy\n", {"Retry-After": "1"})
            return
        limit = self.limits.max_body
        if limit is not None:
            declared = dict(scope["headers"]).get(b"content-length", b"")
            if declared.isdigit() and int(declared) > limit:
                await _plain(send, 413, "413 Content Too Large\n")
                return
        started = False
        refused = False  # the body went over the limit: answered 413 here
        gone = False  # the client went away: what the app raises about it is not news
        seen = 0

        async def counted_receive() -> Message:
            nonlocal seen, refused, gone
            if refused:
                return {"type": "http.disconnect"}
            message = await receive()
            gone = gone or message["type"] == "http.disconnect"
            if limit is not None and message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    # answer 413 now; the app sees the client gone and its answer is dropped
                    refused = True
                    if not started:
                        await _plain(send, 413, "413 Content Too Large\n")
                    return {"type": "http.disconnect"}
            return message

        async def watched_send(message: Message) -> None:
            nonlocal started
            if refused:
                return
            started = started or message["type"] == "http.response.start"
            await send(message)

        self.in_flight += 1
        try:
            await self.app(scope, counted_receive, watched_send)
        except Exception:
            if not (refused or gone):
                raise  # the app's own failure, not a client that left or was refused
            log.debug("request ended: %s", "body too large" if refused else "client left")
        finally:
            self.in_flight -= 1


def guarded_protocol(limits: Limits, refusals: RefusalCounter | None = None) -> type:
    """uvicorn's httptools protocol with a header deadline, a header size cap, a cap on
    open connections, and the verified client certificate in the ASGI scope."""
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

    class GuardedProtocol(HttpToolsProtocol):  # type: ignore[misc]
        _deadline: asyncio.TimerHandle | None = None
        _in_headers = True
        _header_bytes = 0

        def connection_made(self, transport: Any) -> None:  # type: ignore[override]
            super().connection_made(  # the proxy stands in for the transport it wraps
                Lingering(transport, self.loop, self._unread))  # type: ignore[arg-type]
            if len(self.connections) > limits.max_connections:
                self._refuse("too many connections")
                transport.close()
                return
            self._arm()

        def _unread(self) -> bool:
            """The request now being read is not read to its end (the client may still
            be sending it)."""
            return self._in_headers or (self.cycle is not None and self.cycle.more_body)

        def connection_lost(self, exc: Exception | None) -> None:
            self._disarm()
            super().connection_lost(exc)

        def data_received(self, data: bytes) -> None:
            if self.transport.is_closing():
                # refused, past its deadline, or answered and lingering: read nothing
                if isinstance(self.transport, Lingering):
                    self.transport.drained(len(data))
                return
            if not self._in_headers and (self.cycle is None or self.cycle.response_complete):
                # the first bytes of the next request on a kept-alive connection
                self._in_headers = True
                self._header_bytes = 0
                self._arm()
            if self._in_headers:
                self._header_bytes += len(data)
            super().data_received(data)
            if self._in_headers and self._header_bytes > limits.max_header_bytes \
                    and not self.transport.is_closing():
                self._refuse("headers too large")
                self._close_with(b"431 Request Header Fields Too Large")

        def on_message_begin(self) -> None:
            super().on_message_begin()
            der = self._client_cert()
            if der is not None:
                pem = ssl.DER_cert_to_PEM_cert(der)
                self.scope.setdefault("extensions", {})["tls"] = {  # type: ignore[typeddict-item]
                    "client_cert_chain": [pem], "client_cert_der": der}

        def on_headers_complete(self) -> None:
            self._in_headers = False
            self._disarm()
            super().on_headers_complete()

        def _client_cert(self) -> bytes | None:
            obj = self.transport.get_extra_info("ssl_object")
            if obj is None:
                return None
            der = obj.getpeercert(binary_form=True)
            return bytes(der) if der else None

        def _arm(self) -> None:
            self._disarm()
            self._deadline = self.loop.call_later(limits.header_timeout, self._expired)

        def _disarm(self) -> None:
            if self._deadline is not None:
                self._deadline.cancel()
                self._deadline = None

        def _expired(self) -> None:
            self._deadline = None
            if self._in_headers and not self.transport.is_closing():
                self._refuse("header timeout")
                self._close_with(b"408 Request Timeout")

        def _refuse(self, reason: str) -> None:
            if refusals is not None:
                refusals.count(self.client[0] if self.client else "?", reason)

        def _close_with(self, status: bytes) -> None:
            self.transport.write(b"HTTP/1.1 " + status + b"\r\nConnection: close\r\n"
                                 b"Content-Length: 0\r\n\r\n")
            self.transport.close()

    return GuardedProtocol


def uvicorn_config(app: Asgi, *, host: str, port: int, tls: Tls, limits: Limits,
                   refusals: RefusalCounter | None = None, log_level: str = "warning",
                   **extra: Any) -> Any:
    """A uvicorn.Config serving `app` behind the guard, over TLS when `tls` is set."""
    import uvicorn

    ssl_options: dict[str, Any] = {}
    if tls.enabled:
        ssl_options = {"ssl_certfile": str(tls.cert), "ssl_keyfile": str(tls.key)}
        if tls.client_ca is not None:
            ssl_options.update(ssl_ca_certs=str(tls.client_ca), ssl_cert_reqs=ssl.CERT_REQUIRED)
    return uvicorn.Config(
        Guard(app, limits), host=host, port=port, log_level=log_level,
        http=guarded_protocol(limits, refusals), timeout_keep_alive=int(max(1, limits.keep_alive)),
        limit_concurrency=None, **ssl_options,
        **{"timeout_graceful_shutdown": SHUTDOWN_GRACE, **extra})


LIMITS_ENV = "MYNACARD_SERVING_LIMITS"
_env_protocol: list[type] = []


def limits_to_env(limits: Limits) -> str:
    import json

    return json.dumps(limits.__dict__)


def protocol_from_env(**kwargs: Any) -> Any:
    """uvicorn `http=` factory for worker processes (`--workers N`), which cannot be handed a
    class made at run time: the guarded protocol with the limits in $MYNACARD_SERVING_LIMITS."""
    import json
    import os

    if not _env_protocol:
        _env_protocol.append(guarded_protocol(Limits(**json.loads(os.environ[LIMITS_ENV]))))
    return _env_protocol[0](**kwargs)


def client_certificate(scope: Scope) -> bytes | None:
    """The DER of the verified client certificate of this request (mutual TLS), if any."""
    tls = (scope.get("extensions") or {}).get("tls") or {}
    der = tls.get("client_cert_der")
    return bytes(der) if der else None


def run(config: Any) -> None:
    """Serve until interrupted."""
    import uvicorn

    uvicorn.Server(config).run()


__all__ = ["Guard", "Limits", "RefusalCounter", "ServingError", "Tls", "add_serving_options",
           "check_transport", "client_certificate", "guarded_protocol", "limits_from_args",
           "log_refusals", "protocol_from_env", "run", "serving_from_args", "tls_from_args",
           "uvicorn_config"]
