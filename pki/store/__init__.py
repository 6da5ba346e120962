"""Certificate store: every certificate issued and its status; SQLite or PostgreSQL."""

from pki.store.db import (
    CertificateStore,
    ReadOnlyStore,
    is_postgres_url,
    migrations,
    open_readonly_store,
    open_store,
)
from pki.store.records import (
    REASON_CODES,
    REASONS_BY_CODE,
    CertificateRecord,
    CertStatus,
    HolderCertificate,
    Revocation,
    RevokedEntry,
    StatusInfo,
)

__all__ = [
    "REASONS_BY_CODE",
    "REASON_CODES",
    "CertStatus",
    "CertificateRecord",
    "CertificateStore",
    "HolderCertificate",
    "ReadOnlyStore",
    "Revocation",
    "RevokedEntry",
    "StatusInfo",
    "is_postgres_url",
    "migrations",
    "open_readonly_store",
    "open_store",
]
