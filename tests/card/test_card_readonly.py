"""Read-only card tests: they run against the session's sample card, or against any card
given with `pytest --reader NAME|INDEX` (a real card), and change nothing on it.

No test here personalises a card or gives a PIN it does not know to be right: a PIN comes
only from a pin source (`--mynacard-pin-source auth=env:NAME`), and only while the PIN
has all its tries left, so a wrong source costs one try, never the card.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from asn1crypto import cms
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding

from card import contract
from card.cli import read_pin
from card.common_ap import CommonClient
from card.info import card_info
from card.jpki import CertKind, JpkiClient, Key
from card.session import area_client, channel_for
from card.transport import PcscTransport

DOCUMENT = "読み取り専用の試験\n".encode() * 10


def _tries(key: Key) -> int:
    return contract.JPKI.pin(key.pin_fid).tries


def test_info_uses_no_try_and_names_every_area(mynacard_sample_card: str) -> None:
    with PcscTransport(mynacard_sample_card) as transport:
        before = card_info(transport)
        again = card_info(transport)
    assert before == again  # reading twice changes nothing, tries included
    assert before["life_cycle"] == "active"
    assert set(before["applications"]) == {area.name for area in contract.AREAS}
    assert before["applications"]["jpki"] is True
    assert before["serial"] and len(before["serial"]) == contract.SERIAL_LENGTH
    assert all(pin["state"] == "ok" for pin in before["pins"]), before["pins"]


def test_info_command_with_a_reader_index(mynacard_sample_card: str, tmp_path: Path) -> None:
    from card.transport import list_readers

    index = list_readers().index(mynacard_sample_card)
    (tmp_path / "home").mkdir()
    out = subprocess.run(
        [sys.executable, "-m", "issuance.cli.main", "--home", str(tmp_path / "home"),
         "card", "info", "--reader", str(index), "--json"],
        capture_output=True, text=True, timeout=60, env=dict(os.environ))
    assert out.returncode == 0, out.stderr
    assert f'"reader": "{mynacard_sample_card}"' in out.stdout


def test_certificates_chain_to_their_cas(mynacard_sample_card: str) -> None:
    with PcscTransport(mynacard_sample_card) as transport:
        jpki = JpkiClient(transport)
        auth = jpki.read_certificate(CertKind.AUTH)
        auth_ca = jpki.read_certificate(CertKind.AUTH_CA)
        sign_ca = jpki.read_certificate(CertKind.SIGN_CA)
        card_key = jpki.public_key(Key.AUTH)
    assert auth.public_key().public_numbers() == card_key.public_numbers()
    assert auth.issuer == auth_ca.subject
    auth.verify_directly_issued_by(auth_ca)
    assert sign_ca.subject != auth_ca.subject  # two hierarchies


def test_every_public_file_of_every_area_reads(mynacard_sample_card: str) -> None:
    with PcscTransport(mynacard_sample_card) as transport:
        channel = channel_for(transport)
        read = {}
        for area in contract.AREAS:
            client = area_client(channel, area)
            for spec in area.files:
                if spec.read is contract.Access.FREE and spec.record_length:
                    read[(area.name, spec.name)] = CommonClient(channel).read_record(spec.fid)
                elif spec.read is contract.Access.FREE:
                    read[(area.name, spec.name)] = client.read_raw(spec.fid, spec.size)
        jpki = JpkiClient(channel)
        assert jpki.token_label().startswith("JPKIAPICCTOKEN")
        assert jpki.cert_availability().auth
    assert read and all(len(data) > 0 for data in read.values())


def test_pin_tries_left_are_read_without_using_one(mynacard_sample_card: str) -> None:
    with PcscTransport(mynacard_sample_card) as transport:
        jpki = JpkiClient(transport)
        first = {key: jpki.tries_left_for(key) for key in Key}
        second = {key: jpki.tries_left_for(key) for key in Key}
    assert first == second
    assert all(0 < tries <= _tries(key) for key, tries in first.items())


def _pin_source(sources: dict[str, str], kind: str) -> str:
    if kind not in sources:
        pytest.skip(f"no PIN for this card: give --mynacard-pin-source {kind}=env:NAME")
    return sources[kind]


def test_authentication_signature_with_a_pin_source(
    mynacard_sample_card: str, mynacard_pin_sources: dict[str, str]
) -> None:
    pin = read_pin(_pin_source(mynacard_pin_sources, "auth"), "")
    with PcscTransport(mynacard_sample_card) as transport:
        jpki = JpkiClient(transport)
        if jpki.tries_left_for(Key.AUTH) < _tries(Key.AUTH):
            pytest.skip("the user-authentication PIN has used tries: not risking more")
        jpki.verify_pin(Key.AUTH, pin)
        signature = jpki.sign_sha256(Key.AUTH, DOCUMENT)
        certificate = jpki.read_certificate(CertKind.AUTH)
    public = certificate.public_key()
    public.verify(signature, DOCUMENT, padding.PKCS1v15(), hashes.SHA256())  # type: ignore[union-attr]
    with PcscTransport(mynacard_sample_card) as transport:
        assert JpkiClient(transport).tries_left_for(Key.AUTH) == _tries(Key.AUTH)


def test_card_sign_command_with_a_pin_source(
    mynacard_sample_card: str, mynacard_pin_sources: dict[str, str], tmp_path: Path
) -> None:
    spec = _pin_source(mynacard_pin_sources, "sign")
    with PcscTransport(mynacard_sample_card) as transport:
        if JpkiClient(transport).tries_left_for(Key.SIGN) < _tries(Key.SIGN):
            pytest.skip("the signing password has used tries: not risking more")
    doc = tmp_path / "doc.txt"
    doc.write_bytes(DOCUMENT)
    (tmp_path / "home").mkdir()
    out = subprocess.run(
        [sys.executable, "-m", "issuance.cli.main", "--home", str(tmp_path / "home"),
         "card", "sign", str(doc), "--reader", mynacard_sample_card, "--pin-source", spec],
        capture_output=True, text=True, timeout=60, env=dict(os.environ))
    assert out.returncode == 0, out.stderr
    signed = cms.ContentInfo.load((tmp_path / "doc.txt.p7s").read_bytes())
    assert signed["content_type"].native == "signed_data"
