"""Loading registry rows from CSV or JSON Lines into the store.

Rows follow `issuance/registry/schema.json` (CSV: a header row naming the columns of
`issuance.registry.model.COLUMNS`, UTF-8, an optional BOM). Every row is validated on
its own: a bad row is rejected with its row number and the reason, the good rows are
loaded, idempotently (a row replaces the stored record with the same resident code).
Row numbers are the file's line numbers, counted from 1; in a CSV file the header is
row 1.

Every line is hostile: it is read and decoded on its own (bounded in length), so a line
that is not UTF-8, holds a NUL, is too long, nests JSON too deeply, carries a number
Python will not convert or text no database stores is rejected with its number and the
reason, and the other lines load. A CSV record is one line: a quoted field that is not
closed on its line is reported (Python's csv module would read on to the end of the file
inside the quotes, swallowing the following rows), so fields cannot hold line breaks.

The load is one transaction: either every good row is stored or none is.
"""

from __future__ import annotations

import csv
import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any, Literal, NamedTuple

from hsm.files import private_writer
from issuance.registry.model import COLUMNS, REQUIRED, RecordError, RegistryError, parse_record
from issuance.registry.store import note_registry_load, owner_of_my_number, put_residents
from issuance.storage import Database

Format = Literal["csv", "jsonl"]
_BATCH = 1000
MAX_LINE = 64 * 1024  # bytes of one line
MAX_REASON = 300  # a reason quotes at most this much of the line


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


class BadLine(NamedTuple):
    """A line that is not even a record: its text (escaped so it can be written and
    stored anywhere) and why."""

    text: str
    reason: str


Row = dict[str, Any] | BadLine


def printable(text: str) -> str:
    """`text` with lone surrogates and NULs as backslash escapes (always encodable)."""
    return text.encode("utf-8", "backslashreplace").decode("utf-8").replace("\x00", "\\x00")


_COLUMN_LIKE = re.compile(r"[a-z_][a-z0-9_]{0,39}")  # how a column name looks


def _short(reason: str) -> str:
    reason = printable(reason)
    return reason if len(reason) <= MAX_REASON else reason[:MAX_REASON] + "…"


def _lines(path: Path) -> Iterator[tuple[int, str | BadLine]]:
    """(line number, text without its line break) of every non-blank line, each decoded
    on its own; a line that is too long, not UTF-8 or holds a NUL comes back as a
    `BadLine`. At most MAX_LINE + 2 bytes of a line are ever held."""
    with path.open("rb") as fh:
        number = 0
        while True:
            raw = fh.readline(MAX_LINE + 2)
            if not raw:
                return
            number += 1
            if number == 1 and raw.startswith(b"\xef\xbb\xbf"):
                raw = raw[3:]
            if len(raw) > MAX_LINE + 1 and not raw.endswith(b"\n"):
                while True:  # skip the rest of the line, a bounded piece at a time
                    rest = fh.readline(MAX_LINE + 2)
                    if not rest or rest.endswith(b"\n"):
                        break
                yield number, BadLine(printable(raw[:200].decode("utf-8", "backslashreplace"))
                                      + "…", f"longer than {MAX_LINE} bytes")
                continue
            raw = raw.rstrip(b"\r\n")
            if not raw.strip():
                continue
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                yield number, BadLine(printable(raw.decode("utf-8", "backslashreplace")),
                                      f"not UTF-8 (byte {exc.start + 1})")
                continue
            if "\x00" in text:
                yield number, BadLine(printable(text), "contains a NUL byte")
                continue
            yield number, text


def _csv_rows(path: Path) -> Iterator[tuple[int, Row]]:
    lines = _lines(path)
    first = next(lines, None)
    if first is None:
        return
    number, head = first
    if isinstance(head, BadLine):
        raise LoadFileError(f"row 1: bad header: {head.reason}")
    if number != 1:
        raise LoadFileError("row 1: no header (a blank line)")
    try:
        header = [h.strip() for h in next(csv.reader([head], strict=True))]
    except csv.Error as exc:
        raise LoadFileError(f"row 1: bad CSV header: {exc}") from None
    unknown = [h for h in header if h not in COLUMNS]
    if unknown:
        if all(_COLUMN_LIKE.fullmatch(h) for h in unknown):
            raise LoadFileError(_short(f"row 1: unknown column(s) {', '.join(unknown)}"))
        # not names at all: most likely a first resident where the header should be; what
        # it holds (a My Number, a name) is never repeated into messages or the audit log
        raise LoadFileError(f"row 1: {len(unknown)} field(s) that are not column names: the"
                            f" first row must name the columns ({', '.join(REQUIRED)}, …)")
    missing = [c for c in REQUIRED if c not in header]
    if missing:
        raise LoadFileError(f"row 1: missing column(s) {', '.join(missing)}")
    if len(set(header)) != len(header):
        raise LoadFileError("row 1: a column is named twice")
    for row_no, text in lines:
        if isinstance(text, BadLine):
            yield row_no, text
            continue
        try:
            values = next(csv.reader([text], strict=True))
        except csv.Error as exc:
            reason = "a quoted field is not closed on its line" \
                if "end of data" in str(exc) else f"bad CSV: {exc}"
            yield row_no, BadLine(text, reason)
            continue
        if all(v.strip() == "" for v in values):
            continue
        if len(values) != len(header):
            yield row_no, BadLine(text, "wrong number of fields for the header")
            continue
        yield row_no, dict(zip(header, values, strict=True))


def _jsonl_rows(path: Path) -> Iterator[tuple[int, Row]]:
    for row_no, text in _lines(path):
        if isinstance(text, BadLine):
            yield row_no, text
            continue
        try:
            value = json.loads(text)
        except json.JSONDecodeError as exc:
            yield row_no, BadLine(text, f"not valid JSON ({exc.msg})")
            continue
        except RecursionError:
            yield row_no, BadLine(text, "not valid JSON (nested too deeply)")
            continue
        except ValueError as exc:  # an integer of more digits than Python converts
            yield row_no, BadLine(text, _short(f"not valid JSON ({str(exc).splitlines()[0]})"))
            continue
        if not isinstance(value, dict):
            yield row_no, BadLine(text, "not a JSON object")
            continue
        yield row_no, value


def read_rows(path: Path, fmt: Format) -> Iterator[tuple[int, Row]]:
    """(row number, row) pairs; a line that is not even a record comes back as a
    `BadLine` (its text and the reason)."""
    if not path.is_file():
        raise LoadFileError(f"no such file: {path}")
    try:
        yield from (_csv_rows(path) if fmt == "csv" else _jsonl_rows(path))
    except OSError as exc:
        raise LoadFileError(f"cannot read {path}: {exc.strerror or exc}") from None


def load_file(
    db: Database,
    path: Path,
    *,
    fmt: Format | None = None,
    today: date,
    write_rejects: bool = True,
    progress: Callable[[int], None] | None = None,
) -> LoadReport:
    """Validate and load `path`; return what was loaded and what was rejected.
    `progress(n)` is told each row read (the CLI's counter on a terminal)."""
    path = Path(path)
    fmt = fmt or detect_format(path)
    report = LoadReport(path=path, format=fmt)
    seen_codes: dict[str, int] = {}
    seen_numbers: dict[str, tuple[int, str]] = {}
    with db.transaction() as tx:
        batch = []
        for row_no, raw in read_rows(path, fmt):
            if progress is not None:
                progress(1)
            if isinstance(raw, BadLine):
                report.rejected.append(Reject(row_no, raw.reason, raw.text))
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
                report.rejected.append(Reject(row_no, _short(str(exc)), raw))
                continue
            except Exception as exc:  # noqa: BLE001 - every line is hostile: reject, go on
                report.rejected.append(Reject(row_no, f"cannot be read: {type(exc).__name__}",
                                              raw))
                continue
            seen_codes[resident.resident_code] = row_no
            seen_numbers[resident.my_number] = (row_no, resident.resident_code)
            batch.append(resident)
            if len(batch) >= _BATCH:
                report.loaded += put_residents(tx, batch)
                batch = []
        if batch:
            report.loaded += put_residents(tx, batch)
        if report.loaded:
            note_registry_load(tx)  # last: notice processors re-match after the commit
    if write_rejects:
        target = rejects_path(path, fmt)
        if report.rejected:
            try:
                _write_rejects(target, fmt, report.rejected)
            except OSError as exc:
                raise LoadFileError(f"loaded {report.loaded} row(s), but cannot write the "
                                    f"rejects file {target}: {exc.strerror or exc}") from None
            report.rejects_file = target
        elif target.exists():
            target.unlink()
    return report


_LINE_BREAKING = {0x85: "\\u0085", 0x2028: "\\u2028", 0x2029: "\\u2029"}


def _one_line_json(value: Any) -> str:
    """JSON that stays on one line for every reader (str.splitlines breaks at NEL and
    the Unicode line and paragraph separators, which only occur inside strings)."""
    return json.dumps(value, ensure_ascii=False).translate(_LINE_BREAKING)


def _write_rejects(target: Path, fmt: Format, rejects: list[Reject]) -> None:
    """The rejects file, 0600 (it holds personal data), replaced whole: a symlink planted
    at its path is replaced, never followed. Text no encoder takes (a lone surrogate in a
    JSON value) is written as a backslash escape."""
    if fmt == "jsonl":
        with private_writer(target, force=True, text=True) as fh:
            for r in rejects:
                entry = {"row": r.row, "reason": r.reason, "record": r.raw}
                fh.write(_one_line_json(entry) + "\n")
        return
    with private_writer(target, force=True, text=True) as fh:
        writer = csv.writer(fh)
        writer.writerow(["row", "reason", *COLUMNS])
        for r in rejects:
            if isinstance(r.raw, dict):
                writer.writerow([r.row, r.reason, *(r.raw.get(c, "") for c in COLUMNS)])
            else:
                writer.writerow([r.row, r.reason, r.raw])
