"""The enrolled operators of a center, in the issuance database (table `operators`).

A password login that fails counts against the operator; after `MAX_FAILURES` in a row
the operator's password is locked until a supervisor sets a new one. Every failure and the
lock are written to the audit log in the same transaction as the counter. As anyone at a
login page can type wrong passwords, the lock stops password logins only: sessions already
open go on, and the operator's IC card still logs in. Every refusal takes one argon2
verification, so its time does not tell which names are operators.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from issuance.audit.log import append_entry
from issuance.audit.operator import check_operator
from issuance.operators.errors import OperatorsError
from issuance.operators.passwords import hash_password, spend_verification, verify_password
from issuance.operators.roles import parse_roles
from issuance.storage.db import Database

MAX_FAILURES = 5


def _now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class Operator:
    name: str
    roles: tuple[str, ...]
    failures: int
    locked: bool
    disabled: bool
    credential_id: str  # changes with the password: sessions bound to the old one end

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "roles": list(self.roles), "failures": self.failures,
                "locked": self.locked, "disabled": self.disabled}


def credential_id(password_hash: str) -> str:
    return "pw:" + hashlib.sha256(password_hash.encode("utf-8")).hexdigest()[:32]


def _of(row: dict[str, Any]) -> Operator:
    return Operator(str(row["name"]), parse_roles(str(row["roles"])), int(row["failures"]),
                    bool(row["locked"]), bool(row["disabled"]),
                    credential_id(str(row["password_hash"])))


class OperatorStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    def count(self) -> int:
        with self.db.transaction() as tx:
            row = tx.query_one("SELECT count(*) AS n FROM operators")
        return int(row["n"]) if row else 0

    def get(self, name: str) -> Operator | None:
        with self.db.transaction() as tx:
            row = tx.query_one("SELECT * FROM operators WHERE name = ?", (name,))
        return _of(row) if row else None

    def list(self) -> list[Operator]:
        with self.db.transaction() as tx:
            return [_of(r) for r in tx.query("SELECT * FROM operators ORDER BY name")]

    def add(self, name: str, roles: tuple[str, ...], password: str) -> Operator:
        name = check_operator(name)
        roles = parse_roles(roles)
        digest = hash_password(password)
        stamp = _now().isoformat()
        with self.db.transaction() as tx:
            tx.lock("mynacard.operators")
            if tx.query_one("SELECT name FROM operators WHERE name = ?", (name,)):
                raise OperatorsError(f"operator {name!r} is already enrolled")
            tx.execute("INSERT INTO operators (name, roles, password_hash, created_at,"
                       " updated_at) VALUES (?, ?, ?, ?, ?)",
                       (name, ",".join(roles), digest, stamp, stamp))
        found = self.get(name)
        assert found is not None
        return found

    def _need(self, name: str) -> Operator:
        found = self.get(name)
        if found is None:
            raise OperatorsError(f"no operator {name!r} is enrolled")
        return found

    def card_active(self, name: str, credential: str) -> bool:
        """Whether `credential` (`card:<fingerprint>`) is `name`'s enrolled, unrevoked
        operator card: a session bound to a card ends when the card is revoked."""
        fingerprint = credential.removeprefix("card:")
        with self.db.transaction() as tx:
            row = tx.query_one("SELECT state FROM operator_cards WHERE operator = ? AND"
                               " fingerprint = ?", (name, fingerprint))
        return row is not None and row["state"] == "active"

    def disable(self, name: str) -> Operator:
        self._need(name)
        with self.db.transaction() as tx:
            tx.execute("UPDATE operators SET disabled = 1, updated_at = ? WHERE name = ?",
                       (_now().isoformat(), name))
        return self._need(name)

    def set_password(self, name: str, password: str) -> Operator:
        """A new password; it also clears the failure counter and the lock."""
        self._need(name)
        digest = hash_password(password)
        with self.db.transaction() as tx:
            tx.execute("UPDATE operators SET password_hash = ?, failures = 0, locked = 0,"
                       " updated_at = ? WHERE name = ?", (digest, _now().isoformat(), name))
        return self._need(name)

    def authenticate(self, name: str, password: str) -> Operator:
        """The operator, when `password` is theirs and they may log in; else refuse
        (counting the failure, locking at MAX_FAILURES, both audited)."""
        with self.db.transaction() as tx:
            tx.lock("mynacard.operators")
            row = tx.query_one("SELECT * FROM operators WHERE name = ?", (name,))
            if row is None or row["disabled"] or row["locked"]:
                spend_verification(password)
            if row is None:
                raise OperatorsError("unknown operator or wrong password")
            if row["disabled"]:
                raise OperatorsError(f"operator {name!r} is disabled")
            if row["locked"]:
                raise OperatorsError(f"operator {name!r} is locked after {MAX_FAILURES} failed"
                                     " logins: a supervisor must set a new password")
            if verify_password(str(row["password_hash"]), password):
                if row["failures"]:
                    tx.execute("UPDATE operators SET failures = 0 WHERE name = ?", (name,))
                row["failures"] = 0
                return _of(row)
            failures = int(row["failures"]) + 1
            locked = failures >= MAX_FAILURES
            tx.execute("UPDATE operators SET failures = ?, locked = ?, updated_at = ?"
                       " WHERE name = ?", (failures, int(locked), _now().isoformat(), name))
            append_entry(tx, operator=name, action="operator.login-failed", subject=name,
                         outcome="refused", detail={"failures": failures}, at=_now())
            if locked:
                append_entry(tx, operator=name, action="operator.locked", subject=name,
                             outcome="done", detail={"failures": failures}, at=_now())
        # committed: the failure counts even though the login is refused
        if locked:
            raise OperatorsError(f"wrong password: operator {name!r} is now locked")
        raise OperatorsError("unknown operator or wrong password")
