"""Plain values the certificate store hands out."""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum

from cryptography import x509

# RFC 5280 CRLReason codes.
REASON_CODES: dict[x509.ReasonFlags, int] = {
    x509.ReasonFlags.unspecified: 0,
    x509.ReasonFlags.key_compromise: 1,
    x509.ReasonFlags.ca_compromise: 2,
    x509.ReasonFlags.affiliation_changed: 3,
    x509.ReasonFlags.superseded: 4,
    x509.ReasonFlags.cessation_of_operation: 5,
    x509.ReasonFlags.certificate_hold: 6,
    x509.ReasonFlags.remove_from_crl: 8,
    x509.ReasonFlags.privilege_withdrawn: 9,
    x509.ReasonFlags.aa_compromise: 10,
}
REASONS_BY_CODE: dict[int, x509.ReasonFlags] = {v: k for k, v in REASON_CODES.items()}


class CertStatus(enum.StrEnum):
    GOOD = "good"
    REVOKED = "revoked"
    HOLD = "hold"


def serial_to_text(serial: int) -> str:
    if not isinstance(serial, int) or isinstance(serial, bool):
        raise TypeError("serial must be an int")
    if serial <= 0:
        raise ValueError("serial must be positive")
    return format(serial, "x")


def epoch(t: dt.datetime) -> int:
    if t.tzinfo is None:
        raise ValueError("datetimes must be timezone-aware")
    return int(t.timestamp())


def to_datetime(s: int) -> dt.datetime:
    """Unix seconds (a NOT NULL column) as an aware UTC datetime."""
    return dt.datetime.fromtimestamp(s, dt.UTC)


def from_epoch(s: int | None) -> dt.datetime | None:
    """Unix seconds or NULL (a nullable column) as an aware UTC datetime or None."""
    return None if s is None else dt.datetime.fromtimestamp(s, dt.UTC)


@dataclasses.dataclass(frozen=True, slots=True)
class StatusInfo:
    """What OCSP needs about one certificate."""

    serial: int
    hierarchy: str
    status: CertStatus
    reason: x509.ReasonFlags | None
    revoked_at: dt.datetime | None
    status_version: int
    not_after: dt.datetime


@dataclasses.dataclass(frozen=True, slots=True)
class CertificateRecord:
    serial: int
    hierarchy: str
    profile: str
    holder_id: str
    shard: int
    issued_at: dt.datetime
    not_before: dt.datetime
    not_after: dt.datetime
    status: CertStatus
    reason: x509.ReasonFlags | None
    revoked_at: dt.datetime | None
    cause: str | None
    successor: int | None
    status_version: int
    der: bytes

    def certificate(self) -> x509.Certificate:
        return x509.load_der_x509_certificate(self.der)


@dataclasses.dataclass(frozen=True, slots=True)
class HolderCertificate:
    """A certificate of a holder without its DER: what revocation by notice needs."""

    serial: int
    holder_id: str
    profile: str
    issued_at: dt.datetime
    status: CertStatus
    cause: str | None


@dataclasses.dataclass(frozen=True, slots=True)
class Revocation:
    """One revocation of `CertificateStore.revoke_many`."""

    serial: int
    reason: x509.ReasonFlags
    cause: str | None
    at: dt.datetime


@dataclasses.dataclass(frozen=True, slots=True)
class RevokedEntry:
    """One line of a CRL."""

    serial: int
    revoked_at: dt.datetime
    reason: x509.ReasonFlags | None
