"""The relying-party tables and the webhook outbox on PostgreSQL (a real local cluster,
the fixture of tests/issuance/conftest.py), beside the certificate store's own tables."""

from __future__ import annotations

import datetime as dt
import importlib.util
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from pki.relying_parties.registry import RelyingPartyRegistry, TokenAuthorizer
from pki.relying_parties.webhooks import WebhookDispatcher
from pki.store import open_readonly_store, open_store

_spec = importlib.util.spec_from_file_location(
    "issuance_tests_conftest_pub", Path(__file__).parents[1] / "issuance" / "conftest.py")
assert _spec is not None and _spec.loader is not None
_issuance_conftest = importlib.util.module_from_spec(_spec)
sys.modules[_spec.name] = _issuance_conftest
_spec.loader.exec_module(_issuance_conftest)
pg_cluster = _issuance_conftest.pg_cluster


@pytest.fixture
def pg_store_url(pg_cluster: Any) -> str:
    import psycopg

    schema = f"p_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(pg_cluster.url(), autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    return str(pg_cluster.url(schema=schema))


def _cert() -> x509.Certificate:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "pg test")])
    now = dt.datetime.now(dt.UTC)
    return (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now).not_valid_after(now + dt.timedelta(days=30))
            .sign(key, hashes.SHA256()))


def test_registry_authorizer_and_outbox_on_postgresql(pg_store_url: str) -> None:
    cert = _cert()
    with open_store(pg_store_url) as store:
        store.add(cert, hierarchy="sign", profile="signing", holder_id="R1", shard=0,
                  issued_at=dt.datetime.now(dt.UTC))
    with RelyingPartyRegistry(pg_store_url) as reg:
        new = reg.add("pg-bank", kind="signature_verifier",
                      webhook_url="http://127.0.0.1:9/unreachable")
        assert reg.subscribe("pg-bank", [format(cert.serial_number, "x")]) == 1
    open_readonly_store(pg_store_url).close()  # the store's schema check ignores our tables
    auth = TokenAuthorizer(pg_store_url, ttl=0)
    try:
        assert auth.party_for(f"Bearer {new.token}") == "pg-bank"
        assert auth.party_for("Bearer rp_nope") is None
    finally:
        auth.close()
    with open_store(pg_store_url) as store:
        store.revoke(cert.serial_number, reason=x509.ReasonFlags.key_compromise,
                     at=dt.datetime.now(dt.UTC))
    with WebhookDispatcher(pg_store_url, backoff=0.01, max_attempts=1, timeout=2) as d:
        report = d.run_once()
        assert report.enqueued == 1 and report.failed == 1
        assert d.run_once().enqueued == 0  # the checkpoint moved in the same transaction
        [delivery] = d.deliveries()
    assert delivery["payload"]["reason"] == "keyCompromise"
    assert delivery["state"] == "failed"
