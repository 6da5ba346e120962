"""CMS signatures made on the card verify with OpenSSL and through `mynacard card sign`."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from asn1crypto import cms
from cryptography.hazmat.primitives.serialization import Encoding

from card.cms import sign_cms
from card.errors import SecurityStatusNotSatisfied
from card.jpki import CertKind, JpkiClient, Key
from card.sample import SAMPLE_PIN_VALUES
from card.transport import PcscTransport
from issuance.cli.main import main as mynacard

DOCUMENT = "申請書: 転入届\n".encode() * 50


def _openssl_verify(signature: Path, data: Path, ca: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["openssl", "cms", "-verify", "-binary", "-inform", "DER", "-in", str(signature),
         "-content", str(data), "-CAfile", str(ca), "-purpose", "any", "-out", "/dev/null"],
        capture_output=True, text=True, check=False)


@pytest.mark.parametrize("key, pin", [(Key.SIGN, "jpki_sign"), (Key.AUTH, "jpki_auth")])
def test_cms_from_the_card_verifies_with_openssl(
    sample_card: str, tmp_path: Path, key: Key, pin: str
) -> None:
    with PcscTransport(sample_card) as transport:
        client = JpkiClient(transport)
        with pytest.raises(SecurityStatusNotSatisfied):
            sign_cms(client, DOCUMENT, key=key,
                     certificate=client.read_certificate(CertKind.AUTH))
        client.verify_pin(key, SAMPLE_PIN_VALUES[pin])
        signature = sign_cms(client, DOCUMENT, key=key)
        ca = client.read_certificate(CertKind.SIGN_CA if key is Key.SIGN else CertKind.AUTH_CA)
    (tmp_path / "doc").write_bytes(DOCUMENT)
    (tmp_path / "doc.p7s").write_bytes(signature)
    (tmp_path / "ca.pem").write_bytes(ca.public_bytes(Encoding.PEM))
    ok = _openssl_verify(tmp_path / "doc.p7s", tmp_path / "doc", tmp_path / "ca.pem")
    assert ok.returncode == 0, ok.stderr
    (tmp_path / "doc").write_bytes(DOCUMENT + b"tampered")
    bad = _openssl_verify(tmp_path / "doc.p7s", tmp_path / "doc", tmp_path / "ca.pem")
    assert bad.returncode != 0
    parsed = cms.ContentInfo.load(signature)["content"]
    assert parsed["encap_content_info"]["content"].native is None  # detached


def test_card_sign_command_writes_a_signature(
    sample_card: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    doc = tmp_path / "doc.txt"
    doc.write_bytes(DOCUMENT)
    (tmp_path / "home").mkdir()  # an existing home (a missing --home is refused)
    monkeypatch.setenv("SIGN_PASSWORD", SAMPLE_PIN_VALUES["jpki_sign"])
    rc = mynacard(["--home", str(tmp_path / "home"), "card", "sign", str(doc), "--reader",
                   sample_card, "--pin-source", "env:SIGN_PASSWORD"])
    assert rc == 0
    assert cms.ContentInfo.load((tmp_path / "doc.txt.p7s").read_bytes())["content_type"].native \
        == "signed_data"
    assert (tmp_path / "doc.txt.p7s").stat().st_mode & 0o777 == 0o600
    first = (tmp_path / "doc.txt.p7s").read_bytes()
    # an existing signature or a planted symlink: refused before the card is asked
    victim = tmp_path / "victim"
    victim.write_bytes(b"precious")
    (tmp_path / "link.p7s").symlink_to(victim)
    for out in ([], ["--out", str(tmp_path / "link.p7s")]):
        capsys.readouterr()
        rc = mynacard(["--home", str(tmp_path / "home"), "card", "sign", str(doc), "--reader",
                       sample_card, "--pin-source", "env:SIGN_PASSWORD", *out])
        assert rc == 1 and "--force" in capsys.readouterr().err
    assert (tmp_path / "doc.txt.p7s").read_bytes() == first
    rc = mynacard(["--home", str(tmp_path / "home"), "card", "sign", str(doc), "--reader",
                   sample_card, "--pin-source", "env:SIGN_PASSWORD", "--out",
                   str(tmp_path / "link.p7s"), "--force"])
    assert rc == 0 and not (tmp_path / "link.p7s").is_symlink()
    assert victim.read_bytes() == b"precious"
    monkeypatch.setenv("SIGN_PASSWORD", "WRONG1")
    rc = mynacard(["--home", str(tmp_path / "home"), "card", "sign", str(doc), "--reader",
                   sample_card, "--pin-source", "env:SIGN_PASSWORD", "--out",
                   str(tmp_path / "x.p7s")])
    err = capsys.readouterr().err
    assert rc == 1  # refused: wrong password
    assert "4 tries left" in err
    assert "WRONG1" not in err
    assert not (tmp_path / "x.p7s").exists()
