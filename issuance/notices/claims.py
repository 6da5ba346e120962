"""Which processor applies which residents' notices: resident buckets and their locks.

Every notice of a resident falls in one of `BUCKETS` buckets (the 9th and 10th digits of
the resident code, stored in `notices.bucket` by the intake). On PostgreSQL a processor
applies a bucket's due notices only while it holds the bucket's session-level advisory
lock (`pg_try_advisory_lock(NAMESPACE, bucket)`): two processors never apply notices of
one resident at the same time, so one resident's notices are applied in order by one
processor at a time. The lock is the lease: it needs no expiry, as PostgreSQL releases it
when the holder's connection ends — a processor killed with SIGKILL, or whose machine
stopped (after TCP keepalive gives up), leaves its bucket free and its unapplied notices
`accepted`, and the next processor to take the bucket applies them again (idempotently).
On SQLite a write already takes the whole database, so there is one processor at a time
and no bucket locks (`claims_for` returns None).
"""

from __future__ import annotations

import random

from issuance.storage import Database, StorageError

BUCKETS = 100
NAMESPACE = 0x6E6F  # first key of the two-key advisory locks ("no"tices)


def bucket_of(resident_code: str) -> int:
    """The bucket of a resident: the 9th and 10th digits of the 11-digit resident code
    (the 11th is a check digit), spread evenly by the way codes are assigned."""
    return int(resident_code[8:10]) % BUCKETS


# the same in SQL, for rows stored before version 5 (every stored code is 11 digits)
BUCKET_SQL = "CAST(substr(resident_code, 9, 2) AS INTEGER)"


class BucketClaims:
    """Session advisory locks on resident buckets, on the processor's own connection
    (the one its issuance transactions use)."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def order(self, today: str) -> list[int]:
        """The buckets with due notices (read from the partial index of waiting ones),
        each once, starting at a random one, so processors spread out."""
        with self.db.transaction() as tx:
            due = {int(r["bucket"]) for r in tx.query(
                "SELECT DISTINCT bucket FROM notices WHERE state = 'accepted'"
                " AND effective_date <= ? AND bucket IS NOT NULL", (today,))}
        start = random.randrange(BUCKETS)  # noqa: S311 - spreading work, not a secret
        return [b for b in ((start + i) % BUCKETS for i in range(BUCKETS)) if b in due]

    def try_take(self, bucket: int) -> bool:
        with self.db.transaction() as tx:
            row = tx.query_one("SELECT pg_try_advisory_lock(?, ?) AS got",
                               (NAMESPACE, bucket))
        return bool(row and row["got"])

    def release(self, bucket: int) -> None:
        try:
            with self.db.transaction() as tx:
                tx.query_one("SELECT pg_advisory_unlock(?, ?) AS freed", (NAMESPACE, bucket))
        except StorageError:
            pass  # the connection is gone, and the lock with it


def claims_for(db: Database) -> BucketClaims | None:
    """Bucket locks on PostgreSQL; None on SQLite (one writer: the single-process path)."""
    return BucketClaims(db) if db.dialect == "postgresql" else None
