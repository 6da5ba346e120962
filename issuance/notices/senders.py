"""Senders allowed to POST notices over HTTP, each with its own bearer token, bound to the
sources (`juki`, `fuhyo`) it may send.

A token is shown once, when the sender is added; the database keeps only its SHA-256.
A sender may also be known by its TLS client certificate (mutual TLS): the database keeps
the SHA-256 of the certificate's DER encoding. The name `local` is the file intake's
(`notices ingest`) and cannot be taken by an HTTP sender.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

from issuance.errors import IssuanceError
from issuance.notices.migrations import migrate_notices
from issuance.notices.model import LOCAL_SENDER, Source
from issuance.storage import Database, IntegrityViolation, Transaction

TOKEN_PREFIX = "mnn_"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
ALL_SOURCES = frozenset(s.value for s in Source)


class SenderError(IssuanceError, ValueError):
    """A sender cannot be added (bad or taken name, unknown source, certificate in use)."""


@dataclass(frozen=True)
class Sender:
    """An authenticated sender and the sources it may send."""

    name: str
    sources: frozenset[str]


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def cert_fingerprint(der: bytes) -> str:
    """SHA-256 (hex) of a certificate's DER encoding: how a client certificate is known."""
    return hashlib.sha256(der).hexdigest()


def checked_sources(sources: Iterable[str]) -> frozenset[str]:
    wanted = frozenset(sources)
    if not wanted:
        raise SenderError("a sender needs at least one --source (juki, fuhyo)")
    unknown = sorted(wanted - ALL_SOURCES)
    if unknown:
        raise SenderError(f"unknown source {unknown[0]!r} (juki, fuhyo)")
    return wanted


def add_sender(db: Database, name: str, *, sources: Iterable[str],
               cert_der: bytes | None = None) -> str:
    """Register `name`, allowed to send `sources`; return its new bearer token (not stored,
    shown once). With `cert_der`, a client presenting that certificate is this sender."""
    if not _NAME.match(name):
        raise SenderError("a sender name is 1-64 of A-Z a-z 0-9 . _ - (starting with a letter "
                          "or digit)")
    if name == LOCAL_SENDER:
        raise SenderError(f"the name {LOCAL_SENDER!r} is the file intake's")
    allowed = checked_sources(sources)
    migrate_notices(db)
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    fingerprint = cert_fingerprint(cert_der) if cert_der is not None else None
    try:
        with db.transaction() as tx:
            if tx.query_one("SELECT name FROM notice_senders WHERE name = ?", (name,)):
                raise SenderError(f"sender {name!r} exists already")
            if fingerprint and tx.query_one("SELECT name FROM notice_senders"
                                            " WHERE cert_sha256 = ?", (fingerprint,)):
                raise SenderError("this client certificate belongs to another sender")
            tx.execute("INSERT INTO notice_senders (name, token_hash, created_at, cert_sha256)"
                       " VALUES (?, ?, ?, ?)",
                       (name, token_hash(token), datetime.now(UTC).isoformat(), fingerprint))
            tx.executemany("INSERT INTO notice_sender_sources (sender, source) VALUES (?, ?)",
                           [(name, s) for s in sorted(allowed)])
    except IntegrityViolation:
        raise SenderError(f"sender {name!r} exists already") from None
    return token


def disable_sender(db: Database, name: str) -> bool:
    """Stop accepting `name`'s token and client certificate from its next request on (a
    leaked token, a retired gateway); the notices it sent stay. False when it was
    disabled already; SenderError when there is no such sender."""
    migrate_notices(db)
    with db.transaction() as tx:
        row = tx.query_one("SELECT disabled FROM notice_senders WHERE name = ?", (name,))
        if row is None:
            raise SenderError(f"no sender {name!r}")
        if row["disabled"]:
            return False
        tx.execute("UPDATE notice_senders SET disabled = 1 WHERE name = ?", (name,))
    return True


def list_senders(db: Database) -> list[dict[str, object]]:
    migrate_notices(db)
    with db.transaction() as tx:
        senders = [dict(r) for r in tx.query(
            "SELECT name, created_at, disabled, cert_sha256 FROM notice_senders ORDER BY name")]
        sources = _sources_of(tx, [str(s["name"]) for s in senders])
    for s in senders:
        s["sources"] = sorted(sources.get(str(s["name"]), ()))
        s["client_certificate"] = s.pop("cert_sha256")
    return senders


def _sources_of(tx: Transaction, names: list[str]) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for row in tx.query_in(
            "SELECT sender, source FROM notice_sender_sources WHERE sender IN ({values})",
            names):
        out.setdefault(str(row["sender"]), set()).add(str(row["source"]))
    return out


def _enabled(db: Database, column: str, value: str) -> Sender | None:
    with db.transaction() as tx:
        row = tx.query_one(f"SELECT name, {column} AS proof, disabled FROM notice_senders"
                           f" WHERE {column} = ?", (value,))
        if row is None or row["disabled"] or not hmac.compare_digest(row["proof"], value):
            return None
        name = str(row["name"])
        return Sender(name, frozenset(_sources_of(tx, [name]).get(name, ())))


def authenticate(db: Database, token: str) -> Sender | None:
    """The enabled sender holding `token`, or None."""
    if not token.startswith(TOKEN_PREFIX) or len(token) > 200:
        return None
    return _enabled(db, "token_hash", token_hash(token))


def sender_for_certificate(db: Database, der: bytes) -> Sender | None:
    """The enabled sender a verified client certificate stands for, or None."""
    return _enabled(db, "cert_sha256", cert_fingerprint(der))
