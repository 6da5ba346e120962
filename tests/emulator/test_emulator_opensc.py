"""OpenSC reads the sample card through its JPKI driver and signs with the auth key."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding
from opensc_support import AUTH_KEY_ID, AUTH_TOKEN, OPENSC_PKCS11, pkcs11_tool, run, tool


@pytest.mark.personalises
def test_pkcs15_tool_lists_jpki_certificates_and_pins(sample_card: str) -> None:
    out = run(tool("pkcs15-tool"), "--reader", sample_card, "--list-certificates",
               "--list-pins")
    assert out.returncode == 0, out.stderr
    text = out.stdout
    for label in ("User Authentication Certificate", "Digital Signature Certificate",
                  "User Authentication Certificate CA", "Digital Signature Certificate CA"):
        assert f"X.509 Certificate [{label}]" in text
    pins = dict(re.findall(r"PIN \[([^\]]+)\].*?Tries left\s*:\s*(\d+)", text, re.S))
    assert pins == {"User Authentication PIN": "3", "Digital Signature PIN": "5"}


@pytest.mark.personalises
def test_pkcs11_tool_signs_with_the_auth_key(sample_card: str, tmp_path: Path) -> None:
    assert OPENSC_PKCS11.exists(), "OpenSC PKCS#11 module missing — run `make setup`"
    message = tmp_path / "message.bin"
    message.write_bytes(b"mynacard OpenSC interoperability")
    signature, cert = tmp_path / "sig.bin", tmp_path / "cert.der"
    pkcs11 = pkcs11_tool(sample_card, AUTH_TOKEN)
    out = run(*pkcs11, "--login", "--pin", "1234", "--sign", "--mechanism",
               "SHA256-RSA-PKCS", "--id", AUTH_KEY_ID, "-i", str(message), "-o", str(signature))
    assert out.returncode == 0, out.stderr
    out = run(*pkcs11, "--read-object", "--type", "cert", "--id", AUTH_KEY_ID,
               "-o", str(cert))
    assert out.returncode == 0, out.stderr
    certificate = x509.load_der_x509_certificate(cert.read_bytes())
    certificate.public_key().verify(  # type: ignore[union-attr]
        signature.read_bytes(), message.read_bytes(), padding.PKCS1v15(), hashes.SHA256()
    )
