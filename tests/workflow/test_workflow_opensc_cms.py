"""A document signed through OpenSC's PKCS#11 module with the signing key of a card the
center issued verifies with `mynacard verify`, which prints the holder's four facts."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from opensc_support import SIGN_TOKEN, pkcs11_tool, run
from workflow_support import OPERATOR, PINS, apply, pins, resident

from card.cms import assemble, signed_attributes
from issuance.cli.main import main as mynacard
from issuance.personalisation.pins import PinKind
from issuance.storage import Database
from issuance.workflow.activate import Activator
from issuance.workflow.center import Center
from issuance.workflow.issue import Issuer

SIGN_KEY_ID = "02"
pytestmark = pytest.mark.personalises


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
    p11 = pkcs11_tool(blank_card, SIGN_TOKEN)
    out = run(*p11, "--login", "--pin", PINS[PinKind.SIGN], "--sign", "--mechanism",
               "SHA256-RSA-PKCS", "--id", SIGN_KEY_ID, "-i", str(attrs), "-o", str(raw_sig))
    assert out.returncode == 0, out.stderr
    out = run(*p11, "--login", "--pin", PINS[PinKind.SIGN], "--read-object", "--type", "cert",
               "--id", SIGN_KEY_ID, "-o", str(cert_der))
    assert out.returncode == 0, out.stderr
    certificate = x509.load_der_x509_certificate(cert_der.read_bytes())
    assert certificate.serial_number == issued.sign_serial

    signature = tmp_path / "application.txt.p7s"
    signature.write_bytes(assemble(certificate, attrs.read_bytes(), raw_sig.read_bytes()))
    root = tmp_path / "sign-root.pem"
    root.write_bytes(next(hc.root_cert for h, hc in center.ca.config.hierarchies.items()
                          if h.value == "sign").public_bytes(Encoding.PEM))
    (tmp_path / "rp").mkdir()  # the relying party's home (a missing --home is refused)
    argv = ["--home", str(tmp_path / "rp"), "verify", "--cms", str(signature), "--data",
            str(document), "--root", str(root), "--no-revocation", "--json"]
    capsys.readouterr()
    assert mynacard(argv) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["valid"] is True
    assert result["identity"]["name"] == person.name

    document.write_bytes(document.read_bytes() + b"tampered")
    assert mynacard(argv) != 0
