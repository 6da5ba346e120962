"""Errors raised by `hsm`: one class per condition under `HsmError`.

Messages name tokens, labels and PKCS#11 return codes; they never contain a PIN or
any key material. PKCS#11 errors from python-pkcs11 are translated by `translate`.
"""

from __future__ import annotations

import pkcs11.exceptions as p11e


class HsmError(Exception):
    """Root of every error raised by `hsm`."""


class ModuleNotFound(HsmError):
    """The PKCS#11 module (shared library) does not exist or cannot be loaded."""


class TokenNotFound(HsmError):
    """No token with the requested label (or serial) is present."""


class TokenExists(HsmError):
    """A token with this label already exists (refusing to re-create it)."""


class PinIncorrect(HsmError):
    """The PIN was rejected by the token."""


class PinLocked(HsmError):
    """The PIN is locked after too many wrong tries."""


class PinSourceError(HsmError):
    """A PIN source cannot be read or is malformed."""


class NotLoggedIn(HsmError):
    """The operation needs a logged-in session."""


class KeyNotFound(HsmError):
    """No key with the requested label or id."""


class KeyExists(HsmError):
    """A key with this label already exists on the token."""


class KeyNotExportable(HsmError, TypeError):
    """The private key stays inside the HSM; its value cannot be read."""


class UnsupportedAlgorithm(HsmError, ValueError):
    """The mechanism, padding, hash or key kind is not supported."""


class UriError(HsmError, ValueError):
    """A `pkcs11:` URI is malformed or asks for something refused (an inline PIN)."""


class DeviceError(HsmError):
    """Any other PKCS#11 failure; the message names the return code."""


_MAP: tuple[tuple[type[Exception], type[HsmError], str], ...] = (
    (p11e.PinIncorrect, PinIncorrect, "PIN incorrect"),
    (p11e.PinLocked, PinLocked, "PIN locked"),
    (p11e.PinLenRange, PinIncorrect, "PIN length out of range"),
    (p11e.PinInvalid, PinIncorrect, "PIN contains invalid characters"),
    (p11e.PinExpired, PinIncorrect, "PIN expired"),
    (p11e.UserNotLoggedIn, NotLoggedIn, "not logged in"),
    (p11e.NoSuchToken, TokenNotFound, "token not found"),
    (p11e.TokenNotPresent, TokenNotFound, "token not present"),
    (p11e.NoSuchKey, KeyNotFound, "key not found"),
    (p11e.AttributeSensitive, KeyNotExportable, "attribute is sensitive"),
    (p11e.KeyUnextractable, KeyNotExportable, "key is not extractable"),
    (p11e.MechanismInvalid, UnsupportedAlgorithm, "mechanism not supported by the token"),
)


def translate(exc: BaseException, context: str = "") -> HsmError:
    """The `HsmError` for a python-pkcs11 exception (never includes arguments or data)."""
    if isinstance(exc, HsmError):
        return exc
    prefix = f"{context}: " if context else ""
    for p11_cls, cls, text in _MAP:
        if isinstance(exc, p11_cls):
            return cls(prefix + text)
    return DeviceError(f"{prefix}PKCS#11 error {type(exc).__name__}")
