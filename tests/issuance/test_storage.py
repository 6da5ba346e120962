"""The database layer on both SQLite and PostgreSQL."""

from __future__ import annotations

import pytest

from issuance.errors import IssuanceError
from issuance.storage import Database, IntegrityViolation, StorageError, open_database
from issuance.storage.migrations import LATEST_VERSION, migrate


def _resident_row(code: str, my_number: str) -> tuple[object, ...]:
    return (code, my_number, "山田 太郎", "東京都千代田区", "1980-01-01", 1, "japanese",
            "resident", 0, "131016", "2026-01-01T00:00:00+00:00")


INSERT = ("INSERT INTO residents (resident_code, my_number, name, address, birth_date, sex,"
          " nationality, status, adult_ward, municipality_code, updated_at)"
          " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)")


def test_migrations_record_their_version_and_are_idempotent(db: Database) -> None:
    assert db.schema_version() == LATEST_VERSION
    assert migrate(db) == LATEST_VERSION
    with db.transaction() as tx:
        rows = tx.query("SELECT version FROM schema_version")
    assert [r["version"] for r in rows] == list(range(1, LATEST_VERSION + 1))


def test_reopening_keeps_data(db_url: str) -> None:
    with open_database(db_url) as first, first.transaction() as tx:
        tx.execute(INSERT, _resident_row("12345678901", "123456789018"))
    with open_database(db_url) as second, second.transaction() as tx:
        assert tx.query_one("SELECT name FROM residents")["name"] == "山田 太郎"  # type: ignore[index]


def test_transaction_rolls_back_on_error(db: Database) -> None:
    with pytest.raises(RuntimeError), db.transaction() as tx:
        tx.execute(INSERT, _resident_row("12345678901", "123456789018"))
        raise RuntimeError("boom")
    with db.transaction() as tx:
        assert tx.query("SELECT * FROM residents") == []


def test_unique_and_foreign_keys_are_enforced(db: Database) -> None:
    with db.transaction() as tx:
        tx.execute(INSERT, _resident_row("12345678901", "123456789018"))
    with pytest.raises(IntegrityViolation), db.transaction() as tx:
        tx.execute(INSERT, _resident_row("12345678902", "123456789018"))
    with pytest.raises(IntegrityViolation), db.transaction() as tx:
        tx.execute("INSERT INTO fuhyo_entries (resident_code, municipality_code) VALUES (?, ?)",
                   ("99999999999", "131016"))
    assert issubclass(IntegrityViolation, IssuanceError)


def test_only_one_application_in_progress_per_resident(db: Database) -> None:
    sql = ("INSERT INTO applications (id, resident_code, applied_on, created_at, updated_at,"
           " state, photo_less, signing_certificate, user_certificate, validity_years,"
           " card_expiry, operator)"
           " VALUES (?, ?, '2026-01-01', 'x', 'x', ?, 0, 1, 1, 10, '2036-01-01', 'op')")
    with db.transaction() as tx:
        tx.execute(INSERT, _resident_row("12345678901", "123456789018"))
        tx.execute(sql, ("a1", "12345678901", "activated"))
        tx.execute(sql, ("a2", "12345678901", "applied"))
    with pytest.raises(IntegrityViolation), db.transaction() as tx:
        tx.execute(sql, ("a3", "12345678901", "registered"))


def test_audit_log_refuses_update_and_delete(db: Database) -> None:
    with db.transaction() as tx:
        tx.execute("INSERT INTO audit_log (seq, at, operator, action, subject, outcome,"
                   " detail, prev_hash, hash)"
                   " VALUES (1, 't', 'op', 'a', 's', 'ok', '{}', 'p', 'h')")
    for sql in ("UPDATE audit_log SET outcome = 'x'", "DELETE FROM audit_log"):
        with pytest.raises(StorageError), db.transaction() as tx:
            tx.execute(sql)


def test_bad_urls_are_refused(tmp_path) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(StorageError):
        open_database("mysql://nowhere/db")
    with pytest.raises(StorageError):
        open_database("sqlite:///")
    with pytest.raises(StorageError):
        open_database("postgresql://nobody@/nodb?host=/nonexistent-dir&connect_timeout=2")
    with open_database(str(tmp_path / "plain.db")) as plain:
        assert plain.dialect == "sqlite"
