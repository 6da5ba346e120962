"""The main job end to end on a second PKCS#11 module: opencryptoki's software token.

Its software token (Debian 12: opencryptoki 3.8) has no CKM_AES_*_ENCRYPT_DATA and no
CKM_AES_CMAC, so the center chooses the unwrap derivation and CMACs built from AES blocks,
records it, and the emulator makes cards that hold such keys. Everything else (CA and
OCSP keys, signatures, the audit MAC) runs on the same token. The SoftHSM2 run of the
same job is tests/workflow/test_demo.py.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[2]
PIN_ENV = "MYNACARD_TEST_OCK_PIN"
PIN = "ock-2468"  # opencryptoki PINs are 4 to 8 bytes


@pytest.fixture
def ock_token() -> str:
    """A freshly reset opencryptoki token (in a child: the module is initialised once per
    process); its pkcs11: URI."""
    proc = subprocess.run(
        [sys.executable, "-c", "from hsm.opencryptoki import reset_token; "
         f"print(reset_token('mynacard-e2e', {PIN!r}))"],
        env={**os.environ, "PYTHONPATH": str(ROOT)}, capture_output=True, text=True,
        timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.strip()


@pytest.mark.slow
def test_issue_activate_sign_and_verify_on_opencryptoki(ock_token: str) -> None:
    assert "libopencryptoki" in ock_token
    env = {k: v for k, v in os.environ.items() if k not in ("PCSCLITE_CSOCK_NAME",
                                                            "MYNACARD_HOME")}
    env.update({"PYTHONPATH": str(ROOT), PIN_ENV: PIN})
    proc = subprocess.run(
        [sys.executable, "-m", "issuance.demo", "--pkcs11-uri", ock_token,
         "--pin-source", f"env:{PIN_ENV}"],
        env=env, cwd=ROOT, capture_output=True, text=True, timeout=400, check=False)
    out = proc.stdout
    assert proc.returncode == 0, out + proc.stderr[-3000:]
    # the method chosen for this module, printed by center init
    assert re.search(r"card-key derivation aes-ecb-unwrap \(C_UnwrapKey with CKM_AES_ECB; "
                     r"cards for this center hold AES-ECB-decrypt keys\), CMAC by CMAC from "
                     r"CKM_AES_ECB and CKM_AES_CBC blocks", out), out
    assert "found    HSM token pkcs11:token=mynacard-e2e?module-path=" in out
    for line in ("created  JPKI CA", "created  issuer master key",
                 "card locked against personalisation: issued",
                 "holder set: auth, sign, text, juki", "VALID: signing certificate",
                 "revocation: good by ocsp", "audit log intact", "demo finished"):
        assert line in out, line
    assert PIN not in out + proc.stderr
