"""The part every client shares: selection, reading whole files, PIN handling.

A `Channel` wraps one `Transport` and remembers which application is selected, so
several clients on one connection do not reselect needlessly. Selecting the current
application again keeps its security status (ISO 7816-4, as the real card does); selecting
another application clears it, so a forced select passes through the card manager first.
`AreaClient` is the base of the per-application clients.

PINs go to the card and nowhere else: they are not logged, not stored on the client
and never put into exception messages.
"""

from __future__ import annotations

import weakref
from typing import ClassVar

from card import contract
from card.apdu import Response, command
from card.contract import SW, Ins
from card.errors import CardError, OffsetOutOfRange, raise_for_status
from card.formats import validate_pin
from card.tlv import MalformedData, parse_header
from card.transport import Transport

READ_CHUNK = 256  # short READ BINARY: Le 00 = 256
WRITE_CHUNK = 255  # short UPDATE BINARY: at most 255 data bytes
MAX_OFFSET = 0x7FFF  # READ BINARY offsets are 15 bits


class FileEmpty(CardError):
    """The file holds no data object yet (only FF filler): the card is not personalised."""


class Channel:
    """A transport and the application currently selected on it."""

    def __init__(self, transport: Transport) -> None:
        self.transport = transport
        self._current_aid: bytes | None = None
        self._connection = self._connection_count()

    def _connection_count(self) -> int | None:
        return getattr(self.transport, "connection_count", None)

    @property
    def current_aid(self) -> bytes | None:
        """The selected application, None when unknown (also after a reconnect)."""
        count = self._connection_count()
        if count != self._connection:
            self._connection = count
            self._current_aid = None
        return self._current_aid

    @current_aid.setter
    def current_aid(self, aid: bytes | None) -> None:
        self._connection = self._connection_count()
        self._current_aid = aid

    @property
    def atr(self) -> bytes:
        return self.transport.atr

    def transmit(self, apdu: bytes) -> Response:
        """Send one APDU and return the response whatever its status word."""
        if len(apdu) >= 2 and apdu[1] == Ins.SELECT and len(apdu) >= 3 and apdu[2] == 0x04:
            self.current_aid = None  # a raw SELECT by name: the selection is unknown
        return self.transport.transmit(apdu)

    def send(self, apdu: bytes) -> bytes:
        """Send one APDU; the data, or the status word's exception."""
        return self.transmit(apdu).check()

    def select_application(self, aid: bytes, *, force: bool = False) -> None:
        """SELECT by name, unless `aid` is already selected (and `force` is false).

        `force` starts the application afresh (no PIN verified): the card keeps the security
        status over a re-SELECT of the current application, so another one is selected first.
        """
        if not force and self.current_aid == aid:
            return
        if force and aid != contract.AID_CARD_MANAGER:
            self.current_aid = None
            self.send(select_aid_apdu(contract.AID_CARD_MANAGER))
        self.current_aid = None
        self.send(select_aid_apdu(aid))
        self.current_aid = bytes(aid)

    def forget_selection(self) -> None:
        """Call after a card reset, or after sending SELECTs around the channel."""
        self.current_aid = None


def select_aid_apdu(aid: bytes) -> bytes:
    """SELECT by name, no response data."""
    return command(
        contract.CLA_ISO,
        Ins.SELECT,
        contract.SELECT_P1_BY_NAME,
        contract.SELECT_P2_NO_RESPONSE,
        aid,
    )


_channels: weakref.WeakKeyDictionary[object, Channel] = weakref.WeakKeyDictionary()


def channel_for(transport: Transport | Channel) -> Channel:
    """The channel of a transport, shared by every client that uses it."""
    if isinstance(transport, Channel):
        return transport
    try:
        channel = _channels.get(transport)
    except TypeError:  # not weak-referenceable: a private channel
        return Channel(transport)
    if channel is None:
        channel = Channel(transport)
        _channels[transport] = channel
    return channel


def select_ef_apdu(fid: int) -> bytes:
    return command(
        contract.CLA_ISO,
        Ins.SELECT,
        contract.SELECT_P1_BY_FID,
        contract.SELECT_P2_NO_RESPONSE,
        fid.to_bytes(2, "big"),
    )


def read_binary_apdu(offset: int, length: int) -> bytes:
    if not 0 <= offset <= MAX_OFFSET:
        raise ValueError("READ BINARY offsets are 15 bits")
    return command(contract.CLA_ISO, Ins.READ_BINARY, offset >> 8, offset & 0xFF, le=length)


class AreaClient:
    """Base of a client for one application (area) of the card."""

    area: ClassVar[contract.AreaSpec]

    def __init__(self, transport: Transport | Channel) -> None:
        self.channel = channel_for(transport)

    # --- selection --------------------------------------------------------------

    def select(self, *, force: bool = False) -> None:
        """Select this application (a forced reselect clears its security status)."""
        self.channel.select_application(self.area.aid, force=force)

    def is_present(self) -> bool:
        """Whether the card has this application."""
        try:
            self.select()
        except CardError:
            return False
        return True

    def select_ef(self, fid: int) -> None:
        self.select()
        self.channel.send(select_ef_apdu(fid))

    # --- reading ----------------------------------------------------------------

    def read_binary(self, offset: int, length: int = READ_CHUNK) -> bytes:
        """One READ BINARY of the current EF (at most 256 bytes)."""
        return self.channel.send(read_binary_apdu(offset, length))

    def read_raw(self, fid: int, length: int | None = None) -> bytes:
        """`length` bytes of a file, or up to its end (stops on a short read or 6B00)."""
        self.select_ef(fid)
        out = bytearray()
        while length is None or len(out) < length:
            want = READ_CHUNK if length is None else min(READ_CHUNK, length - len(out))
            if len(out) > MAX_OFFSET:
                break
            try:
                chunk = self.read_binary(len(out), want)
            except OffsetOutOfRange:
                break
            out += chunk
            if len(chunk) < want or not chunk:
                break
        return bytes(out)

    def read_object(self, fid: int) -> bytes:
        """The data object (BER-TLV or DER) a file holds, without the filler after it.

        The first READ BINARY brings the header, which tells the object's length; the
        rest is read in chunks of at most 256 bytes, as OpenSC and jpki/myna do.
        Raises FileEmpty when the file holds only filler.
        """
        self.select_ef(fid)
        try:
            first = self.read_binary(0, READ_CHUNK)
        except OffsetOutOfRange:
            first = b""
        if not first or all(b == 0xFF for b in first[:8]) or all(b == 0 for b in first[:8]):
            raise FileEmpty(f"{self.area.name} file {fid:04X} is empty")
        try:
            _, length, header = parse_header(first)
        except MalformedData:
            raise MalformedData(f"{self.area.name} file {fid:04X} holds no data object") from None
        total = header + length
        out = bytearray(first[:total])
        while len(out) < total:
            try:
                chunk = self.read_binary(len(out), min(READ_CHUNK, total - len(out)))
            except OffsetOutOfRange:
                break
            if not chunk:
                break
            out += chunk
        if len(out) < total:
            raise MalformedData(f"{self.area.name} file {fid:04X} ends inside its object")
        return bytes(out)

    # --- PINs -------------------------------------------------------------------

    def pin_spec(self, fid: int) -> contract.PinSpec:
        return self.area.pin(fid)

    def verify(self, fid: int, pin: str) -> None:
        """VERIFY a PIN or code of this area.

        The value is checked against the PIN's format first (ValueError, no try used).
        Wrong: PinIncorrect (with `tries_left`); blocked: PinBlocked.
        """
        data = validate_pin(self.pin_spec(fid), pin)
        self.select_ef(fid)
        self.channel.send(
            command(contract.CLA_ISO, Ins.VERIFY, 0x00, contract.P2_CURRENT_KEY, data)
        )

    def tries_left(self, fid: int) -> int:
        """Tries left of a PIN or code, by an empty VERIFY (uses no try); 0 when blocked.

        ConditionsNotSatisfied when the PIN is not set or the card is not active.
        """
        self.pin_spec(fid)
        self.select_ef(fid)
        response = self.channel.transmit(
            command(contract.CLA_ISO, Ins.VERIFY, 0x00, contract.P2_CURRENT_KEY)
        )
        if response.sw & 0xFFF0 == SW.VERIFICATION_FAILED:
            return response.sw & 0x0F
        if response.sw == SW.REFERENCE_DATA_BLOCKED:
            return 0
        if response.sw == SW.OK:
            # Some real cards answer 9000 once the PIN is verified; a right VERIFY has
            # put the counter back to its maximum.
            return self.pin_spec(fid).tries
        raise_for_status(response.sw)
        raise CardError(f"the card did not report the tries left (SW {response.sw:04X})")

    def change_pin(self, fid: int, old: str, new: str, *, jicsap: bool = False) -> None:
        """VERIFY the old value, then CHANGE REFERENCE DATA `00 24 01 80` with the new one.

        `jicsap` sends the JICSAP CHANGE KEY form `80 32 00 80` (住基AP) instead.
        """
        data = validate_pin(self.pin_spec(fid), new)
        self.verify(fid, old)
        if jicsap:
            apdu = command(contract.CLA_PROPRIETARY, Ins.CHANGE_KEY, 0x00,
                           contract.P2_CURRENT_KEY, data)
        else:
            apdu = command(contract.CLA_ISO, Ins.CHANGE_REFERENCE_DATA, 0x01,
                           contract.P2_CURRENT_KEY, data)
        self.channel.send(apdu)

    def set_pin(self, fid: int, new: str) -> None:
        """The holder sets a PIN that is not set yet (card issued): `00 2C 02 80`."""
        data = validate_pin(self.pin_spec(fid), new)
        self.select_ef(fid)
        self.channel.send(
            command(contract.CLA_ISO, Ins.RESET_RETRY_COUNTER, contract.RESET_P1_NEW_VALUE,
                    contract.P2_CURRENT_KEY, data)
        )


class GenericAreaClient(AreaClient):
    """A client for any area of the contract (tools that walk every area)."""

    def __init__(self, transport: Transport | Channel, area: contract.AreaSpec) -> None:
        super().__init__(transport)
        self.area = area  # type: ignore[misc]


def area_client(transport: Transport | Channel, area: contract.AreaSpec) -> AreaClient:
    """The generic client of `area` on `transport`."""
    return GenericAreaClient(transport, area)
