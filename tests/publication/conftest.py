"""Fixtures of the publication tests (helpers in publication_support.py)."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from leaks import shows
from publication_support import HSM, MYNACARD, PIN, Receiver, env, free_port, run, wait_port


@pytest.fixture(scope="session")
def pub_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    home = tmp_path_factory.mktemp("pub-home")
    run(home, "ca", "init", *HSM, "--so-pin-source", "env:PUB_TEST_SO_PIN", "--shards", "4",
        check=True)
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    (home / "holder.pub").write_bytes(key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
    (home / "id.json").write_text(json.dumps({
        "name": "佐藤 花子", "sex": 2, "birth_date": "1985-07-07",
        "address": "大阪府大阪市北区1-2-3"}, ensure_ascii=False), encoding="utf-8")
    return home


@pytest.fixture(scope="session")
def cli_ocsp(pub_home: Path) -> Iterator[str]:
    """`mynacard ocsp serve --open` (the real server; the tests also send a registered
    party's token)."""
    port = free_port()
    extra = ["--open"]
    proc = subprocess.Popen([MYNACARD, "--home", str(pub_home), "ocsp", "serve", *HSM,
                             "--port", str(port), *extra], env=env(),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    wait_port(port, proc)
    yield f"http://127.0.0.1:{port}"
    proc.terminate()
    _, err = proc.communicate(timeout=10)
    assert "Traceback" not in err and not shows(err, PIN)


@pytest.fixture(scope="session")
def rp_token(pub_home: Path) -> str:
    from pki.relying_parties.registry import RelyingPartyRegistry
    from pki.store import open_store

    open_store(pub_home / "store.sqlite").close()
    with RelyingPartyRegistry(pub_home / "store.sqlite") as reg:
        return reg.add("test verifier", kind="署名検証者").token


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver(fail_first=2)
    yield r
    r.close()
