"""OCSP is served to registered relying parties only: a real responder over HTTP with the
relying-party token check, queried with openssl and urllib."""

from __future__ import annotations

import logging
import subprocess
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509 import ocsp
from http_support import answer_to_a_body_sent_late
from publication_support import HSM, env, free_port, issue, run, wait_port

from pki.relying_parties.registry import RelyingPartyRegistry, TokenAuthorizer


@pytest.fixture(scope="module")
def authed(pub_home: Path) -> Iterator[tuple[str, TokenAuthorizer]]:
    """The responder app with the token check (no cache, so removals act at once)."""
    import uvicorn

    from hsm import PinSource, open_key_manager
    from hsm.softhsm import use_softhsm
    from pki.ca import load_ca
    from pki.ocsp import OcspResponder
    from pki.ocsp.server import build_app
    from pki.store import open_readonly_store, open_store

    open_store(pub_home / "store.sqlite").close()
    import os

    os.environ.update(env())
    use_softhsm(pub_home)
    km = open_key_manager(f"pkcs11:token={HSM[1]}", pin_source=PinSource.from_spec(HSM[3]))
    ro = open_readonly_store(pub_home / "store.sqlite")
    responder = OcspResponder.from_ca(key_source=km, ca=load_ca(pub_home / "ca"), store=ro)
    authorizer = TokenAuthorizer(pub_home / "store.sqlite", ttl=0)
    from pki.ocsp.server import LIMITS
    from pki.serving import RefusalCounter, Tls, uvicorn_config

    port = free_port()
    refusals = RefusalCounter(window=2.0)  # refusals are logged once per window, counted
    server = uvicorn.Server(uvicorn_config(
        build_app(responder, authorizer=authorizer, refusals=refusals), host="127.0.0.1",
        port=port, tls=Tls(), limits=LIMITS, refusals=refusals))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    wait_port(port)
    yield f"http://127.0.0.1:{port}", authorizer
    server.should_exit = True
    thread.join(10)
    authorizer.close()
    ro.close()
    km.close()


def _request(cert: x509.Certificate, issuer: x509.Certificate) -> bytes:
    return ocsp.OCSPRequestBuilder().add_certificate(cert, issuer, hashes.SHA1()).build() \
        .public_bytes(Encoding.DER)


def _post(url: str, body: bytes, token: str | None) -> tuple[int, bytes, dict[str, str]]:
    headers = {"Content-Type": "application/ocsp-request"}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    req = urllib.request.Request(url, data=body, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, resp.read(), dict(resp.headers.items())
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read(), dict(exc.headers.items())


def _openssl(pub_home: Path, url: str, cert: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["openssl", "ocsp", "-issuer", str(pub_home / "ca" / "sign-root.pem"), "-cert", str(cert),
         "-url", url, "-CAfile", str(pub_home / "ca" / "sign-root.pem"), "-no_nonce", *extra],
        capture_output=True, text=True, timeout=30)


def test_unregistered_callers_get_401_and_registered_ones_an_answer(
        pub_home: Path, authed: tuple[str, TokenAuthorizer], rp_token: str,
        caplog: pytest.LogCaptureFixture) -> None:
    url, _ = authed
    serial, pem = issue(pub_home, "R-ACCESS-1")
    cert = x509.load_pem_x509_certificate(pem.read_bytes())
    root = x509.load_pem_x509_certificate((pub_home / "ca" / "sign-root.pem").read_bytes())
    body = _request(cert, root)
    with caplog.at_level(logging.WARNING, logger="pki.ocsp.server"):
        for token in (None, "rp_not-a-registered-token", ""):
            status, data, headers = _post(url, body, token)
            assert status == 401, data
            assert headers.get("www-authenticate", headers.get("WWW-Authenticate", "")) \
                .startswith("Bearer")
            with pytest.raises(ValueError):
                ocsp.load_der_ocsp_response(data)  # plain HTTP, not an OCSP response
        # one log line per address and reason per window, with the count
        deadline = time.monotonic() + 10
        while not any("refused 2 request(s)" in r.getMessage() and "unknown token"
                      in r.getMessage() for r in caplog.records):
            assert time.monotonic() < deadline, caplog.text
            time.sleep(0.05)
    refused = [r.getMessage() for r in caplog.records if "refused" in r.getMessage()]
    assert len(refused) == 2 and any("refused 1 request(s)" in m and "no bearer token" in m
                                     for m in refused), refused
    assert "rp_not-a-registered-token" not in caplog.text and rp_token not in caplog.text

    status, data, _ = _post(url, body, rp_token)
    assert status == 200
    resp = ocsp.load_der_ocsp_response(data)
    assert resp.certificate_status is ocsp.OCSPCertStatus.GOOD
    assert resp.serial_number == int(serial, 16)

    # GET (RFC 6960 appendix A) is checked the same way
    import base64
    import urllib.parse

    get_url = f"{url}/{urllib.parse.quote(base64.b64encode(body).decode())}"
    req = urllib.request.Request(get_url)
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(req, timeout=10)
    assert refused.value.code == 401
    req.add_header("Authorization", f"Bearer {rp_token}")
    with urllib.request.urlopen(req, timeout=10) as ok:
        assert ok.status == 200


def test_openssl_with_and_without_the_bearer_header(
        pub_home: Path, authed: tuple[str, TokenAuthorizer], rp_token: str) -> None:
    url, _ = authed
    _, pem = issue(pub_home, "R-ACCESS-2")
    refused = _openssl(pub_home, url, pem)
    assert refused.returncode != 0 and "good" not in refused.stdout
    ok = _openssl(pub_home, url, pem, "-header", f"Authorization=Bearer {rp_token}")
    assert ok.returncode == 0, ok.stderr
    assert f"{pem}: good" in ok.stdout


def test_a_removed_party_is_refused(pub_home: Path, authed: tuple[str, TokenAuthorizer]) -> None:
    url, _ = authed
    _, pem = issue(pub_home, "R-ACCESS-3")
    cert = x509.load_pem_x509_certificate(pem.read_bytes())
    root = x509.load_pem_x509_certificate((pub_home / "ca" / "sign-root.pem").read_bytes())
    with RelyingPartyRegistry(pub_home / "store.sqlite") as reg:
        token = reg.add("short-lived platform", kind="platform-operator").token
        assert _post(url, _request(cert, root), token)[0] == 200
        reg.remove("short-lived platform")
    assert _post(url, _request(cert, root), token)[0] == 401


def test_token_answers_are_cached_for_the_ttl(pub_home: Path, rp_token: str) -> None:
    auth = TokenAuthorizer(pub_home / "store.sqlite", ttl=60)
    try:
        assert auth.party_for(f"Bearer {rp_token}") == "test verifier"
        assert auth.party_for(f"bearer   {rp_token} ") == "test verifier"
        assert auth.party_for(f"Basic {rp_token}") is None
        assert auth.party_for(None) is None
    finally:
        auth.close()


def test_mynacard_ocsp_serve_requires_a_token_unless_open(pub_home: Path, rp_token: str) -> None:
    from publication_support import MYNACARD

    _, pem = issue(pub_home, "R-ACCESS-4")
    for extra in ([], ["--workers", "2"]):
        port = free_port()
        proc = subprocess.Popen([MYNACARD, "--home", str(pub_home), "ocsp", "serve", *HSM,
                                 "--port", str(port), "--insecure-http", *extra], env=env(),
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            wait_port(port, proc)
            time.sleep(0.5 if extra else 0)
            url = f"http://127.0.0.1:{port}"
            assert _openssl(pub_home, url, pem).returncode != 0
            ok = _openssl(pub_home, url, pem, "-header", f"Authorization=Bearer {rp_token}")
            assert ok.returncode == 0 and f"{pem}: good" in ok.stdout, ok.stderr
            # `mynacard verify` as a registered relying party: refused without its token
            refused = run(pub_home, "verify", "--cert", str(pem), "--ocsp", url, "--json")
            assert refused.returncode != 0
            assert "registered relying parties only" in refused.stdout
            token_file = pub_home / "rp.token"
            token_file.write_text(rp_token + "\n")
            token_file.chmod(0o600)
            valid = run(pub_home, "verify", "--cert", str(pem), "--ocsp", url, "--json",
                        "--ocsp-token-source", f"file:{token_file}")
            assert valid.returncode == 0, valid.stdout + valid.stderr
            assert rp_token not in valid.stdout + valid.stderr
        finally:
            proc.terminate()
            _, err = proc.communicate(timeout=10)
        assert rp_token not in err and "Traceback" not in err


def test_ocsp_serve_refuses_plain_http_with_tokens(pub_home: Path) -> None:
    done = run(pub_home, "ocsp", "serve", *HSM, "--port", str(free_port()))
    assert done.returncode == 2
    assert "plain HTTP" in done.stderr and "--insecure-http" in done.stderr
    assert "Traceback" not in done.stderr


def test_stalled_clients_do_not_starve_a_registered_party(
        pub_home: Path, authed: tuple[str, TokenAuthorizer], rp_token: str) -> None:
    """200 connections send half a request line and stall; a registered relying party is
    still answered, long before the stalled ones' header deadline (10 s) frees them."""
    import socket

    from pki.ocsp.server import LIMITS

    url, _ = authed
    port = int(url.rsplit(":", 1)[1])
    _, pem = issue(pub_home, "R-ACCESS-5")
    cert = x509.load_pem_x509_certificate(pem.read_bytes())
    root = x509.load_pem_x509_certificate((pub_home / "ca" / "sign-root.pem").read_bytes())
    stalled: list[socket.socket] = []
    try:
        for _ in range(200):
            s = socket.create_connection(("127.0.0.1", port), timeout=10)
            s.sendall(b"POST /ocsp HT")
            stalled.append(s)
        started = time.monotonic()
        status, data, _ = _post(url, _request(cert, root), rp_token)
        assert status == 200
        assert ocsp.load_der_ocsp_response(data).certificate_status is ocsp.OCSPCertStatus.GOOD
        assert time.monotonic() - started < LIMITS.header_timeout / 2
    finally:
        for s in stalled:
            s.close()


def test_an_oversized_request_gets_413(authed: tuple[str, TokenAuthorizer],
                                       rp_token: str) -> None:
    url, _ = authed
    status, _, _ = _post(url, b"0" * (64 * 1024), rp_token)
    assert status == 413


def test_ocsp_serve_over_tls(pub_home: Path, rp_token: str, tmp_path: Path) -> None:
    import http.client

    from publication_support import MYNACARD
    from tls_certs import TestCa

    ca = TestCa(tmp_path / "tls", "ocsp")
    server_cert = ca.issue("ocsp-server", server=True)
    _, pem = issue(pub_home, "R-ACCESS-6")
    cert = x509.load_pem_x509_certificate(pem.read_bytes())
    root = x509.load_pem_x509_certificate((pub_home / "ca" / "sign-root.pem").read_bytes())
    port = free_port()
    proc = subprocess.Popen([MYNACARD, "--home", str(pub_home), "ocsp", "serve", *HSM,
                             "--port", str(port), "--tls-cert", str(server_cert.cert),
                             "--tls-key", str(server_cert.key)], env=env(),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_port(port, proc)
        conn = http.client.HTTPSConnection("127.0.0.1", port, timeout=10,
                                           context=ca.client_context())
        conn.request("POST", "/", body=_request(cert, root),
                     headers={"Content-Type": "application/ocsp-request",
                              "Authorization": f"Bearer {rp_token}"})
        resp = conn.getresponse()
        assert resp.status == 200
        assert ocsp.load_der_ocsp_response(resp.read()).certificate_status \
            is ocsp.OCSPCertStatus.GOOD
        conn.close()
        # plain HTTP to the TLS port gets no OCSP answer
        with pytest.raises((urllib.error.URLError, ConnectionError, http.client.HTTPException)):
            _post(f"http://127.0.0.1:{port}", _request(cert, root), rp_token)
    finally:
        proc.terminate()
        _, err = proc.communicate(timeout=10)
    assert "Traceback" not in err and rp_token not in err
    assert f"https://127.0.0.1:{port}/" in err


def test_an_oversized_chunked_request_gets_413(authed: tuple[str, TokenAuthorizer],
                                               rp_token: str) -> None:
    """No Content-Length to refuse by: the body is counted as it arrives."""
    import http.client

    url, _ = authed
    conn = http.client.HTTPConnection("127.0.0.1", int(url.rsplit(":", 1)[1]), timeout=10)
    conn.request("POST", "/", body=iter([b"0" * 8192] * 8), encode_chunked=True,
                 headers={"Content-Type": "application/ocsp-request",
                          "Authorization": f"Bearer {rp_token}"})
    assert conn.getresponse().status == 413
    conn.close()


def test_a_body_still_arriving_after_the_413_does_not_reset_the_answer(
        authed: tuple[str, TokenAuthorizer], rp_token: str) -> None:
    """The server half-closes and drops the rest of the body (a lingering close), so the
    client that sends it all before reading still reads the 413."""
    port = int(authed[0].rsplit(":", 1)[1])
    head = (b"POST / HTTP/1.1\r\nHost: x\r\nContent-Type: application/ocsp-request\r\n"
            b"Authorization: Bearer " + rp_token.encode() + b"\r\n"
            b"Content-Length: 200000\r\n\r\n" + b"0" * 20000)
    sent, answer = answer_to_a_body_sent_late(port, head, b"0" * 180000)
    assert sent and answer.startswith(b"HTTP/1.1 413"), answer[:80]


@pytest.mark.parametrize(("kind", "sign_ok", "auth_ok"), [
    ("利用者証明検証者", False, True),
    ("署名検証者", True, False),
    ("プラットフォーム事業者", True, True),
])
def test_each_kind_is_answered_about_its_own_certificates_only(
        pub_home: Path, authed: tuple[str, TokenAuthorizer], kind: str, sign_ok: bool,
        auth_ok: bool) -> None:
    url, _ = authed
    with RelyingPartyRegistry(pub_home / "store.sqlite") as reg:
        token = reg.add(f"kind test {kind}", kind=kind).token
    try:
        for profile, hierarchy, ok in (("signing", "sign", sign_ok),
                                       ("user-authentication", "auth", auth_ok)):
            serial, pem = issue(pub_home, f"R-KIND-{hierarchy}", profile)
            cert = x509.load_pem_x509_certificate(pem.read_bytes())
            root = x509.load_pem_x509_certificate(
                (pub_home / "ca" / f"{hierarchy}-root.pem").read_bytes())
            status, data, _ = _post(url, _request(cert, root), token)
            assert status == 200, data
            resp = ocsp.load_der_ocsp_response(data)
            if ok:
                assert resp.response_status is ocsp.OCSPResponseStatus.SUCCESSFUL, profile
                assert resp.certificate_status is ocsp.OCSPCertStatus.GOOD
                assert resp.serial_number == int(serial, 16)
            else:
                assert resp.response_status is ocsp.OCSPResponseStatus.UNAUTHORIZED, profile
    finally:
        with RelyingPartyRegistry(pub_home / "store.sqlite") as reg:
            reg.remove(f"kind test {kind}")
