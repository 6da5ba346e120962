"""Pre-generated OCSP responses: signed ahead, served without a signature, never stale."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509 import ocsp

from pki.ocsp import OcspResponder, Pregenerator
from pki.profiles import Hierarchy
from pki.store import open_readonly_store


def _request(cert, issuer, *, nonce: bytes | None = None, alg=hashes.SHA1) -> bytes:
    b = ocsp.OCSPRequestBuilder().add_certificate(cert, issuer, alg())
    if nonce is not None:
        b = b.add_extension(x509.OCSPNonce(nonce), critical=False)
    return b.build().public_bytes(Encoding.DER)


class Signatures:
    """Counts the responses the responder signs (pki.ocsp.responder.sign_response)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        import pki.ocsp.responder as module

        self.count, real = 0, module.sign_response

        def counted(*args, **kwargs):
            self.count += 1
            return real(*args, **kwargs)

        monkeypatch.setattr(module, "sign_response", counted)


@pytest.fixture
def responder(km, session_ca, store, clock) -> Iterator[OcspResponder]:
    ro = open_readonly_store(store.location)
    yield OcspResponder.from_ca(key_source=km, ca=session_ca, store=ro, clock=clock)
    ro.close()


@pytest.fixture
def pregen(km, session_ca, store, clock) -> Pregenerator:
    return Pregenerator.from_ca(key_source=km, ca=session_ca, store=store, clock=clock,
                                validity=dt.timedelta(hours=24))


@pytest.fixture
def issued(issuing, holder_key, adult):
    return issuing.issue_signing(public_key=holder_key.public_key(), identity=adult,
                                 holder_id="R1", card_expiry=dt.date(2035, 1, 1))


def _root(session_ca):
    return session_ca.hierarchies[Hierarchy.SIGN].root_cert


def test_served_without_signing_and_revocation_is_seen_at_once(
        responder, pregen, issued, session_ca, store, clock, monkeypatch) -> None:
    report = pregen.run_once()
    assert report.signed == 1 and report.by_status == {"good": 1}
    assert store.pregenerated_count() == 1
    assert pregen.run_once().signed == 0  # nothing due any more
    signatures = Signatures(monkeypatch)
    req = _request(issued.certificate, _root(session_ca))
    first = responder.respond(req)
    assert first.status == "good" and first.cacheable
    resp = ocsp.load_der_ocsp_response(first.der)
    assert resp.certificate_status is ocsp.OCSPCertStatus.GOOD
    assert resp.serial_number == issued.serial
    assert resp.next_update_utc - resp.this_update_utc == dt.timedelta(hours=24)
    responder_cert = session_ca.hierarchies[Hierarchy.SIGN].ocsp_cert
    responder_cert.public_key().verify(resp.signature, resp.tbs_response_bytes,
                                       padding.PKCS1v15(), resp.signature_hash_algorithm)
    assert responder.respond(req).der == first.der
    assert signatures.count == 0  # served, not signed
    # revoke: the very next answer says revoked (signed on demand, stale row unreachable)
    store.revoke(issued.serial, reason=x509.ReasonFlags.key_compromise, at=clock.now)
    after = responder.respond(req)
    assert after.status == "revoked"
    resp = ocsp.load_der_ocsp_response(after.der)
    assert resp.certificate_status is ocsp.OCSPCertStatus.REVOKED
    assert resp.revocation_reason is x509.ReasonFlags.key_compromise
    assert signatures.count == 1
    # regenerated: served from the store again, revoked
    assert pregen.run_once().by_status == {"revoked": 1}
    clock.advance(seconds=5)
    again = responder.respond(req)
    assert again.status == "revoked"
    assert ocsp.load_der_ocsp_response(again.der).certificate_status is \
        ocsp.OCSPCertStatus.REVOKED
    assert again.this_update == clock.now - dt.timedelta(seconds=5)  # the stored one
    assert signatures.count == 1


def test_hold_makes_the_good_response_stale(responder, pregen, issued, session_ca, store,
                                            clock) -> None:
    pregen.run_once()
    req = _request(issued.certificate, _root(session_ca))
    assert responder.respond(req).status == "good"
    store.hold(issued.serial, at=clock.now)
    resp = ocsp.load_der_ocsp_response(responder.respond(req).der)
    assert resp.certificate_status is ocsp.OCSPCertStatus.REVOKED
    assert resp.revocation_reason is x509.ReasonFlags.certificate_hold
    assert pregen.run_once().by_status == {"hold": 1}
    resp = ocsp.load_der_ocsp_response(responder.respond(req).der)
    assert resp.revocation_reason is x509.ReasonFlags.certificate_hold


def test_bulk_revocation_is_seen_at_once(responder, pregen, issued, session_ca, store,
                                         clock) -> None:
    from pki.store import Revocation

    pregen.run_once()
    req = _request(issued.certificate, _root(session_ca))
    assert responder.respond(req).status == "good"
    store.revoke_many([Revocation(issued.serial, x509.ReasonFlags.superseded, None, clock.now)])
    assert responder.respond(req).status == "revoked"


def test_expiring_responses_are_refreshed_and_expired_ones_not_served(
        responder, pregen, issued, session_ca, clock) -> None:
    pregen.run_once()
    req = _request(issued.certificate, _root(session_ca))
    first = responder.respond(req)
    clock.advance(hours=11)
    assert pregen.run_once().signed == 0  # 13 h left, more than refresh_before (12 h)
    clock.advance(hours=2)
    assert pregen.run_once().signed == 1  # 11 h left: re-signed
    assert responder.respond(req).this_update > first.this_update
    clock.advance(hours=30)  # the stored response has ended: never served, signed instead
    late = responder.respond(req)
    assert late.this_update == clock.now and late.next_update > clock.now


def test_nonce_requests(km, session_ca, store, clock, pregen, issued) -> None:
    pregen.run_once()
    ro = open_readonly_store(store.location)
    try:
        stored = OcspResponder.from_ca(key_source=km, ca=session_ca, store=ro,
                                                       clock=clock)
        nonce = b"0123456789abcdef"
        signed = stored.respond(_request(issued.certificate, _root(session_ca), nonce=nonce))
        ext = ocsp.load_der_ocsp_response(signed.der).extensions
        assert ext.get_extension_for_class(x509.OCSPNonce).value.nonce == nonce
        assert not signed.cacheable
        ignoring = OcspResponder.from_ca(key_source=km, ca=session_ca, store=ro, clock=clock,
                                         nonces="ignore")
        plain = ignoring.respond(_request(issued.certificate, _root(session_ca)))
        with_nonce = ignoring.respond(_request(issued.certificate, _root(session_ca),
                                               nonce=nonce))
        assert with_nonce.der == plain.der and with_nonce.cacheable
        assert not ocsp.load_der_ocsp_response(with_nonce.der).extensions
    finally:
        ro.close()


def test_sha256_requests_and_unknown_serials_are_signed_on_demand(
        responder, pregen, issued, session_ca) -> None:
    pregen.run_once()
    result = responder.respond(_request(issued.certificate, _root(session_ca),
                                        alg=hashes.SHA256))
    resp = ocsp.load_der_ocsp_response(result.der)
    assert resp.certificate_status is ocsp.OCSPCertStatus.GOOD
    assert resp.hash_algorithm.name == "sha256"


def test_other_hierarchy_never_served_from_the_store(responder, pregen, issued,
                                                     session_ca) -> None:
    pregen.run_once()
    auth_root = session_ca.hierarchies[Hierarchy.AUTH].root_cert
    result = responder.respond(_request(issued.certificate, auth_root))
    assert result.status == "unauthorized"  # name of one hierarchy, key of the other


class _Tokens:
    """Authorizer stand-in: token "sign-rp" may ask about signing certificates only."""

    def party_for(self, header):
        return "rp" if header in ("Bearer sign-rp", "Bearer auth-rp") else None

    def hierarchies_for(self, header):
        return frozenset({"sign"}) if header == "Bearer sign-rp" else frozenset({"auth"})


def test_lean_server_tokens_kinds_and_etag(responder, pregen, issued, session_ca) -> None:
    from pki.ocsp.lean import Server

    pregen.run_once()
    server = Server(responder, authorizer=_Tokens())
    der = _request(issued.certificate, _root(session_ca))
    raw, close = server.answer(b"POST", b"/", der, None, None, "192.0.2.7")
    assert raw.startswith(b"HTTP/1.1 401 ") and b"WWW-Authenticate: Bearer" in raw
    assert server.refusals.take(everything=True)[0][:3] == ("192.0.2.7", "no bearer token", 1)
    raw, _ = server.answer(b"POST", b"/", der, "Bearer auth-rp", None, "192.0.2.7")
    body = raw.split(b"\r\n\r\n", 1)[1]
    assert ocsp.load_der_ocsp_response(body).response_status is \
        ocsp.OCSPResponseStatus.UNAUTHORIZED  # a user verifier asking about signing
    raw, close = server.answer(b"POST", b"/", der, "Bearer sign-rp", None, "192.0.2.7")
    head, body = raw.split(b"\r\n\r\n", 1)
    assert head.startswith(b"HTTP/1.1 200 ") and not close
    assert body == responder.respond(der).der
    assert b"Cache-Control: max-age=" in head
    etag = next(ln.split(b": ", 1)[1] for ln in head.split(b"\r\n") if ln.startswith(b"ETag"))
    import base64

    target = b"/" + base64.b64encode(der)
    raw, _ = server.answer(b"GET", target, b"", "Bearer sign-rp", etag, "192.0.2.7")
    assert raw.startswith(b"HTTP/1.1 304 ")
    raw, _ = server.answer(b"GET", target, b"", "Bearer sign-rp", b'"other"', "192.0.2.7")
    assert raw.split(b"\r\n\r\n", 1)[1] == body


def test_a_run_longer_than_the_refresh_margin_ends_and_expired_responses_go(
        km, session_ca, store, clock, issuing, holder_key, adult) -> None:
    """Signing takes time: with a refresh margin (validity - refresh_before) shorter than
    the run, the responses signed first were due again before the run ended and the run
    never did. Here every look at the clock costs 10 s against a 5 s margin; the run signs
    each certificate once and ends. Responses that have ended (here: of certificates past
    their end) are forgotten, so the table does not grow for ever."""
    for i in range(3):
        issuing.issue_signing(public_key=holder_key.public_key(), identity=adult,
                              holder_id=f"R{i}", card_expiry=dt.date(2035, 1, 1))
    calls = 0

    def slow_clock() -> dt.datetime:
        nonlocal calls
        calls += 1
        if calls > 500:
            raise AssertionError("the run did not end")
        clock.advance(seconds=10)
        return clock.now

    slow = Pregenerator.from_ca(key_source=km, ca=session_ca, store=store, clock=slow_clock,
                                validity=dt.timedelta(minutes=2),
                                refresh_before=dt.timedelta(seconds=115), batch=1)
    assert slow.run_once().signed == 3
    assert store.pregenerated_count() == 3
    # past the certificates' end: nothing is due, and their ended responses are dropped
    clock.advance(days=366 * 11)
    later = Pregenerator.from_ca(key_source=km, ca=session_ca, store=store, clock=clock,
                                 validity=dt.timedelta(hours=24))
    assert later.run_once().signed == 0
    assert store.pregenerated_count() == 0


def test_http_caches_keep_a_day_long_response_an_hour_at_most(
        responder, pregen, issued, session_ca) -> None:
    """A pre-generated response is valid for a day; the caching headers of both servers
    let an HTTP cache keep it an hour (a cached "good" would hide a revocation that long)."""
    from starlette.requests import Request

    from pki.ocsp.lean import _Headers
    from pki.ocsp.server import _response

    pregen.run_once()
    result = responder.respond(_request(issued.certificate, _root(session_ca)))
    assert result.pregenerated and result.next_update is not None
    now = responder.clock()
    assert result.next_update - now > dt.timedelta(hours=23)
    head = _Headers().caching(result, now.timestamp())
    assert b"Cache-Control: max-age=3600," in head
    request = Request({"type": "http", "method": "POST", "headers": [], "path": "/"})
    headers = _response(result, responder, request).headers
    assert headers["Cache-Control"].startswith("max-age=3600,")
