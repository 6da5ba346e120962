"""pytest plugin `mynacard-hsm`: a SoftHSM2 token holding a JPKI CA, for any project's tests.

Installed with the `mynacard` distribution (entry point `pytest11`). Session fixtures:
  mynacard_hsm          a fresh SoftHSM2 token in a temporary directory (`HsmToken`: its
                        `pkcs11:` URI, the pin source of its user PIN, its directory)
  mynacard_key_manager  a logged-in `hsm.KeyManager` on that token
  mynacard_jpki_ca      a JPKI CA (both hierarchies, keys in the token): a `pki.ca.CAConfig`
Nothing happens, and `SOFTHSM2_CONF` is left alone, unless a test uses one of them. The
PINs are random per session, passed only through the environment of this process.
"""

from __future__ import annotations

import os
import secrets
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

PIN_ENV = "MYNACARD_TEST_HSM_PIN"
TOKEN_LABEL = "mynacard-test"


@dataclass(frozen=True)
class HsmToken:
    home: Path  # the state directory (its `hsm/` holds SoftHSM2's configuration and tokens)
    uri: str  # the token's pkcs11: URI
    pin_source: str  # `env:NAME` of the user PIN


@pytest.fixture(scope="session")
def mynacard_hsm() -> Iterator[HsmToken]:
    from hsm.module import SOFTHSM2_CONF_ENV
    from hsm.softhsm import init_token

    home = Path(tempfile.mkdtemp(prefix="mynacard-hsm-"))
    old_conf, old_pin = os.environ.get(SOFTHSM2_CONF_ENV), os.environ.get(PIN_ENV)
    pin = "".join(secrets.choice("0123456789") for _ in range(8))
    os.environ[PIN_ENV] = pin
    try:
        uri = init_token(home, TOKEN_LABEL, secrets.token_hex(8), pin)
        yield HsmToken(home, uri, f"env:{PIN_ENV}")
    finally:
        for name, old in ((SOFTHSM2_CONF_ENV, old_conf), (PIN_ENV, old_pin)):
            if old is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = old
        shutil.rmtree(home, ignore_errors=True)


@pytest.fixture(scope="session")
def mynacard_key_manager(mynacard_hsm: HsmToken) -> Iterator[Any]:
    from hsm import PinSource, open_key_manager

    with open_key_manager(mynacard_hsm.uri,
                          pin_source=PinSource.from_spec(mynacard_hsm.pin_source)) as km:
        yield km


@pytest.fixture(scope="session")
def mynacard_jpki_ca(mynacard_key_manager: Any, mynacard_hsm: HsmToken) -> Any:
    from pki.ca import init_ca
    from pki.profiles import JPKI_HIERARCHIES

    return init_ca(mynacard_key_manager, mynacard_hsm.home / "ca", shards=4,
                   hierarchies=JPKI_HIERARCHIES)
