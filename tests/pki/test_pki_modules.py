"""The CA on each PKCS#11 module: SoftHSM2 and opencryptoki's software token.

A representative path, not the whole pki suite twice: a CA made in the token, a
certificate issued, a CRL shard and an OCSP response signed there, each checked with
cryptography against the root's public key.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import NOW, FakeClock  # type: ignore[import-not-found]
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509 import ocsp

from pki.ca import IssuingCA, init_ca
from pki.crl import CrlPublisher
from pki.ocsp import OcspResponder
from pki.profiles import Hierarchy
from pki.store import open_readonly_store

OCK_PIN = "pki-1234"


@pytest.fixture(scope="module", params=["softhsm", "opencryptoki"])
def module_km(request: pytest.FixtureRequest) -> Iterator[object]:
    if request.param == "softhsm":
        yield request.getfixturevalue("km")
        return
    from hsm import PinSource, open_key_manager
    from hsm.opencryptoki import reset_token

    uri = reset_token("pki-test", OCK_PIN)
    with open_key_manager(uri, pin_source=PinSource.from_value(OCK_PIN)) as km:
        yield km


def test_issue_crl_and_ocsp_on_each_module(module_km, store, holder_key, adult,
                                           tmp_path: Path) -> None:
    clock = FakeClock()
    config = init_ca(module_km, tmp_path / "ca", shards=2, key_prefix="mod",
                     clock=lambda: NOW - dt.timedelta(days=1))
    ca = IssuingCA(key_source=module_km, ca=config, store=store, clock=clock)
    issued = ca.issue_signing(public_key=holder_key.public_key(), identity=adult,
                              holder_id="M1", card_expiry=dt.date(2035, 1, 1))
    root = config.hierarchies[Hierarchy.SIGN].root_cert
    issued.certificate.verify_directly_issued_by(root)

    store.revoke(issued.serial, reason=x509.ReasonFlags.key_compromise, at=clock.now)
    shards = CrlPublisher(key_source=module_km, ca=config, store=store,
                          clock=clock).publish(tmp_path / "crl")
    crl = x509.load_der_x509_crl(
        (tmp_path / "crl" / "sign" / f"shard-{issued.shard:04d}.crl").read_bytes())
    assert len(shards) == 3 * config.shards  # sign, auth and operator
    assert crl.is_signature_valid(root.public_key())
    assert crl.get_revoked_certificate_by_serial_number(issued.serial) is not None

    ro = open_readonly_store(store.location)
    try:
        responder = OcspResponder.from_ca(key_source=module_km, ca=config, store=ro,
                                          clock=clock)
        request = ocsp.OCSPRequestBuilder().add_certificate(
            issued.certificate, root, hashes.SHA1()).build().public_bytes(Encoding.DER)
        resp = ocsp.load_der_ocsp_response(responder.respond(request).der)
    finally:
        ro.close()
    assert resp.certificate_status is ocsp.OCSPCertStatus.REVOKED
    responder_cert = config.hierarchies[Hierarchy.SIGN].ocsp_cert
    responder_cert.public_key().verify(resp.signature, resp.tbs_response_bytes,
                                       padding.PKCS1v15(), resp.signature_hash_algorithm)
