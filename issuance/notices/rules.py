"""What a notice does to a person's certificates and card: a pure function.

The table (docs/rules.md 2a, 2b, 6.6), the same for notices from 住基ネット (`juki`)
and from 附票ネット (`fuhyo`, for emigrants):

- death, record_deleted: signing and user authentication revoked
  (cessationOfOperation); the card is abolished; the person becomes deceased/deleted.
- name, address, birth date or sex change, correction: signing revoked
  (affiliationChanged); user authentication and card kept; the facts are updated.
- emigration_continued_use by a Japanese national: signing revoked as of the emigration
  date (cessationOfOperation); user authentication and card kept; the person is emigrated
  and followed through the 附票 (continued_use).
- emigration_without_continued_use, continued use claimed for a foreign national (no
  附票, no continued use), or continued use claimed for an emigration dated before
  2024-05-27 (continued use did not exist yet): both revoked (cessationOfOperation),
  signing as of the emigration date; the card lapses (its application is marked abolished).

RFC 5280 reason codes (jpki-rules 2b): affiliationChanged (3) "certificate contents
changed" for a change of the four facts; cessationOfOperation (5) "no longer needed" for
death, deletion of the record and emigration.

Which certificates a notice touches: only those issued on or before its effective date
(the issuance time as a date in Japan), so a notice that arrives late never revokes a
certificate issued afterwards, e.g. after a move, a return from abroad or a restored
record. Death is the exception: every certificate of a dead person is revoked.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta, timezone
from enum import StrEnum

from issuance.notices.certificates import CertKind, HeldCertificate, Reason
from issuance.notices.model import FACT_CHANGES, Kind, Source
from issuance.registry.model import Nationality, ResidentStatus

JST = timezone(timedelta(hours=9), "JST")
CONTINUED_USE_START = date(2024, 5, 27)  # 国外転出者の継続利用 exists from this day (2a, 6.6)


class CardAction(StrEnum):
    NONE = "none"
    ABOLISH = "abolish"  # 廃止 (death, deletion of the record)
    LAPSE = "lapse"  # 失効 on emigration without continued use


@dataclass(frozen=True)
class Revocation:
    serial: int
    certificate: CertKind
    reason: Reason
    as_of_effective_date: bool  # revoked as of the effective date, not the processing time


@dataclass(frozen=True)
class Decision:
    revocations: tuple[Revocation, ...]
    kept: tuple[int, ...]  # serials the notice leaves alone on purpose
    card: CardAction
    new_status: ResidentStatus | None
    follow_fuhyo: bool
    rule: str  # which row of the table applied

    def to_json(self) -> dict[str, object]:
        return {
            "rule": self.rule,
            "revoke": [{"serial": format(r.serial, "x"), "certificate": r.certificate.value,
                        "reason": r.reason.value} for r in self.revocations],
            "kept": [format(s, "x") for s in self.kept],
            "card": self.card.value,
            "new_status": self.new_status.value if self.new_status else None,
            "follow_fuhyo": self.follow_fuhyo,
        }


BOTH = frozenset({CertKind.SIGNING, CertKind.USER_AUTHENTICATION})
SIGNING_ONLY = frozenset({CertKind.SIGNING})


def issued_on_or_before(cert: HeldCertificate, day: date) -> bool:
    return cert.issued_at.astimezone(JST).date() <= day


_Head = tuple[frozenset[CertKind], Reason, CardAction, ResidentStatus | None, bool, bool, str]
_HEADS: dict[tuple[Kind, bool, bool], _Head] = {}  # every head, computed once


def _head(kind: Kind, foreign: bool, before_continued_use: bool) -> _Head:
    """The row of the table for a notice: (certificates targeted, reason, card action,
    new status, follow the 附票, revoke as of the effective date, rule text)."""
    if kind in (Kind.DEATH, Kind.RECORD_DELETED):
        new_status = (ResidentStatus.DECEASED if kind is Kind.DEATH else ResidentStatus.DELETED)
        return (BOTH, Reason.CESSATION_OF_OPERATION, CardAction.ABOLISH, new_status, False,
                False, f"{kind.value}: revoke both, abolish the card")
    if kind in FACT_CHANGES:
        return (SIGNING_ONLY, Reason.AFFILIATION_CHANGED, CardAction.NONE, None, False, False,
                f"{kind.value}: revoke signing (affiliationChanged), keep user authentication")
    if kind is Kind.EMIGRATION_CONTINUED_USE and not foreign and not before_continued_use:
        return (SIGNING_ONLY, Reason.CESSATION_OF_OPERATION, CardAction.NONE,
                ResidentStatus.EMIGRATED, True, True,
                "emigration with continued use: revoke signing as of the emigration date, "
                "keep user authentication, follow through 附票")
    # without continued use, or a foreign national (no 附票, no continued use)
    if kind is not Kind.EMIGRATION_CONTINUED_USE:
        rule = "emigration without continued use: revoke both, the card lapses"
    elif foreign:
        rule = "emigration by a foreign national: revoke both, the card lapses"
    else:
        rule = (f"emigration before {CONTINUED_USE_START} (no continued use yet): "
                "revoke both, the card lapses")
    return (BOTH, Reason.CESSATION_OF_OPERATION, CardAction.LAPSE, ResidentStatus.EMIGRATED,
            False, True, rule)


def decide(
    *,
    kind: Kind,
    source: Source,
    effective_date: date,
    nationality: Nationality | None,
    status: ResidentStatus | None,
    certificates: Sequence[HeldCertificate],
) -> Decision:
    """The actions for one notice. `source` does not change them: a 附票ネット notice
    about an emigrant does what the 住基ネット notice does at home."""
    del source, status  # the table is the same for both networks and every current status
    if type(kind) is not Kind:
        kind = Kind(kind)
    key = (kind, nationality is Nationality.FOREIGN, effective_date < CONTINUED_USE_START)
    head = _HEADS.get(key)
    if head is None:
        head = _HEADS[key] = _head(*key)
    targets, reason, card, new_status, follow, as_of, rule = head
    revocations: list[Revocation] = []
    kept: list[int] = []
    every = kind is Kind.DEATH  # every certificate of a dead person, whenever issued
    for cert in certificates:
        if cert.kind is CertKind.OTHER:
            continue
        if cert.kind in targets and (every or issued_on_or_before(cert, effective_date)):
            revocations.append(Revocation(cert.serial, cert.kind, reason, as_of))
        else:
            kept.append(cert.serial)
    return Decision(tuple(revocations), tuple(kept), card, new_status, follow, rule)
