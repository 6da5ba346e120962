"""User-authentication login (利用者証明) on the relying party's side.

The relying party makes a challenge: a fresh 32-byte random nonce, its own name and an
expiry, sealed with an HMAC-SHA256 under a key only it holds (``login.key`` in its state
directory), so it can tell its own challenges from anyone else's without keeping them.
The holder's card signs the challenge with the user-authentication key after its PIN
(PKCS#1 v1.5 over the DigestInfo of SHA-256 of ``LOGIN_CONTEXT`` + the canonical
challenge). `verify_login` checks the seal, the expiry, the signature, the certificate
(path to a user-authentication root, validity, revocation by OCSP or CRL, the
user-authentication profile), and spends the nonce in a ledger (SQLite, primary key)
so a challenge logs in at most once.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import datetime as dt
import hashlib
import hmac
import json
import os
import sqlite3
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from hsm.files import private_dir, write_file
from pki.errors import VerificationError
from pki.profiles import Profile
from pki.verify import VerificationResult, verify_certificate

# Both sides hash this prefix before the challenge, so a login signature can never be
# mistaken for a signature over a document (card/authenticate.py holds the same bytes).
LOGIN_CONTEXT = b"mynacard-login-v1\x00"
CHALLENGE_VERSION = 1
DEFAULT_TTL = dt.timedelta(minutes=5)
MAX_TTL = dt.timedelta(hours=1)
_KEY_FILE = "login.key"
_LEDGER = "login-used.sqlite"
_SEALED = ("version", "rp", "nonce", "expires")


def canonical(challenge: dict[str, Any]) -> bytes:
    """The bytes that are sealed and signed: sorted keys, no spaces, UTF-8."""
    return json.dumps({k: challenge[k] for k in sorted(challenge)}, sort_keys=True,
                      separators=(",", ":"), ensure_ascii=False).encode()


def login_digest(challenge: dict[str, Any]) -> bytes:
    """SHA-256 of what the card signs for `challenge` (seal included)."""
    return hashlib.sha256(LOGIN_CONTEXT + canonical(challenge)).digest()


class LoginVerifier:
    """A relying party's login state: its sealing key and its spent-challenge ledger."""

    def __init__(self, state_dir: str | os.PathLike[str], *, rp: str = "relying-party") -> None:
        if not rp or len(rp) > 200:
            raise VerificationError("a relying-party name is 1 to 200 characters")
        self.rp = rp
        self._dir = private_dir(state_dir)
        key_path = self._dir / _KEY_FILE
        if not key_path.exists():
            try:
                write_file(key_path, os.urandom(32))
            except FileExistsError:
                pass  # made by a concurrent first use
        key = key_path.read_bytes()
        if len(key) != 32:
            raise VerificationError(f"{key_path} is not a 32-byte login key")
        self._key = key
        self._ledger = self._dir / _LEDGER

    def _seal(self, fields: dict[str, Any]) -> str:
        return hmac.new(self._key, canonical({k: fields[k] for k in _SEALED}),
                        hashlib.sha256).hexdigest()

    def challenge(self, *, ttl: dt.timedelta = DEFAULT_TTL,
                  now: dt.datetime | None = None) -> dict[str, Any]:
        """A new challenge (JSON-able) that expires after `ttl`."""
        if not dt.timedelta(seconds=1) <= ttl <= MAX_TTL:
            raise ValueError(f"a challenge lives 1 s to {int(MAX_TTL.total_seconds())} s")
        now = now or dt.datetime.now(dt.UTC)
        fields: dict[str, Any] = {
            "version": CHALLENGE_VERSION, "rp": self.rp,
            "nonce": base64.b64encode(os.urandom(32)).decode(),
            "expires": (now + ttl).replace(microsecond=0).isoformat(),
        }
        fields["seal"] = self._seal(fields)
        return fields

    def _spend(self, nonce: str, expires: dt.datetime, now: dt.datetime) -> bool:
        """Record `nonce` as used; False when it already was."""
        with sqlite3.connect(self._ledger, timeout=30, isolation_level=None) as db:
            # WAL with synchronous=NORMAL: a spent challenge survives a crash of the
            # process (not of the machine), and a login costs no fsync
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")
            db.execute("CREATE TABLE IF NOT EXISTS used (nonce TEXT PRIMARY KEY,"
                       " expires TEXT NOT NULL)")
            db.execute("DELETE FROM used WHERE expires < ?",
                       ((now - MAX_TTL).isoformat(),))
            try:
                db.execute("INSERT INTO used VALUES (?, ?)", (nonce, expires.isoformat()))
            except sqlite3.IntegrityError:
                return False
        for suffix in ("", "-wal", "-shm"):
            if os.path.exists(f"{self._ledger}{suffix}"):
                os.chmod(f"{self._ledger}{suffix}", 0o600)
        return True

    def verify(self, response: dict[str, Any] | bytes, *, roots: Sequence[x509.Certificate],
               now: dt.datetime | None = None, **options: Any) -> LoginResult:
        """Check a login response (see the module docstring); never trusts its fields."""
        now = now or dt.datetime.now(dt.UTC)
        try:
            resp = json.loads(response) if isinstance(response, bytes) else response
            if not isinstance(resp, dict):
                raise ValueError("not an object")
            ch = resp["challenge"]
            if not isinstance(ch, dict) or set(ch) != {*_SEALED, "seal"}:
                raise ValueError("the challenge has other fields than a challenge")
            cert = x509.load_der_x509_certificate(base64.b64decode(resp["certificate"],
                                                                   validate=True))
            signature = base64.b64decode(resp["signature"], validate=True)
            expires = dt.datetime.fromisoformat(ch["expires"])
            if expires.tzinfo is None:
                raise ValueError("the expiry has no time zone")
        except (KeyError, TypeError, ValueError, binascii.Error) as exc:
            raise VerificationError(f"not a login response: {exc}") from None
        seal = ch.get("seal")
        if not isinstance(seal, str) or not hmac.compare_digest(
                seal.encode("utf-8", "surrogatepass"), self._seal(ch).encode()) \
                or ch.get("rp") != self.rp:
            return LoginResult.refused("the challenge is not one this relying party made", cert)
        if expires <= now:
            return LoginResult.refused(f"the challenge expired at {expires.isoformat()}", cert)
        pub = cert.public_key()
        if not isinstance(pub, rsa.RSAPublicKey):
            return LoginResult.refused("the certificate's key is not RSA", cert)
        try:
            pub.verify(signature, LOGIN_CONTEXT + canonical(ch), padding.PKCS1v15(),
                       hashes.SHA256())
        except InvalidSignature:
            return LoginResult.refused("the signature is not by the certificate's key "
                                       "over this challenge", cert)
        if not self._spend(ch["nonce"], expires, now):
            return LoginResult.refused("the challenge was already used", cert)
        options["expected_profile"] = Profile.USER_AUTHENTICATION
        result = verify_certificate(cert, roots=roots, **options)
        return LoginResult(result.valid, result.reasons, cert, result)


@dataclasses.dataclass(frozen=True)
class LoginResult:
    """Whether a login succeeded; `certificate_check` is absent when it was refused
    before the certificate was looked at."""

    valid: bool
    reasons: tuple[str, ...]
    certificate: x509.Certificate
    certificate_check: VerificationResult | None = None

    @classmethod
    def refused(cls, reason: str, cert: x509.Certificate) -> LoginResult:
        return cls(False, (reason,), cert)

    @property
    def revoked(self) -> bool:
        return self.certificate_check is not None and \
            self.certificate_check.revocation.status == "revoked" and not self.valid

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "valid": self.valid, "reasons": list(self.reasons),
            "serial": format(self.certificate.serial_number, "x"),
            "subject": self.certificate.subject.rfc4514_string(),
        }
        if self.certificate_check is not None:
            cj = self.certificate_check.to_json()
            out["revocation"] = cj["revocation"]
            out["profile"] = cj["profile"]
        return out


def load_response(path: str | os.PathLike[str]) -> bytes:
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise VerificationError(f"cannot read {path}: {exc.strerror}") from None
    if len(data) > 64 * 1024:
        raise VerificationError(f"{path}: a login response is under 64 KiB")
    return data
