"""`notices serve`: a real uvicorn server (behind pki.serving's guard, over TLS with
certificates made here, see notices_server) on a free port, real databases, real sockets."""

from __future__ import annotations

import argparse
import http.client
import json
import logging
import socket
import ssl
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from notices_server import Server, free_port, post, request, running, wait_for
from notices_support import NOW, clock, issue_pair, line, notice, resident
from tls_certs import TestCa

from issuance.audit.log import AuditLog
from issuance.notices import cli
from issuance.notices.queries import notice_counts, notice_state
from issuance.notices.senders import SenderError, add_sender, list_senders
from issuance.registry.store import ResidentStore
from issuance.storage import Database
from pki.serving import Limits
from pki.store import CertificateStore


@pytest.fixture
def server(db: Database, store_url: str, ca: TestCa) -> Iterator[Server]:
    with running(db, store_url, ca, max_body=64 * 1024, refusal_window=1.0) as srv:
        yield srv


def test_authenticated_sender_posts_notices(db: Database, store: CertificateStore,
                                            server: Server,
                                            caplog: pytest.LogCaptureFixture) -> None:
    token = add_sender(db, "juki-gateway", sources=["juki"])
    assert list_senders(db)[0]["name"] == "juki-gateway"
    assert list_senders(db)[0]["sources"] == ["juki"]
    assert token not in json.dumps(list_senders(db))
    person = resident()
    ResidentStore(db).put(person)
    sign, auth = issue_pair(store, person.resident_code)
    body = "\n".join([line(notice("death", person.resident_code, nid="H-1")), "{bad"]).encode()

    with caplog.at_level(logging.WARNING, logger="mynacard.notices.http"):
        for _ in range(6):
            assert post(server, body, None)[0] == 401
            assert post(server, body, "mnn_not-a-real-token")[0] == 401
            assert post(server, body, "Basic abc")[0] == 401
        assert post(server, b"x" * (65 * 1024), token)[0] == 413
        assert notice_counts(db)["arrived"] == 0
        # unauthenticated refusals: one audit entry per address and reason per window,
        # with the count, not one per request
        wait_for("the refusal counts were never written", lambda: sum(
            e.detail.get("count", 0) for e in AuditLog(db).entries()
            if e.outcome == "refused" and e.operator == "http:anonymous") == 18)
    assert all("mnn_" not in r.getMessage() for r in caplog.records)
    assert [r for r in caplog.records if "body too large" in r.getMessage()]

    status, answer = post(server, body, token)
    assert status == 200
    assert (answer["sender"], answer["accepted"], answer["rejected"]) == ("juki-gateway", 1, 1)
    # accepted means stored: the row is there as soon as the 200 arrived
    assert notice_state(db, "juki", "H-1", sender="juki-gateway") in ("accepted", "applied")
    wait_for("the background processor never applied it",
             lambda: notice_state(db, "juki", "H-1", sender="juki-gateway") == "applied")
    assert store.get(sign).status.value == store.get(auth).status.value == "revoked"
    assert post(server, body, token)[1]["duplicate"] == 1

    entries = AuditLog(db).entries()
    anonymous = [e for e in entries if e.outcome == "refused" and e.operator == "http:anonymous"]
    by_reason: dict[str, int] = {}
    for e in anonymous:
        by_reason[e.detail["reason"]] = by_reason.get(e.detail["reason"], 0) + e.detail["count"]
    assert by_reason == {"no bearer token": 12, "unknown or disabled token": 6}
    assert len(anonymous) < 18 / 3  # counted per window, not written per request
    assert all(e.subject == "127.0.0.1" and e.detail["status"] == 401 for e in anonymous)
    by_sender = [e for e in entries if e.outcome == "refused" and e.operator != "http:anonymous"]
    assert [(e.operator, e.detail["status"]) for e in by_sender] == [("http:juki-gateway", 413)]
    assert all(token not in json.dumps(e.to_json()) for e in entries)


def test_a_post_of_more_lines_than_allowed_is_refused_whole(db: Database, store_url: str,
                                                            ca: TestCa) -> None:
    """Every line not accepted is kept and answered: a body of tiny junk lines would cost
    memory and rows out of all proportion to its bytes, so a POST carries at most
    `max_lines` lines (413, nothing stored; the sender sends the rest in another)."""
    token = add_sender(db, "juki-gateway", sources=["juki"])
    person = resident()
    ResidentStore(db).put(person)
    with running(db, store_url, ca, max_lines=5) as srv:
        assert post(srv, b"x\n" * 6, token)[0] == 413
        assert post(srv, b"x\n" * 5 + b"x", token)[0] == 413
        assert notice_counts(db)["arrived"] == 0
        good = "\n".join(line(notice("death", person.resident_code)) for _ in range(5))
        status, body = post(srv, good.encode() + b"\n", token)
        assert status == 200 and body["accepted"] == 5


def test_a_sender_sends_only_its_sources_and_owns_its_ids(db: Database, store: CertificateStore,
                                                         server: Server) -> None:
    a = add_sender(db, "gw-a", sources=["juki"])
    b = add_sender(db, "gw-b", sources=["juki", "fuhyo"])
    first, second = resident(), resident()
    for person in (first, second):
        ResidentStore(db).put(person)
    a_sign, a_auth = issue_pair(store, first.resident_code)
    b_sign, b_auth = issue_pair(store, second.resident_code)

    # A may not send fuhyo: that line is rejected with the reason, the rest stored
    mine = line(notice("death", first.resident_code, nid="N1"))
    foreign = line(notice("address_change", first.resident_code, source="fuhyo", nid="F1"))
    status, answer = post(server, f"{mine}\n{foreign}\n".encode(), a)
    assert status == 200 and (answer["accepted"], answer["rejected"]) == (1, 1)
    [problem] = answer["problems"]
    assert problem["line"] == 2 and problem["source"] == "fuhyo"
    assert "may not send fuhyo" in problem["reason"]
    assert notice_state(db, "fuhyo", "F1", sender="gw-a") is None

    # B uses the same id for another notice: stored and applied as B's own
    theirs = line(notice("death", second.resident_code, nid="N1"))
    status, answer = post(server, theirs.encode(), b)
    assert status == 200 and answer["accepted"] == 1
    for sender in ("gw-a", "gw-b"):
        wait_for(f"{sender}'s N1 was never applied",
                 lambda s=sender: notice_state(db, "juki", "N1", sender=s) == "applied")
    for serial in (a_sign, a_auth, b_sign, b_auth):
        assert store.get(serial).status.value == "revoked"
    causes = {store.get(s).cause for s in (a_sign, b_sign)}
    assert causes == {"notice@gw-a:juki:N1", "notice@gw-b:juki:N1"}

    # A re-sending its own id changes nothing
    arrived = notice_counts(db)["arrived"]
    status, answer = post(server, mine.encode(), a)
    assert status == 200 and (answer["duplicate"], answer["accepted"]) == (1, 0)
    assert notice_counts(db)["arrived"] == arrived
    # and B cannot pre-empt an id A has not used yet: it is B's, A still gets its own
    b_first = line(notice("death", first.resident_code, nid="N2"))
    assert post(server, b_first.encode(), b)[1]["accepted"] == 1
    a_later = line(notice("name_change", first.resident_code, nid="N2"))
    assert post(server, a_later.encode(), a)[1]["accepted"] == 1


def test_mutual_tls_requires_a_client_certificate_of_the_ca(db: Database, store_url: str,
                                                             ca: TestCa, tmp_path: Path) -> None:
    clients = TestCa(tmp_path / "clients", "senders")
    stranger = TestCa(tmp_path / "stranger", "stranger")
    good, mapped = clients.issue("gw-1"), clients.issue("gw-2")
    forged = stranger.issue("gw-2")
    token = add_sender(db, "gw-1", sources=["juki"])
    add_sender(db, "gw-2", sources=["fuhyo"], cert_der=mapped.der())
    person = resident()
    ResidentStore(db).put(person)
    body = line(notice("death", person.resident_code, nid="M1")).encode()
    with running(db, None, ca, client_ca=clients.cert_path) as srv:
        # no client certificate: the handshake fails, nothing is read
        with pytest.raises((ssl.SSLError, ConnectionError)):
            post(srv, body, token)
        # a certificate from another CA: refused as well
        with pytest.raises((ssl.SSLError, ConnectionError)):
            post(srv, body, token, client=forged)
        assert notice_counts(db)["arrived"] == 0
        # a good certificate: the token says who sends
        status, answer = post(srv, body, token, client=good)
        assert status == 200 and (answer["sender"], answer["accepted"]) == ("gw-1", 1)
        # a certificate registered for a sender stands for it; its sources still apply
        status, answer = post(srv, body, None, client=mapped)
        assert status == 200 and answer["sender"] == "gw-2" and answer["rejected"] == 1
        # a token of another sender than the certificate's is refused
        assert post(srv, body, token, client=mapped)[0] == 401


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser()
    cli.register(parser.add_subparsers(), clock=clock(NOW))
    return parser


def test_plain_http_with_tokens_refuses_to_start(db_url: str, tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    args = _parser().parse_args(["notices", "serve", "--operator", "admin", "--db", db_url,
                                 "--port", str(free_port())])
    args.home = tmp_path
    assert args.func(args) == 2
    err = capsys.readouterr().err
    assert "plain HTTP" in err and "--insecure-http" in err and "Traceback" not in err
    args = _parser().parse_args(["notices", "serve", "--operator", "admin", "--db", db_url,
                                 "--tls-cert", str(tmp_path / "nothing.pem")])
    args.home = tmp_path
    assert args.func(args) == 2
    assert "--tls-key" in capsys.readouterr().err


def test_slow_header_clients_do_not_starve_a_sender(db: Database, ca: TestCa) -> None:
    token = add_sender(db, "gw", sources=["juki"])
    person = resident()
    ResidentStore(db).put(person)
    header_timeout = 15.0
    limits = Limits(header_timeout=header_timeout, max_in_flight=8, max_connections=400)
    with running(db, None, ca, limits=limits) as srv:
        context = ca.client_context()
        stalled = []
        try:
            for _ in range(200):
                raw = socket.create_connection(("127.0.0.1", srv.port), timeout=10)
                conn = context.wrap_socket(raw, server_hostname="127.0.0.1")
                conn.sendall(b"POST /notices HTTP/1.1\r\nHost: x")  # and stall
                stalled.append(conn)
            started = time.monotonic()
            status, answer = post(srv, line(notice("death", person.resident_code)).encode(),
                                  token)
            assert status == 200 and answer["accepted"] == 1
            assert time.monotonic() - started < header_timeout / 2
        finally:
            for conn in stalled:
                conn.close()


def test_a_stalled_connection_is_closed_at_its_header_deadline(db: Database,
                                                               ca: TestCa) -> None:
    with running(db, None, ca, limits=Limits(header_timeout=0.5)) as srv:
        raw = socket.create_connection(("127.0.0.1", srv.port), timeout=10)
        conn = ca.client_context().wrap_socket(raw, server_hostname="127.0.0.1")
        conn.sendall(b"GET /health HTTP/1.1\r\n")
        started = time.monotonic()
        answer = conn.recv(1024)
        assert answer.startswith(b"HTTP/1.1 408")
        assert time.monotonic() - started < 5
        conn.close()
        assert request(srv, "GET", "/health")[1] == {"ok": True, "database": "up"}


def test_sender_names_and_cli(db_url: str, tmp_path: Path,
                              capsys: pytest.CaptureFixture[str], db: Database) -> None:
    with pytest.raises(SenderError):
        add_sender(db, "bad name", sources=["juki"])
    with pytest.raises(SenderError):
        add_sender(db, "local", sources=["juki"])
    with pytest.raises(SenderError):
        add_sender(db, "no-source", sources=[])
    add_sender(db, "fuhyo-gw", sources=["fuhyo"])
    with pytest.raises(SenderError):
        add_sender(db, "fuhyo-gw", sources=["fuhyo"])
    parser = _parser()
    args = parser.parse_args(["notices", "sender", "add", "juki-gw", "--source", "juki",
                              "--operator", "admin", "--db", db_url])
    args.home = tmp_path
    assert args.func(args) == 0
    token = capsys.readouterr().out.strip()
    assert token.startswith("mnn_")
    with pytest.raises(SystemExit) as usage:  # a sender needs its sources
        parser.parse_args(["notices", "sender", "add", "x-gw", "--operator", "admin"])
    assert usage.value.code == 2
    args = parser.parse_args(["notices", "sender", "list", "--json", "--operator", "admin",
                              "--db", db_url])
    args.home = tmp_path
    assert args.func(args) == 0
    listed = capsys.readouterr().out
    assert "juki-gw" in listed and token not in listed
    assert {s["name"]: s["sources"] for s in json.loads(listed)} == {
        "fuhyo-gw": ["fuhyo"], "juki-gw": ["juki"]}


def test_a_disabled_sender_is_refused_from_its_next_request(
        db: Database, db_url: str, store_url: str, ca: TestCa, tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    """A leaked token is stopped with `notices sender disable` (supervisor, audited):
    the very next POST with it gets 401; the notices it sent before stay."""
    token = add_sender(db, "juki-gw", sources=["juki"])
    person = resident()
    ResidentStore(db).put(person)
    parser = _parser()
    with running(db, store_url, ca) as srv:
        assert post(srv, line(notice("death", person.resident_code)).encode(), token)[0] == 200
        args = parser.parse_args(["notices", "sender", "disable", "juki-gw",
                                  "--operator", "admin", "--db", db_url])
        args.home = tmp_path
        assert args.func(args) == 0
        assert "juki-gw disabled" in capsys.readouterr().out
        assert post(srv, line(notice("death", person.resident_code)).encode(), token)[0] == 401
    assert notice_counts(db)["arrived"] == 1
    assert [s["disabled"] for s in list_senders(db)] == [1]
    entries = [e for e in AuditLog(db).entries() if e.action == "notices.sender.disable"]
    assert [(e.subject, e.outcome) for e in entries] == [("juki-gw", "ok")]
    args = parser.parse_args(["notices", "sender", "disable", "nobody",
                              "--operator", "admin", "--db", db_url])
    args.home = tmp_path
    assert args.func(args) == 1  # no such sender: refused, and recorded


def _tls_socket(srv: Server) -> ssl.SSLSocket:
    raw = socket.create_connection(("127.0.0.1", srv.port), timeout=10)
    return srv.ca.client_context().wrap_socket(raw, server_hostname="127.0.0.1")


def _health_ok(srv: Server) -> bool:
    try:
        return request(srv, "GET", "/health")[0] == 200
    except (ssl.SSLError, ConnectionError, http.client.HTTPException):
        return False


def _closed_by_server(conn: ssl.SSLSocket, within: float) -> bool:
    """True when the server closes `conn` (EOF) within `within` seconds."""
    conn.settimeout(within)
    try:
        while conn.recv(4096):
            pass
    except TimeoutError:
        return False
    except (ssl.SSLError, ConnectionError):
        return True
    return True


def test_idle_connections_are_closed_and_limits_hold(db: Database, ca: TestCa) -> None:
    limits = Limits(keep_alive=1, max_connections=5, max_header_bytes=8 * 1024)
    with running(db, None, ca, limits=limits) as srv:
        # keep-alive: an idle connection after a request is closed after the idle timeout
        conn = _tls_socket(srv)
        conn.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        assert conn.recv(4096).startswith(b"HTTP/1.1 200")
        assert _closed_by_server(conn, within=5)
        conn.close()
        # headers beyond the cap: 431 and closed
        conn = _tls_socket(srv)
        conn.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\nX-Fill: " + b"a" * 9000)
        assert conn.recv(4096).startswith(b"HTTP/1.1 431")
        conn.close()
        # beyond max_connections a new connection is closed at once; the others still work
        held = [_tls_socket(srv) for _ in range(5)]
        try:
            extra = _tls_socket(srv)
            assert _closed_by_server(extra, within=5)
            extra.close()
            for c in held:
                c.close()
            wait_for("a slot never came back", lambda: _health_ok(srv), timeout=10)
        finally:
            for c in held:
                c.close()


def test_requests_beyond_the_in_flight_cap_get_503(db: Database, ca: TestCa,
                                                   caplog: pytest.LogCaptureFixture) -> None:
    token = add_sender(db, "gw", sources=["juki"])
    with running(db, None, ca, limits=Limits(max_in_flight=1)) as srv:
        slow = _tls_socket(srv)  # a sender whose body never comes holds the one slot
        slow.sendall(b"POST /notices HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n"
                     b"Authorization: Bearer " + token.encode() + b"\r\n\r\n")
        wait_for("the slow request never took the slot",
                 lambda: request(srv, "GET", "/health")[0] == 503)
        conn = http.client.HTTPSConnection("127.0.0.1", srv.port, timeout=10,
                                           context=ca.client_context())
        conn.request("GET", "/health")
        busy = conn.getresponse()
        assert busy.status == 503 and busy.getheader("Retry-After") == "1"
        busy.read()
        conn.close()
        uvicorn_log = logging.getLogger("uvicorn.error")  # it does not propagate to root
        uvicorn_log.addHandler(caplog.handler)
        try:
            slow.close()  # a client leaving mid-body is no application error
            wait_for("the slot never came back", lambda: _health_ok(srv))
        finally:
            uvicorn_log.removeHandler(caplog.handler)
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR], caplog.text


def test_the_notices_serve_command_over_mutual_tls(db: Database, db_url: str, ca: TestCa,
                                                   tmp_path: Path) -> None:
    """`mynacard notices serve` itself (its options wired to the guard), in a process."""
    import os
    import subprocess
    import sys

    clients = TestCa(tmp_path / "clients", "senders")
    client = clients.issue("gw-cli")
    server_cert = ca.issue("server", server=True)
    token = add_sender(db, "gw-cli", sources=["juki"])
    person = resident()
    ResidentStore(db).put(person)
    home = tmp_path / "home"
    home.mkdir(mode=0o700)
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "issuance.cli.main", "--home", str(home), "notices", "serve",
         "--operator", "ops-1", "--db", db_url, "--no-process", "--port", str(port),
         "--tls-cert", str(server_cert.cert), "--tls-key", str(server_cert.key),
         "--client-ca", str(clients.cert_path), "--header-timeout", "5"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).parents[2])})
    try:
        srv = Server(f"https://127.0.0.1:{port}", ca)
        wait_for("notices serve did not start", lambda: proc.poll() is not None
                 or _connects(port), timeout=30)
        assert proc.poll() is None
        body = line(notice("death", person.resident_code, nid="CLI-1")).encode()
        with pytest.raises((ssl.SSLError, ConnectionError)):
            post(srv, body, token)  # no client certificate
        status, answer = post(srv, body, token, client=client)
        assert status == 200 and (answer["sender"], answer["accepted"]) == ("gw-cli", 1)
    finally:
        proc.terminate()
        _, err = proc.communicate(timeout=30)
    assert "Traceback" not in err and token not in err
    assert notice_state(db, "juki", "CLI-1", sender="gw-cli") == "accepted"


def _connects(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
        return True
    except OSError:
        return False
