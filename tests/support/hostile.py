"""Hostile lines for the parser fuzz tests: seeded mutations that make a good line bad
by construction (so the test knows, without asking the parser, which lines must be
rejected), mixed among good lines.

Every mutation keeps the line one line (no raw line break is ever inserted):

* `invalid_utf8`: an ASCII byte replaced by a byte 0x80-0xFF. ASCII bytes are followed
  only by ASCII or lead bytes, so the result is never valid UTF-8;
* `nul`: a NUL byte inserted (never valid JSON; refused in a CSV line);
* `truncate` (JSON only): the object cut before its closing brace;
* `too_long`: spaces or filler padded past the parser's line limit;
* `hostile_value`: one field's value replaced by a hostile value: nesting 30,000 deep
  (RecursionError in `json.loads`), a lone surrogate, `1e999999`, a 5,000-digit integer
  (ValueError in Python 3.11), NUL, BEL and C1 control characters, an unclosed CSV quote.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable, Sequence

DEEP = b"[" * 30_000 + b"]" * 30_000
HOSTILE_JSON: tuple[bytes, ...] = (
    DEEP,
    b'"\\ud800"',
    b'"x\\udfffy"',
    b"1e999999",
    b"-1e999999",
    b"1" * 5_000,
    b'"a\\u0000b"',
    b'"a\\u0007b"',
    b'"a\\u0085b"',
    b'"\xe5\xb1\xb1\\u009f"',
    b"[" * 500 + b"]" * 500,
    b'{"a": ' * 200 + b"1" + b"}" * 200,
    b"null",
    b"true",
    b"[]",
)
# CSV field contents (the field is written between the separating commas)
HOSTILE_CSV: tuple[bytes, ...] = (
    b'"unclosed quote',
    b'"closed" then text',
    b"bell\x07",
    b"c1 \xc2\x85 next line",
    b"del \x7f",
    b"\xed\xa0\x80 cesu surrogate",
    b"tab\there",
)


def _invalid_utf8(line: bytes, rng: random.Random) -> bytes:
    ascii_at = [i for i, b in enumerate(line) if b < 0x80]
    i = rng.choice(ascii_at)
    return line[:i] + bytes([rng.randrange(0x80, 0x100)]) + line[i + 1:]


def _nul(line: bytes, rng: random.Random) -> bytes:
    i = rng.randrange(0, len(line) + 1)
    return line[:i] + b"\x00" + line[i:]


def _truncate(line: bytes, rng: random.Random) -> bytes:
    return line[:rng.randrange(1, line.rindex(b"}"))]


def mutate_json(line: bytes, rng: random.Random, *, fields: Sequence[str], limit: int) -> bytes:
    """A bad JSON Lines line made from the good `line` (a flat-ish JSON object) whose
    `fields` must be strings of a restricted form (so any hostile value breaks them)."""
    how = rng.randrange(5)
    if how == 0:
        return _invalid_utf8(line, rng)
    if how == 1:
        return _nul(line, rng)
    if how == 2:
        return _truncate(line, rng)
    if how == 3:
        return b"{" + b" " * (limit + rng.randrange(1, 5000)) + line[1:]
    obj = json.loads(line)
    field = rng.choice(list(fields))
    marker = '"@@HOSTILE@@"'
    obj[field] = "@@HOSTILE@@"
    text = json.dumps(obj, ensure_ascii=False).encode("utf-8")
    return text.replace(marker.encode(), rng.choice(HOSTILE_JSON), 1)


def mutate_csv(line: bytes, rng: random.Random, *, fields: Sequence[int], limit: int) -> bytes:
    """A bad CSV line made from the good `line` (no quoted fields), replacing one of the
    text `fields` (indexes) by a hostile value, or breaking its encoding or length."""
    how = rng.randrange(4)
    if how == 0:
        return _invalid_utf8(line, rng)
    if how == 1:
        return _nul(line, rng)
    if how == 2:
        return line + b"x" * (limit + rng.randrange(1, 5000))
    cells = line.split(b",")
    cells[rng.choice(list(fields))] = rng.choice(HOSTILE_CSV)
    return b",".join(cells)


def mixed(good: Sequence[bytes], bad_from: Callable[[bytes, random.Random], bytes],
          *, seed: int, bad: int) -> tuple[list[bytes], set[int], set[int]]:
    """The good lines in order with `bad` mutated lines spread among them (each made
    from a random good line): (lines, good line numbers, bad line numbers), counted
    from 1."""
    rng = random.Random(seed)
    slots = ["good"] * len(good) + ["bad"] * bad
    rng.shuffle(slots)
    lines: list[bytes] = []
    good_at: set[int] = set()
    bad_at: set[int] = set()
    it = iter(good)
    for number, slot in enumerate(slots, start=1):
        if slot == "good":
            lines.append(next(it))
            good_at.add(number)
        else:
            lines.append(bad_from(rng.choice(good), rng))
            bad_at.add(number)
    for line in lines:
        assert b"\n" not in line and b"\r" not in line
    return lines, good_at, bad_at
