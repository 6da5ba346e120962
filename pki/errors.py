"""Exceptions raised by pki: one root, `PkiError`, and one subclass per kind of failure."""

from __future__ import annotations


class PkiError(Exception):
    """Root of every error pki raises on purpose."""


class ProfileError(PkiError, ValueError):
    """A certificate would break a JPKI profile rule (the message names the rule)."""


class CAError(PkiError):
    """The CA is missing, already exists, or its configuration is inconsistent."""


class StoreError(PkiError):
    """The certificate store refused an operation or is unreachable."""


class ReadOnlyStoreError(StoreError):
    """A write was attempted through a read-only store."""


class UnknownCertificateError(StoreError, LookupError):
    """No certificate with that serial number is in the store."""


class CrlError(PkiError):
    """A CRL could not be produced or published."""


class OcspError(PkiError):
    """The OCSP responder was misconfigured."""


class VerificationError(PkiError):
    """Input to verification could not be parsed at all (bad files, bad arguments)."""
