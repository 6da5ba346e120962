"""Builders for the notice tests: residents, notices, and real certificates in the store."""

from __future__ import annotations

import datetime as dt
import itertools
import json
import os
from dataclasses import replace
from functools import cache
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from issuance.registry.checkdigits import complete_my_number, complete_resident_code
from issuance.registry.model import FuhyoEntry, Nationality, Resident, ResidentStatus, Sex
from pki.profiles import Profile
from pki.store import CertificateStore

NOW = dt.datetime(2026, 11, 22, 3, 0, tzinfo=dt.UTC)  # noon in Japan
ISSUED = dt.datetime(2025, 4, 1, 1, 0, tzinfo=dt.UTC)

_counter = itertools.count(os.getpid() % 1000 * 100_000 + 1)
_notice_ids = itertools.count(1)


def clock(moment: dt.datetime = NOW) -> Any:
    return lambda: moment


def resident(**changes: Any) -> Resident:
    n = next(_counter)
    base = Resident(
        resident_code=complete_resident_code(f"{n:010d}"),
        my_number=complete_my_number(f"{n + 60_000_000_000:011d}"),
        name="山田 花子",
        address="東京都千代田区千代田1丁目1番1号",
        birth_date=dt.date(1985, 7, 1),
        sex=Sex.FEMALE,
        nationality=Nationality.JAPANESE,
        status=ResidentStatus.RESIDENT,
        municipality_code="131016",
    )
    return replace(base, **changes)


def emigrant(**changes: Any) -> Resident:
    return resident(status=ResidentStatus.EMIGRATED, status_date=dt.date(2025, 1, 10),
                    fuhyo=FuhyoEntry("131016", "アメリカ合衆国 カリフォルニア州", True),
                    **changes)


FACTS_FOR = {
    "name_change": {"name": "佐藤 花子"},
    "address_change": {"address": "大阪府大阪市北区梅田1丁目1番1号"},
    "birth_date_change": {"birth_date": "1985-07-02"},
    "sex_change": {"sex": 1},
    "correction": {"name": "山田 華子"},
}


def notice(kind: str, resident_code: str, *, source: str = "juki",
           effective_date: str = "2026-06-01", nid: str | None = None,
           **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": nid or f"N-{next(_notice_ids):08d}",
        "source": source,
        "kind": kind,
        "resident_code": resident_code,
        "effective_date": effective_date,
    }
    if kind in FACTS_FOR and "facts" not in extra:
        body["facts"] = FACTS_FOR[kind]
    body.update(extra)
    return body


def line(obj: dict[str, Any]) -> str:
    return json.dumps(obj, ensure_ascii=False)


@cache
def _ca_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@cache
def _holder_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def issue(store: CertificateStore, holder: str, profile: Profile, *,
          issued_at: dt.datetime = ISSUED) -> int:
    """A real certificate (throwaway software CA) recorded in the store; its serial."""
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"test {profile.value} CA")])
    serial = x509.random_serial_number()
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "holder")]))
        .issuer_name(name)
        .public_key(_holder_key().public_key())
        .serial_number(serial)
        .not_valid_before(issued_at)
        .not_valid_after(issued_at + dt.timedelta(days=5 * 365))
        .add_extension(x509.CertificatePolicies(
            [x509.PolicyInformation(profile.policy_oid, None)]), critical=False)
        .sign(_ca_key(), hashes.SHA256())
    )
    store.add(cert, hierarchy=profile.hierarchy.value, profile=profile.value,
              holder_id=holder, shard=serial % 16, issued_at=issued_at)
    return serial


def issue_pair(store: CertificateStore, holder: str, *,
               issued_at: dt.datetime = ISSUED) -> tuple[int, int]:
    """(signing serial, user-authentication serial)."""
    return (issue(store, holder, Profile.SIGNING, issued_at=issued_at),
            issue(store, holder, Profile.USER_AUTHENTICATION, issued_at=issued_at))
