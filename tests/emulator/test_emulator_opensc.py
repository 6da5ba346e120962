"""OpenSC reads the sample card through its JPKI driver and signs with the auth key."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding

OPENSC_PKCS11 = Path("/usr/lib/x86_64-linux-gnu/opensc-pkcs11.so")
AUTH_TOKEN = "JPKI (User Authentication PIN)"
AUTH_KEY_ID = "01"


def _tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.fail(f"{name} not found (Debian package opensc) — run `make setup`")
    return path


def _run(*argv: str) -> subprocess.CompletedProcess[str]:
    # PCSCLITE_CSOCK_NAME (set by the plugin) points OpenSC at the private pcscd.
    return subprocess.run(argv, capture_output=True, text=True, timeout=60)


def _slot(reader: str, token: str) -> str:
    """The PKCS#11 slot id of `token` in `reader`, from `pkcs11-tool -L`."""
    out = _run(_tool("pkcs11-tool"), "--module", str(OPENSC_PKCS11), "-L")
    assert out.returncode == 0, out.stderr
    slot = None
    for line in out.stdout.splitlines():
        m = re.match(r"Slot \d+ \((0x[0-9a-f]+)\): (.*)$", line)
        if m:
            slot = m.group(1) if m.group(2).strip() == reader else None
        elif slot and "token label" in line and line.split(":", 1)[1].strip() == token:
            return slot
    pytest.fail(f"no {token!r} token in {reader!r}:\n{out.stdout}")


@pytest.mark.personalises
def test_pkcs15_tool_lists_jpki_certificates_and_pins(sample_card: str) -> None:
    out = _run(_tool("pkcs15-tool"), "--reader", sample_card, "--list-certificates",
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
    slot = _slot(sample_card, AUTH_TOKEN)
    message = tmp_path / "message.bin"
    message.write_bytes(b"mynacard OpenSC interoperability")
    signature, cert = tmp_path / "sig.bin", tmp_path / "cert.der"
    pkcs11 = [_tool("pkcs11-tool"), "--module", str(OPENSC_PKCS11), "--slot", slot]
    out = _run(*pkcs11, "--login", "--pin", "1234", "--sign", "--mechanism",
               "SHA256-RSA-PKCS", "--id", AUTH_KEY_ID, "-i", str(message), "-o", str(signature))
    assert out.returncode == 0, out.stderr
    out = _run(*pkcs11, "--read-object", "--type", "cert", "--id", AUTH_KEY_ID,
               "-o", str(cert))
    assert out.returncode == 0, out.stderr
    certificate = x509.load_der_x509_certificate(cert.read_bytes())
    certificate.public_key().verify(  # type: ignore[union-attr]
        signature.read_bytes(), message.read_bytes(), padding.PKCS1v15(), hashes.SHA256()
    )
