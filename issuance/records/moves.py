"""Changes to a resident's record entered at the counter: a move (new address), the kana
reading, and the holder's substitute-character choices (代替文字). One transaction with
its audit entry; the entry says what changed, never the address itself."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from issuance.audit.log import append_entry
from issuance.records.substitutions import set_substitution
from issuance.storage import Database

MAX_ADDRESS = 200  # what the signing certificate carries (pki.profiles.MAX_ADDRESS_CHARS)


class ChangeRefused(ValueError):
    def __init__(self, message: str, rule: str | None = None) -> None:
        super().__init__(message)
        self.rule = rule


def _text(value: str, what: str, limit: int) -> str:
    value = value.strip()
    if not value or len(value) > limit or any(ord(c) < 0x20 or 0x7f <= ord(c) < 0xa0
                                              for c in value):
        raise ChangeRefused(f"the {what} must be printable text of 1 to {limit} characters")
    return value


def update_resident(db: Database, resident_code: str, *, operator: str,
                    address: str | None = None, name_kana: str | None = None,
                    substitutions: Sequence[tuple[str, str]] = (),
                    now: datetime) -> dict[str, Any]:
    """Apply the changes and audit them (refusals too); ChangeRefused when refused."""
    stamp = now.astimezone(UTC).isoformat()
    try:
        if address is None and name_kana is None and not substitutions:
            raise ChangeRefused("nothing to change: give --address, --name-kana or "
                                "--substitute")
        new_address = _text(address, "address", MAX_ADDRESS) if address is not None else None
        new_kana = _text(name_kana, "kana reading", 100) if name_kana is not None else None
        with db.transaction() as tx:
            tx.lock(f"mynacard.application:{resident_code}")
            row = tx.query_one("SELECT address, name_kana, status FROM residents"
                               " WHERE resident_code = ?", (resident_code,))
            if row is None:
                raise ChangeRefused(f"no resident with code {resident_code}", "I1")
            if row["status"] != "resident":
                raise ChangeRefused(f"the resident's record is {row['status']}: a move is "
                                    "entered only for a resident", "I3")
            changed: list[str] = []
            if new_address is not None and new_address != row["address"]:
                tx.execute("UPDATE residents SET address = ?, updated_at = ?"
                           " WHERE resident_code = ?", (new_address, stamp, resident_code))
                changed.append("address")
            if new_kana is not None and new_kana != row["name_kana"]:
                tx.execute("UPDATE residents SET name_kana = ?, updated_at = ?"
                           " WHERE resident_code = ?", (new_kana, stamp, resident_code))
                changed.append("name_kana")
            chosen = []
            for original, replacement in substitutions:
                try:
                    set_substitution(tx, resident_code, original, replacement,
                                     operator=operator, now=stamp)
                except ValueError as exc:
                    raise ChangeRefused(str(exc), "1.2") from None
                chosen.append({"original": original, "replacement": replacement})
            if chosen:
                changed.append("substitutes")
            lapses = "address" in changed and _has_workflow(tx) and tx.query_one(
                "SELECT 1 AS x FROM issued_certificates WHERE status = 'current' AND"
                " kind = 'signing' AND application_id IN (SELECT id FROM applications"
                " WHERE resident_code = ?)", (resident_code,)) is not None
            result = {"resident_code": resident_code, "changed": changed or ["nothing"],
                      "substitutes": chosen, "signing_certificate_lapses": lapses}
            append_entry(tx, operator=operator, action="registry.update",
                         subject=resident_code, outcome="ok", detail=result, at=now)
            return result
    except ChangeRefused as exc:
        with db.transaction() as tx:
            append_entry(tx, operator=operator, action="registry.update",
                         subject=resident_code, outcome="refused",
                         detail={"rule": exc.rule, "reason": str(exc)}, at=now)
        raise


def _has_workflow(tx: Any) -> bool:
    if tx.dialect == "sqlite":
        sql = "SELECT 1 AS x FROM sqlite_master WHERE type = 'table' AND name = ?"
    else:
        sql = ("SELECT 1 AS x FROM information_schema.tables WHERE table_name = ?"
               " AND table_schema = current_schema()")
    return tx.query_one(sql, ("issued_certificates",)) is not None
