"""The CA's own check that a card key was attested by the card before it is certified.

The issuance workflow checks a card's key attestation (card/attestation.py) before it
asks the CA for a certificate; an `IssuingCA` opened with an `AttestationPolicy` checks
again, itself, so no caller can certify a card key without the card's proof. A request
then carries `CardKeyEvidence` (what the card answered), the CA rebuilds the attested
message from the key it is about to certify and has the verifier (the HSM, with the
card-auth key derived in it) check the MAC.

The message layout is the card's (card/PROTOCOL.md); pki may not import card, so it is
written here again, and tests/pki/test_pki_attestation.py proves both agree.
"""

from __future__ import annotations

import dataclasses
import threading
from typing import Protocol

from cryptography.hazmat.primitives.asymmetric import rsa

from pki.errors import CAError
from pki.profiles import Profile

LABEL = b"MYNACARD-KEY-ATTEST-1"
AID_JPKI = bytes.fromhex("D392F000260100000001")
# The key slot a certificate of each profile is for: signing 001A, user authentication 0017.
# An operator IC card's key is the JPKI application's user-authentication key.
KEY_FID = {Profile.SIGNING: 0x001A, Profile.USER_AUTHENTICATION: 0x0017,
           Profile.OPERATOR: 0x0017}


class AttestationRefused(CAError):
    """A card certificate request without a valid key attestation: nothing is issued."""


@dataclasses.dataclass(frozen=True)
class CardKeyEvidence:
    """A card's answer to ATTEST KEY for the key of a certificate request."""

    card_serial: str
    key_fid: int
    challenge: bytes
    mac: bytes
    aid: bytes = AID_JPKI


class AttestationVerifier(Protocol):
    """Says whether `mac` is the card-auth MAC of `message` for card `serial`."""

    def verify(self, serial: str, message: bytes, mac: bytes) -> bool: ...


def attested_message(evidence: CardKeyEvidence, public_key: rsa.RSAPublicKey) -> bytes:
    """label || serial || AID length || AID || FID || exponent || modulus || challenge."""
    numbers = public_key.public_numbers()
    if numbers.e != 65537 or public_key.key_size != 2048:
        raise AttestationRefused("a card attests RSA-2048 keys with e = 65537 only")
    serial = evidence.card_serial
    if len(serial) != 15 or not serial.isascii() or not serial.isdigit():
        raise AttestationRefused("the evidence names no 15-digit card serial")
    if len(evidence.challenge) != 16 or len(evidence.mac) != 16 or not 0 < len(evidence.aid) <= 16:
        raise AttestationRefused("the evidence is malformed")
    return b"".join((LABEL, serial.encode("ascii"), bytes([len(evidence.aid)]), evidence.aid,
                     evidence.key_fid.to_bytes(2, "big"), (65537).to_bytes(3, "big"),
                     numbers.n.to_bytes(256, "big"), evidence.challenge))


class AttestationPolicy:
    """Every card certificate needs the card's proof for exactly that key and key slot;
    one proof certifies one certificate (an answer seen once is refused after)."""

    def __init__(self, verifier: AttestationVerifier) -> None:
        self._verifier = verifier
        self._used: set[tuple[str, bytes]] = set()
        self._lock = threading.Lock()

    def check(self, profile: Profile, public_key: rsa.RSAPublicKey,
              evidence: CardKeyEvidence | None) -> None:
        if evidence is None:
            raise AttestationRefused("a card certificate needs the card's key attestation: "
                                     "this CA certifies no key the card did not prove is its own")
        if evidence.key_fid != KEY_FID[profile] or evidence.aid != AID_JPKI:
            raise AttestationRefused(f"the attestation is for key {evidence.key_fid:04X}, not "
                                     f"for the {profile.value} key {KEY_FID[profile]:04X}")
        message = attested_message(evidence, public_key)
        used = (evidence.card_serial, evidence.challenge)
        with self._lock:
            if used in self._used:
                raise AttestationRefused("this attestation was used for a certificate already")
            self._used.add(used)
        if not self._verifier.verify(evidence.card_serial, message, evidence.mac):
            raise AttestationRefused(f"card {evidence.card_serial} did not attest this key "
                                     "(wrong attestation MAC)")
