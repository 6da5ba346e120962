"""The lean OCSP server shares one change check among the requests of a loop iteration
(`pki.ocsp.lean.Server.flush`), on SQLite and PostgreSQL: many pipelined and concurrent
requests cost fewer counter reads than requests, and a revocation committed before a
batch's read is seen by every request of that batch."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import datetime as dt
import socket
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509 import ocsp
from test_pki_postgres import pg_cluster, pg_url  # noqa: F401 - the module's cluster

from pki.ca import IssuingCA
from pki.ocsp import OcspResponder, Pregenerator
from pki.ocsp.lean import Server, reuse_port_socket, serve_socket
from pki.profiles import Hierarchy
from pki.store import Revocation, open_readonly_store, open_store

CONNECTIONS = 8
PIPELINED = 16  # requests sent at once on each connection


@pytest.fixture(params=["sqlite", "postgres"])
def location(request: pytest.FixtureRequest, tmp_path: Any) -> str:
    if request.param == "postgres":
        return str(request.getfixturevalue("pg_url"))
    return str(tmp_path / "store.sqlite")


class Running:
    """The lean server on uvloop (as `ocsp serve --pregenerated` runs it) in a thread;
    `paused()` blocks its loop while the test sends, so what is sent meanwhile is read
    in one loop iteration."""

    def __init__(self, server: Server) -> None:
        import uvloop

        self.loop = uvloop.new_event_loop()
        sock = reuse_port_socket("127.0.0.1", 0)
        self.port = sock.getsockname()[1]
        self.stop = asyncio.Event()
        started = threading.Event()
        self.thread = threading.Thread(target=self.loop.run_until_complete, daemon=True,
                                       args=(serve_socket(server, sock, started=started.set,
                                                          stop=self.stop),))
        self.thread.start()
        assert started.wait(10)

    @contextlib.contextmanager
    def paused(self) -> Iterator[None]:
        entered, gate = threading.Event(), threading.Event()

        def block() -> None:
            entered.set()
            gate.wait(30)

        self.loop.call_soon_threadsafe(block)
        assert entered.wait(10)
        try:
            yield
        finally:
            gate.set()

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.stop.set)
        self.thread.join(10)
        self.loop.close()


def _get(der: bytes) -> bytes:
    target = base64.b64encode(der).replace(b"+", b"%2B").replace(b"/", b"%2F") \
        .replace(b"=", b"%3D")
    return b"GET /" + target + b" HTTP/1.1\r\nHost: ocsp\r\n\r\n"


def _send_together(conns: list[socket.socket], data: bytes) -> None:
    """Send `data` on every connection at once, from one thread each."""
    threads = [threading.Thread(target=conn.sendall, args=(data,)) for conn in conns]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


def _read(sock: socket.socket, n: int) -> list[ocsp.OCSPCertStatus]:
    """The certificate statuses of the next `n` responses on `sock`."""
    statuses, data = [], b""
    while len(statuses) < n:
        end = data.find(b"\r\n\r\n")
        if end >= 0:
            head = data[:end]
            assert head.startswith(b"HTTP/1.1 200 "), head
            length = int(head.lower().split(b"content-length: ", 1)[1].split(b"\r\n")[0])
            if len(data) >= end + 4 + length:
                body = data[end + 4:end + 4 + length]
                statuses.append(ocsp.load_der_ocsp_response(body).certificate_status)
                data = data[end + 4 + length:]
                continue
        chunk = sock.recv(65536)
        assert chunk, "the server closed the connection"
        data += chunk
    assert not data
    return statuses


def test_batches_share_one_counter_read_and_see_a_revocation_committed_before_it(
        location, km, session_ca, clock, holder_key, adult) -> None:
    store = open_store(location)
    ro = open_readonly_store(location)
    running: Running | None = None
    conns: list[socket.socket] = []
    try:
        issuing = IssuingCA(key_source=km, ca=session_ca, store=store, clock=clock)
        a, b = (issuing.issue_signing(public_key=holder_key.public_key(), identity=adult,
                                      holder_id=f"R{n}", card_expiry=dt.date(2035, 1, 1))
                for n in range(2))
        Pregenerator.from_ca(key_source=km, ca=session_ca, store=store, clock=clock,
                             validity=dt.timedelta(hours=24)).run_once()
        root = session_ca.hierarchies[Hierarchy.SIGN].root_cert
        ask = {c.serial: _get(ocsp.OCSPRequestBuilder().add_certificate(
            c.certificate, root, hashes.SHA1()).build().public_bytes(Encoding.DER))
            for c in (a, b)}
        responder = OcspResponder.from_ca(key_source=km, ca=session_ca, store=ro, clock=clock)
        server = Server(responder)
        assert server.memory is not None and server.memory.enabled
        # the counter read each check makes: SQLite's data_version (the counter itself
        # only when that moved), PostgreSQL's status_changes
        name = "status_changes" if location.startswith("postgresql") else "data_version"
        reads = {"n": 0}
        real = getattr(ro, name)

        def counted() -> Any:
            reads["n"] += 1
            return real()

        setattr(ro, name, counted)
        running = Running(server)
        conns = [socket.create_connection(("127.0.0.1", running.port), timeout=30)
                 for _ in range(CONNECTIONS)]
        for conn in conns:  # connected, and both responses held in memory
            conn.sendall(ask[a.serial] + ask[b.serial])
            assert _read(conn, 2) == [ocsp.OCSPCertStatus.GOOD] * 2
        requests = CONNECTIONS * PIPELINED

        # concurrent and pipelined, the loop running: fewer reads than requests
        reads["n"] = 0
        _send_together(conns, ask[a.serial] * PIPELINED)
        for conn in conns:
            assert _read(conn, PIPELINED) == [ocsp.OCSPCertStatus.GOOD] * PIPELINED
        assert 1 <= reads["n"] < requests

        # everything that arrived while the loop was busy: one batch, one read
        reads["n"] = 0
        with running.paused():
            for conn in conns:
                conn.sendall((ask[a.serial] + ask[b.serial]) * (PIPELINED // 2))
        for conn in conns:
            assert _read(conn, PIPELINED) == [ocsp.OCSPCertStatus.GOOD] * PIPELINED
        assert reads["n"] == 1
        held = len(server.memory)
        assert held == 2

        # the first connection's requests received and queued, then a revocation
        # committed (in the server's loop, before the other connections are read), then
        # the batch's read: every request of the batch is answered "revoked", none from
        # the "good" held in memory
        reads["n"] = 0
        queue = server.queue

        def queue_then_revoke(conn: Any) -> None:
            queue(conn)
            if not revoked:
                revoked.append(store.revoke(a.serial, reason=x509.ReasonFlags.key_compromise,
                                            at=clock.now))

        revoked: list[Any] = []
        server.queue = queue_then_revoke  # type: ignore[method-assign]
        with running.paused():
            for conn in conns:
                conn.sendall((ask[a.serial] + ask[b.serial]) * (PIPELINED // 2))
        for conn in conns:
            assert _read(conn, PIPELINED) == [ocsp.OCSPCertStatus.REVOKED,
                                              ocsp.OCSPCertStatus.GOOD] * (PIPELINED // 2)
        assert reads["n"] == 1 and len(revoked) == 1
        server.queue = queue  # type: ignore[method-assign]

        # a revocation whose commit returned before the requests were sent: seen by all
        store.revoke_many([Revocation(b.serial, x509.ReasonFlags.superseded, None, clock.now)])
        _send_together(conns, ask[b.serial] * PIPELINED)
        for conn in conns:
            assert _read(conn, PIPELINED) == [ocsp.OCSPCertStatus.REVOKED] * PIPELINED
    finally:
        for conn in conns:
            conn.close()
        if running is not None:
            running.close()
        ro.close()
        store.close()


class _Transport:
    """What the lean protocol writes, as a transport would take it."""

    def __init__(self) -> None:
        self.written: list[bytes] = []
        self.closed = False

    def write(self, data: bytes) -> None:
        self.written.append(data)

    def is_closing(self) -> bool:
        return self.closed

    def close(self) -> None:
        self.closed = True

    def get_extra_info(self, name: str) -> Any:
        return ("192.0.2.1", 40000) if name == "peername" else None


def test_a_request_sent_again_byte_for_byte_is_answered_from_its_kept_parse(
        km, session_ca, store, clock, issuing, holder_key, adult) -> None:
    """The parse of a whole request is kept by its bytes (`Server.parsed`): the same bytes
    get the same answer; other headers (If-None-Match, Connection: close) are parsed."""
    issued = issuing.issue_signing(public_key=holder_key.public_key(), identity=adult,
                                   holder_id="R1", card_expiry=dt.date(2035, 1, 1))
    Pregenerator.from_ca(key_source=km, ca=session_ca, store=store, clock=clock).run_once()
    ro = open_readonly_store(store.location)
    try:
        server = Server(OcspResponder.from_ca(key_source=km, ca=session_ca, store=ro,
                                              clock=clock))
        root = session_ca.hierarchies[Hierarchy.SIGN].root_cert
        request = _get(ocsp.OCSPRequestBuilder().add_certificate(
            issued.certificate, root, hashes.SHA1()).build().public_bytes(Encoding.DER))
        asyncio.run(_resend(server, request))
    finally:
        ro.close()


async def _resend(server: Server, request: bytes) -> None:
    conn, transport = server.protocol(), _Transport()
    conn.connection_made(transport)

    async def send(data: bytes) -> bytes:
        conn.data_received(data)
        await asyncio.sleep(0)  # the flush scheduled by data_received runs first
        return transport.written[-1]

    first = await send(request)
    assert list(server.parsed) == [request]
    assert await send(request) == first and len(transport.written) == 2
    assert first.startswith(b"HTTP/1.1 200 ")
    assert ocsp.load_der_ocsp_response(first.split(b"\r\n\r\n", 1)[1]) \
        .certificate_status is ocsp.OCSPCertStatus.GOOD
    etag = first.split(b"ETag: ", 1)[1].split(b"\r\n", 1)[0]
    revalidate = request[:-2] + b"If-None-Match: " + etag + b"\r\n\r\n"
    assert (await send(revalidate)).startswith(b"HTTP/1.1 304 ")
    closing = request[:-2] + b"Connection: close\r\n\r\n"
    assert await send(closing) == first and transport.closed
    assert closing not in server.parsed and len(server.parsed) == 2
