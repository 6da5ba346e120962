"""Shared values and helpers of the card tests that run against an emulated card.

The readers come from the `mynacard` pytest plugin (emulator/pytest_plugin.py):
`blank_card`, `sample_card`, `mynacard_reader`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from card import contract, images
from card.formats import BasicFour, CardIdentity, HolderPins
from card.issuer import HostIssuerAuthenticator, IssuerClient, PersonalisationResult
from card.municipal import TEST_MUNICIPAL_MASTER_KEY, LibraryIssuer
from card.sample import SampleCa
from card.session import Channel
from card.transport import PcscTransport

# A profile other than the built-in sample: born on the first day of Heisei.
PROFILE = CardIdentity(
    my_number="537686677188",
    resident_code="12345678903",
    facts=BasicFour("試験　一郎", "東京都千代田区永田町１－７－１", date(1989, 1, 8), "1"),
    expiry=date(2034, 1, 8),
    municipality_code="13101",
    security_code="1357",
    photo=images.generated_portrait("12345678903"),
)
PINS = HolderPins(jpki_auth="1111", text="2222", juki="3333", jpki_sign="SIGN2024")
LIBRARY_NUMBER = "L-000042"
LIBRARY_PIN = "4444"
ISSUER = HostIssuerAuthenticator(contract.TEST_ISSUER_MASTER_KEY)
MUNICIPAL = HostIssuerAuthenticator(TEST_MUNICIPAL_MASTER_KEY)


def credential_values(profile: CardIdentity = PROFILE, pins: HolderPins = PINS,
                      library_pin: str = LIBRARY_PIN) -> dict[tuple[str, int], str]:
    """(area name, PIN FID) → the value set on a personalised card, for every PIN."""
    values = {
        ("jpki", contract.JPKI_AUTH_PIN): pins.jpki_auth,
        ("jpki", contract.JPKI_SIGN_PIN): pins.jpki_sign or "",
        ("text", contract.TEXT_PIN): pins.text,
        ("text", contract.TEXT_CODE_A): profile.code_a,
        ("text", contract.TEXT_CODE_B): profile.code_b,
        ("surface", contract.SURFACE_BIRTH_KEY): profile.birth_key,
        ("surface", contract.SURFACE_CODE_B): profile.code_b,
        ("surface", contract.SURFACE_CODE_A): profile.code_a,
        ("juki", contract.JUKI_PIN): pins.juki,
        ("common", contract.COMMON_PIN): pins.juki,  # one holder PIN, two key references
        ("municipal-library", contract.LIBRARY_PIN): library_pin,
    }
    every = {(area.name, pin.fid) for area in contract.AREAS for pin in area.pins}
    assert set(values) == every, "credential table out of date with contract.AREAS"
    return values


@dataclass
class Personalised:
    reader: str
    transport: PcscTransport
    channel: Channel
    result: PersonalisationResult
    ca: SampleCa
    profile: CardIdentity


def personalise(transport: PcscTransport, ca: SampleCa, *, profile: CardIdentity = PROFILE,
                pins: HolderPins | None = PINS, library: bool = True) -> PersonalisationResult:
    client = IssuerClient(transport)
    result = client.personalise(
        profile,
        authenticator=ISSUER,
        issue_certificates=ca.certificate_issuer(profile, serial=client.serial()),
        integrity_signer=ca.integrity_key,
        holder_pins=pins,
    )
    if library:
        LibraryIssuer(transport).personalise(LIBRARY_NUMBER, authenticator=MUNICIPAL,
                                             pin=LIBRARY_PIN)
    return result


def reconnect(transport: PcscTransport) -> None:
    """Drop the connection and connect again (a new session with nothing verified)."""
    transport.close()
    transport.connect()  # the channel notices the new connection and reselects
