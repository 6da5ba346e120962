"""Fixtures for pki tests: one SoftHSM2 token (real PKCS#11) per session, CAs in it,
a pinned clock, holders' RSA keys (software keys stand in for keys made on the card)."""

from __future__ import annotations

import datetime as dt
import os
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from pki.ca import CAConfig, IssuingCA, init_ca
from pki.identity import Identity
from pki.store import CertificateStore, open_store

PIN = "4321"
SO_PIN = "87654321"
NOW = dt.datetime(2026, 11, 22, 3, 0, 0, tzinfo=dt.UTC)


class FakeClock:
    """A clock tests move by hand."""

    def __init__(self, now: dt.datetime = NOW) -> None:
        self.now = now

    def __call__(self) -> dt.datetime:
        return self.now

    def advance(self, **kw: float) -> None:
        self.now += dt.timedelta(**kw)


@pytest.fixture(scope="session")
def hsm_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from hsm.softhsm import init_token

    home = tmp_path_factory.mktemp("pki-home")
    os.environ["MYNACARD_TEST_PKI_PIN"] = PIN
    os.environ["MYNACARD_TEST_PKI_SO_PIN"] = SO_PIN
    init_token(home, "pki-test", SO_PIN, PIN)
    return home


@pytest.fixture(scope="session")
def km(hsm_home: Path) -> Iterator[object]:
    from hsm import PinSource, open_key_manager

    with open_key_manager("pkcs11:token=pki-test",
                          pin_source=PinSource.from_spec("env:MYNACARD_TEST_PKI_PIN")) as km:
        yield km


@pytest.fixture(scope="session")
def session_ca(km: object, tmp_path_factory: pytest.TempPathFactory) -> CAConfig:
    """The main CA, keys in SoftHSM2, made a year before NOW."""
    out = tmp_path_factory.mktemp("ca")
    return init_ca(km, out / "ca", shards=4, key_prefix="main",
                   clock=lambda: NOW - dt.timedelta(days=365))


@pytest.fixture(scope="session")
def other_ca(km: object, tmp_path_factory: pytest.TempPathFactory) -> CAConfig:
    """A second, unrelated CA with the same names (a wrong root)."""
    out = tmp_path_factory.mktemp("other-ca")
    return init_ca(km, out / "ca", shards=4, key_prefix="other",
                   clock=lambda: NOW - dt.timedelta(days=365))


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def store(tmp_path: Path) -> Iterator[CertificateStore]:
    s = open_store(tmp_path / "store.sqlite")
    yield s
    s.close()


@pytest.fixture
def issuing(km: object, session_ca: CAConfig, store: CertificateStore,
            clock: FakeClock) -> IssuingCA:
    return IssuingCA(key_source=km, ca=session_ca, store=store, clock=clock)  # type: ignore[arg-type]


@pytest.fixture(scope="session")
def holder_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture
def adult() -> Identity:
    return Identity(name="山田 太郎", birth_date=dt.date(1990, 5, 1), sex=1,
                    address="東京都千代田区千代田1-1")


@pytest.fixture
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def http_url(km, session_ca, store, free_port) -> Iterator[str]:
    import uvicorn

    from pki.ocsp import OcspResponder
    from pki.ocsp.server import build_app
    from pki.store import open_readonly_store

    ro = open_readonly_store(store.location)
    responder = OcspResponder.from_ca(key_source=km, ca=session_ca, store=ro)
    server = uvicorn.Server(uvicorn.Config(build_app(responder), host="127.0.0.1",
                                           port=free_port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.02)
    yield f"http://127.0.0.1:{free_port}"
    server.should_exit = True
    thread.join(10)
    ro.close()
