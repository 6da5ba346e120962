"""The narrow seam between the CA and its keys.

`hsm.KeyManager` satisfies both protocols: CA keys live in the HSM, never in software.
`KeySource` is what issuing, CRL signing and OCSP need (public keys and signers by
label); `KeyCeremonySource` adds key creation, which only the key ceremony
(`pki.ca.init_ca`) needs.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Protocol, runtime_checkable

from cryptography.hazmat.primitives.asymmetric.types import (
    CertificateIssuerPrivateKeyTypes,
    PublicKeyTypes,
)

Clock = Callable[[], dt.datetime]


def utc_now() -> dt.datetime:
    """The default clock: timezone-aware UTC, whole seconds."""
    return dt.datetime.now(dt.UTC).replace(microsecond=0)


@runtime_checkable
class KeySource(Protocol):
    """Where CA keys live: public keys and signers (cryptography private-key objects whose
    `sign` runs wherever the key is, e.g. in the HSM) by label."""

    def public_key(self, label: str) -> PublicKeyTypes: ...

    def signer(self, label: str) -> CertificateIssuerPrivateKeyTypes: ...


@runtime_checkable
class KeyCeremonySource(KeySource, Protocol):
    """A key source that can also create keys (for the key ceremony). Options beyond the
    label (e.g. the key kind) are the source's own keyword arguments."""

    def create_key(self, label: str) -> object: ...
