"""Fixtures for the notice tests: real SQLite files and a real PostgreSQL cluster.

The PostgreSQL cluster fixture is the one of tests/issuance/conftest.py, loaded from
that file (not copied): each storage-backed test runs on SQLite and on PostgreSQL. The
issuance database and the certificate store get separate PostgreSQL schemas, as both
keep a `schema_version` table of their own.
"""

from __future__ import annotations

import importlib.util
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from tls_certs import TestCa

from issuance.notices.certificates import CertificateGateway
from issuance.storage import Database, open_database
from pki.store import CertificateStore, open_store

_spec = importlib.util.spec_from_file_location(
    "issuance_tests_conftest", Path(__file__).parents[1] / "issuance" / "conftest.py")
assert _spec is not None and _spec.loader is not None
_issuance_conftest = importlib.util.module_from_spec(_spec)
sys.modules[_spec.name] = _issuance_conftest
_spec.loader.exec_module(_issuance_conftest)

pg_cluster = _issuance_conftest.pg_cluster
PgCluster = _issuance_conftest.PgCluster


def fresh_schema(cluster: Any) -> str:
    import psycopg

    schema = f"n_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(cluster.url(), autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    return str(cluster.url(schema=schema))


@pytest.fixture(params=["sqlite", "postgresql"])
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def db_url(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> str:
    if backend == "sqlite":
        return f"sqlite:///{tmp_path / 'issuance.sqlite3'}"
    return fresh_schema(request.getfixturevalue("pg_cluster"))


@pytest.fixture
def store_url(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> str:
    if backend == "sqlite":
        return str(tmp_path / "store.sqlite")
    return fresh_schema(request.getfixturevalue("pg_cluster"))


@pytest.fixture
def db(db_url: str) -> Iterator[Database]:
    database = open_database(db_url)
    try:
        yield database
    finally:
        database.close()


@pytest.fixture
def certs(store_url: str) -> Iterator[CertificateGateway]:
    gateway = CertificateGateway.open(store_url)
    try:
        yield gateway
    finally:
        gateway.close()


@pytest.fixture
def store(store_url: str, certs: CertificateGateway) -> Iterator[CertificateStore]:
    """The certificate store itself (a second connection), to issue and inspect."""
    s = open_store(store_url)
    try:
        yield s
    finally:
        s.close()


@pytest.fixture
def ca(tmp_path: Path) -> TestCa:
    """A throw-away CA for the TLS of `notices serve` (its server and client certificates)."""
    return TestCa(tmp_path / "tls", "notices")
