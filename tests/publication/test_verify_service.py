"""`verify-serve` (pki/verify_service.py) through its client (pki/verify_client.py):
access by relying-party kind, the four facts only with consent and only to the kinds
allowed, a per-party user pseudonym that survives renewal and links the signing and user
certificates, the successor certificate, the RFC 5019 OCSP cache, logins, and an
OpenAPI description that matches the routes."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from publication_support import HSM, free_port, run, wait_port

from pki.errors import VerificationError
from pki.login import LOGIN_CONTEXT, canonical
from pki.relying_parties.registry import RelyingPartyRegistry, TokenAuthorizer
from pki.verify_client import VerifyClient
from pki.verify_service import OPENAPI, OcspCache, VerifyService, build_app


@pytest.fixture(scope="module")
def service(pub_home: Path, cli_ocsp: str, tmp_path_factory: pytest.TempPathFactory
            ) -> Iterator[tuple[str, dict[str, str], OcspCache]]:
    import uvicorn

    from pki.serving import Limits, Tls, uvicorn_config
    from pki.store import open_readonly_store, open_store
    from pki.verify import load_roots

    open_store(pub_home / "store.sqlite").close()
    tokens = {}
    with RelyingPartyRegistry(pub_home / "store.sqlite") as reg:
        for kind in ("signature_verifier", "user_verifier", "platform_operator"):
            tokens[kind] = reg.add(f"svc {kind}", kind=kind).token
    cache = OcspCache(url=cli_ocsp, token=None)
    store = open_readonly_store(pub_home / "store.sqlite")
    authorizer = TokenAuthorizer(pub_home / "store.sqlite", ttl=0)
    svc = VerifyService(roots=load_roots([pub_home / "ca" / "sign-root.pem",
                                          pub_home / "ca" / "auth-root.pem"]),
                        state_dir=tmp_path_factory.mktemp("svc") / "state", ocsp=cache,
                        store=store)
    port = free_port()
    server = uvicorn.Server(uvicorn_config(build_app(svc, authorizer=authorizer),
                                           host="127.0.0.1", port=port, tls=Tls(),
                                           limits=Limits(max_body=1024 * 1024)))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    wait_port(port)
    yield f"http://127.0.0.1:{port}", tokens, cache
    server.should_exit = True
    thread.join(10)
    authorizer.close()
    store.close()
    with RelyingPartyRegistry(pub_home / "store.sqlite") as reg:
        for kind in tokens:
            reg.remove(f"svc {kind}")


def _issue_own(home: Path, holder: str, profile: str, *,
               replaces: str | None = None) -> tuple[str, bytes, rsa.RSAPrivateKey]:
    """Issue with a key the test keeps (so it can answer logins)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pub = home / f"own-{holder}-{profile}-{replaces}.pub"
    pub.write_bytes(key.public_key().public_bytes(Encoding.PEM,
                                                  PublicFormat.SubjectPublicKeyInfo))
    out = pub.with_suffix(".pem")
    extra = ["--replaces", replaces] if replaces else []
    res = run(home, "ca", "issue", *HSM, "--profile", profile, "--public-key", str(pub),
              "--identity", str(home / "id.json"), "--holder-id", holder, "--card-expiry",
              "2035-01-01", "--out", str(out), "--json", *extra, check=True)
    der = x509.load_pem_x509_certificate(out.read_bytes()).public_bytes(Encoding.DER)
    return json.loads(res.stdout)["serial"], der, key


def _answer(challenge: dict[str, Any], der: bytes, key: rsa.RSAPrivateKey) -> dict[str, Any]:
    import base64

    sig = key.sign(LOGIN_CONTEXT + canonical(challenge), padding.PKCS1v15(), hashes.SHA256())
    return {"challenge": challenge, "certificate": base64.b64encode(der).decode(),
            "signature": base64.b64encode(sig).decode()}


def test_each_kind_its_certificates_facts_with_consent_and_one_user(
        pub_home: Path, service: tuple[str, dict[str, str], OcspCache]) -> None:
    url, tokens, cache = service
    sig_v, user_v, platform = (VerifyClient(url, tokens[k]) for k in
                               ("signature_verifier", "user_verifier", "platform_operator"))
    s_serial, s_der, _ = _issue_own(pub_home, "R-SVC-1", "signing")
    a_serial, a_der, _ = _issue_own(pub_home, "R-SVC-1", "user-authentication")

    with pytest.raises(VerificationError, match="HTTP 403"):
        user_v.certificate(s_der)  # a user verifier is not told about signing certificates
    with pytest.raises(VerificationError, match="HTTP 403"):
        sig_v.certificate(a_der)
    with pytest.raises(VerificationError, match="HTTP 401"):
        VerifyClient(url, "rp_unknown").certificate(s_der)

    no_consent = sig_v.certificate(s_der)
    assert no_consent["result"] == "valid" and "facts" not in no_consent
    with_consent = sig_v.certificate(s_der, consent=True)
    assert with_consent["facts"]["name"] == "佐藤 花子"
    assert platform.certificate(s_der, consent=True)["facts"]["name"] == "佐藤 花子"
    auth = user_v.certificate(a_der, consent=True)
    assert auth["result"] == "valid" and "facts" not in auth
    assert auth["certificate"]["profile"] == "user-authentication"

    # one user across the signing and user certificates, per party
    p_sign, p_auth = platform.certificate(s_der)["user_id"], platform.certificate(a_der)["user_id"]
    assert p_sign == p_auth and p_sign
    assert no_consent["user_id"] != p_sign  # another party, another pseudonym

    # renewal: the old certificate names its successor; the user stays the same
    new_serial, new_der, _ = _issue_own(pub_home, "R-SVC-1", "signing", replaces=s_serial)
    old = platform.certificate(s_der)
    assert old["successor"]["serial"] == new_serial
    assert x509.load_pem_x509_certificate(old["successor"]["certificate"].encode()) \
        .serial_number == int(new_serial, 16)
    assert platform.certificate(new_der)["user_id"] == p_sign

    # the OCSP cache: one request per certificate per validity period
    before = cache.requests
    for _ in range(5):
        assert sig_v.certificate(s_der)["revocation"]["status"] in ("good", "revoked")
    assert cache.requests == before
    _, fresh_der, _ = _issue_own(pub_home, "R-SVC-2", "signing")
    for _ in range(3):
        sig_v.certificate(fresh_der)
    assert cache.requests == before + 1


def test_login_through_the_service(
        pub_home: Path, service: tuple[str, dict[str, str], OcspCache]) -> None:
    url, tokens, _ = service
    user_v, sig_v = VerifyClient(url, tokens["user_verifier"]), \
        VerifyClient(url, tokens["signature_verifier"])
    serial, der, key = _issue_own(pub_home, "R-SVC-LOGIN", "user-authentication")
    with pytest.raises(VerificationError, match="HTTP 403"):
        sig_v.login_challenge()
    ch = user_v.login_challenge(ttl=60)
    ok = user_v.login(_answer(ch, der, key))
    assert ok["result"] == "valid" and ok["certificate"]["serial"] == serial
    assert ok["user_id"]
    again = user_v.login(_answer(ch, der, key))
    assert again["result"] == "invalid" and again["reasons"] == ["the challenge was already used"]
    # a challenge of another party is not this party's
    other = VerifyClient(url, tokens["platform_operator"]).login_challenge()
    foreign = user_v.login(_answer(other, der, key))
    assert foreign["reasons"] == ["the challenge is not one this relying party made"]
    # a signing key cannot log in (its certificate is not a user-authentication one)
    _, s_der, s_key = _issue_own(pub_home, "R-SVC-LOGIN", "signing")
    signing = user_v.login(_answer(user_v.login_challenge(), s_der, s_key))
    assert signing["result"] == "invalid"
    assert any(r.startswith("not a user-authentication certificate")
               for r in signing["reasons"]), signing
    # revoked: the login is refused as revoked (a fresh certificate, so no cached answer)
    serial2, der2, key2 = _issue_own(pub_home, "R-SVC-LOGIN2", "user-authentication")
    run(pub_home, "ca", "revoke", serial2, "--reason", "keyCompromise", check=True)
    dead = user_v.login(_answer(user_v.login_challenge(), der2, key2))
    assert dead["result"] == "revoked"


def test_openapi_matches_the_routes(
        service: tuple[str, dict[str, str], OcspCache]) -> None:
    import urllib.request

    url, _, _ = service
    with urllib.request.urlopen(f"{url}/openapi.json", timeout=10) as resp:
        served = json.loads(resp.read())
    assert served == json.loads(json.dumps(OPENAPI))
    from starlette.routing import Route

    svc_routes = {r.path: set(r.methods or ()) - {"HEAD"} for r in
                  build_app(VerifyService.__new__(VerifyService), authorizer=None).routes
                  if isinstance(r, Route) and r.path != "/openapi.json"}
    assert svc_routes == {p: {m.upper() for m in ops} for p, ops in OPENAPI["paths"].items()}
