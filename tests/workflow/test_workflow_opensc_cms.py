"""A document signed through OpenSC's PKCS#11 module with the signing key of a card the
center issued verifies with `mynacard verify`, which prints the holder's four facts."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from workflow_support import OPERATOR, PINS, apply, pins, resident

from card.cms import assemble, signed_attributes
from issuance.cli.main import main as mynacard
from issuance.personalisation.pins import PinKind
from issuance.storage import Database
from issuance.workflow.activate import Activator
from issuance.workflow.center import Center
from issuance.workflow.issue import Issuer

OPENSC_PKCS11 = Path("/usr/lib/x86_64-linux-gnu/opensc-pkcs11.so")
SIGN_TOKEN = "JPKI (Digital Signature PIN)"
SIGN_KEY_ID = "02"
pytestmark = pytest.mark.personalises


def _pkcs11_tool() -> str:
    path = shutil.which("pkcs11-tool")
    if path is None:
        pytest.fail("pkcs11-tool not found (Debian package opensc) — run `make setup`")
    return path


def _run(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, timeout=60)


def _signing_slot(reader: str) -> str:
    out = _run(_pkcs11_tool(), "--module", str(OPENSC_PKCS11), "-L")
    assert out.returncode == 0, out.stderr
    slot = None
    for line in out.stdout.splitlines():
        m = re.match(r"Slot \d+ \((0x[0-9a-f]+)\): (.*)$", line)
        if m:
            slot = m.group(1) if m.group(2).strip() == reader else None
        elif slot and "token label" in line and line.split(":", 1)[1].strip() == SIGN_TOKEN:
            return slot
    pytest.fail(f"no {SIGN_TOKEN!r} token in {reader!r}:\n{out.stdout}")


def test_opensc_signature_verifies_with_mynacard_verify(
        db: Database, center: Center, blank_card: str, tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    person = resident(52)
    app = apply(db, person)
    issued = Issuer(db, center, operator=OPERATOR).issue(app, blank_card)
    Activator(db, operator=OPERATOR).activate(blank_card, pins)

    document = tmp_path / "application.txt"
    document.write_bytes("転居届 — signed through OpenSC\n".encode())
    attrs, raw_sig, cert_der = (tmp_path / "attrs.der", tmp_path / "sig.bin",
                                tmp_path / "cert.der")
    attrs.write_bytes(signed_attributes(document.read_bytes()))
    p11 = [_pkcs11_tool(), "--module", str(OPENSC_PKCS11), "--slot", _signing_slot(blank_card)]
    out = _run(*p11, "--login", "--pin", PINS[PinKind.SIGN], "--sign", "--mechanism",
               "SHA256-RSA-PKCS", "--id", SIGN_KEY_ID, "-i", str(attrs), "-o", str(raw_sig))
    assert out.returncode == 0, out.stderr
    out = _run(*p11, "--login", "--pin", PINS[PinKind.SIGN], "--read-object", "--type", "cert",
               "--id", SIGN_KEY_ID, "-o", str(cert_der))
    assert out.returncode == 0, out.stderr
    certificate = x509.load_der_x509_certificate(cert_der.read_bytes())
    assert certificate.serial_number == issued.sign_serial

    signature = tmp_path / "application.txt.p7s"
    signature.write_bytes(assemble(certificate, attrs.read_bytes(), raw_sig.read_bytes()))
    root = tmp_path / "sign-root.pem"
    root.write_bytes(next(hc.root_cert for h, hc in center.ca.config.hierarchies.items()
                          if h.value == "sign").public_bytes(Encoding.PEM))
    argv = ["--home", str(tmp_path / "rp"), "verify", "--cms", str(signature), "--data",
            str(document), "--root", str(root), "--no-revocation", "--json"]
    capsys.readouterr()
    assert mynacard(argv) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["valid"] is True
    assert result["identity"]["name"] == person.name

    document.write_bytes(document.read_bytes() + b"tampered")
    assert mynacard(argv) != 0
