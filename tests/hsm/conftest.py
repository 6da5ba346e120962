"""Fixtures for the hsm tests: a real SoftHSM2 token in a fresh state directory per test."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pkcs11
import pytest
from hsmtest_consts import SO_PIN, TOKEN, USER_PIN  # type: ignore[import-not-found]

from hsm import KeyManager, PinSource, open_key_manager
from hsm.module import SOFTHSM2_CONF_ENV
from hsm.softhsm import init_token, softhsm_env


@pytest.fixture
def hsm_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A state directory whose SoftHSM2 configuration this process uses (restored after)."""
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv(SOFTHSM2_CONF_ENV, softhsm_env(home)[SOFTHSM2_CONF_ENV])
    return home


@pytest.fixture
def token_uri(hsm_home: Path) -> str:
    return init_token(hsm_home, TOKEN, SO_PIN, USER_PIN)


@pytest.fixture
def km(token_uri: str) -> Iterator[KeyManager]:
    with open_key_manager(token_uri, pin_source=PinSource.from_value(USER_PIN)) as manager:
        yield manager


@pytest.fixture
def raw_session(km: KeyManager) -> Iterator[pkcs11.Session]:
    """A python-pkcs11 session of our own on the token (logged in through `km`)."""
    lib = km._pool.module.current()[0]
    token = lib.get_token(token_label=km.token_label)
    session = token.open(rw=True)
    try:
        yield session
    finally:
        session.close()
