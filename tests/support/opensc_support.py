"""OpenSC's tools against a card in a reader: the PKCS#11 module, slots by token label."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

OPENSC_PKCS11 = Path("/usr/lib/x86_64-linux-gnu/opensc-pkcs11.so")
AUTH_TOKEN = "JPKI (User Authentication PIN)"
SIGN_TOKEN = "JPKI (Digital Signature PIN)"
AUTH_KEY_ID = "01"  # CKA_ID of the user-authentication key and certificate


def tool(name: str) -> str:
    """An OpenSC program; missing is a failure (make setup installs opensc), never a skip."""
    path = shutil.which(name)
    if path is None:
        pytest.fail(f"{name} not found (Debian package opensc) — run `make setup`")
    return path


def run(*argv: str) -> subprocess.CompletedProcess[str]:
    # PCSCLITE_CSOCK_NAME (set by the emulator plugin) points OpenSC at the private pcscd.
    return subprocess.run(argv, capture_output=True, text=True, timeout=60)


def slot(reader: str, token: str) -> str:
    """The PKCS#11 slot id of `token` on the card in `reader`."""
    out = run(tool("pkcs11-tool"), "--module", str(OPENSC_PKCS11), "-L")
    assert out.returncode == 0, out.stderr
    current = None
    for line in out.stdout.splitlines():
        m = re.match(r"Slot \d+ \((0x[0-9a-f]+)\): (.*)$", line)
        if m:
            current = m.group(1) if m.group(2).strip() == reader else None
        elif current and "token label" in line and line.split(":", 1)[1].strip() == token:
            return current
    pytest.fail(f"no {token!r} token in {reader!r}:\n{out.stdout}")


def pkcs11_tool(reader: str, token: str) -> list[str]:
    """`pkcs11-tool` with OpenSC's module and the slot of `token` in `reader`."""
    return [tool("pkcs11-tool"), "--module", str(OPENSC_PKCS11), "--slot", slot(reader, token)]
