"""Notices bound to their sender: the migration (notices v4) that gives notices stored
before senders existed the sender `local` (the file intake's)."""

from __future__ import annotations

from notices_support import clock, line, notice, resident

from issuance.notices.intake import NoticeIntake
from issuance.notices.migrations import MIGRATIONS, migrate_notices
from issuance.notices.model import parse_notice
from issuance.notices.queries import effects_of, notice_state
from issuance.notices.senders import authenticate, list_senders
from issuance.registry.store import ResidentStore
from issuance.storage import Database
from issuance.storage.migrations import apply_migrations


def test_notices_from_before_senders_belong_to_local(db: Database) -> None:
    """A v3 database with notices, an effect, a fact date and a sender is migrated: every
    row gets the sender `local`, the sender may send both sources, nothing is lost."""
    apply_migrations(db, "notices_schema_version", MIGRATIONS[:3])
    person = resident()
    ResidentStore(db).put(person)
    payload = parse_notice(line(notice("death", person.resident_code, nid="OLD-1"))).canonical()
    with db.transaction() as tx:
        tx.execute("INSERT INTO notices (source, id, kind, resident_code, effective_date,"
                   " received_at, payload, state, applied_at) VALUES ('juki', 'OLD-1', 'death',"
                   " ?, '2026-06-01', '2026-06-02T00:00:00+00:00', ?, 'applied',"
                   " '2026-06-02T00:00:01+00:00')", (person.resident_code, payload))
        tx.execute("INSERT INTO notice_effects (source, notice_id, target, action, serial,"
                   " reason, outcome, at) VALUES ('juki', 'OLD-1', 'certificate:1a',"
                   " 'revoke_sign', '1a', 'cessation_of_operation', 'revoked',"
                   " '2026-06-02T00:00:01+00:00')")
        tx.execute("INSERT INTO notice_facts (resident_code, fact, effective_date, source,"
                   " notice_id) VALUES (?, 'status', '2026-06-01', 'juki', 'OLD-1')",
                   (person.resident_code,))
        tx.execute("INSERT INTO notice_senders (name, token_hash, created_at) VALUES"
                   " ('old-gw', 'x', '2026-01-01T00:00:00+00:00')")
    assert migrate_notices(db) == 5  # v4 (senders), then v5 (buckets)
    assert notice_state(db, "juki", "OLD-1") == "applied"
    assert [e["action"] for e in effects_of(db, "juki", "OLD-1")] == ["revoke_sign"]
    with db.transaction() as tx:
        fact = tx.query_one("SELECT sender FROM notice_facts WHERE notice_id = 'OLD-1'")
    assert fact == {"sender": "local"}
    assert list_senders(db)[0]["sources"] == ["fuhyo", "juki"]
    assert authenticate(db, "mnn_unknown") is None
    # the old id is local's: an HTTP sender's notice with it is another notice
    intake = NoticeIntake(db, clock=clock(), sender="old-gw", sources=["juki"])
    assert intake.accept(payload).outcome == "accepted"
    assert NoticeIntake(db, clock=clock()).accept(payload).outcome == "duplicate"
