"""What CRL publishing reads and writes in the certificate store: the revoked
certificates of a shard and the CRL numbers (mixed into the store classes)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from pki.store.records import REASONS_BY_CODE, RevokedEntry, epoch, to_datetime


class CrlReads:
    """Mixed into `ReadOnlyStore`."""

    _fetchall: Any

    def revoked_in_shard(self, hierarchy: str, shard: int, *,
                         unexpired_at: dt.datetime | None = None) -> list[RevokedEntry]:
        """Revoked and held certificates of one CRL shard (not yet expired at `unexpired_at`)."""
        sql = ("SELECT serial, revoked_at, reason FROM certificates "
               "WHERE hierarchy = ? AND shard = ? AND status <> 'good'")
        params: tuple[Any, ...] = (hierarchy, shard)
        if unexpired_at is not None:
            sql += " AND not_after >= ?"
            params += (epoch(unexpired_at),)
        rows = self._fetchall(sql, params)
        # revoked_at is set whenever the status is not good (see `_change`)
        return [RevokedEntry(int(s, 16), to_datetime(t), None if r is None else REASONS_BY_CODE[r])
                for s, t, r in rows]


class CrlWrites:
    """Mixed into `CertificateStore`."""

    _execute: Any
    transaction: Any

    def next_crl_number(self, hierarchy: str, shard: int) -> int:
        """Reserve the next CRL number of a shard (persisted; only grows)."""
        with self.transaction():
            row = self._execute("SELECT number FROM crl_numbers WHERE hierarchy = ? AND shard = ?",
                                (hierarchy, shard)).fetchone()
            if row is None:
                number = 1
                self._execute("INSERT INTO crl_numbers (hierarchy, shard, number) VALUES (?, ?, ?)",
                              (hierarchy, shard, number))
            else:
                number = int(row[0]) + 1
                self._execute("UPDATE crl_numbers SET number = ? WHERE hierarchy = ? AND shard = ?",
                              (number, hierarchy, shard))
            return number
