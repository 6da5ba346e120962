"""The holder's PINs: which ones a card requires, and their formats (rule 3.1).

Kinds: `auth` user-authentication PIN (4 digits), `sign` signing password (6–16 of A–Z
and 0–9 with at least one letter and one digit), `text` card-info input support PIN and
`juki` resident-registry PIN (4 digits each). Errors never repeat the value.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from card import contract
from card.contract import PinBit
from card.formats import HolderPins, validate_pin


class PinKind(StrEnum):
    AUTH = "auth"
    SIGN = "sign"
    TEXT = "text"
    JUKI = "juki"


@dataclass(frozen=True)
class PinRef:
    kind: PinKind
    area: contract.AreaSpec
    fid: int
    bit: PinBit
    title: str


PIN_KINDS: dict[PinKind, PinRef] = {
    PinKind.AUTH: PinRef(PinKind.AUTH, contract.JPKI, contract.JPKI_AUTH_PIN, PinBit.JPKI_AUTH,
                         "user-authentication PIN (利用者証明用, 4 digits)"),
    PinKind.SIGN: PinRef(PinKind.SIGN, contract.JPKI, contract.JPKI_SIGN_PIN, PinBit.JPKI_SIGN,
                         "signing password (署名用, 6-16 of A-Z 0-9)"),
    PinKind.TEXT: PinRef(PinKind.TEXT, contract.TEXT, contract.TEXT_PIN, PinBit.TEXT,
                         "card-info input support PIN (券面事項入力補助用, 4 digits)"),
    PinKind.JUKI: PinRef(PinKind.JUKI, contract.JUKI, contract.JUKI_PIN, PinBit.JUKI,
                         "resident-registry PIN (住民基本台帳用, 4 digits)"),
}


def check_pin(kind: PinKind, value: str) -> str:
    """`value` if it fits the PIN's format; ValueError (without the value) otherwise."""
    ref = PIN_KINDS[kind]
    validate_pin(ref.area.pin(ref.fid), value)
    return value


def required_kinds(required_bits: frozenset[PinBit]) -> list[PinKind]:
    """The PIN kinds a card requires, in the order a holder sets them."""
    order = (PinKind.AUTH, PinKind.SIGN, PinKind.TEXT, PinKind.JUKI)
    return [k for k in order if PIN_KINDS[k].bit in required_bits]


def holder_pins(values: dict[PinKind, str]) -> HolderPins:
    """Express issuance: the PINs the applicant gave, as the issuer client takes them.
    The resident-registry and card-info PINs are always needed; the certificate PINs only
    for a card with those certificates (rule 3.7), which the issuer checks
    (`missing_certificate_pins`)."""
    for kind, value in values.items():
        check_pin(kind, value)
    missing = [k.value for k in (PinKind.TEXT, PinKind.JUKI) if k not in values]
    if missing:
        raise ValueError(f"express issuance needs the {', '.join(missing)} PIN(s)")
    return HolderPins(jpki_auth=values.get(PinKind.AUTH), text=values[PinKind.TEXT],
                      juki=values[PinKind.JUKI], jpki_sign=values.get(PinKind.SIGN))


def missing_certificate_pins(pins: HolderPins, *, auth: bool, sign: bool) -> list[PinKind]:
    """The certificate PINs a card with these certificates needs and `pins` lacks."""
    missing = []
    if auth and pins.jpki_auth is None:
        missing.append(PinKind.AUTH)
    if sign and pins.jpki_sign is None:
        missing.append(PinKind.SIGN)
    return missing
