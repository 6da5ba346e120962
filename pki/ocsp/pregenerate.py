"""Pre-generating OCSP responses (RFC 5019 style, as large public CAs do): every
certificate's response is signed ahead of time and stored in the certificate store
(`pki.store.responses`), so answering a request costs a lookup, not a signature.

`Pregenerator.run_once` signs what is due: certificates without a response (newly
issued), whose status changed since their response was signed (revoke, hold, or any
later change: the store's ``status_version``), or whose response ends before the refresh
horizon. Until it has run, the responder signs those on demand, so correctness never
waits for it: a stale response is never served (see `pki.store.responses`).
`ocsp pregenerate` runs it once; `ocsp serve --pregenerated` runs it in a loop.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import threading
from typing import Any

from pki.ca import CAConfig
from pki.errors import OcspError
from pki.keys import Clock, KeySource, utc_now
from pki.ocsp.responder import ResponderIdentity, issuer_hashes, sign_response
from pki.store import REASONS_BY_CODE, CertificateStore
from pki.store.records import from_epoch
from pki.store.responses import NewResponse

log = logging.getLogger(__name__)

DEFAULT_VALIDITY = dt.timedelta(days=1)


@dataclasses.dataclass(frozen=True)
class PregenerateReport:
    signed: int
    by_status: dict[str, int]
    seconds: float


class Pregenerator:
    """Signs due responses of every hierarchy into the store, in batches (one
    transaction per batch)."""

    def __init__(self, *, store: CertificateStore, identities: list[ResponderIdentity],
                 validity: dt.timedelta = DEFAULT_VALIDITY,
                 refresh_before: dt.timedelta | None = None, clock: Clock = utc_now,
                 batch: int = 500) -> None:
        if validity <= dt.timedelta(minutes=1):
            raise ValueError("validity must be more than a minute")
        self.refresh_before = validity / 2 if refresh_before is None else refresh_before
        if not dt.timedelta(0) <= self.refresh_before < validity:
            raise OcspError("--refresh-before must be shorter than the validity")
        self._store, self._validity, self._clock, self._batch = store, validity, clock, batch
        self._identities = identities
        self._lock = threading.Lock()

    @classmethod
    def from_ca(cls, *, key_source: KeySource, ca: CAConfig, store: CertificateStore,
                **options: Any) -> Pregenerator:
        identities = [
            ResponderIdentity(h.value, hc.root_cert, hc.ocsp_cert, key_source.signer(hc.ocsp_key))
            for h, hc in ca.hierarchies.items()
        ]
        return cls(store=store, identities=identities, **options)

    def run_once(self) -> PregenerateReport:
        """Sign everything due now; returns how many responses were signed."""
        with self._lock:
            started = self._clock()
            # the refresh horizon is fixed for the run: a response signed in it ends after
            # started + validity, beyond the horizon, so it is never due again in the same
            # run however long the run takes (a horizon moving with the clock re-signed
            # the first batches without end once a run outlasted validity - refresh_before)
            horizon = started + self.refresh_before
            by_status: dict[str, int] = {}
            for ident in self._identities:
                name_hash, key_hash = issuer_hashes(ident.issuer, "sha1")
                while True:
                    now = self._clock()
                    due = self._store.due_responses(
                        key_hash, ident.name, now=now, refresh_before=horizon,
                        limit=self._batch)
                    if not due:
                        break
                    out = []
                    for c in due:
                        # seconds: what the store keeps, so the stored bounds match the DER
                        this_update = now.replace(microsecond=0)
                        next_update = this_update + self._validity
                        der = sign_response(
                            ident, alg="sha1", name_hash=name_hash, key_hash=key_hash,
                            serial=c.serial, status=c.status, revoked_at=from_epoch(c.revoked_at),
                            reason=None if c.reason is None else REASONS_BY_CODE[c.reason],
                            this_update=this_update, next_update=next_update)
                        status = "good" if c.status == "good" else "revoked"
                        out.append(NewResponse(key_hash, c.serial, status, c.status_version,
                                               this_update, next_update, der))
                        by_status[c.status] = by_status.get(c.status, 0) + 1
                    self._store.put_responses(out)
                    if len(due) < self._batch:
                        break
            # responses that have ended are never served (of expired certificates, or left
            # while no refresher ran): forgotten, so the table holds live responses only
            self._store.drop_expired_responses(started)
            seconds = (self._clock() - started).total_seconds()
            return PregenerateReport(sum(by_status.values()), by_status, seconds)
