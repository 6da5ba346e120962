"""OCSP responder core and HTTP server (keys in SoftHSM2)."""

from __future__ import annotations

import base64
import datetime as dt
import os
import urllib.error
import urllib.request
from collections.abc import Iterator

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509 import ocsp

from pki.errors import OcspError
from pki.ocsp import OcspResponder, ResponderIdentity
from pki.profiles import Hierarchy
from pki.store import open_readonly_store


def _request(cert, issuer, *, nonce: bytes | None = None, alg=hashes.SHA1) -> bytes:
    b = ocsp.OCSPRequestBuilder().add_certificate(cert, issuer, alg())
    if nonce is not None:
        b = b.add_extension(x509.OCSPNonce(nonce), critical=False)
    return b.build().public_bytes(Encoding.DER)


@pytest.fixture
def responder(km, session_ca, store, clock) -> Iterator[OcspResponder]:
    ro = open_readonly_store(store.location)
    yield OcspResponder.from_ca(key_source=km, ca=session_ca, store=ro, clock=clock)
    ro.close()


@pytest.fixture
def issued(issuing, holder_key, adult):
    return issuing.issue_signing(public_key=holder_key.public_key(), identity=adult,
                                 holder_id="R1", card_expiry=dt.date(2035, 1, 1))


def _root(session_ca, h=Hierarchy.SIGN):
    return session_ca.hierarchies[h].root_cert


def test_good_then_revoked(responder, issued, session_ca, store, clock) -> None:
    root = _root(session_ca)
    result = responder.respond(_request(issued.certificate, root))
    assert result.status == "good" and result.cacheable
    resp = ocsp.load_der_ocsp_response(result.der)
    assert resp.response_status is ocsp.OCSPResponseStatus.SUCCESSFUL
    assert resp.certificate_status is ocsp.OCSPCertStatus.GOOD
    assert resp.serial_number == issued.serial
    assert resp.this_update_utc == clock.now
    assert resp.next_update_utc == clock.now + dt.timedelta(hours=1)
    responder_cert = session_ca.hierarchies[Hierarchy.SIGN].ocsp_cert
    assert resp.certificates == [responder_cert]
    responder_cert.public_key().verify(resp.signature, resp.tbs_response_bytes,
                                       padding.PKCS1v15(), resp.signature_hash_algorithm)
    # cached: same bytes while nothing changed
    assert responder.respond(_request(issued.certificate, root)).der == result.der
    store.revoke(issued.serial, reason=x509.ReasonFlags.key_compromise, at=clock.now)
    again = responder.respond(_request(issued.certificate, root))
    assert again.status == "revoked"
    resp = ocsp.load_der_ocsp_response(again.der)
    assert resp.certificate_status is ocsp.OCSPCertStatus.REVOKED
    assert resp.revocation_reason is x509.ReasonFlags.key_compromise
    assert resp.revocation_time_utc == clock.now


def test_hold_is_revoked_with_certificate_hold(responder, issued, session_ca, store,
                                               clock) -> None:
    store.hold(issued.serial, at=clock.now)
    resp = ocsp.load_der_ocsp_response(
        responder.respond(_request(issued.certificate, _root(session_ca))).der)
    assert resp.certificate_status is ocsp.OCSPCertStatus.REVOKED
    assert resp.revocation_reason is x509.ReasonFlags.certificate_hold


def test_sha256_cert_id_and_nonce_echo(responder, issued, session_ca) -> None:
    nonce = os.urandom(20)
    result = responder.respond(_request(issued.certificate, _root(session_ca), nonce=nonce,
                                        alg=hashes.SHA256))
    assert result.status == "good" and not result.cacheable
    resp = ocsp.load_der_ocsp_response(result.der)
    assert resp.extensions.get_extension_for_class(x509.OCSPNonce).value.nonce == nonce
    assert isinstance(resp.hash_algorithm, hashes.SHA256)


def test_unknown_serial_and_wrong_hierarchy(responder, issued, session_ca, issuing,
                                            holder_key, adult) -> None:
    # a certificate of the signing hierarchy asked about under the auth CA is unknown
    auth_root = _root(session_ca, Hierarchy.AUTH)
    b = ocsp.OCSPRequestBuilder().add_certificate_by_hash(
        issuer_name_hash=_hash(auth_root.subject.public_bytes()),
        issuer_key_hash=_key_hash(auth_root), serial_number=issued.serial,
        algorithm=hashes.SHA1())
    result = responder.respond(b.build().public_bytes(Encoding.DER))
    assert result.status == "unknown"
    assert ocsp.load_der_ocsp_response(result.der).certificate_status \
        is ocsp.OCSPCertStatus.UNKNOWN


def _hash(data: bytes) -> bytes:
    h = hashes.Hash(hashes.SHA1())
    h.update(data)
    return h.finalize()


def _key_hash(cert: x509.Certificate) -> bytes:
    from cryptography.hazmat.primitives.serialization import PublicFormat

    return _hash(cert.public_key().public_bytes(Encoding.DER, PublicFormat.PKCS1))


def test_malformed_and_unauthorized(responder, issued, other_ca) -> None:
    for junk in (b"", b"\x30\x03\x02\x01\x01", os.urandom(64), b"GET / HTTP/1.1"):
        result = responder.respond(junk)
        assert result.status == "malformedRequest"
        assert ocsp.load_der_ocsp_response(result.der).response_status \
            is ocsp.OCSPResponseStatus.MALFORMED_REQUEST
    foreign = other_ca.hierarchies[Hierarchy.SIGN].root_cert
    result = responder.respond(_request(issued.certificate, foreign))
    assert ocsp.load_der_ocsp_response(result.der).response_status \
        is ocsp.OCSPResponseStatus.UNAUTHORIZED


def test_cache_refreshes_after_half_validity(responder, issued, session_ca, clock) -> None:
    first = responder.respond(_request(issued.certificate, _root(session_ca)))
    clock.advance(minutes=20)
    assert responder.respond(_request(issued.certificate, _root(session_ca))).der == first.der
    clock.advance(minutes=11)
    fresh = responder.respond(_request(issued.certificate, _root(session_ca)))
    assert fresh.der != first.der and fresh.this_update == clock.now


def test_responder_validates_configuration(km, session_ca, store) -> None:
    ro = open_readonly_store(store.location)
    hc = session_ca.hierarchies[Hierarchy.SIGN]
    with pytest.raises(OcspError):
        OcspResponder(store=ro, identities=[])
    with pytest.raises(OcspError, match="OCSPSigning"):  # the root is not a responder cert
        OcspResponder(store=ro, identities=[ResponderIdentity(
            "sign", hc.root_cert, hc.root_cert, km.signer(hc.root_key))])
    with pytest.raises(TypeError):
        OcspResponder(store=object(), identities=[])  # type: ignore[arg-type]
    ro.close()


# -- HTTP ---------------------------------------------------------------------------------
def test_http_get_post_and_caching_headers(http_url, issued, session_ca) -> None:
    der = _request(issued.certificate, _root(session_ca))
    b64 = base64.b64encode(der).decode()
    with urllib.request.urlopen(f"{http_url}/jpki/{urllib.request.quote(b64, safe='')}") as r:
        body, headers = r.read(), r.headers
    assert headers["Content-Type"] == "application/ocsp-response"
    assert ocsp.load_der_ocsp_response(body).certificate_status is ocsp.OCSPCertStatus.GOOD
    assert "max-age=" in headers["Cache-Control"] and "public" in headers["Cache-Control"]
    assert headers["ETag"] and headers["Last-Modified"] and headers["Expires"]
    max_age = int(headers["Cache-Control"].split("max-age=")[1].split(",")[0])
    assert 3500 <= max_age <= 3600
    # unencoded '/' in the base64 path works too
    with urllib.request.urlopen(f"{http_url}/{b64}") as r:
        assert r.read() == body
    req = urllib.request.Request(f"{http_url}/{b64}", headers={"If-None-Match": headers["ETag"]})
    with pytest.raises(urllib.error.HTTPError) as info:
        urllib.request.urlopen(req)
    assert info.value.code == 304
    post = urllib.request.Request(http_url, data=der,
                                  headers={"Content-Type": "application/ocsp-request"})
    with urllib.request.urlopen(post) as r:
        assert ocsp.load_der_ocsp_response(r.read()).serial_number == issued.serial
    bad = urllib.request.Request(http_url, data=b"nonsense",
                                 headers={"Content-Type": "application/ocsp-request"})
    with urllib.request.urlopen(bad) as r:
        assert ocsp.load_der_ocsp_response(r.read()).response_status \
            is ocsp.OCSPResponseStatus.MALFORMED_REQUEST
    with urllib.request.urlopen(f"{http_url}/not-base64!") as r:
        assert ocsp.load_der_ocsp_response(r.read()).response_status \
            is ocsp.OCSPResponseStatus.MALFORMED_REQUEST


def test_store_failure_gives_internal_error(km, session_ca, store, issued, clock) -> None:
    ro = open_readonly_store(store.location)
    responder = OcspResponder.from_ca(key_source=km, ca=session_ca, store=ro, clock=clock)
    ro.close()  # the database goes away under the responder
    result = responder.respond(_request(issued.certificate, _root(session_ca)))
    assert result.status == "internalError"
    assert ocsp.load_der_ocsp_response(result.der).response_status \
        is ocsp.OCSPResponseStatus.INTERNAL_ERROR
