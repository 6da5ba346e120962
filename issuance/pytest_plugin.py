"""Pytest fixtures of the issuance center (entry point `pytest11`, `mynacard-issuance`).

- `mynacard_operator_center` (session): a center home made by `init_center` (SoftHSM2
  token, the CA with its operator hierarchy, the test issuer master key) whose issuance
  database is HOME/issuance.sqlite3, so `mynacard --home HOME ...` finds everything.
- `operator_card`: a blank emulated card (the emulator plugin's `blank_card`) issued as
  the operator IC card of a fresh operator (roles clerk, supervisor, ca-officer) through
  the center's own `issue_operator_card` -- key generated and attested on the card, the
  operator certificate written, the card PIN set. Yields an `OperatorCardReader`.

Everything is imported inside the fixtures, so loading the plugin costs nothing.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

OPERATOR_CARD_PIN = "4321"
OPERATOR_PASSWORD = "operator-password-1"
_names = itertools.count(1)


@dataclass(frozen=True)
class OperatorCardReader:
    """An operator card in `reader`: who it is for and how to use it."""

    reader: str
    card_serial: str
    operator: str
    roles: tuple[str, ...]
    pin: str
    password: str
    home: Path
    db_url: str
    certificate: Any  # x509.Certificate


@pytest.fixture(scope="session")
def mynacard_operator_center(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from issuance.workflow.center import init_center

    home = tmp_path_factory.mktemp("operator-center")
    init_center(home, master_key="test", shards=2)
    return home


@pytest.fixture
def operator_card(mynacard_operator_center: Path, blank_card: Any) -> Iterator[OperatorCardReader]:
    from card.transport import PcscTransport
    from issuance.operators.cards import issue_operator_card
    from issuance.operators.store import OperatorStore
    from issuance.storage import open_database
    from issuance.storage.config import resolve_db_url
    from issuance.workflow.center import Center

    home = mynacard_operator_center
    url = resolve_db_url(None, home)
    if not url.startswith("sqlite"):  # $MYNACARD_DB set by the test: the home's own file
        url = f"sqlite:///{home / 'issuance.sqlite3'}"
    name = f"op-{next(_names)}-{blank_card.serial[-4:]}"
    roles = ("clerk", "supervisor", "ca-officer")
    with open_database(url) as db, Center.open(home) as center:
        OperatorStore(db).add(name, roles, OPERATOR_PASSWORD)
        with PcscTransport(str(blank_card)) as transport:
            issued = issue_operator_card(db, center, name, transport, OPERATOR_CARD_PIN,
                                         issued_by="pytest")
    yield OperatorCardReader(str(blank_card), issued.card_serial, name, roles,
                             OPERATOR_CARD_PIN, OPERATOR_PASSWORD, home, url,
                             issued.certificate)
