"""Pre-generated OCSP responses served from memory, a revocation still seen by the very
next request (`ocsp serve --pregenerated`).

Each responder process keeps the responses it has served, keyed by the request's DER
(a nonce-less request: the same bytes always ask the same question), and answers a
repeated request without parsing it or touching the database. Before answering it
checks whether a status may have changed, with a check that began after the request
arrived:

* SQLite: ``PRAGMA data_version`` (a read of the shared WAL index, no I/O) changes when
  any other connection commits; only then is the one-row ``status_changes`` counter read;
* PostgreSQL: the counter is read (one primary-key read, still cheaper than the lookup's
  join; a NOTIFY would arrive after the revoker's commit returns, so it cannot promise
  the very next request) - once per request by `held`, or once for a batch of requests
  that all arrived before the read began (`check`, then `peek` for each: the lean server
  answers everything that arrived in one event-loop iteration after one read).

The counter grows in the transaction of every status change (revoke, hold, revoke_many;
`pki.store.responses.BUMP_STATUS_CHANGES`); when it moved, everything held is forgotten
and the next requests go to the store again (one indexed read each), which never serves a
response signed for an older status. A held entry is also re-read from the store after
`REFRESH` seconds (to pick up what the pre-generator re-signed) and never served past its
nextUpdate. Only responses the store served as pre-generated are held: an on-demand
signature, an error, a nonce or a question outside the caller's hierarchies always goes
to `OcspResponder.respond`. A store without the counter (not migrated) is served the SQL
way. One instance per process, used from one thread (the lean server's event loop).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Collection

from pki.keys import utc_now
from pki.ocsp.responder import OcspResponder, OcspResult

log = logging.getLogger(__name__)

REFRESH = 30.0  # seconds an entry is served before the store is asked again
MAX_ENTRIES = 1_000_000
# the DER of id-pkix-ocsp-nonce (1.3.6.1.5.5.7.48.1.2): a request carrying it is not held
_NONCE_OID = bytes.fromhex("06092b0601050507300102")


class Entry:
    """A held response, with the HTTP response the lean server last rendered for it."""

    __slots__ = ("result", "serve_until", "etag", "second", "http")

    def __init__(self, result: OcspResult, serve_until: float) -> None:
        self.result = result
        self.serve_until = serve_until
        self.etag: bytes | None = None  # filled by the server on first use
        self.second = -1  # the second `http` was rendered in (max-age counts down)
        self.http = b""


class MemoryResponses:
    """The responder with a memory in front (see the module docstring)."""

    def __init__(self, responder: OcspResponder, *, refresh: float = REFRESH,
                 max_entries: int = MAX_ENTRIES,
                 clock: Callable[[], float] | None = None) -> None:
        self.responder = responder
        self._store = responder.store
        self._refresh, self._max = refresh, max_entries
        # the responder's clock, so nothing is served past the nextUpdate it would judge
        if clock is None:
            clock = time.time if responder.clock is utc_now else \
                (lambda: responder.clock().timestamp())
        self._clock = clock
        self._entries: dict[bytes, Entry] = {}
        self._data_version: int | None = None
        self._changes: int | None = None
        self.enabled = True
        self._checked = False  # the last `check` succeeded (what `peek` relies on)
        self.checks = 0  # change checks made (one per request, or one per batch)
        try:
            # data_version first: a commit between the two reads is then seen next time
            self._data_version = self._store.data_version()
            self._changes = self._store.status_changes()
        except Exception as exc:  # noqa: BLE001 - an older store: the SQL path only
            log.warning("OCSP responses not held in memory (store without status_changes:"
                        " %s)", type(exc).__name__)
            self.enabled = False

    def __len__(self) -> int:
        return len(self._entries)

    def _current(self) -> bool:
        """Forget everything if a status changed since the last check; False when the
        check itself failed (then nothing is served from memory)."""
        store = self._store
        try:
            version = store.data_version()
            if version is not None and version == self._data_version:
                return True
            changes = store.status_changes()
        except Exception:  # noqa: BLE001 - the SQL path reports the failure its own way
            self._entries.clear()
            self._data_version = self._changes = None
            return False
        if changes != self._changes:
            self._entries.clear()
            self._changes = changes
        self._data_version = version
        return True

    def check(self) -> bool:
        """One change check (SQLite: ``data_version``, and the counter only when it moved;
        PostgreSQL: the counter). Requests that had arrived when it began may then be
        answered by `peek` - the lean server makes one check for all the requests of a
        loop iteration. False when memory is off or the check failed (then `peek` holds
        nothing until the next check succeeds)."""
        self.checks += 1
        self._checked = self.enabled and self._current()
        return self._checked

    def held(self, key: bytes, hierarchies: Collection[str] | None = None) -> Entry | None:
        """The entry held for `key` (a request's DER, or a GET target as the lean server
        keys it), when it may be served now, else None (then ask `missed`): a check of
        its own, then `peek`."""
        return self.peek(key, hierarchies) if self.check() else None

    def peek(self, key: bytes, hierarchies: Collection[str] | None = None) -> Entry | None:
        """As `held`, relying on the last `check`: the caller made that check after the
        request arrived (never a check older than the request, or a revocation committed
        in between would be missed)."""
        if not self._checked:
            return None
        entry = self._entries.get(key)
        if entry is not None and self._clock() < entry.serve_until and (
                hierarchies is None or entry.result.hierarchy in hierarchies):
            return entry
        return None

    def lookup(self, der: bytes, hierarchies: Collection[str] | None = None, *,
               key: bytes | None = None) -> tuple[OcspResult, Entry | None]:
        """The answer to one DER request and, when it is held in memory (under `key`, by
        default the DER), its entry."""
        key = der if key is None else key
        entry = self.held(key, hierarchies)
        if entry is not None:
            return entry.result, entry
        return self.missed(key, der, hierarchies)

    def missed(self, key: bytes, der: bytes, hierarchies: Collection[str] | None = None
               ) -> tuple[OcspResult, Entry | None]:
        """After `held` said None: ask the responder, and hold a pre-generated answer."""
        result = self.responder.respond(der, hierarchies=hierarchies)
        if not self.enabled or self._changes is None or not result.pregenerated \
                or result.next_update is None or _NONCE_OID in der:
            return result, None  # (an entry held for key stays: `held` judges it)
        if len(self._entries) >= self._max:
            self._entries.clear()
        entry = Entry(result, min(self._clock() + self._refresh, result.next_update.timestamp()))
        self._entries[key] = entry
        return result, entry

    def respond(self, der: bytes, *, hierarchies: Collection[str] | None = None) -> OcspResult:
        """As `OcspResponder.respond`, from memory when it can."""
        return self.lookup(der, hierarchies)[0]
