"""OpenSC's JPKI driver reads a card issued by the center and signs with its
user-authentication key; the signature verifies against the center's certificate."""

from __future__ import annotations

from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding
from opensc_support import AUTH_TOKEN, pkcs11_tool, run, tool
from workflow_support import OPERATOR, PINS, apply, pins, resident

from issuance.personalisation.pins import PinKind
from issuance.storage import Database
from issuance.workflow.activate import Activator
from issuance.workflow.center import Center
from issuance.workflow.issue import Issuer

pytestmark = pytest.mark.personalises


def test_opensc_reads_and_signs_with_a_card_issued_by_the_center(
        db: Database, center: Center, blank_card: str, tmp_path: Path) -> None:
    app = apply(db, resident(47))
    result = Issuer(db, center, operator=OPERATOR).issue(app, blank_card)
    Activator(db, operator=OPERATOR).activate(blank_card, pins)

    out = run(tool("pkcs15-tool"), "--reader", blank_card, "--list-certificates")
    assert out.returncode == 0, out.stderr
    for label in ("User Authentication Certificate", "Digital Signature Certificate"):
        assert f"X.509 Certificate [{label}]" in out.stdout

    message, signature, cert = (tmp_path / "m.bin", tmp_path / "sig.bin", tmp_path / "c.der")
    message.write_bytes(b"relying party challenge, signed through OpenSC")
    p11 = pkcs11_tool(blank_card, AUTH_TOKEN)
    out = run(*p11, "--login", "--pin", PINS[PinKind.AUTH], "--sign", "--mechanism",
               "SHA256-RSA-PKCS", "--id", "01", "-i", str(message), "-o", str(signature))
    assert out.returncode == 0, out.stderr
    out = run(*p11, "--read-object", "--type", "cert", "--id", "01", "-o", str(cert))
    assert out.returncode == 0, out.stderr
    certificate = x509.load_der_x509_certificate(cert.read_bytes())
    assert certificate.serial_number == result.auth_serial
    assert certificate.issuer == center.ca.config.hierarchies[
        next(h for h in center.ca.config.hierarchies if h.value == "auth")].root_cert.subject
    certificate.public_key().verify(  # type: ignore[union-attr]
        signature.read_bytes(), message.read_bytes(), padding.PKCS1v15(), hashes.SHA256())
