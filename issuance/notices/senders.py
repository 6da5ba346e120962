"""Senders allowed to POST notices over HTTP, each with its own bearer token.

A token is shown once, when the sender is added; the database keeps only its SHA-256.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from datetime import UTC, datetime

from issuance.errors import IssuanceError
from issuance.notices.migrations import migrate_notices
from issuance.storage import Database, IntegrityViolation

TOKEN_PREFIX = "mnn_"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


class SenderError(IssuanceError, ValueError):
    """A sender cannot be added (bad or taken name)."""


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def add_sender(db: Database, name: str) -> str:
    """Register `name`; return its new bearer token (not stored, shown once)."""
    if not _NAME.match(name):
        raise SenderError("a sender name is 1-64 of A-Z a-z 0-9 . _ - (starting with a letter "
                          "or digit)")
    migrate_notices(db)
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    try:
        with db.transaction() as tx:
            tx.execute("INSERT INTO notice_senders (name, token_hash, created_at)"
                       " VALUES (?, ?, ?)",
                       (name, token_hash(token), datetime.now(UTC).isoformat()))
    except IntegrityViolation:
        raise SenderError(f"sender {name!r} exists already") from None
    return token


def list_senders(db: Database) -> list[dict[str, object]]:
    migrate_notices(db)
    with db.transaction() as tx:
        return [dict(r) for r in tx.query(
            "SELECT name, created_at, disabled FROM notice_senders ORDER BY name")]


def authenticate(db: Database, token: str) -> str | None:
    """The enabled sender holding `token`, or None."""
    if not token.startswith(TOKEN_PREFIX) or len(token) > 200:
        return None
    digest = token_hash(token)
    with db.transaction() as tx:
        row = tx.query_one("SELECT name, token_hash, disabled FROM notice_senders"
                           " WHERE token_hash = ?", (digest,))
    if row is None or row["disabled"] or not hmac.compare_digest(row["token_hash"], digest):
        return None
    return str(row["name"])
