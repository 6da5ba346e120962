"""A real `notices serve` for the tests: uvicorn behind pki.serving's guard, over TLS with
certificates made in the test, in a thread, on a free port; and a client for it."""

from __future__ import annotations

import http.client
import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from notices_support import NOW, clock
from tls_certs import Issued, TestCa

from issuance.notices.http import create_app
from issuance.storage import Database
from pki.serving import Limits, Tls, uvicorn_config


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Server:
    def __init__(self, url: str, ca: TestCa) -> None:
        self.url = url
        self.ca = ca
        self.port = int(url.rsplit(":", 1)[1])


@contextmanager
def running(db: Database, store_url: str | None, ca: TestCa, *, client_ca: Path | None = None,
            limits: Limits | None = None, **app_options: Any) -> Iterator[Server]:
    import uvicorn

    server_cert = ca.issue("server", server=True)
    port = free_port()
    app = create_app(db, store_url, clock=clock(NOW), **app_options)
    config = uvicorn_config(app, host="127.0.0.1", port=port,
                            tls=Tls(server_cert.cert, server_cert.key, client_ca),
                            limits=limits or Limits(), refusals=app.state.refusals)
    srv = uvicorn.Server(config)
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not srv.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.02)
    try:
        yield Server(f"https://127.0.0.1:{port}", ca)
    finally:
        srv.should_exit = True
        thread.join(timeout=20)


def request(srv: Server, method: str, path: str, body: bytes | None = None,
            token: str | None = None, client: Issued | None = None) -> tuple[int, Any]:
    conn = http.client.HTTPSConnection("127.0.0.1", srv.port, timeout=30,
                                       context=srv.ca.client_context(client))
    headers = {"Content-Type": "application/x-ndjson"}
    if token is not None:
        headers["Authorization"] = token if " " in token else f"Bearer {token}"
    try:
        conn.request(method, path, body=body, headers=headers)
        resp = conn.getresponse()
        raw = resp.read()
        return resp.status, json.loads(raw) if raw.startswith(b"{") else raw
    finally:
        conn.close()


def post(srv: Server, body: bytes, token: str | None,
         client: Issued | None = None) -> tuple[int, Any]:
    return request(srv, "POST", "/notices", body, token, client)


def wait_for(what: str, done: Callable[[], bool], timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while not done():
        assert time.monotonic() < deadline, what
        time.sleep(0.05)
