"""Attribute templates for keys the HSM creates: one place that says what a key may do.

Every key is sensitive and never extractable; each usage flag is written out, true only for
what the key is for, so a module's defaults (which differ between vendors) never grant a
usage by omission.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from pkcs11 import Attribute

SECRET_KEY_USAGES = (Attribute.SIGN, Attribute.VERIFY, Attribute.ENCRYPT, Attribute.DECRYPT,
                     Attribute.WRAP, Attribute.UNWRAP, Attribute.DERIVE)
PRIVATE_KEY_USAGES = (Attribute.SIGN, Attribute.DECRYPT, Attribute.UNWRAP, Attribute.DERIVE)
PUBLIC_KEY_USAGES = (Attribute.VERIFY, Attribute.ENCRYPT, Attribute.WRAP)


def usages(allowed: Iterable[Attribute], may: Iterable[Attribute]) -> dict[Attribute, bool]:
    """Each usage in `allowed` written out: true when it is one of `may`."""
    granted = set(may)
    unknown = granted.difference(allowed)
    if unknown:
        raise ValueError(f"usages this kind of key cannot have: {sorted(map(str, unknown))}")
    return {usage: usage in granted for usage in allowed}


def _named(template: dict[Attribute, Any], label: str | None,
           key_id: bytes | None) -> dict[Attribute, Any]:
    if label is not None:
        template[Attribute.LABEL] = label
    if key_id is not None:
        template[Attribute.ID] = key_id
    return template


def secret_key_template(*, may: Iterable[Attribute], label: str | None = None,
                        key_id: bytes | None = None, token: bool = True) -> dict[Attribute, Any]:
    """A secret key kept in the HSM (a token object, private) or a session key (`token`
    False, e.g. a derived card key): sensitive, not extractable, only the usages in `may`."""
    template: dict[Attribute, Any] = {Attribute.TOKEN: token}
    if token:
        template[Attribute.PRIVATE] = True
    template[Attribute.SENSITIVE] = True
    template[Attribute.EXTRACTABLE] = False
    template.update(usages(SECRET_KEY_USAGES, may))
    return _named(template, label, key_id)


def private_key_template(label: str, key_id: bytes) -> dict[Attribute, Any]:
    """A signing key's private half: a private token object that only signs."""
    template: dict[Attribute, Any] = {
        Attribute.TOKEN: True,
        Attribute.PRIVATE: True,
        Attribute.SENSITIVE: True,
        Attribute.EXTRACTABLE: False,
    }
    template.update(usages(PRIVATE_KEY_USAGES, (Attribute.SIGN,)))
    return _named(template, label, key_id)


def public_key_template(label: str, key_id: bytes) -> dict[Attribute, Any]:
    """A signing key's public half: a public token object that only verifies."""
    template: dict[Attribute, Any] = {Attribute.TOKEN: True, Attribute.PRIVATE: False}
    template.update(usages(PUBLIC_KEY_USAGES, (Attribute.VERIFY,)))
    return _named(template, label, key_id)
