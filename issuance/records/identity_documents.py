"""Identity documents seen at the counter (本人確認, rule 4.3) and the legal representative.

At intake and at hand-over the clerk records which documents were shown: one from list A
(with a photo, issued by a public body) or two from list B. The reference (a document
number) is personal: the database and the audit log keep only a digest of it, salted with
the application and the document kind, so the same passport shown twice gives the same
digest within one application and nothing a reader can look up across applications.

A minor under 15 or an adult ward (成年被後見人) comes with the 法定代理人, who shows
their own identity document and sets the PINs.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from issuance.storage import Transaction

# list A: one is enough
LIST_A = (
    "my-number-card", "juki-card", "passport", "driving-licence", "driving-history-cert",
    "residence-card", "special-permanent-resident-cert", "disability-cert",
)
# list B: two are needed
LIST_B = (
    "health-insurance-card", "pension-book", "pension-certificate", "student-id",
    "employee-id", "notification-card", "other",
)
KINDS = LIST_A + LIST_B
RELATIONS = ("parent", "guardian", "adult-guardian")
STEPS = ("intake", "handover")


class DocumentError(ValueError):
    """A document or a set of documents the rules do not accept; `rule` names the rule."""

    def __init__(self, rule: str, message: str) -> None:
        super().__init__(message)
        self.rule = rule


@dataclass(frozen=True)
class IdentityDocument:
    kind: str
    reference: str

    @classmethod
    def parse(cls, text: str) -> IdentityDocument:
        """`KIND:REF`, e.g. `passport:TK1234567`."""
        kind, sep, ref = text.partition(":")
        kind, ref = kind.strip().lower(), ref.strip()
        if not sep or not ref:
            raise DocumentError("4.3", "an identity document is KIND:REF (the kind and the "
                                       "document's number)")
        if kind not in KINDS:
            raise DocumentError("4.3", f"unknown identity document kind {kind!r}; one of "
                                       f"{', '.join(KINDS)}")
        if len(ref) > 64 or any(ord(c) < 0x20 or c == "\x7f" for c in ref):
            raise DocumentError("4.3", "a document reference is printable text of at most "
                                       "64 characters")
        return cls(kind, ref)

    def digest(self, application_id: str) -> str:
        """A digest of the reference, never the reference itself."""
        data = "\0".join(("mynacard.identity-document", application_id, self.kind,
                          self.reference))
        return hashlib.sha256(data.encode()).hexdigest()[:32]


def check_documents(documents: Sequence[IdentityDocument], *, who: str = "holder") -> None:
    """DocumentError (rule 4.3) unless `documents` are one from list A or two different
    ones from list B."""
    kinds = [d.kind for d in documents]
    if len(kinds) == 1 and kinds[0] in LIST_A:
        return
    if len(kinds) == 2 and all(k in LIST_B for k in kinds) and (
            kinds[0] != kinds[1] or kinds[0] == "other") and (
            documents[0].reference != documents[1].reference):
        return
    if not kinds:
        raise DocumentError("4.3", f"the {who}'s identity was not checked: pass "
                                   "--identity-document KIND:REF (one from list A or two "
                                   "from list B)")
    raise DocumentError("4.3", f"the {who}'s documents ({', '.join(kinds)}) are not one from "
                               f"list A ({', '.join(LIST_A)}) or two different ones from "
                               f"list B ({', '.join(LIST_B)})")


@dataclass(frozen=True)
class Representative:
    name: str
    relation: str
    documents: tuple[IdentityDocument, ...]

    @classmethod
    def parse(cls, name: str, relation: str | None,
              documents: Sequence[IdentityDocument]) -> Representative:
        name = name.strip()
        if not name or len(name) > 100 or any(ord(c) < 0x20 for c in name):
            raise DocumentError("4.3", "the legal representative's name is printable text "
                                       "of at most 100 characters")
        relation = (relation or "parent").strip().lower()
        if relation not in RELATIONS:
            raise DocumentError("4.3", f"unknown relation {relation!r}; one of "
                                       f"{', '.join(RELATIONS)}")
        check_documents(documents, who="legal representative")
        return cls(name, relation, tuple(documents))


@dataclass(frozen=True)
class IdentityCheck:
    """What the clerk saw at one step: the holder's documents, the representative."""

    holder: tuple[IdentityDocument, ...] = ()
    representative: Representative | None = None

    def audit_detail(self, application_id: str) -> dict[str, Any]:
        """For the audit entry: kinds and digests, never a reference."""
        out: dict[str, Any] = {"identity_documents": [
            {"kind": d.kind, "digest": d.digest(application_id)} for d in self.holder]}
        if self.representative is not None:
            r = self.representative
            out["legal_representative"] = {
                "relation": r.relation,
                "identity_documents": [{"kind": d.kind, "digest": d.digest(application_id)}
                                       for d in r.documents]}
        return out


def needs_representative(age: int, adult_ward: bool) -> bool:
    """Minors under 15 and adult wards come with the legal representative (rule 4.3)."""
    return age < 15 or adult_ward


def record_check(tx: Transaction, application_id: str, step: str, check: IdentityCheck, *,
                 operator: str, now: str) -> None:
    """Store `check` for `application_id` at `step` (replacing one recorded before)."""
    if step not in STEPS:
        raise ValueError(f"step must be one of {STEPS}")
    tx.execute("DELETE FROM identity_checks WHERE application_id = ? AND step = ?",
               (application_id, step))
    tx.execute("DELETE FROM legal_representatives WHERE application_id = ? AND step = ?",
               (application_id, step))
    rows: list[tuple[str, IdentityDocument, int]] = [
        ("holder", d, n) for n, d in enumerate(check.holder, 1)]
    if check.representative is not None:
        r = check.representative
        rows += [("representative", d, n) for n, d in enumerate(r.documents, 1)]
        tx.execute("INSERT INTO legal_representatives (application_id, step, name, relation,"
                   " operator, recorded_at) VALUES (?, ?, ?, ?, ?, ?)",
                   (application_id, step, r.name, r.relation, operator, now))
    for person, doc, position in rows:
        tx.execute("INSERT INTO identity_checks (application_id, step, person, position,"
                   " document_kind, reference_digest, operator, checked_at)"
                   " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                   (application_id, step, person, position, doc.kind,
                    doc.digest(application_id), operator, now))


@dataclass(frozen=True)
class RecordedDocument:
    step: str
    person: str
    kind: str
    digest: str
    operator: str
    checked_at: str

    def to_json(self) -> dict[str, Any]:
        return {"step": self.step, "person": self.person, "kind": self.kind,
                "digest": self.digest, "operator": self.operator,
                "checked_at": self.checked_at}


@dataclass(frozen=True)
class RecordedRepresentative:
    step: str
    name: str
    relation: str
    operator: str
    recorded_at: str

    def to_json(self) -> dict[str, Any]:
        return {"step": self.step, "name": self.name, "relation": self.relation,
                "operator": self.operator, "recorded_at": self.recorded_at}


def checks_of(tx: Transaction, application_id: str
              ) -> tuple[list[RecordedDocument], list[RecordedRepresentative]]:
    """The documents and representatives recorded for an application, intake first."""
    docs = [RecordedDocument(r["step"], r["person"], r["document_kind"],
                             r["reference_digest"], r["operator"], r["checked_at"])
            for r in tx.query("SELECT * FROM identity_checks WHERE application_id = ?"
                              " ORDER BY step DESC, person, position", (application_id,))]
    reps = [RecordedRepresentative(r["step"], r["name"], r["relation"], r["operator"],
                                   r["recorded_at"])
            for r in tx.query("SELECT * FROM legal_representatives WHERE application_id = ?"
                              " ORDER BY step DESC", (application_id,))]
    return docs, reps


def build_check(holder: Sequence[str] = (), *, representative_name: str | None = None,
                representative_relation: str | None = None,
                representative_documents: Sequence[str] = ()) -> IdentityCheck | None:
    """The check from the counter's `KIND:REF` texts; None when nothing was given.
    DocumentError (rule 4.3) for a document or a combination the rules do not accept."""
    if not holder and representative_name is None and not representative_documents:
        return None
    rep = None
    if representative_name is not None or representative_documents:
        if representative_name is None:
            raise DocumentError("4.3", "representative documents without "
                                       "--legal-representative NAME")
        rep = Representative.parse(representative_name, representative_relation,
                                   [IdentityDocument.parse(t) for t in representative_documents])
    docs = tuple(IdentityDocument.parse(t) for t in holder)
    if docs or rep is None:
        check_documents(docs)
    return IdentityCheck(docs, rep)


def check_for_person(check: IdentityCheck, *, age: int, adult_ward: bool) -> None:
    """DocumentError (rule 4.3) when a minor under 15 or an adult ward has no legal
    representative recorded."""
    if needs_representative(age, adult_ward) and check.representative is None:
        who = "an adult ward" if adult_ward else f"a minor of {age}"
        raise DocumentError("4.3", f"the holder is {who}: the legal representative comes "
                                   "along (--legal-representative NAME "
                                   "--representative-document KIND:REF)")
