"""Console sessions: who is logged in at which browser, their CSRF token, their roles.

Logging in goes through a `LoginMethod`; passwords (`PasswordLogin`, the same
`OperatorStore.authenticate` as `mynacard login`: argon2id, lockout, audited failures)
exist today. An operator-card login is another method with the same shape: it proves an
operator's credential and returns the `Operator`. A session lives in the server's
memory only (the cookie holds a random id, never anything the browser could edit) and
ends on logout, after its hours, or when the operator's password, roles or state change
(checked on every request, as `SessionStore.load` does for the CLI's session file).

The roles an action needs are the roles of the CLI command that does the same thing,
read from the CLI's own parser tree, so both answer alike.
"""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol

from issuance.operators import Operator, OperatorStore, allowed
from issuance.storage import Database

SESSION_HOURS = 8.0

# console action -> the CLI command whose `roles=` declaration it shares
ACTION_COMMANDS: Mapping[str, str] = {
    "apply": "apply",
    "issue": "issue",
    "handover": "activate",
    "pin-reset": "pin reset",
    "card-update": "card update",
    "report-loss": "card report-loss",
    "reissue": "card reissue",
}


def cli_roles() -> dict[str, tuple[str, ...]]:
    """The roles of every console action, from the CLI's command declarations."""
    from issuance.cli.main import build_parser, command_tree, declaration

    tree = command_tree(build_parser())
    out: dict[str, tuple[str, ...]] = {}
    for action, path in ACTION_COMMANDS.items():
        roles = declaration(tree[path], path).roles
        if roles is None:
            raise RuntimeError(f"the CLI command {path!r} declares no roles")
        out[action] = roles
    return out


class LoginMethod(Protocol):
    """A way to prove an operator's credential (password today; an operator card later)."""

    name: str

    def authenticate(self, store: OperatorStore, form: Mapping[str, str]) -> Operator: ...


class PasswordLogin:
    name = "password"

    def authenticate(self, store: OperatorStore, form: Mapping[str, str]) -> Operator:
        return store.authenticate(form.get("operator", "").strip(), form.get("password", ""))


@dataclass
class ConsoleSession:
    id: str
    operator: str
    roles: tuple[str, ...]
    credential: str
    csrf: str
    expires: float
    method: str
    data: dict[str, str] = field(default_factory=dict)

    @property
    def role_text(self) -> str:
        return ",".join(self.roles)

    def may(self, needed: tuple[str, ...]) -> bool:
        return allowed(self.roles, needed)


class SessionTable:
    """The logged-in browsers of one console server (thread-safe)."""

    def __init__(self, hours: float = SESSION_HOURS) -> None:
        self.hours = hours
        self._lock = threading.Lock()
        self._sessions: dict[str, ConsoleSession] = {}

    def open(self, op: Operator, method: str) -> ConsoleSession:
        session = ConsoleSession(secrets.token_urlsafe(32), op.name, op.roles,
                                 op.credential_id, secrets.token_urlsafe(32),
                                 time.time() + self.hours * 3600, method)
        with self._lock:
            self._sessions[session.id] = session
        return session

    def close(self, session_id: str) -> ConsoleSession | None:
        with self._lock:
            return self._sessions.pop(session_id, None)

    def get(self, session_id: str | None, db: Database) -> ConsoleSession | None:
        """The session, if it is still good: not expired, and the operator unchanged."""
        if not session_id:
            return None
        with self._lock:
            session = self._sessions.get(session_id)
        if session is None:
            return None
        current = OperatorStore(db).get(session.operator)
        if (time.time() >= session.expires or current is None or current.disabled
                or current.locked or current.credential_id != session.credential
                or current.roles != session.roles):
            self.close(session_id)
            return None
        return session


def same_token(given: str | None, expected: str) -> bool:
    return bool(given) and secrets.compare_digest(str(given), expected)
