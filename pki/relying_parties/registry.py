"""Registered relying parties (署名検証者, 利用者証明検証者, platform operators).

Only registered verifiers may ask the OCSP responder (jpki-rules 5.1: J-LIS gives
revocation data only to parties that filed in advance); CRLs stay public. A party is
identified by a bearer token, stored only as its SHA-256; its webhook secret (for the
HMAC-SHA256 signatures on revocation pushes) is stored as is, since signing needs it.
Both are shown once, when the party is added.
"""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import logging
import secrets
import threading
import time
import urllib.parse
from pathlib import Path

from pki.errors import PkiError
from pki.relying_parties.db import KINDS, RpDatabase

log = logging.getLogger(__name__)

KIND_ALIASES = {
    "signature_verifier": "signature_verifier", "signature-verifier": "signature_verifier",
    "署名検証者": "signature_verifier",
    "user_verifier": "user_verifier", "user-verifier": "user_verifier",
    "利用者証明検証者": "user_verifier",
    "platform_operator": "platform_operator", "platform-operator": "platform_operator",
    "platform": "platform_operator", "プラットフォーム事業者": "platform_operator",
}
# Which hierarchy's certificates each kind may ask about (jpki-rules 5.5-5.8): a
# signature verifier the signing certificates, a user verifier the user-authentication
# certificates, a platform operator both.
KIND_HIERARCHIES: dict[str, frozenset[str]] = {
    "signature_verifier": frozenset({"sign"}),
    "user_verifier": frozenset({"auth"}),
    "platform_operator": frozenset({"sign", "auth"}),
}
TOKEN_PREFIX = "rp_"
SECRET_PREFIX = "whsec_"


class RelyingPartyError(PkiError):
    """A relying-party operation was refused (unknown party, duplicate, bad value)."""


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def parse_kind(text: str) -> str:
    kind = KIND_ALIASES.get(text.strip().lower()) or KIND_ALIASES.get(text.strip())
    if kind is None:
        raise RelyingPartyError(f"unknown kind {text!r}: one of {', '.join(KINDS)}")
    return kind


def parse_serial(text: str) -> str:
    """A serial as the store keeps it: lower-case hex, no leading zeros."""
    try:
        value = int(text.replace(":", "").strip(), 16)
    except ValueError:
        raise RelyingPartyError(f"not a hex serial number: {text!r}") from None
    if value <= 0:
        raise RelyingPartyError(f"not a positive serial number: {text!r}")
    return format(value, "x")


def _check_url(url: str) -> str:
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise RelyingPartyError(f"webhook URL must be http(s)://host/...: {url!r}")
    return url


@dataclasses.dataclass(frozen=True)
class RelyingParty:
    name: str
    kind: str
    webhook_url: str | None
    created_at: int
    subscriptions: int = 0

    def to_json(self) -> dict[str, object]:
        return dataclasses.asdict(self)


@dataclasses.dataclass(frozen=True)
class NewRelyingParty:
    """What `add` returns: the party and its secrets, which are never shown again."""

    party: RelyingParty
    token: str
    webhook_secret: str | None


class RelyingPartyRegistry:
    """Add, list, remove relying parties and their subscriptions (read-write)."""

    def __init__(self, location: str | Path) -> None:
        self.db = RpDatabase(location)

    def close(self) -> None:
        self.db.close()

    def __enter__(self) -> RelyingPartyRegistry:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def add(self, name: str, *, kind: str, webhook_url: str | None = None) -> NewRelyingParty:
        if not isinstance(name, str) or not name.strip() or len(name) > 200:
            raise RelyingPartyError("name must be 1-200 characters")
        kind = parse_kind(kind)
        if webhook_url is not None:
            _check_url(webhook_url)
        token = TOKEN_PREFIX + secrets.token_urlsafe(32)
        secret = SECRET_PREFIX + secrets.token_urlsafe(32) if webhook_url else None
        now = int(time.time())
        with self.db.transaction():
            if self.db.query_one("SELECT 1 FROM relying_parties WHERE name = ?", (name,)):
                raise RelyingPartyError(f"a relying party named {name!r} exists")
            self.db.execute(
                "INSERT INTO relying_parties (name, kind, token_hash, webhook_url,"
                " webhook_secret, created_at) VALUES (?, ?, ?, ?, ?, ?)",
                (name, kind, hash_token(token), webhook_url, secret, now))
        log.info("relying party %r added (%s)", name, kind)
        return NewRelyingParty(RelyingParty(name, kind, webhook_url, now), token, secret)

    def parties(self) -> list[RelyingParty]:
        rows = self.db.query(
            "SELECT p.name, p.kind, p.webhook_url, p.created_at,"
            " (SELECT COUNT(*) FROM rp_subscriptions s WHERE s.rp_name = p.name)"
            " FROM relying_parties p ORDER BY p.name")
        return [RelyingParty(r[0], r[1], r[2], int(r[3]), int(r[4])) for r in rows]

    def get(self, name: str) -> RelyingParty:
        for party in self.parties():
            if party.name == name:
                return party
        raise RelyingPartyError(f"no relying party named {name!r}")

    def webhook_secret(self, name: str) -> str | None:
        row = self.db.query_one("SELECT webhook_secret FROM relying_parties WHERE name = ?",
                                (name,))
        if row is None:
            raise RelyingPartyError(f"no relying party named {name!r}")
        return row[0]

    def remove(self, name: str) -> None:
        with self.db.transaction():
            if not self.db.query_one("SELECT 1 FROM relying_parties WHERE name = ?", (name,)):
                raise RelyingPartyError(f"no relying party named {name!r}")
            # explicit, so it does not depend on SQLite's foreign_keys setting
            self.db.execute("DELETE FROM rp_deliveries WHERE rp_name = ?", (name,))
            self.db.execute("DELETE FROM rp_subscriptions WHERE rp_name = ?", (name,))
            self.db.execute("DELETE FROM relying_parties WHERE name = ?", (name,))
        log.info("relying party %r removed", name)

    def subscribe(self, name: str, serials: list[str]) -> int:
        """Subscribe to certificates (hex serials); returns how many were new."""
        texts = [parse_serial(s) for s in serials]
        now = int(time.time())
        added = 0
        with self.db.transaction():
            if not self.db.query_one("SELECT 1 FROM relying_parties WHERE name = ?", (name,)):
                raise RelyingPartyError(f"no relying party named {name!r}")
            for serial in texts:
                if self.db.query_one("SELECT 1 FROM rp_subscriptions WHERE rp_name = ?"
                                     " AND serial = ?", (name, serial)):
                    continue
                self.db.execute("INSERT INTO rp_subscriptions (rp_name, serial, created_at)"
                                " VALUES (?, ?, ?)", (name, serial, now))
                added += 1
        return added

    def unsubscribe(self, name: str, serials: list[str]) -> int:
        texts = [parse_serial(s) for s in serials]
        removed = 0
        with self.db.transaction():
            for serial in texts:
                cur = self.db.execute("DELETE FROM rp_subscriptions WHERE rp_name = ?"
                                      " AND serial = ?", (name, serial))
                removed += max(cur.rowcount, 0)
        return removed

    def subscriptions(self, name: str) -> list[str]:
        return [r[0] for r in self.db.query(
            "SELECT serial FROM rp_subscriptions WHERE rp_name = ? ORDER BY serial", (name,))]


class TokenAuthorizer:
    """Checks `Authorization: Bearer …` against the registry, read-only.

    Answers are cached for `ttl` seconds (a removed party loses access within it), so the
    database sees at most one query per token and period. Tokens are never logged.
    """

    def __init__(self, location: str | Path, *, ttl: float = 5.0, max_cached: int = 10_000) -> None:
        self.location = location
        self.ttl = ttl
        self.max_cached = max_cached
        self._db: RpDatabase | None = None
        self._lock = threading.Lock()
        self._cache: dict[str, tuple[float, tuple[str, str] | None]] = {}

    def _database(self) -> RpDatabase | None:
        if self._db is None:
            db = RpDatabase(self.location, read_only=True)
            if not db.has_tables():
                db.close()
                return None
            self._db = db
        return self._db

    def party_for(self, authorization: str | None) -> str | None:
        """The relying party's name for an Authorization header value, else None."""
        found = self.party_and_kind(authorization)
        return found[0] if found else None

    def hierarchies_for(self, authorization: str | None) -> frozenset[str]:
        """The hierarchies ("sign", "auth") this party may ask about; none if unknown."""
        found = self.party_and_kind(authorization)
        return KIND_HIERARCHIES.get(found[1], frozenset()) if found else frozenset()

    def party_and_kind(self, authorization: str | None) -> tuple[str, str] | None:
        """(name, kind) of the relying party for an Authorization header value, else None."""
        if not authorization:
            return None
        scheme, _, token = authorization.strip().partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return None
        digest = hash_token(token.strip())
        now = time.monotonic()
        with self._lock:
            hit = self._cache.get(digest)
            if hit is not None and hit[0] > now:
                return hit[1]
            db = self._database()
            found = None
            if db is not None:
                row = db.query_one("SELECT name, token_hash, kind FROM relying_parties"
                                   " WHERE token_hash = ?", (digest,))
                if row is not None and hmac.compare_digest(row[1], digest):
                    found = (str(row[0]), str(row[2]))
            if len(self._cache) >= self.max_cached:
                self._cache.clear()
            self._cache[digest] = (now + self.ttl, found)
            return found

    def close(self) -> None:
        if self._db is not None:
            self._db.close()
