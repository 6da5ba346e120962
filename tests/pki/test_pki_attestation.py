"""An IssuingCA with an AttestationPolicy certifies only keys the card attested."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import cmac, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.ciphers import algorithms
from test_pki_cli import HSM, PIN, run  # type: ignore[import-not-found]

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
                       Profile.USER_AUTHENTICATION: contract.JPKI_AUTH_KEY,
                       Profile.OPERATOR: contract.JPKI_AUTH_KEY}  # an operator card's key


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


def test_ca_issue_on_a_ca_that_requires_attestation(tmp_path: Path) -> None:
    """`ca init --card-key-attestation`: `ca issue` and `ca issue-batch` certify a card key
    only with the card's attestation, checked in the HSM holding the master key."""
    home = tmp_path / "home"
    home.mkdir()
    run(home, "ca", "init", *HSM, "--so-pin-source", "env:CLI_TEST_SO_PIN", "--shards", "1",
        "--card-key-attestation", "issuer-master", check=True)
    assert json.loads((home / "ca" / "ca.json").read_text())[
        "card_key_attestation_master"] == "issuer-master"
    env = dict(os.environ, CLI_TEST_PIN=PIN, PYTHONPATH=str(Path(__file__).parents[2]))
    env.pop("SOFTHSM2_CONF", None)
    subprocess.run([sys.executable, "-c", (
        "import sys; from pathlib import Path; from hsm import PinSource, open_key_manager; "
        "from hsm.softhsm import use_softhsm; from hsm.derive import import_master_key; "
        "use_softhsm(Path(sys.argv[1])); "
        "km = open_key_manager('pkcs11:token=cli-test', "
        "pin_source=PinSource.from_spec('env:CLI_TEST_PIN')); "
        "import_master_key(km, 'issuer-master', bytes(range(0x40, 0x50))); km.close()"),
        str(home)], check=True, env=env, timeout=60)
    key = rsa.generate_private_key(65537, 2048).public_key()
    (home / "card.pub").write_bytes(key.public_bytes(serialization.Encoding.PEM,
                                                     serialization.PublicFormat.SubjectPublicKeyInfo))
    (home / "id.json").write_text(json.dumps({"name": "佐藤 花子", "sex": 2,
                                              "birth_date": "1985-07-07", "address": "大阪府"},
                                             ensure_ascii=False), encoding="utf-8")

    def evidence(fid: int) -> dict[str, str]:
        ev = _evidence(key, fid)
        return {"card_serial": ev.card_serial, "key_fid": f"{ev.key_fid:04X}",
                "challenge": ev.challenge.hex(), "mac": ev.mac.hex()}

    issue = ["ca", "issue", *HSM, "--profile", "signing", "--public-key", str(home / "card.pub"),
             "--identity", str(home / "id.json"), "--holder-id", "R1",
             "--card-expiry", "2035-01-01", "--json"]
    res = run(home, *issue)
    assert res.returncode == 1 and "attestation" in res.stderr
    # one line for a person, then (with --json) the error as one JSON document
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 2 and "Traceback" not in res.stderr
    assert json.loads(lines[-1])["exit"] == 1 and "attestation" in json.loads(lines[-1])["error"]
    (home / "auth-ev.json").write_text(json.dumps(evidence(contract.JPKI_AUTH_KEY)))
    res = run(home, *issue, "--attestation", str(home / "auth-ev.json"))
    assert res.returncode == 1 and "not for the signing key" in res.stderr
    (home / "sign-ev.json").write_text(json.dumps(evidence(contract.JPKI_SIGN_KEY)))
    res = run(home, *issue, "--attestation", str(home / "sign-ev.json"), check=True)
    assert json.loads(res.stdout)["profile"] == "signing"

    # a card makes a new key for every certificate: the batch certifies the auth key
    key = rsa.generate_private_key(65537, 2048).public_key()
    pem = key.public_bytes(serialization.Encoding.PEM,
                           serialization.PublicFormat.SubjectPublicKeyInfo).decode()
    line = {"profile": "user-authentication", "public_key": pem, "holder_id": "R1",
            "identity": json.loads((home / "id.json").read_text()),
            "card_expiry": "2035-01-01"}
    (home / "batch.jsonl").write_text(json.dumps(line) + "\n")
    res = run(home, "ca", "issue-batch", *HSM, str(home / "batch.jsonl"), "--json")
    assert res.returncode == 1 and "attestation" in res.stderr
    line["attestation"] = evidence(contract.JPKI_AUTH_KEY)
    (home / "batch.jsonl").write_text(json.dumps(line) + "\n")
    res = run(home, "ca", "issue-batch", *HSM, str(home / "batch.jsonl"), "--json", check=True)
    assert len(json.loads(res.stdout)["issued"]) == 1
