"""PC/SC transport: the only module that imports pyscard.

`PcscTransport` is a context manager around one card connection. It sends APDUs as
bytes and follows 61xx (GET RESPONSE) and 6Cxx (resend with the right Le) itself, so
clients see whole responses.
"""

from __future__ import annotations

from types import TracebackType
from typing import Protocol

from card.apdu import Response
from card.errors import NoCard, ReaderNotFound, TransportError


class Transport(Protocol):
    """What clients need from a connection to a card."""

    def transmit(self, apdu: bytes) -> Response: ...

    @property
    def atr(self) -> bytes: ...


def list_readers() -> list[str]:
    """Names of the readers PC/SC knows (empty when pcscd has none or is not running)."""
    from smartcard.Exceptions import SmartcardException
    from smartcard.pcsc.PCSCExceptions import BaseSCardException
    from smartcard.System import readers

    try:
        return [str(r) for r in readers()]
    except (SmartcardException, BaseSCardException):
        return []


def reader_has_card(name: str) -> bool:
    """Whether `name` reports a card present, without connecting exclusively."""
    from smartcard.scard import (
        SCARD_S_SUCCESS,
        SCARD_SCOPE_USER,
        SCARD_STATE_PRESENT,
        SCARD_STATE_UNAWARE,
        SCardEstablishContext,
        SCardGetStatusChange,
        SCardReleaseContext,
    )

    hresult, ctx = SCardEstablishContext(SCARD_SCOPE_USER)
    if hresult != SCARD_S_SUCCESS:
        return False
    try:
        hresult, states = SCardGetStatusChange(ctx, 0, [(name, SCARD_STATE_UNAWARE)])
        if hresult != SCARD_S_SUCCESS:
            return False
        return any(state & SCARD_STATE_PRESENT for _, state, _ in states)
    finally:
        SCardReleaseContext(ctx)


class PcscTransport:
    """One connection to the card in `reader` (T=1 preferred, T=0 accepted)."""

    def __init__(self, reader: str) -> None:
        self.reader = reader
        self._connection = None  # type: ignore[var-annotated]
        # Counts connects: each one powers the card up afresh, so clients that track
        # the selected application know to forget it.
        self.connection_count = 0

    def __enter__(self) -> PcscTransport:
        self.connect()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def connect(self) -> None:
        from smartcard.Exceptions import CardConnectionException, NoCardException
        from smartcard.System import readers

        try:
            matches = [r for r in readers() if str(r) == self.reader]
        except Exception as exc:  # pyscard raises several unrelated types here
            raise TransportError(f"PC/SC is not available: {exc}") from None
        if not matches:
            raise ReaderNotFound(f"no reader named {self.reader!r}")
        connection = matches[0].createConnection()
        try:
            connection.connect()
        except NoCardException:
            raise NoCard(f"no card in {self.reader!r}") from None
        except CardConnectionException as exc:
            raise TransportError(f"cannot connect to {self.reader!r}: {exc}") from None
        self._connection = connection
        self.connection_count += 1

    def close(self) -> None:
        if self._connection is not None:
            try:
                self._connection.disconnect()
            except Exception:  # closing a dead connection is not an error worth raising
                pass
            self._connection = None

    @property
    def atr(self) -> bytes:
        if self._connection is None:
            raise TransportError("not connected")
        return bytes(self._connection.getATR())

    def transmit(self, apdu: bytes) -> Response:
        if not isinstance(apdu, (bytes, bytearray)):
            raise TypeError("an APDU is bytes")
        response = self._send(bytes(apdu))
        data = response.data
        sw = response.sw
        if sw >> 8 == 0x6C:  # wrong Le: resend with the one the card asked for
            response = self._send(bytes(apdu[:-1]) + bytes((sw & 0xFF,)))
            data, sw = response.data, response.sw
        while sw >> 8 == 0x61:  # more data waiting
            response = self._send(bytes((apdu[0] & 0x03, 0xC0, 0, 0, sw & 0xFF)))
            data += response.data
            sw = response.sw
        return Response(data, sw)

    def _send(self, apdu: bytes) -> Response:
        from smartcard.Exceptions import CardConnectionException

        if self._connection is None:
            raise TransportError("not connected")
        try:
            data, sw1, sw2 = self._connection.transmit(list(apdu))
        except CardConnectionException as exc:
            raise NoCard(f"card connection lost in {self.reader!r}: {exc}") from None
        return Response(bytes(data), (sw1 << 8) | sw2)
