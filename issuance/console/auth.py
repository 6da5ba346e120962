"""Console sessions: who is logged in at which browser, their CSRF token, their roles.

Logging in goes through a `LoginMethod`, which proves an operator's credential and
returns a `Proof`: a password (`PasswordLogin`, the same `OperatorStore.authenticate` as
`mynacard login`: argon2id, lockout, audited failures), or the operator IC card in one of
the console server's readers (`CardLogin`, the same `login_card_at` challenge-response as
`mynacard login --card`; the session is bound to the card's certificate). A session lives
in the server's memory only (the cookie holds a random id, never anything the browser
could edit) and ends on logout, after its hours, or when the operator's password, card,
roles or state change (checked on every request, as `SessionStore.load` does for the
CLI's session file).

The roles an action needs are the roles of the CLI command that does the same thing,
read from the CLI's own parser tree, so both answer alike.
"""

from __future__ import annotations

import re
import secrets
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from card.errors import CardError
from issuance.errors import IssuanceError
from issuance.operators import Operator, OperatorsError, OperatorStore, allowed
from issuance.storage import Database
from pki.errors import PkiError

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


@dataclass(frozen=True)
class Proof:
    """Who a login proved, and the credential the session is bound to (a password's
    digest, or `card:<certificate fingerprint>`)."""

    operator: Operator
    credential: str
    detail: Mapping[str, str] = field(default_factory=dict)  # for the audit entry


class LoginRefused(IssuanceError):
    """A login refused: `key` names the page's message (translated), `params` fill it,
    `outcome` is the audit outcome (refused by a rule, or failed: a part is missing)."""

    def __init__(self, message: str, key: str = "", params: Mapping[str, str] | None = None,
                 outcome: str = "refused") -> None:
        super().__init__(message)
        self.key, self.params, self.outcome = key, dict(params or {}), outcome


class LoginMethod(Protocol):
    """A way to prove an operator's credential: a password, or an operator card."""

    name: str

    def authenticate(self, store: OperatorStore, form: Mapping[str, str]) -> Proof: ...


REFUSED = ("login refused: unknown operator or wrong password, or this operator may not"
           " log in with a password now (a supervisor sees why in the audit log)")


class PasswordLogin:
    name = "password"

    def authenticate(self, store: OperatorStore, form: Mapping[str, str]) -> Proof:
        try:
            op = store.authenticate(form.get("operator", "").strip(),
                                    form.get("password", ""))
        except OperatorsError:
            # one answer for every refusal: which names are operators, and which are
            # locked or disabled, is for the audit log, not for whoever types here
            raise OperatorsError(REFUSED) from None
        return Proof(op, op.credential_id)


_TRIES_LEFT = re.compile(r"wrong card PIN, (\d+) tries left")


class CardLogin:
    """The operator IC card in one of the console server's readers, its PIN typed in
    the login page: `login_card_at`, the challenge-response of `mynacard login --card`."""

    name = "card"

    def __init__(self, home: Path, readers: Callable[[], list[str]]) -> None:
        self.home = Path(home)
        self.readers = readers

    def authenticate(self, store: OperatorStore, form: Mapping[str, str]) -> Proof:
        from issuance.operators.card_cli import login_card_at
        from issuance.operators.cards import OperatorCardMissing, check_card_pin

        reader = form.get("reader", "").strip()
        if reader not in self.readers():
            raise LoginRefused(f"no reader {reader!r} at this console", "card_no_reader",
                               {"reader": reader}, outcome="failed")
        try:
            pin = check_card_pin(form.get("pin", ""))
        except OperatorsError as exc:
            raise LoginRefused(str(exc), "card_pin_format") from None
        try:
            op, card = login_card_at(self.home, store.db, reader, pin, spend_last_try=False)
        except OperatorCardMissing as exc:
            raise LoginRefused(str(exc), "card_insert", {"reader": reader},
                               outcome="failed") from None
        except OperatorsError as exc:
            raise card_refusal(str(exc)) from None
        except (PkiError, OSError) as exc:  # the center's CA or certificate store
            raise LoginRefused(f"the center cannot check cards ({type(exc).__name__})",
                               "card_center_failed", outcome="failed") from None
        except CardError as exc:  # the reader is busy (another session) or failed
            raise LoginRefused(f"the card reader failed ({type(exc).__name__})",
                               "card_reader_failed", {"reader": reader},
                               outcome="failed") from None
        return Proof(op, card.credential_id, {"card_serial": card.card_serial,
                                              "certificate": card.cert_serial})


def card_refusal(message: str) -> LoginRefused:
    """The page's message for a card login's refusal (the CLI's words, classified)."""
    tries = _TRIES_LEFT.search(message)
    if tries:
        return LoginRefused(message, "card_pin_wrong", {"tries": tries.group(1)})
    if "PIN is blocked" in message:
        return LoginRefused(message, "card_pin_blocked")
    if "one card PIN try is left" in message:
        return LoginRefused(message, "card_pin_last_try")
    return LoginRefused(message, "card_refused", {"why": message})


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

    def open(self, proof: Proof, method: str) -> ConsoleSession:
        op = proof.operator
        session = ConsoleSession(secrets.token_urlsafe(32), op.name, op.roles,
                                 proof.credential, secrets.token_urlsafe(32),
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
        store = OperatorStore(db)
        current = store.get(session.operator)
        # not `locked`: wrong passwords anyone can type must not end the operator's work
        if (time.time() >= session.expires or current is None or current.disabled
                or current.roles != session.roles
                or not _credential_holds(store, current, session.credential)):
            self.close(session_id)
            return None
        return session


def _credential_holds(store: OperatorStore, current: Operator, credential: str) -> bool:
    """The session's credential is still the operator's: their password unchanged, or
    their operator card enrolled and not revoked (as `SessionStore.load` checks)."""
    if credential.startswith("card:"):
        return store.card_active(current.name, credential)
    return current.credential_id == credential


def same_token(given: str | None, expected: str) -> bool:
    """Constant-time comparison of what a request sent (any text: compared as bytes, as
    `compare_digest` refuses str with non-ASCII characters) with the expected token."""
    return bool(given) and secrets.compare_digest(
        str(given).encode("utf-8", "surrogatepass"), expected.encode("utf-8", "surrogatepass"))
