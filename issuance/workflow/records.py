"""Rows of the workflow tables: jobs, cards and the certificates the workflow issued."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from issuance.storage import Transaction


@dataclass(frozen=True)
class Job:
    application_id: str
    card_serial: str | None
    step: str
    attempt: int
    started_at: str
    security_code: str
    operator: str
    owner: str = ""
    updated_at: str = ""


@dataclass(frozen=True)
class CardRow:
    serial: str
    application_id: str
    state: str
    note: str | None


@dataclass(frozen=True)
class IssuedCert:
    serial: int
    application_id: str
    card_serial: str
    kind: str  # signing | user_authentication
    status: str

    @property
    def serial_hex(self) -> str:
        return format(self.serial, "x")


def get_job(tx: Transaction, application_id: str) -> Job | None:
    row = tx.query_one("SELECT * FROM workflow_jobs WHERE application_id = ?",
                       (application_id,))
    if row is None:
        return None
    return Job(row["application_id"], row["card_serial"], row["step"], int(row["attempt"]),
               row["started_at"], row["security_code"], row["operator"], row["owner"] or "",
               row["updated_at"])


def put_job(tx: Transaction, job: Job, *, now: str) -> None:
    changed = tx.execute(
        "UPDATE workflow_jobs SET card_serial = ?, step = ?, attempt = ?, started_at = ?,"
        " security_code = ?, operator = ?, owner = ?, updated_at = ? WHERE application_id = ?",
        (job.card_serial, job.step, job.attempt, job.started_at, job.security_code,
         job.operator, job.owner, now, job.application_id))
    if changed == 0:
        tx.execute(
            "INSERT INTO workflow_jobs (application_id, card_serial, step, attempt, started_at,"
            " security_code, operator, owner, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (job.application_id, job.card_serial, job.step, job.attempt, job.started_at,
             job.security_code, job.operator, job.owner, now))


def _card(row: dict[str, Any]) -> CardRow:
    return CardRow(row["serial"], row["application_id"], row["state"], row["note"])


def get_card(tx: Transaction, serial: str) -> CardRow | None:
    row = tx.query_one("SELECT * FROM cards WHERE serial = ?", (serial,))
    return _card(row) if row else None


def live_card_of(tx: Transaction, application_id: str) -> CardRow | None:
    row = tx.query_one(
        "SELECT * FROM cards WHERE application_id = ? AND state IN"
        " ('personalising', 'issued', 'active')", (application_id,))
    return _card(row) if row else None


def cards_of(tx: Transaction, application_id: str) -> list[CardRow]:
    return [_card(r) for r in tx.query(
        "SELECT * FROM cards WHERE application_id = ? ORDER BY created_at, serial",
        (application_id,))]


def put_card(tx: Transaction, serial: str, application_id: str, state: str, *, now: str,
             note: str | None = None) -> None:
    changed = tx.execute(
        "UPDATE cards SET application_id = ?, state = ?, note = COALESCE(?, note),"
        " updated_at = ? WHERE serial = ?", (application_id, state, note, now, serial))
    if changed == 0:
        tx.execute(
            "INSERT INTO cards (serial, application_id, state, note, created_at, updated_at)"
            " VALUES (?, ?, ?, ?, ?, ?)", (serial, application_id, state, note, now, now))


def _cert(row: dict[str, Any]) -> IssuedCert:
    return IssuedCert(int(row["serial"], 16), row["application_id"], row["card_serial"],
                      row["kind"], row["status"])


def certificates_of(tx: Transaction, application_id: str,
                    status: str | None = None) -> list[IssuedCert]:
    sql = "SELECT * FROM issued_certificates WHERE application_id = ?"
    params: list[Any] = [application_id]
    if status is not None:
        sql += " AND status = ?"
        params.append(status)
    return [_cert(r) for r in tx.query(sql + " ORDER BY issued_at, serial", params)]


def known_serials(tx: Transaction, serials: list[int]) -> set[int]:
    if not serials:
        return set()
    marks = ", ".join("?" for _ in serials)
    rows = tx.query(f"SELECT serial FROM issued_certificates WHERE serial IN ({marks})",
                    [format(s, "x") for s in serials])
    return {int(r["serial"], 16) for r in rows}


def add_certificate(tx: Transaction, serial: int, *, application_id: str, card_serial: str,
                    kind: str, now: str) -> None:
    tx.execute(
        "INSERT INTO issued_certificates (serial, application_id, card_serial, kind, status,"
        " issued_at, updated_at) VALUES (?, ?, ?, ?, 'current', ?, ?)",
        (format(serial, "x"), application_id, card_serial, kind, now, now))


def set_certificate_status(tx: Transaction, serial: int, status: str, *, now: str) -> None:
    tx.execute("UPDATE issued_certificates SET status = ?, updated_at = ? WHERE serial = ?",
               (status, now, format(serial, "x")))


@dataclass(frozen=True)
class CertLink:
    """証明書新旧紐付け (rule 5.7): a certificate and the one that replaced it."""

    old_serial: int
    new_serial: int
    kind: str
    resident_code: str
    reason: str  # renewal | reissue | card_update
    linked_at: str


def link_certificates(tx: Transaction, old: int, new: int, *, kind: str, resident_code: str,
                      reason: str, now: str) -> None:
    tx.execute(
        "INSERT INTO certificate_links (old_serial, new_serial, kind, resident_code, reason,"
        " linked_at) VALUES (?, ?, ?, ?, ?, ?)",
        (format(old, "x"), format(new, "x"), kind, resident_code, reason, now))


def links_of(tx: Transaction, resident_code: str) -> list[CertLink]:
    """A holder's links, oldest first."""
    return [CertLink(int(r["old_serial"], 16), int(r["new_serial"], 16), r["kind"],
                     r["resident_code"], r["reason"], r["linked_at"])
            for r in tx.query("SELECT * FROM certificate_links WHERE resident_code = ?"
                              " ORDER BY linked_at, old_serial", (resident_code,))]
