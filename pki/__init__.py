"""The JPKI certificate authority: profiles, CA, certificate store, CRL shards, OCSP, verification.

Sub-modules are imported on demand; this package only re-exports the error classes.
"""

from pki.errors import (
    CAError,
    CrlError,
    OcspError,
    PkiError,
    ProfileError,
    ReadOnlyStoreError,
    StoreError,
    UnknownCertificateError,
    VerificationError,
)

__all__ = [
    "CAError",
    "CrlError",
    "OcspError",
    "PkiError",
    "ProfileError",
    "ReadOnlyStoreError",
    "StoreError",
    "UnknownCertificateError",
    "VerificationError",
]
