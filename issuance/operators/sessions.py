"""Login sessions: a file in the home (0600, through hsm.files) that names the operator,
their roles, the expiry and the credential they proved, with an HMAC made by the
center's audit key in the HSM. Without the HSM the file cannot be forged or edited; a
new password (a new credential id), a revoked operator card (for a card login, whose
credential id is `card:<certificate fingerprint>`), a disabled or locked operator, or the
expiry end it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from hsm.files import write_file
from issuance.audit.keyer import Keyer
from issuance.audit.log import canonical_json
from issuance.operators.errors import OperatorsError
from issuance.operators.roles import parse_roles
from issuance.operators.store import OperatorStore

SESSION_FILE = "operator-session.json"
DEFAULT_HOURS = 8.0
MAC_CONTEXT = b"mynacard operator session v1\x00"


@dataclass(frozen=True)
class Session:
    operator: str
    roles: tuple[str, ...]
    expires: datetime
    credential: str

    def body(self) -> dict[str, Any]:
        return {"operator": self.operator, "roles": list(self.roles),
                "expires": self.expires.isoformat(timespec="seconds"),
                "credential": self.credential}

    @property
    def credential_kind(self) -> str:
        """How the operator logged in: `card` (an operator IC card) or `password`."""
        return "card" if self.credential.startswith("card:") else "password"

    def to_json(self) -> dict[str, Any]:
        return {"operator": self.operator, "roles": list(self.roles),
                "expires": self.expires.isoformat(timespec="seconds"),
                "credential": self.credential_kind}


class SessionStore:
    """The session file of one home, keyed by `keyer` (the center's audit key)."""

    def __init__(self, home: Path, keyer: Keyer | None) -> None:
        self.path = Path(home) / SESSION_FILE
        self.keyer = keyer

    def _keyer(self) -> Keyer:
        if self.keyer is None:
            raise OperatorsError("sessions need the center's HSM key: run `mynacard center"
                                 " init` first")
        return self.keyer

    def open(self, operator: str, roles: tuple[str, ...], credential: str, *,
             hours: float = DEFAULT_HOURS, now: datetime | None = None) -> Session:
        if not 0 < hours <= 24:
            raise OperatorsError("a session lasts more than 0 and at most 24 hours")
        start = now or datetime.now(UTC)
        session = Session(operator, roles, (start + timedelta(hours=hours)).replace(
            microsecond=0), credential)
        body = session.body()
        mac = self._keyer().mac(MAC_CONTEXT + canonical_json(body)).hex()
        write_file(self.path, json.dumps({**body, "mac": mac}) + "\n", force=True)
        return session

    def close(self) -> bool:
        try:
            self.path.unlink()
        except FileNotFoundError:
            return False
        return True

    def exists(self) -> bool:
        return self.path.exists() or self.path.is_symlink()

    def load(self, store: OperatorStore, *, now: datetime | None = None) -> Session:
        """The session, checked: its MAC, expiry, and the operator's current state."""
        try:
            if self.path.is_symlink():
                raise OperatorsError("the session file is a symlink")
            raw = json.loads(self.path.read_text(encoding="utf-8"))
            body = {k: raw[k] for k in ("operator", "roles", "expires", "credential")}
            mac = bytes.fromhex(str(raw["mac"]))
            session = Session(str(body["operator"]), parse_roles(body["roles"]),
                              datetime.fromisoformat(str(body["expires"])),
                              str(body["credential"]))
        except FileNotFoundError:
            raise OperatorsError("no operator is logged in") from None
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise OperatorsError(f"the session file is unusable ({type(exc).__name__}):"
                                 " log in again") from None
        if session.body() != body or not self._keyer().check(
                MAC_CONTEXT + canonical_json(body), mac):
            raise OperatorsError("the session file was not made by this center: log in again")
        if (now or datetime.now(UTC)) >= session.expires:
            raise OperatorsError("the operator session has expired: log in again")
        current = store.get(session.operator)
        # `locked` (too many wrong passwords, anyone can cause it) stops password logins
        # only; a session already open is the operator's and goes on
        if current is None or current.disabled:
            raise OperatorsError(f"operator {session.operator!r} may no longer act:"
                                 " log in again")
        if session.credential.startswith("card:"):  # bound to an operator IC card
            if not store.card_active(session.operator, session.credential):
                raise OperatorsError("the operator card of this session was revoked: log in"
                                     " again")
        elif current.credential_id != session.credential:
            raise OperatorsError("the operator's credential or roles changed: log in again")
        if current.roles != session.roles:
            raise OperatorsError("the operator's credential or roles changed: log in again")
        return session
