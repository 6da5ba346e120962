"""ATTEST KEY over PC/SC: the card MACs the key in its own slot under its card-auth key."""

from __future__ import annotations

import os

import pytest
from card_support import ISSUER

from card import contract
from card.attestation import HostAttestationVerifier
from card.errors import ConditionsNotSatisfied, DataNotFound
from card.issuer import IssuerClient
from card.transport import PcscTransport

pytestmark = pytest.mark.personalises


def test_the_card_attests_the_keys_it_generated(blank_card: str) -> None:
    verifier = HostAttestationVerifier(contract.TEST_ISSUER_MASTER_KEY)
    with PcscTransport(blank_card) as transport:
        client = IssuerClient(transport)
        with pytest.raises(DataNotFound):  # no key yet: 6A88, no issuer authentication needed
            client.attest_key(contract.JPKI_SIGN_KEY, os.urandom(16))
        with pytest.raises(ValueError):
            client.attest_key(contract.JPKI_SIGN_CERT, os.urandom(16))
        serial = client.authenticate(ISSUER)
        auth = client.generate_key(contract.JPKI_AUTH_KEY)
        sign = client.generate_key(contract.JPKI_SIGN_KEY)
        for fid, key in ((contract.JPKI_AUTH_KEY, auth), (contract.JPKI_SIGN_KEY, sign)):
            evidence = client.key_attestation(fid, os.urandom(16))
            assert evidence.serial == serial and evidence.public_key == key
            assert verifier.verify(serial, evidence.message(), evidence.mac)
        # the MAC is for this challenge and this key only
        evidence = client.key_attestation(contract.JPKI_SIGN_KEY, bytes(16))
        other = client.key_attestation(contract.JPKI_SIGN_KEY, b"\x01" * 16)
        assert evidence.mac != other.mac
        swapped = evidence.message().replace(
            sign.public_numbers().n.to_bytes(256, "big"),
            auth.public_numbers().n.to_bytes(256, "big"))
        assert not verifier.verify(serial, swapped, evidence.mac)
        # after termination the card attests nothing
        client.terminate()
        with pytest.raises(ConditionsNotSatisfied):
            client.attest_key(contract.JPKI_SIGN_KEY, os.urandom(16))
