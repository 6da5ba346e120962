"""Notices from 住基ネット (`juki`) and 附票ネット (`fuhyo`) that revoke JPKI certificates.

Public API:
- `parse_notice`, `Notice`, `Kind`, `Source`, `NoticeError`, `SCHEMA_PATH` (model);
- `NoticeIntake`, `IntakeResult`, `IntakeReport` (store first, then acknowledge);
- `decide`, `Decision`, `Revocation`, `CardAction` (the rule table, a pure function);
- `NoticeProcessor`, `ProcessReport` (apply accepted notices exactly once in effect);
- `CertificateGateway`, `CertificateStoreError`, `HeldCertificate`, `CertKind`, `Reason`
  (the pki store adapter);
- `notice_counts`, `problem_notices`, `effects_of`, `notice_state` (reports);
- `migrate_notices` (the notice tables, versioned in `notices_schema_version`).
"""

from issuance.notices.certificates import (
    CertificateGateway,
    CertificateStoreError,
    CertKind,
    HeldCertificate,
    Reason,
)
from issuance.notices.intake import IntakeReport, IntakeResult, NoticeIntake
from issuance.notices.migrations import migrate_notices
from issuance.notices.model import SCHEMA_PATH, Kind, Notice, NoticeError, Source, parse_notice
from issuance.notices.processor import NoticeProcessor, ProcessReport
from issuance.notices.queries import effects_of, notice_counts, notice_state, problem_notices
from issuance.notices.rules import CardAction, Decision, Revocation, decide

__all__ = [
    "SCHEMA_PATH",
    "CardAction",
    "CertKind",
    "CertificateGateway",
    "CertificateStoreError",
    "Decision",
    "HeldCertificate",
    "IntakeReport",
    "IntakeResult",
    "Kind",
    "Notice",
    "NoticeError",
    "NoticeIntake",
    "NoticeProcessor",
    "ProcessReport",
    "Reason",
    "Revocation",
    "Source",
    "decide",
    "effects_of",
    "migrate_notices",
    "notice_counts",
    "notice_state",
    "parse_notice",
    "problem_notices",
]
