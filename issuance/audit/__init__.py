"""The operator audit log: append-only, hash-chained and keyed in the HSM.

Every operator action is one entry (seq, time, operator, action, subject, outcome,
detail) chained to the one before by SHA-256 and carrying an HMAC made by the audit key
in the HSM; `AuditLog.verify()` finds edited, removed, reordered, re-chained, forged
and (given a recorded head) truncated entries and names their sequence numbers.
See README.md here.
"""

from issuance.audit.keyer import (
    AUDIT_KEY_LABEL,
    Keyer,
    KeyerError,
    SoftwareKeyer,
    keyed_by,
)
from issuance.audit.log import (
    GENESIS_HASH,
    AuditEntry,
    AuditError,
    AuditLog,
    Problem,
    Verification,
    append_entry,
    entry_hash,
    head_ref,
)
from issuance.audit.operator import OPERATOR_ENV, OperatorError, resolve_operator

__all__ = [
    "AUDIT_KEY_LABEL",
    "GENESIS_HASH",
    "Keyer",
    "KeyerError",
    "SoftwareKeyer",
    "head_ref",
    "keyed_by",
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
