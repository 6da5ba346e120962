"""The one place the notice path talks to the certificate store (`pki.store`).

If the store's API changes, only this module changes. The notice path sees a holder's
certificates as `HeldCertificate` values and revokes through `CertificateGateway.revoke`,
which is idempotent: revoking an already revoked certificate changes nothing.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from pathlib import Path

from cryptography import x509

from issuance.errors import IssuanceError
from pki.errors import PkiError
from pki.profiles import Profile
from pki.store import CertificateStore, HolderCertificate, Revocation, open_store


class CertificateStoreError(IssuanceError):
    """The certificate store could not be opened or refused an operation."""


@contextmanager
def _translated() -> Iterator[None]:
    try:
        yield
    except PkiError as exc:
        raise CertificateStoreError(f"certificate store: {exc}") from exc


class CertKind(StrEnum):
    SIGNING = "signing"
    USER_AUTHENTICATION = "user_authentication"
    OTHER = "other"


_KINDS = {
    Profile.SIGNING.value: CertKind.SIGNING,
    Profile.USER_AUTHENTICATION.value: CertKind.USER_AUTHENTICATION,
}


class Reason(StrEnum):
    """The RFC 5280 CRLReason values the notice path uses."""

    AFFILIATION_CHANGED = "affiliation_changed"
    CESSATION_OF_OPERATION = "cessation_of_operation"


_FLAGS = {
    Reason.AFFILIATION_CHANGED: x509.ReasonFlags.affiliation_changed,
    Reason.CESSATION_OF_OPERATION: x509.ReasonFlags.cessation_of_operation,
}


@dataclass(frozen=True)
class HeldCertificate:
    serial: int
    kind: CertKind
    issued_at: datetime
    status: str  # good | hold | revoked
    cause: str | None

    @property
    def serial_hex(self) -> str:
        return format(self.serial, "x")


def _held(c: HolderCertificate) -> HeldCertificate:
    return HeldCertificate(serial=c.serial, kind=_KINDS.get(c.profile, CertKind.OTHER),
                           issued_at=c.issued_at, status=str(c.status.value), cause=c.cause)


class CertificateGateway:
    """A read-write view of the certificate store restricted to what notices need."""

    def __init__(self, store: CertificateStore) -> None:
        self._store = store

    @classmethod
    def open(cls, location: str | Path) -> CertificateGateway:
        with _translated():
            return cls(open_store(location))

    def close(self) -> None:
        self._store.close()

    def __enter__(self) -> CertificateGateway:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def certificates_of(self, resident_code: str) -> list[HeldCertificate]:
        return self.certificates_of_many([resident_code])[resident_code]

    def certificates_of_many(self, resident_codes: list[str]) -> dict[str, list[HeldCertificate]]:
        """The certificates of several holders, in set queries (in the caller's
        transaction when there is one)."""
        with _translated():
            by_holder = self._store.by_holders(resident_codes)
        return {code: [_held(c) for c in held] for code, held in by_holder.items()}

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """One certificate-store transaction: revocations inside it commit together."""
        with _translated(), self._store.transaction():
            yield

    def revoke(self, serial: int, *, reason: Reason, cause: str, at: datetime) -> bool:
        """Revoke; True when this call changed the status, False when already revoked."""
        with _translated():
            return self._store.revoke(serial, reason=_FLAGS[reason], cause=cause, at=at)

    def revoke_many(self, revocations: list[tuple[int, Reason, str, datetime]]) -> list[bool]:
        """Revoke (serial, reason, cause, at) in order, in one store transaction with set
        queries; per revocation, True when it changed the status (as `revoke` would)."""
        with _translated():
            return self._store.revoke_many([Revocation(serial, _FLAGS[reason], cause, at)
                                            for serial, reason, cause, at in revocations])

    def current(self, serial: int) -> HeldCertificate:
        with _translated():
            r = self._store.get(serial)
        return HeldCertificate(r.serial, _KINDS.get(r.profile, CertKind.OTHER), r.issued_at,
                               str(r.status.value), r.cause)
