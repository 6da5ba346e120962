"""`ocsp pregenerate` and `ocsp serve --pregenerated` end to end, on SQLite and
PostgreSQL: several responder processes answer identically from the shared store, and a
revocation through the CA is seen by all of them at once."""

from __future__ import annotations

import base64
import datetime as dt
import json
import os
import socket
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509 import ocsp
from http_support import answer_to_a_body_sent_late
from leaks import shows
from test_pki_cli import HSM, MYNACARD, PIN, _new_key, _serial, run
from test_pki_postgres import pg_cluster  # noqa: F401 - the module's PostgreSQL cluster


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _make_home(home: Path, store: list[str]) -> Path:
    run(home, "ca", "init", *HSM, *store, "--so-pin-source", "env:CLI_TEST_SO_PIN",
        "--shards", "4", "--json", check=True)
    (home / "id.json").write_text(json.dumps({
        "name": "佐藤 花子", "sex": 2, "birth_date": "1985-07-07",
        "address": "大阪府大阪市北区1-2-3"}, ensure_ascii=False), encoding="utf-8")
    for n in range(2):
        pub = _new_key(home, f"holder{n}")
        run(home, "ca", "issue", *HSM, *store, "--profile", "signing", "--public-key", str(pub),
            "--identity", str(home / "id.json"), "--holder-id", f"R{n}",
            "--card-expiry", "2035-01-01", "--out", str(home / f"s{n}.pem"), check=True)
    return home


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def store_home(request: pytest.FixtureRequest,
               tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[str]]:
    store: list[str] = []
    if request.param == "postgres":
        import psycopg

        cluster = request.getfixturevalue("pg_cluster")
        name = f"scale{os.getpid()}"
        with psycopg.connect(cluster, autocommit=True) as conn:
            conn.execute(f"CREATE DATABASE {name}")
        store = ["--store", cluster.replace("/postgres?", f"/{name}?")]
    home = tmp_path_factory.mktemp(f"scale-{request.param}")
    return _make_home(home, store), store


def _start(home: Path, store: list[str], *extra: str) -> tuple[subprocess.Popen[str], str]:
    port = _free_port()
    env = dict(os.environ, CLI_TEST_PIN=PIN)
    env.pop("SOFTHSM2_CONF", None)
    proc = subprocess.Popen([MYNACARD, "--home", str(home), "ocsp", "serve", *HSM, *store,
                             "--port", str(port), "--open", "--pregenerated", *extra], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            break
        except OSError:
            assert proc.poll() is None, proc.communicate()
            time.sleep(0.05)
    return proc, f"http://127.0.0.1:{port}"


def _stop(proc: subprocess.Popen[str]) -> None:
    proc.terminate()
    _, err = proc.communicate(timeout=30)
    assert "Traceback" not in err and not shows(err, PIN), err
    assert proc.returncode == 0, err


@pytest.fixture
def responders(store_home: tuple[Path, list[str]]) -> Iterator[list[str]]:
    home, store = store_home
    started = [_start(home, store, "--no-refresh"),
               _start(home, store, "--refresh-every", "1s")]
    yield [url for _, url in started]
    for proc, _ in started:
        _stop(proc)


def _ask(url: str, home: Path, cert: str, *, get: bool = False) -> bytes:
    c = x509.load_pem_x509_certificate((home / cert).read_bytes())
    root = x509.load_pem_x509_certificate((home / "ca" / "sign-root.pem").read_bytes())
    der = ocsp.OCSPRequestBuilder().add_certificate(c, root, hashes.SHA1()).build() \
        .public_bytes(Encoding.DER)
    if get:
        req = urllib.request.Request(url + "/" + base64.b64encode(der).decode())
    else:
        req = urllib.request.Request(url + "/", data=der,
                                     headers={"Content-Type": "application/ocsp-request"})
    with urllib.request.urlopen(req, timeout=30) as resp:
        assert resp.headers["Content-Type"] == "application/ocsp-response"
        return bytes(resp.read())


def _status(der: bytes) -> ocsp.OCSPCertStatus:
    return ocsp.load_der_ocsp_response(der).certificate_status


def test_pregenerate_reports_and_is_idempotent(store_home) -> None:
    home, store = store_home
    res = run(home, "ocsp", "pregenerate", *HSM, *store, "--json", check=True)
    out = json.loads(res.stdout)
    assert out["stored"] >= 2
    again = json.loads(run(home, "ocsp", "pregenerate", *HSM, *store, "--json",
                           check=True).stdout)
    assert again["signed"] == 0 and again["stored"] == out["stored"]
    bad = run(home, "ocsp", "pregenerate", *HSM, *store, "--validity", "soon")
    assert bad.returncode == 2


def test_two_responders_answer_identically_and_both_see_a_revocation(
        store_home, responders) -> None:
    home, store = store_home
    run(home, "ocsp", "pregenerate", *HSM, *store, check=True)
    a, b = (_ask(url, home, "s0.pem") for url in responders)
    assert a == b  # the same stored bytes, from two processes
    assert _status(a) is ocsp.OCSPCertStatus.GOOD
    assert _ask(responders[0], home, "s0.pem", get=True) == a
    run(home, "ca", "revoke", *store, _serial(home / "s0.pem"), "--reason", "keyCompromise",
        check=True)
    for url in responders:  # the very next answer of each says revoked
        resp = ocsp.load_der_ocsp_response(_ask(url, home, "s0.pem"))
        assert resp.certificate_status is ocsp.OCSPCertStatus.REVOKED
        assert resp.revocation_reason is x509.ReasonFlags.key_compromise
    # the other certificate is unaffected, and openssl agrees with the lean server
    assert _status(_ask(responders[1], home, "s1.pem")) is ocsp.OCSPCertStatus.GOOD
    res = subprocess.run(
        ["openssl", "ocsp", "-issuer", str(home / "ca" / "sign-root.pem"), "-cert",
         str(home / "s0.pem"), "-url", responders[1], "-CAfile",
         str(home / "ca" / "sign-root.pem"), "-no_nonce"], capture_output=True, text=True,
        timeout=30)
    assert res.returncode == 0 and ": revoked" in res.stdout, res.stdout + res.stderr
    # the refreshing responder re-signs the revoked status into the store; then both
    # serve the same stored bytes again
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        a, b = (_ask(url, home, "s0.pem") for url in responders)
        if a == b:
            break
        time.sleep(0.5)
    assert a == b and _status(a) is ocsp.OCSPCertStatus.REVOKED


def test_workers_share_one_port(store_home) -> None:
    home, store = store_home
    proc, url = _start(home, store, "--workers", "2", "--no-refresh")
    try:
        answers = {_ask(url, home, "s1.pem") for _ in range(20)}  # new connection each
        assert len(answers) == 1
        assert _status(answers.pop()) is ocsp.OCSPCertStatus.GOOD
        pids = subprocess.run(["pgrep", "-P", str(proc.pid)], capture_output=True,
                              text=True).stdout.split()
        assert len(pids) >= 2  # two worker processes
    finally:
        _stop(proc)


def test_lean_server_limits(store_home) -> None:
    home, store = store_home
    proc, url = _start(home, store, "--no-refresh", "--header-timeout", "1")
    port = int(url.rsplit(":", 1)[1])
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
            s.sendall(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 20000\r\n\r\n")
            assert s.recv(100).startswith(b"HTTP/1.1 413")
        # the body still arriving after the 413 is read and dropped (a lingering close)
        sent, answer = answer_to_a_body_sent_late(
            port, b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 200000\r\n\r\n",
            b"0" * 200000)
        assert sent and answer.startswith(b"HTTP/1.1 413"), answer[:80]
        with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
            s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n")  # never finishes its headers
            assert s.recv(100).startswith(b"HTTP/1.1 408")
        with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
            s.sendall(b"GET /garbage HTTP/1.1\r\nHost: x\r\n\r\n" * 2)  # pipelined
            data = b""
            while data.count(b"HTTP/1.1 200") < 2:
                chunk = s.recv(65536)
                assert chunk
                data += chunk
            resp = data.split(b"\r\n\r\n", 1)[1][:5]
            assert ocsp.load_der_ocsp_response(resp).response_status is \
                ocsp.OCSPResponseStatus.MALFORMED_REQUEST
    finally:
        _stop(proc)


def _revoke_many_elsewhere(location: str, serial_hex: str) -> None:
    """`revoke_many` from another process, as a batch job would."""
    code = ("import sys, datetime as dt; from cryptography import x509;"
            " from pki.store import open_store, Revocation;"
            " s = open_store(sys.argv[1]);"
            " print(s.revoke_many([Revocation(int(sys.argv[2], 16),"
            " x509.ReasonFlags.cessation_of_operation, None, dt.datetime.now(dt.UTC))]));"
            " s.close()")
    res = subprocess.run([str(Path(MYNACARD).parent / "python"), "-c", code, location,
                          serial_hex], capture_output=True, text=True, timeout=60,
                         env=dict(os.environ, PYTHONPATH=os.getcwd()))
    assert res.returncode == 0 and "[True]" in res.stdout, res.stdout + res.stderr


def test_memory_path_sees_a_revocation_by_another_process_at_once(
        store_home, monkeypatch: pytest.MonkeyPatch) -> None:
    """The lean server holds pre-generated responses in memory (`pki.ocsp.memory`); a
    `ca revoke` and a `revoke_many` committed by other processes are seen by the very
    next request, on SQLite (data_version) and PostgreSQL (the status_changes counter)."""
    from cryptography.hazmat.primitives.asymmetric import rsa

    from pki.ca import load_ca
    from pki.ocsp import OcspResponder
    from pki.ocsp.lean import Server
    from pki.ocsp.responder import ResponderIdentity
    from pki.profiles import Hierarchy
    from pki.store import open_readonly_store

    home, store = store_home
    for n in (2, 3):  # certificates of this test alone
        pub = _new_key(home, f"holder{n}")
        run(home, "ca", "issue", *HSM, *store, "--profile", "signing", "--public-key",
            str(pub), "--identity", str(home / "id.json"), "--holder-id", f"R{n}",
            "--card-expiry", "2035-01-01", "--out", str(home / f"s{n}.pem"), check=True)
    run(home, "ocsp", "pregenerate", *HSM, *store, check=True)
    location = store[1] if store else str(home / "store.sqlite")
    ro = open_readonly_store(location)
    hc = load_ca(home / "ca").hierarchies[Hierarchy.SIGN]
    # a stand-in responder key and certificate (the HSM's key stays in the CA's process):
    # the test reads statuses, not signatures
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    now = dt.datetime.now(dt.UTC)
    stand_in = (x509.CertificateBuilder().subject_name(hc.ocsp_cert.subject)
                .issuer_name(hc.root_cert.subject).public_key(key.public_key())
                .serial_number(x509.random_serial_number()).not_valid_before(now)
                .not_valid_after(now + dt.timedelta(days=1))
                .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.OCSP_SIGNING]),
                               critical=False)
                .sign(key, hashes.SHA256()))
    identity = ResponderIdentity("sign", hc.root_cert, stand_in, key)
    responder = OcspResponder(store=ro, identities=[identity])
    server = Server(responder)
    assert server.memory is not None and server.memory.enabled
    reads = {"n": 0}
    real = ro.pregenerated

    def counted(*args: object, **kwargs: object) -> object:
        reads["n"] += 1
        return real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(ro, "pregenerated", counted)

    def ask(cert: str) -> ocsp.OCSPResponse:
        c = x509.load_pem_x509_certificate((home / cert).read_bytes())
        der = ocsp.OCSPRequestBuilder().add_certificate(c, hc.root_cert,
                                                        hashes.SHA1()).build() \
            .public_bytes(Encoding.DER)
        raw, _ = server.answer(b"POST", b"/", der, None, None, "192.0.2.9")
        assert raw.startswith(b"HTTP/1.1 200 "), raw[:80]
        return ocsp.load_der_ocsp_response(raw.split(b"\r\n\r\n", 1)[1])

    try:
        for cert, revoke, reason in (
                ("s2.pem", "ca revoke", x509.ReasonFlags.key_compromise),
                ("s3.pem", "revoke_many", x509.ReasonFlags.cessation_of_operation)):
            assert ask(cert).certificate_status is ocsp.OCSPCertStatus.GOOD
            before = reads["n"]
            for _ in range(3):  # answered from memory: the store's lookup is not asked
                assert ask(cert).certificate_status is ocsp.OCSPCertStatus.GOOD
            assert reads["n"] == before
            if revoke == "ca revoke":
                run(home, "ca", "revoke", *store, _serial(home / cert), "--reason",
                    "keyCompromise", check=True)
            else:
                _revoke_many_elsewhere(location, _serial(home / cert))
            # the very next request: the held response is forgotten and the stored one,
            # signed for the old status, unreachable: the responder signs "revoked"
            resp = ask(cert)
            assert resp.certificate_status is ocsp.OCSPCertStatus.REVOKED
            assert resp.revocation_reason is reason
            assert len(server.memory) == 0
            run(home, "ocsp", "pregenerate", *HSM, *store, check=True)
            ask(cert)  # the re-signed stored response, held again
            before = reads["n"]
            assert ask(cert).certificate_status is ocsp.OCSPCertStatus.REVOKED
            assert reads["n"] == before
    finally:
        ro.close()
