"""Which mechanisms the token offers, and the method chosen for each operation.

A center may run on any vendor's PKCS#11 module, and modules differ in what they offer
(opencryptoki's software token has no CKM_AES_ECB_ENCRYPT_DATA). Before using a
mechanism the code asks the token (C_GetMechanismList, C_GetMechanismInfo) and picks,
per operation, among alternatives that keep the same security.

Per-card key derivation must yield the key the card holds, AES-ECB(master, data) with
one 16-byte block, and the derived key must stay sensitive and non-extractable. Two
mechanisms compute exactly that function inside the HSM:

* CKM_AES_ECB_ENCRYPT_DATA(data)
* CKM_AES_CBC_ENCRYPT_DATA(iv = 0^16, data): one block of CBC under a zero IV is ECB

so every card keeps working whichever of them a token offers. An SP 800-108 KDF or a
CMAC-based derivation would compute a different key, which cards made for the same
center would not hold; they are therefore not offered here (see docs/hsm.md). A token
with neither gets one error naming what it lacks.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import pkcs11.exceptions as p11e
from pkcs11 import Mechanism, MechanismFlag

from hsm.errors import HsmError

ZERO_IV = bytes(16)


class MechanismMissing(HsmError):
    """The token offers none of the mechanisms an operation can use."""


class DerivationMethod(enum.Enum):
    """How a per-card key is derived; each value computes AES-ECB(master, data)."""

    AES_ECB_ENCRYPT_DATA = "aes-ecb-encrypt-data"
    AES_CBC_ENCRYPT_DATA = "aes-cbc-encrypt-data"

    @property
    def mechanism(self) -> Mechanism:
        return {DerivationMethod.AES_ECB_ENCRYPT_DATA: Mechanism.AES_ECB_ENCRYPT_DATA,
                DerivationMethod.AES_CBC_ENCRYPT_DATA: Mechanism.AES_CBC_ENCRYPT_DATA}[self]

    def parameter(self, data: bytes) -> Any:
        """The mechanism parameter for one 16-byte block `data`."""
        if len(data) != 16:
            raise ValueError("derivation data must be one 16-byte block")
        if self is DerivationMethod.AES_CBC_ENCRYPT_DATA:
            return (ZERO_IV, data)
        return data

    @classmethod
    def parse(cls, text: str) -> DerivationMethod:
        for method in cls:
            if method.value == text:
                return method
        names = ", ".join(m.value for m in cls)
        raise ValueError(f"unknown derivation method {text!r} (one of {names})")


# In order of preference: the first one the token offers is used.
DERIVATION_PREFERENCE = (DerivationMethod.AES_ECB_ENCRYPT_DATA,
                         DerivationMethod.AES_CBC_ENCRYPT_DATA)
# Mechanisms the derived per-card key is then used with (sign or verify, never read).
PER_CARD_KEY_USE = (Mechanism.AES_CMAC,)
MASTER_KEY_GEN = (Mechanism.AES_KEY_GEN,)


def _name(mech: Any) -> str:
    try:
        return "CKM_" + str(Mechanism(int(mech)).name).lstrip("_")
    except ValueError:
        return f"CKM_0x{int(mech):08X}"


@dataclass(frozen=True)
class TokenMechanisms:
    """The mechanisms a token offers, with the flags it reports for each."""

    flags: dict[int, MechanismFlag]

    @classmethod
    def of_slot(cls, slot: Any) -> TokenMechanisms:
        """Ask the module (C_GetMechanismList, then C_GetMechanismInfo for each)."""
        flags: dict[int, MechanismFlag] = {}
        for mech in slot.get_mechanisms():
            try:
                flags[int(mech)] = MechanismFlag(slot.get_mechanism_info(mech).flags)
            except (p11e.PKCS11Error, ValueError):
                continue  # listed but not describable: treated as absent
        return cls(flags)

    @classmethod
    def of(cls, mechanisms: Iterable[tuple[int, MechanismFlag]]) -> TokenMechanisms:
        return cls({int(m): f for m, f in mechanisms})

    def offers(self, mech: Mechanism, flag: MechanismFlag | None = None) -> bool:
        got = self.flags.get(int(mech))
        if got is None:
            return False
        return flag is None or bool(got & flag)

    def derivation(self) -> DerivationMethod:
        """The first derivation method the token can run end to end.

        A token that cannot is refused once, naming everything it lacks."""
        lacking: list[str] = []
        chosen = next((m for m in DERIVATION_PREFERENCE
                       if self.offers(m.mechanism, MechanismFlag.DERIVE)), None)
        if chosen is None:
            lacking.append(" or ".join(_name(m.mechanism) for m in DERIVATION_PREFERENCE)
                           + " (C_DeriveKey)")
        if not (self.offers(Mechanism.AES_CMAC, MechanismFlag.SIGN)
                and self.offers(Mechanism.AES_CMAC, MechanismFlag.VERIFY)):
            lacking.append("CKM_AES_CMAC (sign and verify)")
        if chosen is None or lacking:
            raise MechanismMissing(
                f"the token cannot derive card keys: it lacks {' and '.join(lacking)}")
        return chosen

    def check_derivation(self, method: DerivationMethod) -> None:
        """Refuse a center whose recorded method this token cannot run."""
        if not self.offers(method.mechanism, MechanismFlag.DERIVE):
            raise MechanismMissing(
                f"the token lacks {_name(method.mechanism)}, the card-key derivation this "
                "center's cards were made for")

    def hmac(self) -> None:
        """Refuse, naming the mechanism, when the token cannot keep the audit HMAC."""
        lacking = [_name(m) for m in (Mechanism.SHA256_HMAC, Mechanism.GENERIC_SECRET_KEY_GEN)
                   if not self.offers(m)]
        if lacking:
            raise MechanismMissing(
                f"the token cannot keep the audit MAC key: it lacks {' and '.join(lacking)}")

    def names(self) -> list[str]:
        return sorted(_name(m) for m in self.flags)
