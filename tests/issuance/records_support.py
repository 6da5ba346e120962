"""Shared by the records and reports tests: a CLI with a pinned clock, cards and
certificates put straight into the workflow tables, and the text of a PDF."""

from __future__ import annotations

import argparse
import re
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest
from issuance_factories import fixed_clock

from issuance.applications.cli import register as register_apply
from issuance.applications.rules import State
from issuance.records.cli import register as register_records
from issuance.registry.cli import register as register_registry
from issuance.reports.cli import register as register_reports
from issuance.storage import Database
from issuance.workflow import records
from issuance.workflow.machine import transition
from issuance.workflow.migrations import migrate_workflow

OPERATOR = "clerk-1"


class Cli:
    def __init__(self, home: Path, db_url: str, capsys: pytest.CaptureFixture[str],
                 today: date) -> None:
        self.home, self.db_url, self.capsys = home, db_url, capsys
        parser = argparse.ArgumentParser(prog="mynacard")
        sub = parser.add_subparsers()
        clock = fixed_clock(today)
        for register in (register_registry, register_apply, register_records,
                         register_reports):
            register(sub, clock=clock)
        self.parser = parser

    def __call__(self, *argv: str, operator: str | None = OPERATOR) -> tuple[int, str, str]:
        extra = ["--db", self.db_url] + (["--operator", operator] if operator else [])
        args = self.parser.parse_args([*argv, *extra])
        args.home = self.home
        self.capsys.readouterr()
        code = args.func(args)
        out, err = self.capsys.readouterr()
        return code, out, err


def at(day: date, hour: int = 3) -> datetime:
    return datetime(day.year, day.month, day.day, hour, tzinfo=UTC)


def personalise(db: Database, application_id: str, serial: str, day: date, *,
                certificates: tuple[tuple[int, str], ...] = ()) -> None:
    """What an issue leaves behind: registered -> personalised (audited as `issue`), the
    card issued, its certificates current."""
    migrate_workflow(db)
    stamp = at(day).isoformat()
    with db.transaction() as tx:
        transition(tx, application_id, State.REGISTERED, operator=OPERATOR,
                   action="application.register", at=at(day, 1))
        records.put_card(tx, serial, application_id, "issued", now=stamp)
        for cert_serial, kind in certificates:
            records.add_certificate(tx, cert_serial, application_id=application_id,
                                    card_serial=serial, kind=kind, now=stamp)
        transition(tx, application_id, State.PERSONALISED, operator=OPERATOR,
                   action="issue", at=at(day), detail={"card_serial": serial})


_STRING = re.compile(rb"\(((?:[^\\()]|\\.)*)\) Tj", re.S)
_ESC = {b"n": b"\n", b"r": b"\r", b"t": b"\t", b"b": b"\b", b"f": b"\f"}


def _unescape(raw: bytes) -> bytes:
    out = bytearray()
    i = 0
    while i < len(raw):
        c = raw[i:i + 1]
        if c != b"\\":
            out += c
            i += 1
            continue
        nxt = raw[i + 1:i + 2]
        octal = re.match(rb"[0-7]{1,3}", raw[i + 1:i + 4])
        if octal:
            out.append(int(octal.group(), 8))
            i += 1 + len(octal.group())
        else:
            out += _ESC.get(nxt, nxt)
            i += 2
    return bytes(out)


def pdf_text(data: bytes) -> list[str]:
    """The strings shown on the pages (the CID fonts take UTF-16BE)."""
    assert data.startswith(b"%PDF-")
    return [_unescape(m.group(1)).decode("utf-16-be", errors="replace")
            for m in _STRING.finditer(data)]


def pages(data: bytes) -> int:
    return len(re.findall(rb"/Type /Page\b", data))


def rows(db: Database, sql: str, params: tuple[Any, ...] = ()) -> list[dict[str, Any]]:
    with db.transaction() as tx:
        return tx.query(sql, params)


_KEY: Any = None


def certificate(serial: int, not_after: datetime, *, cn: str = "holder") -> Any:
    """A throwaway certificate with this serial and notAfter (one key for all)."""
    global _KEY
    from datetime import timedelta

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.x509.oid import NameOID

    if _KEY is None:
        _KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])
    return (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(_KEY.public_key()).serial_number(serial)
            .not_valid_before(not_after - timedelta(days=1000)).not_valid_after(not_after)
            .sign(_KEY, hashes.SHA256()))
