"""One notice from 住基ネット (`juki`) or 附票ネット (`fuhyo`): its model and validation.

`parse_notice(text)` checks one JSON Lines line against the published schema
(`issuance/notices/schema.json`, with the `jsonschema` package) and then the semantics
the schema cannot express (the resident code's check digit, real calendar dates, an
offset on `sent_at`). It returns a `Notice` or raises `NoticeError` with a reason.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import date, datetime
from enum import StrEnum
from functools import cache
from pathlib import Path
from typing import Any

from issuance.errors import IssuanceError
from issuance.registry.checkdigits import is_valid_municipality_code, is_valid_resident_code

SCHEMA_PATH = Path(__file__).with_name("schema.json")
MAX_LINE = 64 * 1024  # bytes of one line (characters when a str is given)
MAX_REASON = 300  # a reason quotes at most this much of the line
# C0 and C1 control characters and DEL: never in a name or an address
CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_SURROGATE = re.compile(r"[\ud800-\udfff]")
# what a JSON text needs for a decoded value to hold a lone surrogate or a NUL: an escape
# (a backslash) or the character itself
_MAY_BE_UNSTORABLE = re.compile(r"[\\\x00\ud800-\udfff]")


class NoticeError(IssuanceError, ValueError):
    """A notice is not acceptable; `reason` says why."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class Source(StrEnum):
    JUKI = "juki"  # 住基ネット
    FUHYO = "fuhyo"  # 附票ネット


class Kind(StrEnum):
    DEATH = "death"
    RECORD_DELETED = "record_deleted"
    EMIGRATION_CONTINUED_USE = "emigration_continued_use"
    EMIGRATION_WITHOUT_CONTINUED_USE = "emigration_without_continued_use"
    NAME_CHANGE = "name_change"
    ADDRESS_CHANGE = "address_change"
    BIRTH_DATE_CHANGE = "birth_date_change"
    SEX_CHANGE = "sex_change"
    CORRECTION = "correction"


FACT_CHANGES = frozenset({Kind.NAME_CHANGE, Kind.ADDRESS_CHANGE, Kind.BIRTH_DATE_CHANGE,
                          Kind.SEX_CHANGE, Kind.CORRECTION})
EMIGRATIONS = frozenset({Kind.EMIGRATION_CONTINUED_USE, Kind.EMIGRATION_WITHOUT_CONTINUED_USE})
RECORD_ENDS = frozenset({Kind.DEATH, Kind.RECORD_DELETED})


LOCAL_SENDER = "local"  # the file intake (`notices ingest`) and notices stored before senders


@dataclass(frozen=True)
class Notice:
    id: str
    source: Source
    kind: Kind
    resident_code: str
    effective_date: date
    facts: dict[str, Any] = field(default_factory=dict)
    nationality: str | None = None
    sent_at: datetime | None = None
    # who delivered it (not part of the notice's text): (sender, source, id) identifies a
    # stored notice, so one sender's ids never collide with another's
    sender: str = LOCAL_SENDER

    def to_json(self) -> dict[str, Any]:
        """The notice as the schema describes it (keys in a stable order)."""
        out: dict[str, Any] = {
            "id": self.id,
            "source": self.source.value,
            "kind": self.kind.value,
            "resident_code": self.resident_code,
            "effective_date": self.effective_date.isoformat(),
        }
        if self.facts:
            out["facts"] = dict(sorted(self.facts.items()))
        if self.nationality is not None:
            out["nationality"] = self.nationality
        if self.sent_at is not None:
            out["sent_at"] = self.sent_at.isoformat()
        return out

    def canonical(self) -> str:
        return _CANONICAL.encode(self.to_json())


# json.dumps(…, sort_keys=True, separators=(",", ":"), ensure_ascii=False), built once
_CANONICAL = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False)


@cache
def schema() -> dict[str, Any]:
    return json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))  # type: ignore[no-any-return]


@cache
def _validator() -> Any:
    import jsonschema
    from jsonschema import validators

    def pattern(validator: Any, expected: str, instance: Any, _schema: Any) -> Any:
        if validator.is_type(instance, "string") and not _ecma(expected).search(instance):
            yield jsonschema.ValidationError(f"{instance!r} does not match {expected!r}")

    return validators.extend(jsonschema.Draft202012Validator,
                             {"pattern": pattern})(schema())


@cache
def _ecma(expected: str) -> re.Pattern[str]:
    """A schema pattern as JSON Schema means it (ECMA-262): a final `$` matches only at
    the very end, where Python's also matches before a final newline ("N-1\\n" would pass
    `^[\\x21-\\x7E]+$` and be stored as a second notice beside "N-1")."""
    if expected.endswith("$") and not expected.endswith("\\$"):
        expected = expected[:-1] + "\\Z"
    return re.compile(expected)


def unstorable(obj: Any) -> str | None:
    """Why a decoded JSON value cannot be stored as text (a lone surrogate, which no
    UTF-8 database takes, or a NUL, which PostgreSQL refuses), or None; no recursion."""
    stack = [obj]
    while stack:
        value = stack.pop()
        if isinstance(value, dict):
            stack.extend(value.keys())
            stack.extend(value.values())
        elif isinstance(value, list):
            stack.extend(value)
        elif isinstance(value, str):
            if _SURROGATE.search(value):
                return "contains a lone surrogate (not a Unicode character)"
            if "\x00" in value:
                return "contains a NUL character"
    return None


def _short(reason: str) -> str:
    return reason if len(reason) <= MAX_REASON else reason[:MAX_REASON] + "…"


def _where(error: Any) -> str:
    path = "/".join(str(p) for p in error.absolute_path)
    return path or "(notice)"


def _date(value: str, what: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise NoticeError(f"{what}: not a calendar date: {value!r}") from None


_ID = re.compile(r"[\x21-\x7E]+")
_CODE11 = re.compile(r"[0-9]{11}")
_CODE6 = re.compile(r"[0-9]{6}")
_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_TOP_KEYS = frozenset({"id", "source", "kind", "resident_code", "effective_date", "facts",
                       "nationality", "sent_at"})
_FACT_KEYS = frozenset({"name", "address", "birth_date", "sex", "fuhyo_municipality_code"})
_KINDS = frozenset(k.value for k in Kind)
_NEEDS_FACT = {"name_change": ("name",), "address_change": ("address",),
               "birth_date_change": ("birth_date",), "sex_change": ("sex",),
               "correction": ("name", "address", "birth_date", "sex")}


def _str(value: Any, lo: int, hi: int) -> bool:
    return type(value) is str and lo <= len(value) <= hi


def _surely_valid(obj: Any) -> bool:
    """A fast check that is never more lenient than the published schema: True only for
    values the schema accepts (False may still be valid: `validate_object` then asks the
    jsonschema validator, which stays the authority and words the reason)."""
    if type(obj) is not dict or not obj.keys() <= _TOP_KEYS:
        return False
    try:
        nid, source, kind = obj["id"], obj["source"], obj["kind"]
        code, effective = obj["resident_code"], obj["effective_date"]
    except KeyError:
        return False
    if not (_str(nid, 1, 128) and _ID.fullmatch(nid)) or source not in ("juki", "fuhyo") \
            or type(source) is not str or type(kind) is not str or kind not in _KINDS:
        return False
    if type(code) is not str or not _CODE11.fullmatch(code) or type(effective) is not str \
            or not _DATE.fullmatch(effective):
        return False
    if "nationality" in obj and obj["nationality"] not in ("japanese", "foreign"):
        return False
    if "nationality" in obj and type(obj["nationality"]) is not str:
        return False
    if "sent_at" in obj and not _str(obj["sent_at"], 20, 40):
        return False
    facts = obj.get("facts")
    if "facts" in obj:
        if type(facts) is not dict or not facts.keys() <= _FACT_KEYS:
            return False
        for key in ("name", "address"):
            if key in facts and not _str(facts[key], 1, 200):
                return False
        if "birth_date" in facts and not (type(facts["birth_date"]) is str
                                          and _DATE.fullmatch(facts["birth_date"])):
            return False
        if "sex" in facts and not (type(facts["sex"]) is int and facts["sex"] in (0, 1, 2, 9)):
            return False
        fuhyo = facts.get("fuhyo_municipality_code")
        if "fuhyo_municipality_code" in facts and not (type(fuhyo) is str
                                                       and _CODE6.fullmatch(fuhyo)):
            return False
        if "fuhyo_municipality_code" in facts and not kind.startswith("emigration_"):
            return False
        if kind in ("death", "record_deleted") and facts:
            return False
    needed = _NEEDS_FACT.get(kind)
    if needed is not None and (facts is None or not any(k in facts for k in needed)):
        return False
    return True


def validate_object(obj: Any, *, storable: bool = False) -> Notice:
    """Check a decoded JSON value against the schema and the semantic rules. `storable`:
    the caller knows no string in it holds a lone surrogate or a NUL (its JSON text has
    neither, nor any escape), so the walk through the value is skipped."""
    bad = None if storable else unstorable(obj)
    if bad is not None:
        raise NoticeError(bad)
    if not _surely_valid(obj):
        errors = sorted(_validator().iter_errors(obj), key=lambda e: (list(e.absolute_path),
                                                                      e.message))
        if errors:
            first = errors[0]
            raise NoticeError(_short(f"{_where(first)}: {first.message}"))
    assert isinstance(obj, dict)
    if not is_valid_resident_code(obj["resident_code"]):
        raise NoticeError("resident_code: not 11 digits with a valid check digit")
    effective = _date(obj["effective_date"], "effective_date")
    if effective.year < 1900:
        raise NoticeError("effective_date: before 1900")
    facts = dict(obj.get("facts") or {})
    if "birth_date" in facts:
        born = _date(facts["birth_date"], "facts/birth_date")
        if born > effective:
            raise NoticeError("facts/birth_date: after the effective date")
        if born.year < 1870:
            raise NoticeError("facts/birth_date: before 1870")
    for key in ("name", "address"):
        if key in facts and (facts[key].strip() == "" or CONTROL.search(facts[key])):
            raise NoticeError(f"facts/{key}: empty or contains control characters")
    code = facts.get("fuhyo_municipality_code")
    if code is not None and not is_valid_municipality_code(code):
        raise NoticeError("facts/fuhyo_municipality_code: not 6 digits with a valid check digit")
    sent_at = None
    if "sent_at" in obj:
        try:
            sent_at = datetime.fromisoformat(obj["sent_at"])
        except ValueError:
            raise NoticeError(f"sent_at: not an RFC 3339 time: {obj['sent_at']!r}") from None
        if sent_at.tzinfo is None:
            raise NoticeError("sent_at: no UTC offset")
    return Notice(
        id=obj["id"],
        source=Source(obj["source"]),
        kind=Kind(obj["kind"]),
        resident_code=obj["resident_code"],
        effective_date=effective,
        facts=facts,
        nationality=obj.get("nationality"),
        sent_at=sent_at,
    )


def parse_notice(text: str | bytes) -> Notice:
    """Parse and validate one JSON Lines line; raise `NoticeError` with the reason."""
    if isinstance(text, bytes):
        if len(text.rstrip(b"\r\n")) > MAX_LINE:
            raise NoticeError(f"longer than {MAX_LINE} bytes")
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise NoticeError(f"not UTF-8 (byte {exc.start + 1})") from None
    if len(text.rstrip("\r\n")) > MAX_LINE:
        raise NoticeError(f"longer than {MAX_LINE} characters")
    obj = decode_json(text, NoticeError)
    if not isinstance(obj, dict):
        raise NoticeError(f"not a JSON object but {type(obj).__name__}")
    return validate_object(obj, storable=_MAY_BE_UNSTORABLE.search(text) is None)


def decode_json(text: str, error: type[NoticeError] = NoticeError) -> Any:
    """`json.loads`, with every way it can fail (bad JSON, nesting deep enough to exhaust
    the stack, an integer of more digits than Python converts) turned into `error`."""
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise error(f"not JSON: {exc.msg} at column {exc.colno}") from None
    except RecursionError:
        raise error("not JSON: nested too deeply") from None
    except ValueError as exc:  # e.g. "Exceeds the limit (4300 digits) for integer string"
        raise error(_short(f"not JSON: {str(exc).splitlines()[0]}")) from None


_CLAIMED_SOURCE = re.compile(r"[a-z]{1,16}")


def claimed_identity(text: str) -> tuple[str | None, str | None]:
    """(source, id) as a malformed line claims them, when they can be read at all (and
    only when they are plain printable ASCII, so a report can always show them)."""
    if len(text) > MAX_LINE:
        return None, None
    try:
        obj = json.loads(text)
    except (ValueError, TypeError, RecursionError):
        return None, None
    if not isinstance(obj, dict):
        return None, None
    source, nid = obj.get("source"), obj.get("id")
    return (source if isinstance(source, str) and _CLAIMED_SOURCE.fullmatch(source) else None,
            nid if isinstance(nid, str) and len(nid) <= 128 and _ID.fullmatch(nid) else None)


_SOURCE_OF = {s.value: s for s in Source}
_KIND_OF = {k.value: k for k in Kind}


def notice_from_stored(payload: str, sender: str = LOCAL_SENDER) -> Notice:
    """A notice from its stored canonical payload (validated when it was accepted)."""
    obj = json.loads(payload)
    return Notice(
        sender=sender,
        id=obj["id"],
        source=_SOURCE_OF[obj["source"]],  # dict lookups: a processor reads millions
        kind=_KIND_OF[obj["kind"]],
        resident_code=obj["resident_code"],
        effective_date=date.fromisoformat(obj["effective_date"]),
        facts=dict(obj.get("facts") or {}),
        nationality=obj.get("nationality"),
        sent_at=datetime.fromisoformat(obj["sent_at"]) if "sent_at" in obj else None,
    )
