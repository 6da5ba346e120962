"""OpenSC's JPKI driver reads a card issued by the center and signs with its
user-authentication key; the signature verifies against the center's certificate."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding
from workflow_support import OPERATOR, PINS, apply, pins, resident

from issuance.personalisation.pins import PinKind
from issuance.storage import Database
from issuance.workflow.activate import Activator
from issuance.workflow.center import Center
from issuance.workflow.issue import Issuer

OPENSC_PKCS11 = Path("/usr/lib/x86_64-linux-gnu/opensc-pkcs11.so")
AUTH_TOKEN = "JPKI (User Authentication PIN)"
pytestmark = pytest.mark.personalises


def _tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.fail(f"{name} not found (Debian package opensc) — run `make setup`")
    return path


def _run(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, timeout=60)


def _slot(reader: str) -> str:
    out = _run(_tool("pkcs11-tool"), "--module", str(OPENSC_PKCS11), "-L")
    assert out.returncode == 0, out.stderr
    slot = None
    for line in out.stdout.splitlines():
        m = re.match(r"Slot \d+ \((0x[0-9a-f]+)\): (.*)$", line)
        if m:
            slot = m.group(1) if m.group(2).strip() == reader else None
        elif slot and "token label" in line and line.split(":", 1)[1].strip() == AUTH_TOKEN:
            return slot
    pytest.fail(f"no {AUTH_TOKEN!r} token in {reader!r}:\n{out.stdout}")


def test_opensc_reads_and_signs_with_a_card_issued_by_the_center(
        db: Database, center: Center, blank_card: str, tmp_path: Path) -> None:
    app = apply(db, resident(47))
    result = Issuer(db, center, operator=OPERATOR).issue(app, blank_card)
    Activator(db, operator=OPERATOR).activate(blank_card, pins)

    out = _run(_tool("pkcs15-tool"), "--reader", blank_card, "--list-certificates")
    assert out.returncode == 0, out.stderr
    for label in ("User Authentication Certificate", "Digital Signature Certificate"):
        assert f"X.509 Certificate [{label}]" in out.stdout

    slot = _slot(blank_card)
    message, signature, cert = (tmp_path / "m.bin", tmp_path / "sig.bin", tmp_path / "c.der")
    message.write_bytes(b"relying party challenge, signed through OpenSC")
    p11 = [_tool("pkcs11-tool"), "--module", str(OPENSC_PKCS11), "--slot", slot]
    out = _run(*p11, "--login", "--pin", PINS[PinKind.AUTH], "--sign", "--mechanism",
               "SHA256-RSA-PKCS", "--id", "01", "-i", str(message), "-o", str(signature))
    assert out.returncode == 0, out.stderr
    out = _run(*p11, "--read-object", "--type", "cert", "--id", "01", "-o", str(cert))
    assert out.returncode == 0, out.stderr
    certificate = x509.load_der_x509_certificate(cert.read_bytes())
    assert certificate.serial_number == result.auth_serial
    assert certificate.issuer == center.ca.config.hierarchies[
        next(h for h in center.ca.config.hierarchies if h.value == "auth")].root_cert.subject
    certificate.public_key().verify(  # type: ignore[union-attr]
        signature.read_bytes(), message.read_bytes(), padding.PKCS1v15(), hashes.SHA256())
