"""Municipal free area (市町村独自サービスエリア), example: a library card.

Its own applet, PIN and issuer key (derived like the card's from the municipality's
own master key), and its own life cycle: blank (the issuer writes the number and may
set the PIN) → locked. Nothing of the other areas opens it.
"""

from __future__ import annotations

from card import contract
from card.apdu import command
from card.contract import Ins
from card.formats import library_number_file, parse_library_number_file, validate_pin
from card.issuer import (
    IssuerAuthenticator,
    card_manager_serial,
    external_authenticate,
    set_reference_apdu,
    write_current_ef,
)
from card.session import AreaClient, Channel, channel_for, select_ef_apdu
from card.transport import Transport

# The test municipal master key of emulated cards.
TEST_MUNICIPAL_MASTER_KEY = bytes(range(0x50, 0x60))
LIBRARY_LOCKED = 0x03  # SET STATUS 80 F0 80 03 on the library applet


class LibraryClient(AreaClient):
    """Holder operations of the library-card applet."""

    area = contract.MUNICIPAL_LIBRARY

    def verify_pin(self, pin: str) -> None:
        self.verify(contract.LIBRARY_PIN, pin)

    def library_number(self) -> str:
        """The library-card number; needs the library PIN verified."""
        return parse_library_number_file(self.read_object(contract.LIBRARY_NUMBER))


class LibraryIssuer:
    """The municipality's issuer operations on its own applet."""

    def __init__(self, transport: Transport | Channel) -> None:
        self.channel = channel_for(transport)

    def personalise(
        self, number: str, *, authenticator: IssuerAuthenticator, pin: str | None = None,
        lock: bool = True,
    ) -> str:
        """Authenticate, write the number, optionally set the PIN, lock; the card serial."""
        data = library_number_file(number)
        pin_bytes = None if pin is None else validate_pin(
            contract.MUNICIPAL_LIBRARY.pin(contract.LIBRARY_PIN), pin)
        serial = card_manager_serial(self.channel)
        self.channel.select_application(contract.AID_MUNICIPAL_LIBRARY, force=True)
        external_authenticate(self.channel, serial, authenticator)
        self.channel.send(select_ef_apdu(contract.LIBRARY_NUMBER))
        write_current_ef(self.channel, data)
        if pin_bytes is not None:
            self.channel.send(select_ef_apdu(contract.LIBRARY_PIN))
            self.channel.send(set_reference_apdu(pin_bytes))
        if lock:
            self.channel.send(
                command(contract.CLA_PROPRIETARY, Ins.SET_STATUS, 0x80, LIBRARY_LOCKED))
        return serial
