"""Revocation pushes to subscribed relying parties (webhooks).

`WebhookDispatcher.run_once()`:
1. enqueue: for every subscription whose certificate changed since it was last
   enqueued (revoked or held with a newer ``status_version``, or a new successor linked,
   the 証明書新旧紐付け of jpki-rules 5.7), write one event to the outbox
   (`rp_deliveries`) and move the subscription's checkpoint (``notified_version``,
   ``notified_successor``) in the same transaction: the checkpoint is durable and an
   event is queued exactly once;
2. deliver: POST every due event to its party's webhook URL, signed with HMAC-SHA256;
   2xx marks it delivered; anything else schedules a retry with exponential backoff
   (``base * 2**(attempt-1)``, capped) until `max_attempts`, then it is marked failed.

Delivery is at least once (a crash between a successful POST and recording it sends the
event again), so every payload carries ``event_id``, the idempotency key a receiver
deduplicates on.

Signature: ``X-Mynacard-Timestamp: <unix seconds>`` and ``X-Mynacard-Signature:
sha256=<hex HMAC-SHA256(secret, "<timestamp>." + body)>``. A receiver recomputes it
(`verify_signature`) and refuses timestamps older than a few minutes (replays).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import hmac
import json
import logging
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from pki.relying_parties.db import RpDatabase
from pki.store.records import REASONS_BY_CODE

log = logging.getLogger(__name__)

SIGNATURE_HEADER = "X-Mynacard-Signature"
TIMESTAMP_HEADER = "X-Mynacard-Timestamp"
EVENT_HEADER = "X-Mynacard-Event-Id"
DEFAULT_TOLERANCE = 300


def sign_payload(secret: str, body: bytes, timestamp: int) -> str:
    mac = hmac.new(secret.encode("utf-8"), str(timestamp).encode() + b"." + body,
                   hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def verify_signature(secret: str, body: bytes, headers: Mapping[str, str], *,
                     now: float | None = None, tolerance: int = DEFAULT_TOLERANCE) -> bool:
    """What a receiver does: check the HMAC and that the timestamp is recent."""
    lower = {k.lower(): v for k, v in headers.items()}
    try:
        ts = int(lower[TIMESTAMP_HEADER.lower()])
        given = lower[SIGNATURE_HEADER.lower()]
    except (KeyError, ValueError):
        return False
    if abs((time.time() if now is None else now) - ts) > tolerance:
        return False
    # bytes: a header may carry any character, which compare_digest refuses in a str
    return hmac.compare_digest(sign_payload(secret, body, ts).encode(),
                               given.encode("utf-8", "surrogatepass"))


@dataclasses.dataclass
class PushReport:
    enqueued: int = 0
    delivered: int = 0
    retried: int = 0
    failed: int = 0

    def to_json(self) -> dict[str, int]:
        return dataclasses.asdict(self)


def _iso(epoch: int | None) -> str | None:
    return None if epoch is None else dt.datetime.fromtimestamp(epoch, dt.UTC).isoformat()


def _post(url: str, body: bytes, headers: dict[str, str], timeout: float) -> int:
    req = urllib.request.Request(url, data=body, method="POST", headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:  # noqa: S310
            return int(resp.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)


class WebhookDispatcher:
    def __init__(self, location: str | Path, *, max_attempts: int = 8,
                 backoff: float = 1.0, max_backoff: float = 3600.0, timeout: float = 10.0,
                 clock: Callable[[], float] = time.time,
                 post: Callable[[str, bytes, dict[str, str], float], int] = _post) -> None:
        if max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        if backoff <= 0:
            raise ValueError("backoff must be positive")
        self.db = RpDatabase(location)
        self.max_attempts, self.backoff, self.max_backoff = max_attempts, backoff, max_backoff
        self.timeout, self.clock, self._post = timeout, clock, post

    def close(self) -> None:
        self.db.close()

    def __enter__(self) -> WebhookDispatcher:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- 1. the outbox ----------------------------------------------------------------
    def enqueue(self) -> int:
        now = self.clock()
        queued = 0
        with self.db.transaction():
            rows = self.db.query(
                "SELECT s.rp_name, s.serial, c.status, c.reason, c.revoked_at, c.cause,"
                " c.successor, c.status_version, c.hierarchy, s.notified_version,"
                " s.notified_successor"
                " FROM rp_subscriptions s JOIN certificates c ON c.serial = s.serial"
                " JOIN relying_parties p ON p.name = s.rp_name"
                " WHERE p.webhook_url IS NOT NULL AND ("
                " (c.status <> 'good' AND c.status_version > s.notified_version)"
                " OR (c.successor IS NOT NULL AND (s.notified_successor IS NULL"
                "     OR s.notified_successor <> c.successor)))")
            for (rp, serial, status, reason, revoked_at, cause, successor, version, hierarchy,
                 _nv, _ns) in rows:
                key = f"{rp}\0{serial}\0{version}\0{successor or ''}"
                event_id = hashlib.sha256(key.encode()).hexdigest()[:32]
                payload = {
                    "event_id": event_id,
                    "serial": serial,
                    "hierarchy": hierarchy,
                    "status": status,
                    "reason": None if reason is None else REASONS_BY_CODE[reason].value,
                    "revoked_at": _iso(revoked_at),
                    "cause": cause,
                    "successor_serial": successor,
                    "relying_party": rp,
                }
                if not self.db.query_one("SELECT 1 FROM rp_deliveries WHERE event_id = ?",
                                         (event_id,)):
                    self.db.execute(
                        "INSERT INTO rp_deliveries (event_id, rp_name, serial, payload, state,"
                        " attempts, next_attempt_at, created_at) VALUES (?, ?, ?, ?,"
                        " 'pending', 0, ?, ?)",
                        (event_id, rp, serial, json.dumps(payload, ensure_ascii=False,
                                                          sort_keys=True), now, int(now)))
                    queued += 1
                self.db.execute(
                    "UPDATE rp_subscriptions SET notified_version = ?, notified_successor = ?"
                    " WHERE rp_name = ? AND serial = ?",
                    (max(version, _nv), successor, rp, serial))
        return queued

    # -- 2. delivery ------------------------------------------------------------------
    def deliver(self, report: PushReport) -> None:
        now = self.clock()
        due = self.db.query(
            "SELECT d.event_id, d.payload, d.attempts, p.webhook_url, p.webhook_secret"
            " FROM rp_deliveries d JOIN relying_parties p ON p.name = d.rp_name"
            " WHERE d.state = 'pending' AND d.next_attempt_at <= ?"
            " ORDER BY d.next_attempt_at, d.created_at", (now,))
        for event_id, payload, attempts, url, secret in due:
            body = payload.encode("utf-8")
            ts = int(self.clock())
            headers = {"Content-Type": "application/json", EVENT_HEADER: event_id,
                       TIMESTAMP_HEADER: str(ts),
                       SIGNATURE_HEADER: sign_payload(secret or "", body, ts),
                       "User-Agent": "mynacard-webhooks/1"}
            try:
                code = self._post(url, body, headers, self.timeout)
                error = None if 200 <= code < 300 else f"HTTP {code}"
            except (OSError, ValueError) as exc:
                error = f"{type(exc).__name__}: {exc}"[:300]
            attempts += 1
            with self.db.transaction():
                if error is None:
                    self.db.execute("UPDATE rp_deliveries SET state = 'delivered', attempts = ?,"
                                    " delivered_at = ?, last_error = NULL WHERE event_id = ?",
                                    (attempts, int(self.clock()), event_id))
                    report.delivered += 1
                elif attempts >= self.max_attempts:
                    self.db.execute("UPDATE rp_deliveries SET state = 'failed', attempts = ?,"
                                    " last_error = ? WHERE event_id = ?",
                                    (attempts, error, event_id))
                    report.failed += 1
                    log.warning("webhook %s failed for good after %d attempts: %s",
                                event_id, attempts, error)
                else:
                    delay = min(self.backoff * 2 ** (attempts - 1), self.max_backoff)
                    self.db.execute("UPDATE rp_deliveries SET attempts = ?, last_error = ?,"
                                    " next_attempt_at = ? WHERE event_id = ?",
                                    (attempts, error, self.clock() + delay, event_id))
                    report.retried += 1

    def next_due_in(self) -> float | None:
        row = self.db.query_one("SELECT MIN(next_attempt_at) FROM rp_deliveries"
                                " WHERE state = 'pending'")
        if row is None or row[0] is None:
            return None
        return max(0.0, float(row[0]) - self.clock())

    def run_once(self) -> PushReport:
        report = PushReport()
        report.enqueued = self.enqueue()
        self.deliver(report)
        return report

    def deliveries(self, rp_name: str | None = None) -> list[dict[str, Any]]:
        sql = ("SELECT event_id, rp_name, serial, state, attempts, last_error, payload"
               " FROM rp_deliveries")
        params: tuple[Any, ...] = ()
        if rp_name is not None:
            sql += " WHERE rp_name = ?"
            params = (rp_name,)
        return [{"event_id": r[0], "rp": r[1], "serial": r[2], "state": r[3],
                 "attempts": r[4], "last_error": r[5], "payload": json.loads(r[6])}
                for r in self.db.query(sql + " ORDER BY created_at, event_id", params)]
