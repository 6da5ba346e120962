"""The certificate store on PostgreSQL: a private cluster (initdb/pg_ctl) in a temp dir.

As root the cluster runs as the `postgres` system user (PostgreSQL refuses root)."""

from __future__ import annotations

import datetime as dt
import itertools
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509 import ocsp
from store_checks import check_revoke_many_is_revoke_in_order, three_certificates

from pki.ca import IssuingCA
from pki.crl import CrlPublisher
from pki.errors import ReadOnlyStoreError, StoreError
from pki.ocsp import OcspResponder
from pki.profiles import Hierarchy
from pki.store import CertStatus, migrations, open_readonly_store, open_store

PG_BIN = Path("/usr/lib/postgresql/15/bin")


def _as_cluster_user(cmd: list[str]) -> list[str]:
    return ["runuser", "-u", "postgres", "--", *cmd] if os.geteuid() == 0 else cmd


@pytest.fixture(scope="module")
def pg_cluster() -> Iterator[str]:
    import socket

    base = Path(tempfile.mkdtemp(prefix="mynacard-pg-"))
    if os.geteuid() == 0:
        shutil.chown(base, "postgres", "postgres")
    data, sock = base / "data", base / "sock"
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    subprocess.run(_as_cluster_user([str(PG_BIN / "initdb"), "-D", str(data), "-U", "mynacard",
                                     "-A", "trust", "--no-sync"]),
                   check=True, capture_output=True)
    subprocess.run(_as_cluster_user(["mkdir", str(sock)]), check=True)
    opts = f"-k {sock} -p {port} -c listen_addresses='' -c fsync=off"
    subprocess.run(_as_cluster_user([str(PG_BIN / "pg_ctl"), "-D", str(data), "-o", opts,
                                     "-l", str(base / "log"), "-w", "start"]),
                   check=True, capture_output=True)
    try:
        yield f"postgresql://mynacard@/postgres?host={sock}&port={port}"
    finally:
        subprocess.run(_as_cluster_user([str(PG_BIN / "pg_ctl"), "-D", str(data), "-m",
                                         "immediate", "stop"]), capture_output=True)
        shutil.rmtree(base, ignore_errors=True)


_counter = itertools.count()


@pytest.fixture
def pg_url(pg_cluster: str) -> str:
    """A fresh database in the cluster."""
    import psycopg

    name = f"t{os.getpid()}_{next(_counter)}"
    with psycopg.connect(pg_cluster, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    return pg_cluster.replace("/postgres?", f"/{name}?")


def test_migrations_and_status_on_postgres(pg_url, km, session_ca, clock, holder_key,
                                           adult) -> None:
    store = open_store(pg_url)
    assert store.schema_version() == len(migrations())
    assert open_store(pg_url).migrate() == len(migrations())
    ca = IssuingCA(key_source=km, ca=session_ca, store=store, clock=clock)
    a = ca.issue_signing(public_key=holder_key.public_key(), identity=adult, holder_id="R1",
                         card_expiry=dt.date(2035, 1, 1))
    b = ca.issue_signing(public_key=holder_key.public_key(), identity=adult, holder_id="R1",
                         card_expiry=dt.date(2035, 1, 1), replaces=a.serial)
    rec = store.get(a.serial)
    assert rec.der == a.certificate.public_bytes(Encoding.DER)
    assert rec.status is CertStatus.REVOKED and rec.reason is x509.ReasonFlags.superseded
    assert rec.successor == b.serial
    assert {r.serial for r in store.by_holder("R1")} == {a.serial, b.serial}
    with pytest.raises(StoreError):
        store.add(b.certificate, hierarchy="sign", profile="signing", holder_id="R1",
                  shard=b.shard, issued_at=clock.now)
    assert store.count() == 2  # the failed insert left the store usable
    with store.transaction():  # insert-if-absent does not abort the transaction
        assert not store.add_if_absent(b.certificate, hierarchy="sign", profile="signing",
                                       holder_id="R1", shard=b.shard, issued_at=clock.now)
        assert store.next_crl_number("sign", 2) == 1
    assert store.count() == 2
    assert [store.next_crl_number("sign", 1) for _ in range(3)] == [1, 2, 3]
    store.close()


def test_revoke_many_and_by_holders_on_postgres(pg_url, km, session_ca, clock, holder_key,
                                                adult) -> None:
    with open_store(pg_url) as store:
        ca = IssuingCA(key_source=km, ca=session_ca, store=store, clock=clock)
        a, b, c = three_certificates(ca, holder_key, adult, clock)
        check_revoke_many_is_revoke_in_order(store, a, b, c, clock)


def test_issue_many_on_postgres(pg_url, km, session_ca, clock, holder_key, adult) -> None:
    from pki.ca import CertificateRequest
    from pki.profiles import Profile

    with open_store(pg_url) as store:
        ca = IssuingCA(key_source=km, ca=session_ca, store=store, clock=clock)
        requests = [CertificateRequest(
            profile=Profile.SIGNING if i % 2 else Profile.USER_AUTHENTICATION,
            public_key=holder_key.public_key(), identity=adult, holder_id=f"P{i}",
            card_expiry=dt.date(2035, 1, 1)) for i in range(5)]
        issued = ca.issue_many(requests, parallel=2, commit_every=2)
        assert [store.get(c.serial).holder_id for c in issued] == [f"P{i}" for i in range(5)]
        assert all(store.get(c.serial).der == c.certificate.public_bytes(Encoding.DER)
                   for c in issued)
        assert store.count() == 5


def test_readonly_on_postgres_refuses_writes(pg_url) -> None:
    open_store(pg_url).close()
    ro = open_readonly_store(pg_url)
    with pytest.raises(ReadOnlyStoreError):
        ro._execute("INSERT INTO crl_numbers VALUES ('sign', 0, 5)")
    assert ro.count() == 0
    ro.close()


def test_ocsp_and_crl_over_postgres(pg_url, km, session_ca, clock, holder_key, adult,
                                    tmp_path) -> None:
    store = open_store(pg_url)
    ca = IssuingCA(key_source=km, ca=session_ca, store=store, clock=clock)
    issued = ca.issue_user_authentication(public_key=holder_key.public_key(), identity=adult,
                                          holder_id="R1", card_expiry=dt.date(2035, 1, 1))
    ro = open_readonly_store(pg_url)
    responder = OcspResponder.from_ca(key_source=km, ca=session_ca, store=ro, clock=clock)
    root = session_ca.hierarchies[Hierarchy.AUTH].root_cert
    req = (ocsp.OCSPRequestBuilder().add_certificate(issued.certificate, root, hashes.SHA1())
           .build().public_bytes(Encoding.DER))
    assert responder.respond(req).status == "good"
    store.revoke(issued.serial, reason=x509.ReasonFlags.cessation_of_operation, at=clock.now)
    assert responder.respond(req).status == "revoked"
    shards = CrlPublisher(key_source=km, ca=session_ca, store=store, clock=clock).publish(tmp_path)
    assert sum(s.entries for s in shards) == 1
    ro.close()
    store.close()
