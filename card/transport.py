"""PC/SC transport: the only module that imports pyscard.

`PcscTransport` is a context manager around one card connection. It sends APDUs as
bytes and follows 61xx (GET RESPONSE) and 6Cxx (resend with the right Le) itself, so
clients see whole responses.

Sessions (card/PROTOCOL.md, "Sessions"): a card's PIN and issuer-authentication state
belongs to one session. The connection is shared, but before the first APDU that can
create such state (VERIFY, CHANGE REFERENCE DATA, RESET RETRY COUNTER, CHANGE KEY, GET
CHALLENGE, EXTERNAL AUTHENTICATE) the transport begins a PC/SC transaction, which keeps
every other connection, in this process or another, off the card, and holds it to the
end of the operation: `end_session()`, the end of a `with transport.session():` block,
or `close()`. The transaction always ends with a card reset (SCARD_RESET_CARD), and the
connection is always closed with one, so no verified PIN and no issuer authentication
outlives its session. A process that dies inside a session leaves pcscd to release the
transaction, which it does with a reset too.
"""

from __future__ import annotations

import time
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from types import TracebackType
from typing import Any, Protocol

from card.apdu import Response
from card.contract import Ins
from card.errors import NoCard, ReaderNotFound, TransportError

# Instructions that can leave security state on the card: a session starts before them.
SESSION_INS = frozenset({
    Ins.VERIFY, Ins.CHANGE_REFERENCE_DATA, Ins.RESET_RETRY_COUNTER, Ins.CHANGE_KEY,
    Ins.GET_CHALLENGE, Ins.EXTERNAL_AUTHENTICATE,
})

# After another connection's reset is announced, how long to let it land (see _reconnect).
RESET_SETTLE_SECONDS = 0.2


class CardReset(TransportError):
    """Another connection reset the card: this connection's selection is gone.

    The connection is usable again (reconnected); start the operation afresh.
    """


class SessionConflict(TransportError):
    """Another connection of this process holds the card's session (it would deadlock)."""


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
    """One shared connection to the card in `reader` (T=1 preferred, T=0 accepted).

    Holds the card's session (a PC/SC transaction) from the first PIN or
    issuer-authentication APDU to `end_session()` or `close()`; see the module docstring.
    """

    def __init__(self, reader: str) -> None:
        self.reader = reader
        self._context: Any = None
        self._card: Any = None
        self._protocol = 0
        self._in_session = False
        self._answered = False
        # Counts connects and resets: each one leaves the card freshly reset, so clients
        # that track the selected application know to forget it.
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

    # --- connection ---------------------------------------------------------------

    def connect(self) -> None:
        from smartcard import scard

        if self._card is not None:
            raise TransportError(f"already connected to {self.reader!r}")
        self._check_no_local_session()  # pcscd would hold the connect until it ends
        rc, context = scard.SCardEstablishContext(scard.SCARD_SCOPE_USER)
        if rc != scard.SCARD_S_SUCCESS:
            raise TransportError(f"PC/SC is not available: {_message(rc)}")
        try:
            rc, names = scard.SCardListReaders(context, [])
            if rc == scard.SCARD_E_NO_READERS_AVAILABLE:
                names = []
            elif rc != scard.SCARD_S_SUCCESS:
                raise TransportError(f"PC/SC is not available: {_message(rc)}")
            if self.reader not in names:
                raise ReaderNotFound(f"no reader named {self.reader!r}")
            rc, card, protocol = scard.SCardConnect(
                context, self.reader, scard.SCARD_SHARE_SHARED,
                scard.SCARD_PROTOCOL_T1 | scard.SCARD_PROTOCOL_T0,
            )
            if rc in _no_card_codes():
                raise NoCard(f"no card in {self.reader!r}")
            if rc != scard.SCARD_S_SUCCESS:
                raise TransportError(f"cannot connect to {self.reader!r}: {_message(rc)}")
        except BaseException:
            scard.SCardReleaseContext(context)
            raise
        self._context, self._card, self._protocol = context, card, protocol
        self.connection_count += 1
        self._answered = False  # no APDU answered yet on this connection

    def close(self) -> None:
        """End the session (card reset) and disconnect, resetting the card again."""
        from smartcard import scard

        if self._card is None:
            return
        try:
            self.end_session()
        except TransportError:  # the card is gone: nothing left to reset
            pass
        finally:
            scard.SCardDisconnect(self._card, scard.SCARD_RESET_CARD)
            scard.SCardReleaseContext(self._context)
            self._card = self._context = None

    @property
    def atr(self) -> bytes:
        from smartcard import scard

        if self._card is None:
            raise TransportError("not connected")
        rc, _reader, _state, _protocol, atr = scard.SCardStatus(self._card)
        if rc != scard.SCARD_S_SUCCESS:
            raise NoCard(f"card connection lost in {self.reader!r}: {_message(rc)}")
        return bytes(atr)

    # --- sessions -----------------------------------------------------------------

    @property
    def in_session(self) -> bool:
        """Whether this connection holds the card's session (a PC/SC transaction)."""
        return self._in_session

    def begin_session(self) -> None:
        """Take the card's session; waits while another process holds it.

        SessionConflict when another connection of this process holds it (waiting
        would never end).
        """
        from smartcard import scard

        if self._card is None:
            raise TransportError("not connected")
        if self._in_session:
            return
        self._check_no_local_session()
        rc = scard.SCardBeginTransaction(self._card)
        if rc == scard.SCARD_W_RESET_CARD:
            self._reconnect()
            raise self._reset_error()
        if rc != scard.SCARD_S_SUCCESS:
            raise TransportError(f"cannot begin a session on {self.reader!r}: {_message(rc)}")
        self._in_session = True
        _SESSIONS[self.reader] = self

    def end_session(self) -> None:
        """End the session with a card reset: verified PINs and issuer authentication go."""
        from smartcard import scard

        if not self._in_session:
            return
        self._in_session = False
        if _SESSIONS.get(self.reader) is self:
            del _SESSIONS[self.reader]
        self.connection_count += 1  # the card is reset: the selection is gone
        rc = scard.SCardEndTransaction(self._card, scard.SCARD_RESET_CARD)
        if rc != scard.SCARD_S_SUCCESS:
            raise NoCard(f"card connection lost in {self.reader!r}: {_message(rc)}")

    @contextmanager
    def session(self) -> Iterator[PcscTransport]:
        """`with transport.session():` one operation, then a card reset."""
        self.begin_session()
        try:
            yield self
        finally:
            self.end_session()

    def _check_no_local_session(self) -> None:
        holder = _SESSIONS.get(self.reader)
        if holder is not None and holder is not self and holder._in_session:
            raise SessionConflict(
                f"another connection of this process holds the session of {self.reader!r}; "
                "close it first"
            )

    def _reconnect(self) -> None:
        """Rejoin after another connection reset the card (this one's state is gone).

        pcsc-lite tells the other connections that the card was reset before it resets it
        (SCardReconnect, and SCardDisconnect of a process that ended holding the card);
        an APDU sent at once could reach the card before that reset and have its effect
        wiped without a word. Waiting RESET_SETTLE_SECONDS first lets the reset land."""
        from smartcard import scard

        time.sleep(RESET_SETTLE_SECONDS)
        rc, protocol = scard.SCardReconnect(
            self._card, scard.SCARD_SHARE_SHARED,
            scard.SCARD_PROTOCOL_T1 | scard.SCARD_PROTOCOL_T0, scard.SCARD_LEAVE_CARD,
        )
        if rc != scard.SCARD_S_SUCCESS:
            raise NoCard(f"card connection lost in {self.reader!r}: {_message(rc)}")
        self._protocol = protocol
        self.connection_count += 1

    def _reset_error(self) -> CardReset:
        return CardReset(f"the card in {self.reader!r} was reset by another connection; "
                         "start the operation again")

    # --- APDUs --------------------------------------------------------------------

    def transmit(self, apdu: bytes) -> Response:
        if not isinstance(apdu, (bytes, bytearray)):
            raise TypeError("an APDU is bytes")
        if len(apdu) >= 2 and apdu[1] in SESSION_INS:
            self.begin_session()
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
        from smartcard import scard

        if self._card is None:
            raise TransportError("not connected")
        if not self._in_session:
            self._check_no_local_session()
        rc, response = scard.SCardTransmit(self._card, self._protocol, list(apdu))
        if rc in (scard.SCARD_W_RESET_CARD, scard.SCARD_E_PROTO_MISMATCH):
            # Another connection reset (or re-powered) the card: a process that ended
            # while holding it, for one. Rejoin; what this connection had set up is gone.
            fresh = not self._answered
            self._reconnect()
            if not (fresh or _selects_by_name(apdu)):
                raise self._reset_error()
            # nothing on this connection depended on the state the reset took (it had
            # answered nothing yet, or this is a SELECT by name): send it again
            rc, response = scard.SCardTransmit(self._card, self._protocol, list(apdu))
        if rc != scard.SCARD_S_SUCCESS:
            raise NoCard(f"card connection lost in {self.reader!r}: {_message(rc)}")
        self._answered = True
        if len(response) < 2:
            raise TransportError(f"a response without a status word from {self.reader!r}")
        return Response(bytes(response[:-2]), (response[-2] << 8) | response[-1])


# Reader name -> the connection of this process that holds its session.
_SESSIONS: weakref.WeakValueDictionary[str, PcscTransport] = weakref.WeakValueDictionary()


def _scard_codes(*names: str) -> frozenset[int]:
    from smartcard import scard

    return frozenset(getattr(scard, n) for n in names)


def _no_card_codes() -> frozenset[int]:
    return _scard_codes("SCARD_E_NO_SMARTCARD", "SCARD_W_REMOVED_CARD",
                        "SCARD_W_UNPOWERED_CARD", "SCARD_W_UNRESPONSIVE_CARD")


def _selects_by_name(apdu: bytes) -> bool:
    return len(apdu) >= 3 and apdu[1] == Ins.SELECT and apdu[2] == 0x04


def _message(rc: int) -> str:
    from smartcard import scard

    return str(scard.SCardGetErrorMessage(rc))
