"""Certificates and cards about to expire, and the notices J-LIS mails for them (rule 1.7:
renewal may start 3 months before expiry; a reminder goes out 2-3 months ahead).

`expiring` returns one `Expiring` per certificate or card; `by_holder` groups them into
one `HolderNotice` per holder, which becomes one letter (`letters`) and one CSV row
(`csv_text`, for a mail merge).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from issuance.applications.rules import card_expiry
from issuance.records.queries import JST
from issuance.records.substitutions import substitutions_of
from issuance.reports.pdf import ISSUER, Letter, wareki
from issuance.storage import Transaction
from pki.store import ReadOnlyStore
from pki.substitutes import substitute

KIND_TITLES = {
    "signing": "署名用電子証明書",
    "user_authentication": "利用者証明用電子証明書",
    "card": "マイナンバーカード",
}
_PROFILE_KINDS = {"signing": "signing", "user_authentication": "user_authentication",
                  "user-authentication": "user_authentication", "auth": "user_authentication"}


@dataclass(frozen=True)
class Expiring:
    kind: str  # signing | user_authentication | card
    serial: str  # certificate serial (hex) or card serial
    expires_on: date  # Japan date of the last day
    resident_code: str
    application_id: str | None

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "serial": self.serial,
                "expires_on": self.expires_on.isoformat(),
                "resident_code": self.resident_code, "application_id": self.application_id}


@dataclass(frozen=True)
class HolderNotice:
    resident_code: str
    name: str  # as on the certificate (代替文字 replaced): what the letter prints
    name_kana: str | None
    address: str
    items: list[Expiring] = field(default_factory=list)

    @property
    def earliest(self) -> date:
        return min(i.expires_on for i in self.items)

    def expiry_of(self, kind: str) -> date | None:
        dates = [i.expires_on for i in self.items if i.kind == kind]
        return min(dates) if dates else None

    def to_json(self) -> dict[str, Any]:
        return {"resident_code": self.resident_code, "name": self.name,
                "name_kana": self.name_kana, "address": self.address,
                "earliest": self.earliest.isoformat(),
                "items": [i.to_json() for i in self.items]}


def _jst(moment: datetime) -> date:
    return moment.astimezone(JST).date()


def expiring(tx: Transaction, store: ReadOnlyStore | None, *, today: date, within_days: int
             ) -> list[Expiring]:
    """Certificates (from `store`, when given) and cards in the holder's hands whose last
    day falls from `today` to `today + within_days`, earliest first."""
    if within_days < 0:
        raise ValueError("the window must not be negative")
    last = today + timedelta(days=within_days)
    out: list[Expiring] = []
    if store is not None:
        start = datetime.combine(today, time(), JST).astimezone(UTC)
        end = datetime.combine(last + timedelta(days=1), time(), JST).astimezone(UTC)
        records = store.expiring(start, end)
        known = {r["serial"]: r for r in tx.query_in(
            "SELECT serial, application_id, status FROM issued_certificates"
            " WHERE serial IN ({values})", [format(c.serial, "x") for c in records])}
        for cert in records:
            row = known.get(format(cert.serial, "x"))
            if row is None or row["status"] != "current":
                continue  # not a certificate on a card of this center, or replaced
            out.append(Expiring(_PROFILE_KINDS.get(cert.profile, cert.profile),
                                format(cert.serial, "x"),
                                _jst(cert.not_after - timedelta(seconds=1)),
                                cert.holder_id, row["application_id"]))
    # the provisional expiry (from the application date) is never later than the card's
    rows = tx.query(
        "SELECT c.serial, c.application_id, c.created_at, a.resident_code, a.applied_on,"
        " r.birth_date, r.residence_expiry FROM cards c"
        " JOIN applications a ON a.id = c.application_id"
        " JOIN residents r ON r.resident_code = a.resident_code"
        " WHERE c.state IN ('issued', 'active') AND a.card_expiry <= ?",
        (last.isoformat(),))
    for r in rows:
        applied = date.fromisoformat(r["applied_on"])
        made = max(datetime.fromisoformat(r["created_at"]).astimezone(JST).date(), applied)
        expiry = card_expiry(date.fromisoformat(r["birth_date"]), applied, made,
                             residence_expiry=(date.fromisoformat(r["residence_expiry"])
                                               if r["residence_expiry"] else None))
        if today <= expiry <= last:
            out.append(Expiring("card", r["serial"], expiry, r["resident_code"],
                                r["application_id"]))
    out.sort(key=lambda e: (e.expires_on, e.resident_code, e.kind, e.serial))
    return out


def by_holder(tx: Transaction, items: Sequence[Expiring]) -> list[HolderNotice]:
    """One notice per holder still in the registry as a resident, earliest expiry first."""
    codes = sorted({i.resident_code for i in items})
    residents = {r["resident_code"]: r for r in tx.query_in(
        "SELECT resident_code, name, name_kana, address, status FROM residents"
        " WHERE resident_code IN ({values})", codes)}
    notices: dict[str, HolderNotice] = {}
    for item in items:
        r = residents.get(item.resident_code)
        if r is None or r["status"] != "resident":
            continue  # no letter to a deleted record or an address abroad
        if item.resident_code not in notices:
            choices = substitutions_of(tx, item.resident_code)
            notices[item.resident_code] = HolderNotice(
                item.resident_code, substitute(r["name"], choices).text, r["name_kana"],
                substitute(r["address"], choices).text)
        notices[item.resident_code].items.append(item)
    return sorted(notices.values(), key=lambda n: (n.earliest, n.resident_code))


def letters(notices: Sequence[HolderNotice], *, today: date) -> list[Letter]:
    """The expiry notice of each holder, in Japanese."""
    out = []
    for n in notices:
        has_cert = any(i.kind != "card" for i in n.items)
        title = ("電子証明書の有効期限のお知らせ" if has_cert and all(
            i.kind != "card" for i in n.items) else
            "マイナンバーカード・電子証明書の有効期限のお知らせ" if has_cert else
            "マイナンバーカードの有効期限のお知らせ")
        out.append(Letter(
            address=n.address, name=n.name, date=today, sender=ISSUER, title=title,
            paragraphs=(
                "あなたがお持ちの次のものは、下記の日に有効期限を迎えます。",
                "有効期限の3か月前から、お住まいの市区町村の窓口で更新の手続きができます。"
                "電子証明書の更新に手数料はかかりません。",
                "窓口には、マイナンバーカードと本人確認書類をお持ちください。"
                "15歳未満の方と成年被後見人の方は、法定代理人の方とお越しください。",
            ),
            table=[(KIND_TITLES[i.kind], f"{wareki(i.expires_on)}まで") for i in n.items],
            footer=(f"住民票コード末尾 {n.resident_code[-4:]}",
                    "このお知らせは有効期限の2～3か月前にお送りしています。"
                    "既に手続きがお済みの場合はご容赦ください。"),
        ))
    return out


CSV_FIELDS = ("resident_code", "name", "name_kana", "address", "signing_expiry",
              "user_authentication_expiry", "card_expiry", "earliest_expiry")


def _cell(value: str) -> str:
    # a mail-merge file is opened in spreadsheets: no cell may start a formula
    return "'" + value if value[:1] in ("=", "+", "-", "@", "\t", "\r") else value


def csv_text(notices: Sequence[HolderNotice]) -> str:
    """One row per holder (UTF-8; the caller adds no BOM)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(CSV_FIELDS)
    for n in notices:
        dates = [n.expiry_of(k) for k in ("signing", "user_authentication", "card")]
        writer.writerow([_cell(v) for v in (
            n.resident_code, n.name, n.name_kana or "", n.address,
            *[d.isoformat() if d else "" for d in dates], n.earliest.isoformat())])
    return out.getvalue()
