"""User-authentication login on the holder's side: the card signs a relying party's
challenge with the user-authentication key after its PIN.

What is signed is the DigestInfo of SHA-256 over ``LOGIN_CONTEXT`` followed by the
challenge in canonical JSON (sorted keys, no spaces, UTF-8) — the same bytes the relying
party checks (pki/login.py; card imports no other project package, so the rule is
written here too). The prefix keeps a login signature from doubling as one over a
document.
"""

from __future__ import annotations

import base64
import hashlib
import json
from typing import Any

from card.jpki import CertKind, JpkiClient, Key, digest_info

LOGIN_CONTEXT = b"mynacard-login-v1\x00"
_FIELDS = {"version", "rp", "nonce", "expires", "seal"}


def parse_challenge(data: bytes) -> dict[str, Any]:
    """A challenge as the relying party wrote it; only its shape is checked here."""
    if len(data) > 4096:
        raise ValueError("a login challenge is under 4 KiB")
    try:
        ch = json.loads(data)
    except (ValueError, UnicodeDecodeError):
        raise ValueError("the challenge is not JSON") from None
    if not isinstance(ch, dict) or set(ch) != _FIELDS:
        raise ValueError("not a login challenge (fields: "
                         + ", ".join(sorted(_FIELDS)) + ")")
    return ch


def challenge_digest_info(challenge: dict[str, Any]) -> bytes:
    body = json.dumps(challenge, sort_keys=True, separators=(",", ":"),
                      ensure_ascii=False).encode()
    return digest_info("sha256", hashlib.sha256(LOGIN_CONTEXT + body).digest())


def authenticate(client: JpkiClient, challenge: dict[str, Any], pin: str) -> dict[str, Any]:
    """VERIFY the user-authentication PIN, sign the challenge, and return the login
    response: the challenge, the user-authentication certificate and the signature."""
    client.verify_pin(Key.AUTH, pin)
    signature = client.sign(Key.AUTH, challenge_digest_info(challenge))
    cert = client.read_certificate_der(CertKind.AUTH)
    return {"challenge": challenge,
            "certificate": base64.b64encode(cert).decode(),
            "signature": base64.b64encode(signature).decode()}
