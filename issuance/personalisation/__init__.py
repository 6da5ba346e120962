"""What goes on one card: the profile built from the registry record and the
application, the certificates issued through the HSM-backed CA for the keys the card
generated, the holder's PINs, and a transport seam that lets the workflow record (and
tests interrupt) the moment the card is locked."""

from issuance.personalisation.pins import PIN_KINDS, PinKind, check_pin, required_kinds
from issuance.personalisation.profile import card_identity, identity_of, municipality5
from issuance.personalisation.transport import StepTransport

__all__ = [
    "PIN_KINDS",
    "PinKind",
    "StepTransport",
    "card_identity",
    "check_pin",
    "identity_of",
    "municipality5",
    "required_kinds",
]
