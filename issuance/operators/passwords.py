"""Operator passwords: argon2id hashes (argon2-cffi), never stored or logged in clear."""

from __future__ import annotations

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from issuance.operators.errors import OperatorsError

MIN_LENGTH = 10
_hasher = PasswordHasher()  # argon2id, the library's current parameters


def check_strength(password: str) -> None:
    if len(password) < MIN_LENGTH:
        raise OperatorsError(f"an operator password needs at least {MIN_LENGTH} characters")


def hash_password(password: str) -> str:
    check_strength(password)
    return _hasher.hash(password)


_UNUSABLE = _hasher.hash("a password no operator has: only its verifying time is used")


def spend_verification(password: str) -> None:
    """Verify `password` against a hash nobody has: a refusal that needs no verification
    (unknown operator, locked, disabled) takes as long as a wrong password, so the time
    of an answer does not tell which operator names exist."""
    verify_password(_UNUSABLE, password)


def verify_password(stored: str, password: str) -> bool:
    try:
        return _hasher.verify(stored, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False
