"""Which mechanisms the token offers, and the method chosen for each operation.

A center may run on any vendor's PKCS#11 module, and modules differ in what they offer
(opencryptoki 3.8's software token has no CKM_AES_*_ENCRYPT_DATA and no CKM_AES_CMAC).
Before using a mechanism the code asks the token (C_GetMechanismList, C_GetMechanismInfo)
and picks, per operation, among alternatives that keep the same security.

Per-card key derivation must yield the key the card holds, from the master key and one
16-byte block, and the derived key must stay sensitive and non-extractable:

* CKM_AES_ECB_ENCRYPT_DATA(data): AES-ECB-encrypt(master, data)
* CKM_AES_CBC_ENCRYPT_DATA(iv = 0^16, data): the same function (one CBC block under a zero
  IV is ECB)
* C_UnwrapKey(CKM_AES_ECB, master, data): AES-ECB-decrypt(master, data), a different
  function: cards made for such a center hold keys made the same way (the emulator's
  `--derivation aes-ecb-unwrap`). The unwrapped key is marked sensitive and
  non-extractable, and read back so, before it is used.

The method is chosen once per center (docs/hsm.md). An SP 800-108 KDF would also compute
a different key and is not offered: no module this project is tested on has it.

The per-card key then computes or checks AES-CMAC. A token with CKM_AES_CMAC does it in
one call; a token without it but with CKM_AES_ECB and CKM_AES_CBC encryption gets the
CMAC assembled on the host from cipher blocks the HSM computes under the derived key
(`hsm.cmac`): the key still never leaves the HSM. A token with neither gets one error
naming what it lacks.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import pkcs11.exceptions as p11e
from pkcs11 import Attribute, Mechanism, MechanismFlag

from hsm.errors import HsmError

ZERO_IV = bytes(16)


class MechanismMissing(HsmError):
    """The token offers none of the mechanisms an operation can use."""


class DerivationMethod(enum.Enum):
    """How a per-card key is derived from the master key and one 16-byte block."""

    AES_ECB_ENCRYPT_DATA = "aes-ecb-encrypt-data"
    AES_CBC_ENCRYPT_DATA = "aes-cbc-encrypt-data"
    AES_ECB_UNWRAP = "aes-ecb-unwrap"

    @property
    def mechanism(self) -> Mechanism:
        return {DerivationMethod.AES_ECB_ENCRYPT_DATA: Mechanism.AES_ECB_ENCRYPT_DATA,
                DerivationMethod.AES_CBC_ENCRYPT_DATA: Mechanism.AES_CBC_ENCRYPT_DATA,
                DerivationMethod.AES_ECB_UNWRAP: Mechanism.AES_ECB}[self]

    @property
    def flag(self) -> MechanismFlag:
        """The capability the token must report for `mechanism`."""
        if self is DerivationMethod.AES_ECB_UNWRAP:
            return MechanismFlag.UNWRAP
        return MechanismFlag.DERIVE

    @property
    def master_usage(self) -> Attribute:
        """The one usage the master key gets: derive, or unwrap."""
        if self is DerivationMethod.AES_ECB_UNWRAP:
            return Attribute.UNWRAP
        return Attribute.DERIVE

    @property
    def card_function(self) -> str:
        """What the cards of such a center hold: AES-ECB-"encrypt" or "decrypt"(master, data)."""
        return "decrypt" if self is DerivationMethod.AES_ECB_UNWRAP else "encrypt"

    def describe(self) -> str:
        if self is DerivationMethod.AES_ECB_UNWRAP:
            return "C_UnwrapKey with CKM_AES_ECB"
        return f"C_DeriveKey with CKM_{self.mechanism.name}"

    def parameter(self, data: bytes) -> Any:
        """The mechanism parameter for one 16-byte block `data`."""
        if len(data) != 16:
            raise ValueError("derivation data must be one 16-byte block")
        if self is DerivationMethod.AES_CBC_ENCRYPT_DATA:
            return (ZERO_IV, data)
        if self is DerivationMethod.AES_ECB_UNWRAP:
            return None  # the block is the wrapped key itself
        return data

    @classmethod
    def parse(cls, text: str) -> DerivationMethod:
        for method in cls:
            if method.value == text:
                return method
        names = ", ".join(m.value for m in cls)
        raise ValueError(f"unknown derivation method {text!r} (one of {names})")


class CardMacMethod(enum.Enum):
    """How the HSM computes or checks AES-CMAC with a per-card key."""

    AES_CMAC = "aes-cmac"  # C_Sign / C_Verify with CKM_AES_CMAC
    CMAC_FROM_BLOCKS = "aes-cmac-from-blocks"  # CKM_AES_ECB + CKM_AES_CBC, see hsm.cmac

    def describe(self) -> str:
        if self is CardMacMethod.AES_CMAC:
            return "CKM_AES_CMAC"
        return "CMAC from CKM_AES_ECB and CKM_AES_CBC blocks"


# In order of preference: the first one the token offers is used.
DERIVATION_PREFERENCE = (DerivationMethod.AES_ECB_ENCRYPT_DATA,
                         DerivationMethod.AES_CBC_ENCRYPT_DATA,
                         DerivationMethod.AES_ECB_UNWRAP)
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
        """The first derivation method the token can run end to end (with a card MAC).

        A token that cannot is refused once, naming everything it lacks."""
        lacking: list[str] = []
        chosen = next((m for m in DERIVATION_PREFERENCE if self.offers(m.mechanism, m.flag)),
                      None)
        if chosen is None:
            lacking.append("CKM_AES_ECB_ENCRYPT_DATA or CKM_AES_CBC_ENCRYPT_DATA (C_DeriveKey)"
                           " or CKM_AES_ECB (C_UnwrapKey)")
        try:
            self.card_mac()
        except MechanismMissing:
            lacking.append("CKM_AES_CMAC (sign and verify) or CKM_AES_ECB and CKM_AES_CBC "
                           "(encrypt)")
        if chosen is None or lacking:
            raise MechanismMissing(
                f"the token cannot derive card keys: it lacks {' and '.join(lacking)}")
        return chosen

    def card_mac(self) -> CardMacMethod:
        """How AES-CMAC with a per-card key is computed on this token."""
        if (self.offers(Mechanism.AES_CMAC, MechanismFlag.SIGN)
                and self.offers(Mechanism.AES_CMAC, MechanismFlag.VERIFY)):
            return CardMacMethod.AES_CMAC
        if (self.offers(Mechanism.AES_ECB, MechanismFlag.ENCRYPT)
                and self.offers(Mechanism.AES_CBC, MechanismFlag.ENCRYPT)):
            return CardMacMethod.CMAC_FROM_BLOCKS
        raise MechanismMissing("the token cannot compute AES-CMAC: it lacks CKM_AES_CMAC "
                               "(sign and verify) and CKM_AES_ECB with CKM_AES_CBC (encrypt)")

    def check_derivation(self, method: DerivationMethod) -> None:
        """Refuse a center whose recorded method this token cannot run."""
        if not self.offers(method.mechanism, method.flag):
            raise MechanismMissing(
                f"the token lacks {_name(method.mechanism)} ({method.describe()}), the "
                "card-key derivation this center's cards were made for")
        self.card_mac()

    def hmac(self) -> None:
        """Refuse, naming the mechanism, when the token cannot keep the audit HMAC."""
        lacking = [_name(m) for m in (Mechanism.SHA256_HMAC, Mechanism.GENERIC_SECRET_KEY_GEN)
                   if not self.offers(m)]
        if lacking:
            raise MechanismMissing(
                f"the token cannot keep the audit MAC key: it lacks {' and '.join(lacking)}")

    def names(self) -> list[str]:
        return sorted(_name(m) for m in self.flags)
