"""The narrow seam between the CA and its keys.

`hsm.KeyManager` satisfies `KeySource`: CA keys live in the HSM, never in software.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any, Protocol, runtime_checkable

Clock = Callable[[], dt.datetime]


def utc_now() -> dt.datetime:
    """The default clock: timezone-aware UTC, whole seconds."""
    return dt.datetime.now(dt.UTC).replace(microsecond=0)


@runtime_checkable
class KeySource(Protocol):
    """Where CA keys live: create them, and hand out signers and public keys by label."""

    def create_key(self, label: str, **kwargs: Any) -> Any: ...

    def public_key(self, label: str) -> Any: ...

    def signer(self, label: str) -> Any: ...
