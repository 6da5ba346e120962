"""The registry view: a resident's identity facts (本人確認情報) and 附票 entry.

Records are immutable; `parse_record` builds one from a flat mapping (a CSV row or a
JSON object with the columns of `issuance/registry/schema.json`) and raises
`RecordError` naming the field and the reason when the row is not acceptable.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from enum import Enum, IntEnum, StrEnum
from typing import Any

from issuance.errors import IssuanceError
from issuance.registry.checkdigits import (
    is_valid_municipality_code,
    is_valid_my_number,
    is_valid_resident_code,
)


class RegistryError(IssuanceError):
    """Root of registry errors."""


class RecordError(RegistryError, ValueError):
    """A registry row is not acceptable: `field` and `reason` say why."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


class Sex(IntEnum):
    """ISO/IEC 5218 codes, as the registry records them."""

    NOT_KNOWN = 0
    MALE = 1
    FEMALE = 2
    NOT_APPLICABLE = 9


class Nationality(StrEnum):
    JAPANESE = "japanese"
    FOREIGN = "foreign"


class ResidentStatus(StrEnum):
    RESIDENT = "resident"  # 住民票あり
    EMIGRATED = "emigrated"  # 国外転出 (附票 entry if a Japanese national kept one)
    DECEASED = "deceased"  # 死亡による住民票消除
    DELETED = "deleted"  # 住民票消除 for another reason


@dataclass(frozen=True)
class FuhyoEntry:
    """A koseki-fuhyo (戸籍の附票) entry of a Japanese national living abroad."""

    municipality_code: str  # the 附票管理市町村
    address_abroad: str | None = None
    continued_use: bool = False  # 継続利用 arranged before departure (2024 rule)


@dataclass(frozen=True)
class Resident:
    resident_code: str
    my_number: str
    name: str
    address: str
    birth_date: date
    sex: Sex
    nationality: Nationality
    status: ResidentStatus
    municipality_code: str
    name_kana: str | None = None
    status_date: date | None = None
    adult_ward: bool = False
    residence_expiry: date | None = None  # 在留期間満了日 of a 中長期在留者
    fuhyo: FuhyoEntry | None = None

    def to_row(self) -> dict[str, Any]:
        """The flat JSON-serialisable form described by schema.json."""
        return {
            "resident_code": self.resident_code,
            "my_number": self.my_number,
            "name": self.name,
            "name_kana": self.name_kana,
            "address": self.address,
            "birth_date": self.birth_date.isoformat(),
            "sex": int(self.sex),
            "nationality": self.nationality.value,
            "status": self.status.value,
            "status_date": self.status_date.isoformat() if self.status_date else None,
            "adult_ward": self.adult_ward,
            "municipality_code": self.municipality_code,
            "residence_expiry": (
                self.residence_expiry.isoformat() if self.residence_expiry else None
            ),
            "fuhyo_municipality_code": self.fuhyo.municipality_code if self.fuhyo else None,
            "fuhyo_address": self.fuhyo.address_abroad if self.fuhyo else None,
            "continued_use": self.fuhyo.continued_use if self.fuhyo else None,
        }


COLUMNS: tuple[str, ...] = (
    "resident_code",
    "my_number",
    "name",
    "name_kana",
    "address",
    "birth_date",
    "sex",
    "nationality",
    "status",
    "status_date",
    "adult_ward",
    "municipality_code",
    "residence_expiry",
    "fuhyo_municipality_code",
    "fuhyo_address",
    "continued_use",
)
REQUIRED: tuple[str, ...] = (
    "resident_code",
    "my_number",
    "name",
    "address",
    "birth_date",
    "sex",
    "nationality",
    "status",
    "municipality_code",
)

_KANA = re.compile(r"^[\u30A0-\u30FF\u3000 ]+$")
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")  # C0, DEL and C1: never in a record
_SURROGATE = re.compile(r"[\ud800-\udfff]")  # no UTF-8 database stores one
_MAX_TEXT = 200
_TRUE = {"true", "1", "yes"}
_FALSE = {"false", "0", "no"}


def _text(raw: Mapping[str, Any], field: str, *, required: bool) -> str | None:
    value = raw.get(field)
    if value is None or (isinstance(value, str) and value.strip() == ""):
        if required:
            raise RecordError(field, "missing")
        return None
    if not isinstance(value, str):
        raise RecordError(field, f"must be a string, not {type(value).__name__}")
    value = value.strip()
    if len(value) > _MAX_TEXT:
        raise RecordError(field, f"longer than {_MAX_TEXT} characters")
    if _CONTROL.search(value):
        raise RecordError(field, "contains control characters")
    if _SURROGATE.search(value):
        raise RecordError(field, "contains a lone surrogate (not a Unicode character)")
    return value


def _date(raw: Mapping[str, Any], field: str, *, required: bool) -> date | None:
    text = _text(raw, field, required=required)
    if text is None:
        return None
    try:
        if len(text) != 10:
            raise ValueError
        return date.fromisoformat(text)
    except ValueError:
        raise RecordError(field, f"not a date in YYYY-MM-DD form: {text!r}") from None


def _flag(raw: Mapping[str, Any], field: str) -> bool | None:
    value = raw.get(field)
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
        return value.strip().lower() in _TRUE
    raise RecordError(field, f"must be true or false, not {value!r}")


def _enum(raw: Mapping[str, Any], field: str, enum: type[Enum]) -> Any:
    text = _text(raw, field, required=True)
    try:
        return enum(text)
    except ValueError:
        allowed = ", ".join(str(m.value) for m in enum)  # type: ignore[attr-defined]
        raise RecordError(field, f"{text!r} is not one of {allowed}") from None


def _sex(raw: Mapping[str, Any]) -> Sex:
    value = raw.get("sex")
    if value is None or value == "":
        raise RecordError("sex", "missing")
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise RecordError("sex", f"must be 0, 1, 2 or 9, not {value!r}")
    try:
        return Sex(int(value))
    except ValueError:
        raise RecordError("sex", f"must be 0, 1, 2 or 9, not {value!r}") from None


def parse_record(raw: Mapping[str, Any], *, today: date) -> Resident:
    """Validate one flat row; raise `RecordError` for the first problem found."""
    unknown = sorted(set(raw) - set(COLUMNS))
    if unknown:
        column = unknown[0].encode("utf-8", "backslashreplace").decode("utf-8")
        raise RecordError(column[:64], "unknown column")
    code = _text(raw, "resident_code", required=True)
    if not is_valid_resident_code(code):
        raise RecordError("resident_code", "not 11 digits with a valid check digit")
    my_number = _text(raw, "my_number", required=True)
    if not is_valid_my_number(my_number):
        raise RecordError("my_number", "not 12 digits with a valid check digit")
    name = _text(raw, "name", required=True)
    kana = _text(raw, "name_kana", required=False)
    if kana is not None and not _KANA.match(kana):
        raise RecordError("name_kana", "must be katakana")
    address = _text(raw, "address", required=True)
    birth = _date(raw, "birth_date", required=True)
    assert birth is not None and code and my_number and name and address
    if birth > today:
        raise RecordError("birth_date", "in the future")
    if birth.year < 1870:
        raise RecordError("birth_date", "before 1870")
    sex = _sex(raw)
    nationality = _enum(raw, "nationality", Nationality)
    status = _enum(raw, "status", ResidentStatus)
    status_date = _date(raw, "status_date", required=False)
    if status_date is not None:
        if status is ResidentStatus.RESIDENT:
            raise RecordError("status_date", "given for a resident (only for a status change)")
        if status_date < birth:
            raise RecordError("status_date", "before the birth date")
        if status_date > today:
            raise RecordError("status_date", "in the future")
    adult_ward = _flag(raw, "adult_ward") or False
    municipality = _text(raw, "municipality_code", required=True)
    if not is_valid_municipality_code(municipality):
        raise RecordError("municipality_code", "not 6 digits with a valid check digit")
    assert municipality is not None
    expiry = _date(raw, "residence_expiry", required=False)
    if expiry is not None and nationality is not Nationality.FOREIGN:
        raise RecordError("residence_expiry", "only foreign nationals have a period of stay")

    fuhyo_code = _text(raw, "fuhyo_municipality_code", required=False)
    fuhyo_address = _text(raw, "fuhyo_address", required=False)
    continued = _flag(raw, "continued_use")
    fuhyo: FuhyoEntry | None = None
    if fuhyo_code is None:
        if fuhyo_address is not None or continued is not None:
            raise RecordError("fuhyo_municipality_code", "missing for a 附票 entry")
    else:
        if status is not ResidentStatus.EMIGRATED:
            raise RecordError("fuhyo_municipality_code", "附票 entry for a person not abroad")
        if nationality is not Nationality.JAPANESE:
            raise RecordError("fuhyo_municipality_code", "foreign nationals have no 附票")
        if not is_valid_municipality_code(fuhyo_code):
            raise RecordError(
                "fuhyo_municipality_code", "not 6 digits with a valid check digit"
            )
        fuhyo = FuhyoEntry(fuhyo_code, fuhyo_address, bool(continued))
    return Resident(
        resident_code=code,
        my_number=my_number,
        name=name,
        name_kana=kana,
        address=address,
        birth_date=birth,
        sex=sex,
        nationality=nationality,
        status=status,
        status_date=status_date,
        adult_ward=adult_ward,
        municipality_code=municipality,
        residence_expiry=expiry,
        fuhyo=fuhyo,
    )
