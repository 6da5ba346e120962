"""Mechanism negotiation: what the token offers decides how card keys are derived.

The token here is SoftHSM2; its real mechanism list (C_GetMechanismList and
C_GetMechanismInfo) is the base, and tokens lacking a mechanism are that list with
the mechanism taken out (opencryptoki's software token lacks CKM_AES_ECB_ENCRYPT_DATA).
"""

from __future__ import annotations

import os

import pkcs11
import pytest
from pkcs11 import Attribute, Mechanism, MechanismFlag, ObjectClass
from test_hsm_derive import MASTER, reference  # type: ignore[import-not-found]

from hsm import HsmError, KeyManager
from hsm.derive import (
    HsmAttestationVerifier,
    HsmIssuerAuthenticator,
    create_master_key,
    import_master_key,
)
from hsm.mac import create_mac_key
from hsm.mechanisms import CardMacMethod, DerivationMethod, MechanismMissing, TokenMechanisms


def without(offered: TokenMechanisms, *mechs: Mechanism) -> TokenMechanisms:
    gone = {int(m) for m in mechs}
    return TokenMechanisms({m: f for m, f in offered.flags.items() if m not in gone})


def test_softhsm_reports_its_mechanisms(km: KeyManager) -> None:
    offered = km.mechanisms()
    assert offered.offers(Mechanism.AES_ECB_ENCRYPT_DATA, MechanismFlag.DERIVE)
    assert offered.offers(Mechanism.AES_CBC_ENCRYPT_DATA, MechanismFlag.DERIVE)
    assert offered.offers(Mechanism.AES_CMAC, MechanismFlag.SIGN)
    assert not offered.offers(Mechanism.AES_CMAC, MechanismFlag.GENERATE_KEY_PAIR)
    assert "CKM_SHA256_HMAC" in offered.names()
    assert offered.derivation() is DerivationMethod.AES_ECB_ENCRYPT_DATA
    offered.hmac()  # no refusal


def test_falls_back_to_cbc_encrypt_data(km: KeyManager) -> None:
    offered = without(km.mechanisms(), Mechanism.AES_ECB_ENCRYPT_DATA)
    assert offered.derivation() is DerivationMethod.AES_CBC_ENCRYPT_DATA


def test_a_token_with_neither_is_refused_naming_both(km: KeyManager) -> None:
    offered = without(km.mechanisms(), Mechanism.AES_ECB_ENCRYPT_DATA,
                      Mechanism.AES_CBC_ENCRYPT_DATA)
    with pytest.raises(MechanismMissing) as err:
        offered.derivation()
    assert "CKM_AES_ECB_ENCRYPT_DATA" in str(err.value)
    assert "CKM_AES_CBC_ENCRYPT_DATA" in str(err.value)
    # without CKM_AES_CMAC the CMAC is built from AES blocks; without those too, refused
    no_cmac = without(km.mechanisms(), Mechanism.AES_CMAC)
    assert no_cmac.card_mac() is CardMacMethod.CMAC_FROM_BLOCKS
    assert no_cmac.derivation() is DerivationMethod.AES_ECB_ENCRYPT_DATA
    with pytest.raises(MechanismMissing, match="CKM_AES_CMAC") as err:
        without(km.mechanisms(), Mechanism.AES_CMAC, Mechanism.AES_CBC).derivation()
    assert "CKM_AES_CBC" in str(err.value)
    with pytest.raises(MechanismMissing, match="CKM_AES_ECB_ENCRYPT_DATA"):
        without(km.mechanisms(), Mechanism.AES_ECB_ENCRYPT_DATA).check_derivation(
            DerivationMethod.AES_ECB_ENCRYPT_DATA)


def test_a_derive_flag_is_required(km: KeyManager) -> None:
    """Listed but not usable for C_DeriveKey does not count."""
    offered = km.mechanisms()
    flags = dict(offered.flags)
    for mech in (Mechanism.AES_ECB_ENCRYPT_DATA, Mechanism.AES_CBC_ENCRYPT_DATA):
        flags[int(mech)] = MechanismFlag.ENCRYPT
    with pytest.raises(MechanismMissing):
        TokenMechanisms(flags).derivation()


def test_hmac_lacking_is_named(km: KeyManager) -> None:
    with pytest.raises(MechanismMissing, match="CKM_SHA256_HMAC"):
        without(km.mechanisms(), Mechanism.SHA256_HMAC).hmac()


def test_every_method_yields_the_card_key(km: KeyManager) -> None:
    """The card holds AES-ECB(master, serial || domain): both methods compute it."""
    import_master_key(km, "ecb", MASTER, DerivationMethod.AES_ECB_ENCRYPT_DATA)
    import_master_key(km, "cbc", MASTER, DerivationMethod.AES_CBC_ENCRYPT_DATA)
    challenge = os.urandom(16)
    for label, method in (("ecb", DerivationMethod.AES_ECB_ENCRYPT_DATA),
                          ("cbc", DerivationMethod.AES_CBC_ENCRYPT_DATA)):
        auth = HsmIssuerAuthenticator(km, label, method)
        assert auth.method is method
        assert auth.respond("AB1234567890123", challenge) == \
            reference(MASTER, "AB1234567890123", challenge)
        verifier = HsmAttestationVerifier(km, label, method)
        assert verifier.method is method


def test_master_key_allows_only_its_method(km: KeyManager, raw_session: pkcs11.Session) -> None:
    create_master_key(km, "cbc-master", DerivationMethod.AES_CBC_ENCRYPT_DATA)
    key = raw_session.get_key(object_class=ObjectClass.SECRET_KEY, label="cbc-master")
    assert key[Attribute.ALLOWED_MECHANISMS] == [int(Mechanism.AES_CBC_ENCRYPT_DATA)]
    # SoftHSM2 enforces the list: the other method is refused for this key
    auth = HsmIssuerAuthenticator(km, "cbc-master", DerivationMethod.AES_ECB_ENCRYPT_DATA)
    with pytest.raises(HsmError) as err:
        auth.respond("AB1234567890123", bytes(16))
    assert "mechanism" in str(err.value).lower()


def test_parse_names_the_methods() -> None:
    assert DerivationMethod.parse("aes-cbc-encrypt-data") is DerivationMethod.AES_CBC_ENCRYPT_DATA
    with pytest.raises(ValueError, match="aes-ecb-encrypt-data"):
        DerivationMethod.parse("sp800-108")
    with pytest.raises(ValueError):
        DerivationMethod.AES_ECB_ENCRYPT_DATA.parameter(b"short")


def test_mac_key_is_made_where_hmac_is_offered(km: KeyManager) -> None:
    assert create_mac_key(km, "audit-mac") is True
