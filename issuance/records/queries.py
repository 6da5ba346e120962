"""Read-only queries over applications, cards and residents, for staff lists and search.

Every function takes an open transaction and returns typed rows (frozen dataclasses with
`to_json`); none prints, so `mynacard applications|cards list|show` and a web console
share them. Filters combine with AND; a name matches the kanji name or the kana reading
in part (hiragana in the query also finds katakana readings). Dates are Japan dates.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta, timezone
from typing import Any

from issuance.applications.rules import State, card_expiry
from issuance.applications.store import Application, get_application
from issuance.records.identity_documents import (
    RecordedDocument,
    RecordedRepresentative,
    checks_of,
)
from issuance.records.substitutions import substitutions_of
from issuance.storage import Transaction
from issuance.workflow.migrations import CARD_STATES
from pki.substitutes import substitute

JST = timezone(timedelta(hours=9))
MAX_ROWS = 10_000


class QueryError(ValueError):
    """A filter that cannot be used (an unknown state, a reversed date range)."""


def day_bounds(day: date) -> tuple[str, str]:
    """The UTC ISO stamps of the start of `day` and of the next day, in Japan time: what
    the stored UTC stamps compare against."""
    start = datetime.combine(day, time(), JST).astimezone(UTC)
    return (start.isoformat(timespec="microseconds"),
            (start + timedelta(days=1)).isoformat(timespec="microseconds"))


def _like(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def _katakana(text: str) -> str:
    return "".join(chr(ord(c) + 0x60) if "\u3041" <= c <= "\u3096" else c for c in text)


def _name_clause(name: str, alias: str = "r") -> tuple[str, list[Any]]:
    clause = (f"({alias}.name LIKE ? ESCAPE '\\' OR {alias}.name_kana LIKE ? ESCAPE '\\'"
              f" OR {alias}.name_kana LIKE ? ESCAPE '\\')")
    return clause, [_like(name), _like(name), _like(_katakana(name))]


@dataclass(frozen=True)
class Filter:
    """What staff search by. `since`/`until`: inclusive Japan dates (the application date
    for applications, the day the card was made for cards)."""

    resident_code: str | None = None
    name: str | None = None
    state: str | None = None
    since: date | None = None
    until: date | None = None
    limit: int = 200

    def check(self, states: tuple[str, ...]) -> None:
        if self.state is not None and self.state not in states:
            raise QueryError(f"unknown state {self.state!r}; one of {', '.join(states)}")
        if self.since and self.until and self.since > self.until:
            raise QueryError("the date range ends before it starts")
        if not 1 <= self.limit <= MAX_ROWS:
            raise QueryError(f"the limit is 1 to {MAX_ROWS}")


# -- applications --------------------------------------------------------------------------
@dataclass(frozen=True)
class ApplicationRow:
    id: str
    resident_code: str
    name: str
    name_kana: str | None
    state: str
    applied_on: date
    express_reason: str | None
    express_deadline: date | None
    card_expiry: date
    operator: str
    updated_at: str

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "resident_code": self.resident_code, "name": self.name,
                "name_kana": self.name_kana, "state": self.state,
                "applied_on": self.applied_on.isoformat(),
                "express_reason": self.express_reason,
                "express_deadline": (self.express_deadline.isoformat()
                                     if self.express_deadline else None),
                "card_expiry": self.card_expiry.isoformat(), "operator": self.operator,
                "updated_at": self.updated_at}


APPLICATION_STATES = tuple(s.value for s in State)


def _who_and_state(f: Filter, state_column: str) -> tuple[list[str], list[Any]]:
    """The clauses applications and cards share: resident code, name, state."""
    where: list[str] = []
    params: list[Any] = []
    if f.resident_code:
        where.append("a.resident_code = ?")
        params.append(f.resident_code)
    if f.name:
        clause, values = _name_clause(f.name)
        where.append(clause)
        params += values
    if f.state:
        where.append(f"{state_column} = ?")
        params.append(f.state)
    return where, params


def list_applications(tx: Transaction, f: Filter) -> list[ApplicationRow]:
    """Applications matching `f`, newest application date first."""
    f.check(APPLICATION_STATES)
    where, params = _who_and_state(f, "a.state")
    if f.since:
        where.append("a.applied_on >= ?")
        params.append(f.since.isoformat())
    if f.until:
        where.append("a.applied_on <= ?")
        params.append(f.until.isoformat())
    sql = ("SELECT a.*, r.name AS name, r.name_kana AS name_kana FROM applications a"
           " JOIN residents r ON r.resident_code = a.resident_code")
    if where:
        sql += " WHERE " + " AND ".join(where)
    sql += f" ORDER BY a.applied_on DESC, a.created_at DESC, a.id LIMIT {int(f.limit)}"
    return [ApplicationRow(
        id=r["id"], resident_code=r["resident_code"], name=r["name"],
        name_kana=r["name_kana"], state=r["state"],
        applied_on=date.fromisoformat(r["applied_on"]), express_reason=r["express_reason"],
        express_deadline=(date.fromisoformat(r["express_deadline"])
                          if r["express_deadline"] else None),
        card_expiry=date.fromisoformat(r["card_expiry"]), operator=r["operator"],
        updated_at=r["updated_at"]) for r in tx.query(sql, params)]


@dataclass(frozen=True)
class CertificateInfo:
    serial: str  # hex
    kind: str
    status: str
    card_serial: str
    issued_at: str

    def to_json(self) -> dict[str, Any]:
        return {"serial": self.serial, "kind": self.kind, "status": self.status,
                "card_serial": self.card_serial, "issued_at": self.issued_at}


@dataclass(frozen=True)
class HolderInfo:
    resident_code: str
    name: str
    name_kana: str | None
    birth_date: date
    address: str
    adult_ward: bool
    status: str
    name_on_certificate: str  # after 代替文字
    name_substitute: str
    address_on_certificate: str
    address_substitute: str

    def to_json(self) -> dict[str, Any]:
        return {"resident_code": self.resident_code, "name": self.name,
                "name_kana": self.name_kana, "birth_date": self.birth_date.isoformat(),
                "address": self.address, "adult_ward": self.adult_ward,
                "status": self.status, "name_on_certificate": self.name_on_certificate,
                "name_substitute": self.name_substitute,
                "address_on_certificate": self.address_on_certificate,
                "address_substitute": self.address_substitute}


def holder_info(tx: Transaction, resident_code: str) -> HolderInfo | None:
    row = tx.query_one("SELECT * FROM residents WHERE resident_code = ?", (resident_code,))
    if row is None:
        return None
    choices = substitutions_of(tx, resident_code)
    name, address = substitute(row["name"], choices), substitute(row["address"], choices)
    return HolderInfo(
        resident_code=resident_code, name=row["name"], name_kana=row["name_kana"],
        birth_date=date.fromisoformat(row["birth_date"]), address=row["address"],
        adult_ward=bool(row["adult_ward"]), status=row["status"],
        name_on_certificate=name.text, name_substitute=name.flags,
        address_on_certificate=address.text, address_substitute=address.flags)


@dataclass(frozen=True)
class CardInfo:
    serial: str
    application_id: str
    state: str
    note: str | None
    created_at: str
    updated_at: str
    expiry: date | None

    def to_json(self) -> dict[str, Any]:
        return {"serial": self.serial, "application_id": self.application_id,
                "state": self.state, "note": self.note, "created_at": self.created_at,
                "updated_at": self.updated_at,
                "expiry": self.expiry.isoformat() if self.expiry else None}


@dataclass(frozen=True)
class ApplicationDetail:
    application: Application
    holder: HolderInfo | None
    identity_documents: list[RecordedDocument] = field(default_factory=list)
    legal_representatives: list[RecordedRepresentative] = field(default_factory=list)
    cards: list[CardInfo] = field(default_factory=list)
    certificates: list[CertificateInfo] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {**self.application.to_json(),
                "holder": self.holder.to_json() if self.holder else None,
                "identity_documents": [d.to_json() for d in self.identity_documents],
                "legal_representatives": [r.to_json() for r in self.legal_representatives],
                "cards": [c.to_json() for c in self.cards],
                "certificates": [c.to_json() for c in self.certificates]}


def _jst_day(stamp: str) -> date:
    return datetime.fromisoformat(stamp).astimezone(JST).date()


def _card_expiry(holder_birth: date, app: Application, created_at: str,
                 residence_expiry: str | None) -> date | None:
    try:
        return card_expiry(holder_birth, app.applied_on, max(_jst_day(created_at),
                                                             app.applied_on),
                           residence_expiry=(date.fromisoformat(residence_expiry)
                                             if residence_expiry else None))
    except ValueError:
        return None


def _cards_of(tx: Transaction, app: Application) -> list[CardInfo]:
    res = tx.query_one("SELECT birth_date, residence_expiry FROM residents"
                       " WHERE resident_code = ?", (app.resident_code,))
    out = []
    for r in tx.query("SELECT * FROM cards WHERE application_id = ? ORDER BY created_at,"
                      " serial", (app.id,)):
        expiry = (_card_expiry(date.fromisoformat(res["birth_date"]), app, r["created_at"],
                               res["residence_expiry"]) if res else None)
        out.append(CardInfo(r["serial"], r["application_id"], r["state"], r["note"],
                            r["created_at"], r["updated_at"], expiry))
    return out


def _certificates_of(tx: Transaction, where: str, value: str) -> list[CertificateInfo]:
    return [CertificateInfo(r["serial"], r["kind"], r["status"], r["card_serial"],
                            r["issued_at"])
            for r in tx.query(f"SELECT * FROM issued_certificates WHERE {where} = ?"
                              " ORDER BY issued_at, serial", (value,))]


def application_detail(tx: Transaction, application_id: str) -> ApplicationDetail | None:
    """One application with its holder, identity checks, cards and certificates."""
    app = get_application(tx, application_id)
    if app is None:
        return None
    docs, reps = checks_of(tx, app.id)
    return ApplicationDetail(app, holder_info(tx, app.resident_code), docs, reps,
                             _cards_of(tx, app),
                             _certificates_of(tx, "application_id", app.id))


# -- cards ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class CardRow:
    serial: str
    application_id: str
    resident_code: str
    name: str
    name_kana: str | None
    state: str
    created_at: str
    updated_at: str
    expiry: date | None

    def to_json(self) -> dict[str, Any]:
        return {"serial": self.serial, "application_id": self.application_id,
                "resident_code": self.resident_code, "name": self.name,
                "name_kana": self.name_kana, "state": self.state,
                "created_at": self.created_at, "updated_at": self.updated_at,
                "expiry": self.expiry.isoformat() if self.expiry else None}


def _card_rows(tx: Transaction, where: list[str], params: list[Any], limit: int
               ) -> list[CardRow]:
    sql = ("SELECT c.*, a.resident_code AS resident_code, a.applied_on AS applied_on,"
           " r.name AS name, r.name_kana AS name_kana, r.birth_date AS birth_date,"
           " r.residence_expiry AS residence_expiry"
           " FROM cards c JOIN applications a ON a.id = c.application_id"
           " JOIN residents r ON r.resident_code = a.resident_code")
    if where:
        sql += " WHERE " + " AND ".join(where)
    sql += f" ORDER BY c.created_at DESC, c.serial LIMIT {int(limit)}"
    out = []
    for r in tx.query(sql, params):
        applied = date.fromisoformat(r["applied_on"])
        try:
            expiry: date | None = card_expiry(
                date.fromisoformat(r["birth_date"]), applied,
                max(_jst_day(r["created_at"]), applied),
                residence_expiry=(date.fromisoformat(r["residence_expiry"])
                                  if r["residence_expiry"] else None))
        except ValueError:
            expiry = None
        out.append(CardRow(r["serial"], r["application_id"], r["resident_code"], r["name"],
                           r["name_kana"], r["state"], r["created_at"], r["updated_at"],
                           expiry))
    return out


def list_cards(tx: Transaction, f: Filter) -> list[CardRow]:
    """Cards matching `f`, newest first."""
    f.check(CARD_STATES)
    where, params = _who_and_state(f, "c.state")
    if f.since:
        where.append("c.created_at >= ?")
        params.append(day_bounds(f.since)[0])
    if f.until:
        where.append("c.created_at < ?")
        params.append(day_bounds(f.until)[1])
    return _card_rows(tx, where, params, f.limit)


@dataclass(frozen=True)
class CardDetail:
    card: CardRow
    application_state: str
    holder: HolderInfo | None
    certificates: list[CertificateInfo]

    def to_json(self) -> dict[str, Any]:
        return {**self.card.to_json(), "application_state": self.application_state,
                "holder": self.holder.to_json() if self.holder else None,
                "certificates": [c.to_json() for c in self.certificates]}


def card_detail(tx: Transaction, serial: str) -> CardDetail | None:
    rows = _card_rows(tx, ["c.serial = ?"], [serial], 1)
    if not rows:
        return None
    card = rows[0]
    app = get_application(tx, card.application_id)
    return CardDetail(card, app.state.value if app else "?",
                      holder_info(tx, card.resident_code),
                      _certificates_of(tx, "card_serial", serial))
