"""Loading registry rows from CSV or JSON Lines into the store.

Rows follow `issuance/registry/schema.json` (CSV: a header row naming the columns of
`issuance.registry.model.COLUMNS`, UTF-8, an optional BOM). Every row is validated on
its own: a bad row is rejected with its row number and the reason, the good rows are
loaded, idempotently (a row replaces the stored record with the same resident code).
Row numbers are the file's line numbers, counted from 1, of the line where the record
starts; in a CSV file the header is row 1.

The load is one transaction: either every good row is stored or none is.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any, Literal

from issuance.registry.model import COLUMNS, REQUIRED, RecordError, RegistryError, parse_record
from issuance.registry.store import owner_of_my_number, put_residents
from issuance.storage import Database

Format = Literal["csv", "jsonl"]
_BATCH = 1000


class LoadFileError(RegistryError):
    """The file as a whole cannot be read (missing, unreadable, bad CSV header)."""


@dataclass(frozen=True)
class Reject:
    row: int
    reason: str
    raw: dict[str, Any] | str  # the row as read (a string if it was not even an object)


@dataclass
class LoadReport:
    path: Path
    format: Format
    loaded: int = 0
    rejected: list[Reject] = field(default_factory=list)
    rejects_file: Path | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "file": str(self.path),
            "format": self.format,
            "loaded": self.loaded,
            "rejected": [{"row": r.row, "reason": r.reason} for r in self.rejected],
            "rejects_file": str(self.rejects_file) if self.rejects_file else None,
        }


def detect_format(path: Path) -> Format:
    suffix = path.suffix.lower()
    if suffix == ".csv":
        return "csv"
    if suffix in (".jsonl", ".ndjson", ".json"):
        return "jsonl"
    raise LoadFileError(f"cannot tell the format of {path.name}: use --format csv|jsonl")


def rejects_path(path: Path, fmt: Format) -> Path:
    """Where the rejects of `path` go: `NAME.rejects.csv` or `NAME.rejects.jsonl`."""
    return path.with_name(f"{path.stem}.rejects.{fmt}")


def _csv_rows(path: Path) -> Iterator[tuple[int, dict[str, Any] | str]]:
    with path.open(encoding="utf-8-sig", newline="") as fh:
        reader = csv.reader(fh)
        try:
            header = next(reader)
        except StopIteration:
            return
        header = [h.strip() for h in header]
        unknown = [h for h in header if h not in COLUMNS]
        if unknown:
            raise LoadFileError(f"row 1: unknown column(s) {', '.join(unknown)}")
        missing = [c for c in REQUIRED if c not in header]
        if missing:
            raise LoadFileError(f"row 1: missing column(s) {', '.join(missing)}")
        if len(set(header)) != len(header):
            raise LoadFileError("row 1: a column is named twice")
        start = reader.line_num + 1
        for values in reader:
            row_no, start = start, reader.line_num + 1
            if not values or all(v.strip() == "" for v in values):
                continue
            if len(values) != len(header):
                yield row_no, ",".join(values)
                continue
            yield row_no, dict(zip(header, values, strict=True))


def _jsonl_rows(path: Path) -> Iterator[tuple[int, dict[str, Any] | str]]:
    with path.open(encoding="utf-8-sig") as fh:
        for row_no, line in enumerate(fh, start=1):
            text = line.strip()
            if not text:
                continue
            try:
                value = json.loads(text)
            except json.JSONDecodeError:
                yield row_no, text
                continue
            yield row_no, value if isinstance(value, dict) else text


def read_rows(path: Path, fmt: Format) -> Iterator[tuple[int, dict[str, Any] | str]]:
    """(row number, row) pairs; a row that is not even a record comes back as text."""
    if not path.is_file():
        raise LoadFileError(f"no such file: {path}")
    try:
        yield from (_csv_rows(path) if fmt == "csv" else _jsonl_rows(path))
    except UnicodeDecodeError as exc:
        raise LoadFileError(f"{path.name} is not UTF-8: {exc}") from exc
    except csv.Error as exc:
        raise LoadFileError(f"{path.name}: bad CSV: {exc}") from exc


def _not_a_record_reason(fmt: Format, text: str) -> str:
    if fmt == "csv":
        return "wrong number of fields for the header"
    try:
        json.loads(text)
    except json.JSONDecodeError as exc:
        return f"not valid JSON ({exc.msg})"
    return "not a JSON object"


def load_file(
    db: Database,
    path: Path,
    *,
    fmt: Format | None = None,
    today: date,
    write_rejects: bool = True,
) -> LoadReport:
    """Validate and load `path`; return what was loaded and what was rejected."""
    path = Path(path)
    fmt = fmt or detect_format(path)
    report = LoadReport(path=path, format=fmt)
    seen_codes: dict[str, int] = {}
    seen_numbers: dict[str, tuple[int, str]] = {}
    with db.transaction() as tx:
        batch = []
        for row_no, raw in read_rows(path, fmt):
            if isinstance(raw, str):
                report.rejected.append(Reject(row_no, _not_a_record_reason(fmt, raw), raw))
                continue
            try:
                resident = parse_record(raw, today=today)
                first = seen_codes.get(resident.resident_code)
                if first is not None:
                    raise RecordError("resident_code", f"already given in row {first}")
                other = seen_numbers.get(resident.my_number)
                if other is not None:
                    raise RecordError("my_number", f"already given in row {other[0]}")
                owner = owner_of_my_number(tx, resident.my_number)
                if owner is not None and owner != resident.resident_code:
                    raise RecordError("my_number", f"belongs to resident code {owner}")
            except RecordError as exc:
                report.rejected.append(Reject(row_no, str(exc), raw))
                continue
            seen_codes[resident.resident_code] = row_no
            seen_numbers[resident.my_number] = (row_no, resident.resident_code)
            batch.append(resident)
            if len(batch) >= _BATCH:
                report.loaded += put_residents(tx, batch)
                batch = []
        if batch:
            report.loaded += put_residents(tx, batch)
    if write_rejects:
        target = rejects_path(path, fmt)
        if report.rejected:
            _write_rejects(target, fmt, report.rejected)
            report.rejects_file = target
        elif target.exists():
            target.unlink()
    return report


def _write_rejects(target: Path, fmt: Format, rejects: list[Reject]) -> None:
    if fmt == "jsonl":
        with target.open("w", encoding="utf-8") as fh:
            for r in rejects:
                entry = {"row": r.row, "reason": r.reason, "record": r.raw}
                fh.write(json.dumps(entry, ensure_ascii=False) + "\n")
        return
    with target.open("w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["row", "reason", *COLUMNS])
        for r in rejects:
            if isinstance(r.raw, dict):
                writer.writerow([r.row, r.reason, *(r.raw.get(c, "") for c in COLUMNS)])
            else:
                writer.writerow([r.row, r.reason, r.raw])
