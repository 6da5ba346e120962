"""An IssuingCA with an AttestationPolicy certifies only keys the card attested."""

from __future__ import annotations

import datetime as dt
import os

import pytest
from cryptography.hazmat.primitives import cmac
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.ciphers import algorithms

from card import contract
from card.attestation import HostAttestationVerifier, attestation_message, derive_card_auth_key
from pki.attestation import (
    AID_JPKI,
    KEY_FID,
    LABEL,
    AttestationPolicy,
    AttestationRefused,
    CardKeyEvidence,
    attested_message,
)
from pki.ca import CAConfig, CertificateRequest, IssuingCA
from pki.identity import Identity
from pki.profiles import Profile
from pki.store import CertificateStore

SERIAL = "400000000000077"
EXPIRY = dt.date(2035, 1, 1)


def _evidence(key: rsa.RSAPublicKey, fid: int, serial: str = SERIAL) -> CardKeyEvidence:
    """What a genuine card with `key` in slot `fid` answers (test master key)."""
    challenge = os.urandom(16)
    message = attestation_message(serial, contract.AID_JPKI, fid, key, challenge)
    mac = cmac.CMAC(algorithms.AES(derive_card_auth_key(contract.TEST_ISSUER_MASTER_KEY, serial)))
    mac.update(message)
    return CardKeyEvidence(card_serial=serial, key_fid=fid, challenge=challenge,
                           mac=mac.finalize())


def test_the_pki_layout_is_the_card_layout() -> None:
    key = rsa.generate_private_key(65537, 2048).public_key()
    ev = _evidence(key, contract.JPKI_SIGN_KEY)
    assert attested_message(ev, key) == attestation_message(
        SERIAL, contract.AID_JPKI, contract.JPKI_SIGN_KEY, key, ev.challenge)
    assert LABEL == contract.KEY_ATTESTATION_LABEL and AID_JPKI == contract.AID_JPKI
    assert KEY_FID == {Profile.SIGNING: contract.JPKI_SIGN_KEY,
                       Profile.USER_AUTHENTICATION: contract.JPKI_AUTH_KEY}


def test_the_ca_refuses_card_keys_without_the_cards_proof(
        km: object, session_ca: CAConfig, store: CertificateStore, adult: Identity) -> None:
    ca = IssuingCA(key_source=km, ca=session_ca, store=store,  # type: ignore[arg-type]
                   attestation=AttestationPolicy(
                       HostAttestationVerifier(contract.TEST_ISSUER_MASTER_KEY)))
    card_key = rsa.generate_private_key(65537, 2048).public_key()
    off_card = rsa.generate_private_key(65537, 2048).public_key()
    holder = "12345678903"

    def sign(evidence: CardKeyEvidence | None, key: rsa.RSAPublicKey = card_key) -> object:
        return ca.issue_signing(public_key=key, identity=adult, holder_id=holder,
                                card_expiry=EXPIRY, evidence=evidence)

    with pytest.raises(AttestationRefused, match="needs the card's key attestation"):
        sign(None)
    with pytest.raises(AttestationRefused, match="not for the signing key"):
        sign(_evidence(card_key, contract.JPKI_AUTH_KEY))  # the other key slot
    with pytest.raises(AttestationRefused, match="wrong attestation MAC"):
        sign(_evidence(card_key, contract.JPKI_SIGN_KEY), key=off_card)  # another key
    relabelled = _evidence(card_key, contract.JPKI_SIGN_KEY)
    relabelled = CardKeyEvidence("400000000000078", relabelled.key_fid, relabelled.challenge,
                                 relabelled.mac)
    with pytest.raises(AttestationRefused, match="wrong attestation MAC"):
        sign(relabelled)  # card A's proof presented for card B
    assert store.by_holder(holder) == []

    good = _evidence(card_key, contract.JPKI_SIGN_KEY)
    issued = sign(good)
    assert issued.certificate.public_key() == card_key  # type: ignore[attr-defined]
    with pytest.raises(AttestationRefused, match="used for a certificate already"):
        sign(good)
    # issue_many checks every request before signing anything
    auth_key = rsa.generate_private_key(65537, 2048).public_key()
    with pytest.raises(AttestationRefused):
        ca.issue_many([
            CertificateRequest(Profile.USER_AUTHENTICATION, auth_key, adult, holder, EXPIRY,
                               evidence=_evidence(auth_key, contract.JPKI_AUTH_KEY)),
            CertificateRequest(Profile.USER_AUTHENTICATION, off_card, adult, holder, EXPIRY),
        ])
    assert len(store.by_holder(holder)) == 1
