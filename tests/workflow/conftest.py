"""Fixtures of the workflow tests: one issuance center per session (a real SoftHSM2 token,
the JPKI CA and the issuer keys in it, made by `init_center`), real SQLite databases —
and PostgreSQL through the cluster fixture of tests/issuance/conftest.py (loaded from
that file, as tests/notices/conftest.py does) — and emulated cards from the `mynacard`
pytest plugin (`blank_card`, `sample_card`, `mynacard_emulator`)."""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from workflow_support import fresh_schema

from issuance.storage import Database, open_database
from issuance.workflow.center import Center, CenterConfig, init_center

_spec = importlib.util.spec_from_file_location(
    "issuance_tests_conftest_wf", Path(__file__).parents[1] / "issuance" / "conftest.py")
assert _spec is not None and _spec.loader is not None
_issuance_conftest = importlib.util.module_from_spec(_spec)
sys.modules[_spec.name] = _issuance_conftest
_spec.loader.exec_module(_issuance_conftest)

pg_cluster = _issuance_conftest.pg_cluster


@pytest.fixture(scope="session")
def center_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    home = tmp_path_factory.mktemp("center")
    init_center(home, master_key="test", shards=4)
    return home


@pytest.fixture(scope="session")
def center_config(center_home: Path) -> CenterConfig:
    return CenterConfig.load(center_home)


@pytest.fixture
def center(center_home: Path, center_config: CenterConfig) -> Iterator[Center]:
    with Center.open(center_home, center_config) as opened:
        yield opened


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The issuance database: every workflow test runs on SQLite and on PostgreSQL."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'issuance.sqlite3'}"
    return fresh_schema(request.getfixturevalue("pg_cluster"))


@pytest.fixture
def any_db_url(db_url: str) -> str:
    return db_url


@pytest.fixture
def db(db_url: str) -> Iterator[Database]:
    database = open_database(db_url)
    try:
        yield database
    finally:
        database.close()
