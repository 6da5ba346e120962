"""The operator audit log: append-only and hash-chained.

Every operator action is one entry (seq, time, operator, action, subject, outcome,
detail) chained to the one before by SHA-256; `AuditLog.verify()` finds edited,
removed and reordered entries and names their sequence numbers.
"""

from issuance.audit.log import (
    GENESIS_HASH,
    AuditEntry,
    AuditError,
    AuditLog,
    Problem,
    Verification,
    append_entry,
    entry_hash,
)
from issuance.audit.operator import OPERATOR_ENV, OperatorError, resolve_operator

__all__ = [
    "GENESIS_HASH",
    "OPERATOR_ENV",
    "AuditEntry",
    "AuditError",
    "AuditLog",
    "OperatorError",
    "Problem",
    "Verification",
    "append_entry",
    "entry_hash",
    "resolve_operator",
]
