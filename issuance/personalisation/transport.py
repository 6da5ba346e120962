"""A transport wrapper that reports the moment the card is locked (SET STATUS → issued).

`IssuerClient.personalise` does the whole job in one call; the workflow must know, and
tests must be able to stop the process, just before and just after the card leaves the
personalisation states. `StepTransport` passes every APDU through unchanged and calls
`on_step("card_written")` before, and `on_step("card_locked")` after, `80 F0 80 03`.
"""

from __future__ import annotations

from collections.abc import Callable

from card.apdu import Response
from card.contract import CLA_PROPRIETARY, Ins, LifeCycle
from card.transport import Transport

_LOCK = bytes((CLA_PROPRIETARY, Ins.SET_STATUS, 0x80, int(LifeCycle.ISSUED)))


class StepTransport:
    def __init__(self, inner: Transport, on_step: Callable[[str], None]) -> None:
        self._inner = inner
        self._on_step = on_step

    @property
    def atr(self) -> bytes:
        return self._inner.atr

    @property
    def connection_count(self) -> int | None:
        return getattr(self._inner, "connection_count", None)

    def transmit(self, apdu: bytes) -> Response:
        locking = bytes(apdu[:4]) == _LOCK
        if locking:
            self._on_step("card_written")
        response = self._inner.transmit(apdu)
        if locking and response.sw == 0x9000:
            self._on_step("card_locked")
        return response
