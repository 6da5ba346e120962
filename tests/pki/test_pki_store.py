"""Certificate store: migrations, read-only view, status changes, CRL numbers."""

from __future__ import annotations

import datetime as dt
import sqlite3
from pathlib import Path

import pytest
from cryptography import x509
from store_checks import check_revoke_many_is_revoke_in_order, three_certificates

from pki.errors import ReadOnlyStoreError, StoreError, UnknownCertificateError
from pki.store import CertStatus, migrations, open_readonly_store, open_store


def test_migrations_are_numbered_and_recorded(tmp_path: Path) -> None:
    found = migrations()
    assert [v for v, _, _ in found] == list(range(1, len(found) + 1))
    with open_store(tmp_path / "s.sqlite") as s:
        assert s.schema_version() == len(found)
    with open_store(tmp_path / "s.sqlite") as s:  # re-opening applies nothing twice
        assert s.migrate() == len(found)
    conn = sqlite3.connect(tmp_path / "s.sqlite")
    rows = conn.execute("SELECT version FROM schema_version").fetchall()
    assert rows == [(v,) for v, _, _ in found]
    indexes = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='index'")}
    assert "certificates_shard_not_good" in indexes
    plan = conn.execute("EXPLAIN QUERY PLAN SELECT status FROM certificates WHERE serial = 'ab'")
    assert "USING INDEX" in " ".join(str(r) for r in plan.fetchall())


def test_readonly_store_refuses_writes(tmp_path: Path, issuing, holder_key, adult) -> None:
    issued = issuing.issue_user_authentication(public_key=holder_key.public_key(),
                                               identity=adult, holder_id="R1",
                                               card_expiry=dt.date(2035, 1, 1))
    ro = open_readonly_store(issuing._store.location)
    assert ro.status(issued.serial).status is CertStatus.GOOD
    assert not hasattr(ro, "revoke")
    with pytest.raises(ReadOnlyStoreError):
        ro._execute("UPDATE certificates SET status = 'revoked'")
    with pytest.raises(ReadOnlyStoreError):
        ro._execute("INSERT INTO crl_numbers VALUES ('sign', 0, 5)")
    ro.close()


def test_readonly_store_needs_existing_migrated_db(tmp_path: Path) -> None:
    with pytest.raises(StoreError):
        open_readonly_store(tmp_path / "missing.sqlite")
    sqlite3.connect(tmp_path / "empty.sqlite").execute("CREATE TABLE x (a)")
    with pytest.raises(StoreError, match="schema"):
        open_readonly_store(tmp_path / "empty.sqlite")


def test_status_changes(issuing, holder_key, adult, store, clock) -> None:
    a = issuing.issue_signing(public_key=holder_key.public_key(), identity=adult,
                              holder_id="R1", card_expiry=dt.date(2035, 1, 1))
    info = store.status(a.serial)
    assert info.status is CertStatus.GOOD and info.status_version == 0
    assert store.hold(a.serial, cause="phone 0120", at=clock.now)
    assert not store.hold(a.serial, at=clock.now)
    info = store.status(a.serial)
    assert info.status is CertStatus.HOLD and info.reason is x509.ReasonFlags.certificate_hold
    clock.advance(hours=2)
    assert store.revoke(a.serial, reason=x509.ReasonFlags.key_compromise, cause="notice-7",
                        at=clock.now)
    assert not store.revoke(a.serial, reason=x509.ReasonFlags.superseded, at=clock.now)
    rec = store.get(a.serial)
    assert rec.status is CertStatus.REVOKED and rec.reason is x509.ReasonFlags.key_compromise
    assert rec.revoked_at == clock.now and rec.cause == "notice-7" and rec.status_version == 2
    with pytest.raises(ValueError):
        store.revoke(a.serial, reason=x509.ReasonFlags.certificate_hold, at=clock.now)
    with pytest.raises(TypeError):
        store.revoke(a.serial, reason="keyCompromise", at=clock.now)  # type: ignore[arg-type]
    with pytest.raises(UnknownCertificateError):
        store.revoke(12345678901234567890, reason=x509.ReasonFlags.unspecified, at=clock.now)
    assert store.status(12345678901234567890) is None


def test_replacement_links_and_supersedes(issuing, holder_key, adult, store) -> None:
    old = issuing.issue_signing(public_key=holder_key.public_key(), identity=adult,
                                holder_id="R1", card_expiry=dt.date(2035, 1, 1))
    new = issuing.issue_signing(public_key=holder_key.public_key(), identity=adult,
                                holder_id="R1", card_expiry=dt.date(2035, 1, 1),
                                replaces=old.serial)
    rec = store.get(old.serial)
    assert rec.successor == new.serial
    assert rec.status is CertStatus.REVOKED and rec.reason is x509.ReasonFlags.superseded
    assert store.get(new.serial).status is CertStatus.GOOD


def test_failed_issuance_leaves_nothing(issuing, holder_key, store) -> None:
    from pki.identity import Identity

    child = Identity(name="子", birth_date=dt.date(2020, 1, 1), sex=1, address="東京都")
    before = store.count()
    with pytest.raises(ValueError):
        issuing.issue_signing(public_key=holder_key.public_key(), identity=child,
                              holder_id="R5", card_expiry=dt.date(2030, 1, 1))
    assert store.count() == before


def test_crl_numbers_only_grow(store) -> None:
    assert [store.next_crl_number("sign", 3) for _ in range(3)] == [1, 2, 3]
    assert store.next_crl_number("auth", 3) == 1
    assert store.next_crl_number("sign", 3) == 4


def test_duplicate_serial_rejected(issuing, holder_key, adult, store, clock) -> None:
    a = issuing.issue_user_authentication(public_key=holder_key.public_key(), identity=adult,
                                          holder_id="R1", card_expiry=dt.date(2035, 1, 1))
    with pytest.raises(StoreError):
        store.add(a.certificate, hierarchy="auth", profile="user-authentication",
                  holder_id="R1", shard=a.shard, issued_at=clock.now)


def test_revoke_many_is_revoke_in_order(issuing, holder_key, adult, store, clock) -> None:
    a, b, c = three_certificates(issuing, holder_key, adult, clock)
    check_revoke_many_is_revoke_in_order(store, a, b, c, clock)


def test_by_holders_pages_through_long_lists(store) -> None:
    from bench._pki_support import seed_certificates

    serials = seed_certificates(store, count=1200, hierarchy="auth", batch=400)
    holders = [f"seed-{s:x}" for s in serials] + ["nobody"]
    held_by = store.by_holders(holders)
    assert len(held_by) == 1201 and held_by["nobody"] == []
    assert all([h.serial for h in held_by[f"seed-{s:x}"]] == [s] for s in serials)
