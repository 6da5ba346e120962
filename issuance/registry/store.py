"""Residents and 附票 entries in the issuance store (SQLite or PostgreSQL)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, date, datetime
from typing import Any

from issuance.registry.model import FuhyoEntry, Nationality, Resident, ResidentStatus, Sex
from issuance.storage import Database, Transaction

_UPSERT = """INSERT INTO residents (resident_code, my_number, name, name_kana, address,
    birth_date, sex, nationality, status, status_date, adult_ward, municipality_code,
    residence_expiry, updated_at)
    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
    ON CONFLICT (resident_code) DO UPDATE SET my_number = excluded.my_number,
    name = excluded.name, name_kana = excluded.name_kana, address = excluded.address,
    birth_date = excluded.birth_date, sex = excluded.sex, nationality = excluded.nationality,
    status = excluded.status, status_date = excluded.status_date,
    adult_ward = excluded.adult_ward, municipality_code = excluded.municipality_code,
    residence_expiry = excluded.residence_expiry, updated_at = excluded.updated_at"""

_UPSERT_FUHYO = """INSERT INTO fuhyo_entries (resident_code, municipality_code, address_abroad,
    continued_use) VALUES (?, ?, ?, ?)
    ON CONFLICT (resident_code) DO UPDATE SET municipality_code = excluded.municipality_code,
    address_abroad = excluded.address_abroad, continued_use = excluded.continued_use"""

_SELECT = """SELECT r.*, f.municipality_code AS fuhyo_municipality_code,
    f.address_abroad AS fuhyo_address, f.continued_use AS continued_use
    FROM residents r LEFT JOIN fuhyo_entries f ON f.resident_code = r.resident_code"""


def _iso(value: date | None) -> str | None:
    return value.isoformat() if value else None


def _resident_params(r: Resident, now: str) -> tuple[Any, ...]:
    return (
        r.resident_code, r.my_number, r.name, r.name_kana, r.address,
        r.birth_date.isoformat(), int(r.sex), r.nationality.value, r.status.value,
        _iso(r.status_date), int(r.adult_ward), r.municipality_code,
        _iso(r.residence_expiry), now,
    )


# dict lookups instead of enum calls: a notice batch reads thousands of residents
_SEX_OF = {s.value: s for s in Sex}
_NATIONALITY_OF = {n.value: n for n in Nationality}
_STATUS_OF = {s.value: s for s in ResidentStatus}


def _from_row(row: dict[str, Any]) -> Resident:
    fuhyo = None
    if row.get("fuhyo_municipality_code"):
        fuhyo = FuhyoEntry(
            row["fuhyo_municipality_code"], row["fuhyo_address"], bool(row["continued_use"])
        )
    return Resident(
        resident_code=row["resident_code"],
        my_number=row["my_number"],
        name=row["name"],
        name_kana=row["name_kana"],
        address=row["address"],
        birth_date=date.fromisoformat(row["birth_date"]),
        sex=_SEX_OF[int(row["sex"])],
        nationality=_NATIONALITY_OF[row["nationality"]],
        status=_STATUS_OF[row["status"]],
        status_date=date.fromisoformat(row["status_date"]) if row["status_date"] else None,
        adult_ward=bool(row["adult_ward"]),
        municipality_code=row["municipality_code"],
        residence_expiry=(
            date.fromisoformat(row["residence_expiry"]) if row["residence_expiry"] else None
        ),
        fuhyo=fuhyo,
    )


def put_residents(tx: Transaction, residents: Iterable[Resident]) -> int:
    """Insert or replace residents (keyed by resident code) with their 附票 entries. A
    caller that may add residents ends its transaction with `note_registry_load`."""
    now = datetime.now(UTC).isoformat()
    batch = list(residents)
    if not batch:
        return 0
    tx.executemany(_UPSERT, (_resident_params(r, now) for r in batch))
    with_fuhyo = [r for r in batch if r.fuhyo is not None]
    without = [r for r in batch if r.fuhyo is None]
    if without:
        tx.executemany(
            "DELETE FROM fuhyo_entries WHERE resident_code = ?",
            ((r.resident_code,) for r in without),
        )
    if with_fuhyo:
        tx.executemany(
            _UPSERT_FUHYO,
            (
                (r.resident_code, r.fuhyo.municipality_code, r.fuhyo.address_abroad,
                 int(r.fuhyo.continued_use))
                for r in with_fuhyo
                if r.fuhyo is not None
            ),
        )
    return len(batch)


_COLUMNS = ("resident_code", "my_number", "name", "name_kana", "address", "birth_date", "sex",
            "nationality", "status", "status_date", "adult_ward", "municipality_code",
            "residence_expiry")  # the order of _resident_params, without updated_at


def resident_change(before: Resident, after: Resident, now: str
                    ) -> tuple[tuple[Any, ...], tuple[int, ...]]:
    """`after`'s row parameters and the indexes of the columns in which they differ from
    `before`'s (never 0, the resident code, which must be the same)."""
    if before.resident_code != after.resident_code:
        raise ValueError("update_residents: before and after are different residents")
    old, new = _resident_params(before, now), _resident_params(after, now)
    return new, tuple(i for i in range(1, len(_COLUMNS)) if old[i] != new[i])


def update_residents(tx: Transaction, changes: Iterable[tuple[Resident, Resident]]) -> int:
    """Write what changed from `before` to `after` for each pair (one resident each):
    only the changed columns, one UPDATE statement per set of changed columns, and the
    附票 entry only where it changed. Far fewer index updates than `put_residents` when
    a batch changes one or two facts per resident (notices)."""
    now = datetime.now(UTC).isoformat()
    groups: dict[tuple[int, ...], list[tuple[Any, ...]]] = {}
    fuhyo_gone: list[tuple[str]] = []
    fuhyo_set: list[tuple[Any, ...]] = []
    count = 0
    for before, after in changes:
        new, changed = resident_change(before, after, now)
        if changed:
            groups.setdefault(changed, []).append(
                tuple(new[i] for i in changed) + (now, after.resident_code))
        if before.fuhyo != after.fuhyo:
            if after.fuhyo is None:
                fuhyo_gone.append((after.resident_code,))
            else:
                fuhyo_set.append((after.resident_code, after.fuhyo.municipality_code,
                                  after.fuhyo.address_abroad, int(after.fuhyo.continued_use)))
        count += bool(changed) or before.fuhyo != after.fuhyo
    for changed, rows in groups.items():
        sets = ", ".join(f"{_COLUMNS[i]} = ?" for i in changed)
        tx.executemany(f"UPDATE residents SET {sets}, updated_at = ? WHERE resident_code = ?",
                       rows)
    if fuhyo_gone:
        tx.executemany("DELETE FROM fuhyo_entries WHERE resident_code = ?", fuhyo_gone)
    if fuhyo_set:
        tx.executemany(_UPSERT_FUHYO, fuhyo_set)
    return count


def note_registry_load(tx: Transaction) -> None:
    """Residents may have been added in this transaction: bump the registry's change
    counter, so notice processors re-match their unmatched notices. The last statement of
    a load's transaction (PostgreSQL holds the counter's row lock until the commit, so a
    load taking it earlier would hold up every other load meanwhile); the counter's
    operations only change residents that exist and never take it."""
    tx.execute("UPDATE registry_changes SET version = version + 1 WHERE id = 1")


def hold_registry_loads(tx: Transaction) -> None:
    """Keep registry loads from committing until this transaction ends; call it before
    reading residents to decide that a notice names nobody. A load that committed first is
    then seen by that read, and one that commits later moves the counter only after this
    transaction's marks are visible, so the re-match it triggers finds them. PostgreSQL:
    a share lock on the counter's row (a load's last statement updates it; readers do not
    block each other). SQLite: nothing to do, a transaction already excludes every other
    writer."""
    if tx.dialect == "postgresql":
        tx.query_one("SELECT version FROM registry_changes WHERE id = 1 FOR SHARE")


def registry_version(tx: Transaction) -> int:
    """How many registry loads have committed (`note_registry_load`): a reader that
    remembers it knows, by one primary-key read, whether a resident may have appeared."""
    row = tx.query_one("SELECT version FROM registry_changes WHERE id = 1")
    return int(row["version"]) if row else 0


def get_resident(tx: Transaction, resident_code: str) -> Resident | None:
    row = tx.query_one(_SELECT + " WHERE r.resident_code = ?", (resident_code,))
    return _from_row(row) if row else None


def owner_of_my_number(tx: Transaction, my_number: str) -> str | None:
    row = tx.query_one("SELECT resident_code FROM residents WHERE my_number = ?", (my_number,))
    return str(row["resident_code"]) if row else None


def count_residents(tx: Transaction) -> int:
    row = tx.query_one("SELECT COUNT(*) AS n FROM residents")
    return int(row["n"]) if row else 0


class ResidentStore:
    """A convenience wrapper: each call runs in its own transaction."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def put(self, *residents: Resident) -> int:
        """Insert or replace, as a registry load does (the change counter moves)."""
        with self.db.transaction() as tx:
            count = put_residents(tx, residents)
            note_registry_load(tx)
            return count

    def get(self, resident_code: str) -> Resident | None:
        with self.db.transaction() as tx:
            return get_resident(tx, resident_code)

    def count(self) -> int:
        with self.db.transaction() as tx:
            return count_residents(tx)
