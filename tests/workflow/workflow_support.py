"""Helpers of the workflow tests: residents of a given age, applications, audit lookups."""

from __future__ import annotations

import dataclasses
from datetime import UTC, date, datetime
from typing import Any

from cryptography import x509

from card import contract
from card.jpki import JpkiClient
from card.transport import PcscTransport
from issuance.applications.express import ExpressReason
from issuance.applications.intake import take_application
from issuance.applications.rules import ApplicationRequest
from issuance.audit.log import AuditLog
from issuance.personalisation.pins import PinKind
from issuance.registry.dates import birthday_in, japan_date
from issuance.registry.generator import ResidentGenerator
from issuance.registry.model import Nationality, Resident, ResidentStatus
from issuance.registry.store import ResidentStore
from issuance.storage import Database

OPERATOR = "test-operator"
PINS = {PinKind.AUTH: "1470", PinKind.SIGN: "TEST2026", PinKind.TEXT: "2581",
        PinKind.JUKI: "3692"}
_GEN = ResidentGenerator(as_of=date.today())


def resident(age: int = 40, *, adult_ward: bool = False, months: int = 0) -> Resident:
    """A Japanese resident aged `age` years (or `months` months when given) today."""
    from datetime import timedelta

    base = _GEN.resident()
    today = japan_date(datetime.now(UTC))
    if months:
        birth = today - timedelta(days=30 * months + 2)
    else:
        birth = birthday_in(today - timedelta(days=40), today.year - age) - timedelta(days=40)
    return dataclasses.replace(
        base, birth_date=birth, adult_ward=adult_ward, nationality=Nationality.JAPANESE,
        status=ResidentStatus.RESIDENT, status_date=None, fuhyo=None, residence_expiry=None)


def apply(db: Database, person: Resident, *, express: ExpressReason | None = None,
          certificates: bool = True, signing: bool = True,
          event_date: date | None = None) -> str:
    ResidentStore(db).put(person)
    result = take_application(db, ApplicationRequest(
        resident_code=person.resident_code, express=express, event_date=event_date,
        certificates=certificates, signing_certificate=signing), operator=OPERATOR)
    assert result.application is not None, result.refusal
    return result.application.id


def pins(kind: PinKind) -> str:
    return PINS[kind]


def actions(db: Database, subject: str | None = None) -> list[tuple[str, str]]:
    return [(e.action, e.outcome) for e in AuditLog(db).entries()
            if subject is None or e.subject == subject]


def app_state(db: Database, application_id: str) -> str:
    with db.transaction() as tx:
        row = tx.query_one("SELECT state FROM applications WHERE id = ?", (application_id,))
    assert row is not None
    return str(row["state"])


def card_certificate(reader: str, kind: str = "auth") -> x509.Certificate:
    from card.jpki import CertKind

    with PcscTransport(reader) as t:
        return JpkiClient(t).read_certificate(CertKind.AUTH if kind == "auth" else CertKind.SIGN)


def life_cycle(reader: str) -> contract.LifeCycle:
    from card.issuer import IssuerClient

    with PcscTransport(reader) as t:
        return IssuerClient(t).life_cycle()


def fresh_schema(cluster: Any) -> str:
    """A PostgreSQL URL whose search_path is a new, empty schema."""
    import uuid

    import psycopg

    schema = f"w_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(cluster.url(), autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    return str(cluster.url(schema=schema))
