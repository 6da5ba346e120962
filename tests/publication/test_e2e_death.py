"""End to end: a card is issued (a blank emulated card personalised with certificates from
the HSM-backed `IssuingCA`, holder = a registry resident), it signs a document on the
card, `mynacard verify` says valid; a death notice arrives through `mynacard notices
ingest`; `mynacard verify` on the same signature now says revoked, by OCSP and, after
`mynacard crl publish`, by CRL."""

from __future__ import annotations

import json
import os
from dataclasses import replace
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from publication_support import HSM, OPERATOR, env, load_resident, new_resident, notice_file, run

from card import contract
from card.attestation import KeyAttestor
from card.cms import sign_cms
from card.issuer import HostIssuerAuthenticator, IssuerClient
from card.jpki import JpkiClient, Key
from card.sample import SAMPLE_PIN_VALUES, SAMPLE_PINS, sample_attestation_gate, sample_identity
from card.transport import PcscTransport

DOCUMENT = "電子申請: 転居届\n".encode() * 40

pytestmark = [pytest.mark.personalises, pytest.mark.slow]


def _personalise(reader: str, home: Path, resident: Any) -> tuple[int, int]:
    """Personalise the blank card in `reader` for `resident`; certificates from the CA
    whose keys are in the HSM token of `home`. (signing serial, user-auth serial)."""
    from hsm import PinSource, open_key_manager
    from hsm.softhsm import use_softhsm
    from pki.ca import IssuingCA
    from pki.identity import Identity
    from pki.store import open_store

    profile = replace(sample_identity(), resident_code=resident.resident_code)
    identity = Identity(name=profile.facts.name, birth_date=profile.facts.birth_date,
                        sex=int(profile.facts.sex), address=profile.facts.address)
    os.environ.update(env())
    use_softhsm(home)
    with open_key_manager(f"pkcs11:token={HSM[1]}",
                          pin_source=PinSource.from_spec(HSM[3])) as km, \
            open_store(home / "store.sqlite") as store:
        ca = IssuingCA(key_source=km, ca=home / "ca", store=store)
        roots = {h.value: hc.root_cert for h, hc in ca.config.hierarchies.items()}

        gate = sample_attestation_gate()

        def issue(auth_pub: Any, sign_pub: Any, attest: KeyAttestor) -> Any:
            for fid, pub in ((contract.JPKI_AUTH_KEY, auth_pub),
                             (contract.JPKI_SIGN_KEY, sign_pub)):
                gate.require(attest, serial=serial, key_fid=fid, public_key=pub)
            sign = ca.issue_signing(public_key=sign_pub, identity=identity,
                                    holder_id=resident.resident_code,
                                    card_expiry=profile.expiry).certificate
            auth = ca.issue_user_authentication(public_key=auth_pub, identity=identity,
                                                holder_id=resident.resident_code,
                                                card_expiry=profile.expiry).certificate
            return sign, auth, roots["sign"], roots["auth"]

        with PcscTransport(reader) as transport:
            serial = IssuerClient(transport).serial()
            result = IssuerClient(transport).personalise(
                profile,
                authenticator=HostIssuerAuthenticator(contract.TEST_ISSUER_MASTER_KEY),
                issue_certificates=issue,
                integrity_signer=rsa.generate_private_key(public_exponent=65537,
                                                          key_size=2048),
                holder_pins=SAMPLE_PINS)
    assert result.sign_certificate is not None and result.auth_certificate is not None
    return result.sign_certificate.serial_number, result.auth_certificate.serial_number


def _verify(home: Path, sig: Path, doc: Path, *how: str) -> tuple[int, dict[str, Any]]:
    res = run(home, "verify", "--cms", str(sig), "--data", str(doc), *how, "--json")
    return res.returncode, json.loads(res.stdout)


def test_card_signs_then_holder_dies_then_signature_reports_revoked(
        blank_card: str, pub_home: Path, cli_ocsp: str, tmp_path: Path) -> None:
    profile = sample_identity()
    person = new_resident(name=profile.facts.name, address=profile.facts.address,
                          birth_date=profile.facts.birth_date)
    load_resident(pub_home, person)
    sign_serial, auth_serial = _personalise(blank_card, pub_home, person)

    with PcscTransport(blank_card) as transport:
        client = JpkiClient(transport)
        client.verify_pin(Key.SIGN, SAMPLE_PIN_VALUES["jpki_sign"])
        signature = sign_cms(client, DOCUMENT, key=Key.SIGN)
    doc, sig = tmp_path / "doc.txt", tmp_path / "doc.p7s"
    doc.write_bytes(DOCUMENT)
    sig.write_bytes(signature)

    rc, before = _verify(pub_home, sig, doc, "--ocsp", cli_ocsp)
    assert rc == 0, before
    assert before["valid"] is True
    assert before["revocation"]["method"] == "ocsp"
    assert before["revocation"]["status"] == "good"

    death = {"id": f"death-e2e-{person.resident_code}", "source": "juki", "kind": "death",
             "resident_code": person.resident_code, "effective_date": date.today().isoformat()}
    res = run(pub_home, "notices", "ingest", str(notice_file(tmp_path / "death.jsonl", death)),
              *OPERATOR, "--json", check=True)
    processed = json.loads(res.stdout)["processed"]
    assert processed["applied"] == 1 and processed["revoked"] == 2

    rc, after = _verify(pub_home, sig, doc, "--ocsp", cli_ocsp)
    assert rc == 1
    assert after["valid"] is False
    assert after["revocation"]["method"] == "ocsp"
    assert after["revocation"]["status"] == "revoked"

    out = tmp_path / "crl"
    run(pub_home, "crl", "publish", *HSM, "--out", str(out), check=True)
    from pki.ca import crl_file_name, load_ca

    shard = load_ca(pub_home / "ca").shard_of(sign_serial)
    rc, by_crl = _verify(pub_home, sig, doc, "--crl", str(out / "sign" / crl_file_name(shard)))
    assert rc == 1
    assert by_crl["revocation"]["method"] == "crl"
    assert by_crl["revocation"]["status"] == "revoked"
    status = json.loads(run(pub_home, "ca", "status", format(auth_serial, "x"), "--json",
                            check=True).stdout)
    assert status["status"] == "revoked" and status["cause"] == f"notice:juki:{death['id']}"
