"""Key attestation: the evidence that a public key was generated in a genuine card.

The card answers `ATTEST KEY` with AES-CMAC(card-auth key, message) over the public key in
its own key slot (card/PROTOCOL.md); `attestation_message` builds that message, once, for
every verifier. A verifier only says whether a MAC is right for a serial and a message
(`HsmAttestationVerifier` in hsm/derive.py keeps the key in the HSM;
`HostAttestationVerifier` here derives it on the host for tests and the sample card).
`AttestationGate` is what stands in front of a CA: it hands out fresh single-use
challenges and refuses evidence for another card, another key slot, another key, an
unknown or reused challenge, or a wrong MAC.
"""

from __future__ import annotations

import hmac
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from cryptography.hazmat.primitives import cmac
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from card import contract
from card.errors import CardError, TransportError

ATTESTED_KEYS = (contract.JPKI_AUTH_KEY, contract.JPKI_SIGN_KEY)
_EXPONENT = contract.RSA_PUBLIC_EXPONENT.to_bytes(3, "big")


class AttestationFailed(CardError):
    """The card did not prove that the key is its own: nothing may be certified."""


@dataclass(frozen=True)
class KeyAttestation:
    """What a card claims with one ATTEST KEY answer."""

    serial: str
    aid: bytes
    key_fid: int
    public_key: rsa.RSAPublicKey
    challenge: bytes
    mac: bytes

    def message(self) -> bytes:
        return attestation_message(self.serial, self.aid, self.key_fid, self.public_key,
                                   self.challenge)


# (key FID, challenge) -> the card's evidence for the key in that slot
KeyAttestor = Callable[[int, bytes], KeyAttestation]


def _check_serial(serial: str) -> bytes:
    if not isinstance(serial, str) or len(serial) != contract.SERIAL_LENGTH \
            or not serial.isascii() or not serial.isdigit():
        raise ValueError("a card serial is 15 digits")
    return serial.encode("ascii")


def attestation_message(serial: str, aid: bytes, key_fid: int, public_key: rsa.RSAPublicKey,
                        challenge: bytes) -> bytes:
    """label || serial || AID length || AID || FID || exponent || modulus || challenge."""
    if not isinstance(public_key, rsa.RSAPublicKey):
        raise TypeError("public_key must be an RSA public key")
    numbers = public_key.public_numbers()
    if numbers.e != contract.RSA_PUBLIC_EXPONENT or public_key.key_size != 8 * \
            contract.RSA_MODULUS_BYTES:
        raise ValueError("the card attests RSA-2048 keys with e = 65537 only")
    if not 0 < len(aid) <= 16:
        raise ValueError("an AID is 1 to 16 bytes")
    if len(challenge) != contract.KEY_ATTESTATION_CHALLENGE_LENGTH:
        raise ValueError("the attestation challenge is 16 bytes")
    return b"".join((
        contract.KEY_ATTESTATION_LABEL, _check_serial(serial), bytes([len(aid)]), bytes(aid),
        key_fid.to_bytes(2, "big"), _EXPONENT,
        numbers.n.to_bytes(contract.RSA_MODULUS_BYTES, "big"), bytes(challenge),
    ))


def derive_card_auth_key(master_key: bytes, serial: str) -> bytes:
    """card-auth key = AES-128-ECB(master key, serial || 0x81)."""
    encryptor = Cipher(algorithms.AES(master_key), modes.ECB()).encryptor()
    block = _check_serial(serial) + bytes([contract.CARD_AUTH_KEY_DOMAIN])
    return encryptor.update(block) + encryptor.finalize()


class AttestationVerifier(Protocol):
    """Says whether `mac` is the card-auth MAC of `message` for the card `serial`."""

    def verify(self, serial: str, message: bytes, mac: bytes) -> bool: ...


class HostAttestationVerifier:
    """Derives the card-auth key from a master key held in memory (tests, sample card)."""

    def __init__(self, master_key: bytes) -> None:
        if not isinstance(master_key, bytes) or len(master_key) != 16:
            raise ValueError("the master key is an AES-128 key (16 bytes)")
        self._master_key = master_key

    def __repr__(self) -> str:
        return "HostAttestationVerifier(<key hidden>)"

    def verify(self, serial: str, message: bytes, mac: bytes) -> bool:
        prefix = contract.KEY_ATTESTATION_LABEL + _check_serial(serial)
        if not message.startswith(prefix):
            return False
        calc = cmac.CMAC(algorithms.AES(derive_card_auth_key(self._master_key, serial)))
        calc.update(message)
        return hmac.compare_digest(calc.finalize(), bytes(mac))


class AttestationGate:
    """Fresh single-use challenges, and the checks before a card key is certified.

    One gate per issuing process: a challenge it did not hand out, or has seen answered
    once already, is refused, so recorded evidence cannot be replayed.
    """

    def __init__(self, verifier: AttestationVerifier,
                 random: Callable[[int], bytes] = os.urandom) -> None:
        self._verifier = verifier
        self._random = random
        self._outstanding: set[bytes] = set()
        self._lock = threading.Lock()

    def challenge(self) -> bytes:
        value = bytes(self._random(contract.KEY_ATTESTATION_CHALLENGE_LENGTH))
        if len(value) != contract.KEY_ATTESTATION_CHALLENGE_LENGTH:
            raise AttestationFailed("the random source gave a short challenge")
        with self._lock:
            self._outstanding.add(value)
        return value

    def check(self, evidence: KeyAttestation, *, serial: str, key_fid: int,
              public_key: rsa.RSAPublicKey) -> None:
        """Raise AttestationFailed unless `evidence` proves `public_key` is the key in slot
        `key_fid` of card `serial`, for a challenge of this gate not used before."""
        with self._lock:
            fresh = evidence.challenge in self._outstanding
            self._outstanding.discard(evidence.challenge)
        if not fresh:
            raise AttestationFailed("the attestation answers a challenge this center did not "
                                    "issue or has seen answered already (replay)")
        if evidence.serial != serial:
            raise AttestationFailed(f"the attestation is for card {evidence.serial}, not for "
                                    f"card {serial}")
        if key_fid not in ATTESTED_KEYS or evidence.key_fid != key_fid:
            raise AttestationFailed(f"the attestation is for key {evidence.key_fid:04X}, not "
                                    f"for key {key_fid:04X}")
        if evidence.aid != contract.AID_JPKI:
            raise AttestationFailed("the attestation is not from the JPKI application")
        if not isinstance(public_key, rsa.RSAPublicKey) or \
                evidence.public_key.public_numbers() != public_key.public_numbers():
            raise AttestationFailed("the attested key is not the key to be certified")
        try:
            message = evidence.message()
        except ValueError as exc:
            raise AttestationFailed(f"the key cannot be attested: {exc}") from None
        if not self._verifier.verify(serial, message, evidence.mac):
            raise AttestationFailed(f"card {serial} did not prove that key {key_fid:04X} was "
                                    "generated on it (wrong attestation MAC)")

    def require(self, attest: KeyAttestor, *, serial: str, key_fid: int,
                public_key: rsa.RSAPublicKey) -> KeyAttestation:
        """Fresh challenge → the card attests → checked; the evidence."""
        challenge = self.challenge()
        try:
            evidence = attest(key_fid, challenge)
        except TransportError:  # the reader or the connection failed: not the card's answer
            with self._lock:
                self._outstanding.discard(challenge)
            raise
        except CardError as exc:
            with self._lock:
                self._outstanding.discard(challenge)
            raise AttestationFailed(f"card {serial} gave no attestation for key "
                                    f"{key_fid:04X}: {exc}") from None
        if evidence.challenge != challenge:
            with self._lock:
                self._outstanding.discard(challenge)
            raise AttestationFailed("the attestation does not answer the challenge just sent")
        self.check(evidence, serial=serial, key_fid=key_fid, public_key=public_key)
        return evidence
