"""`make demo` (`python -m issuance.demo`) runs end to end, in well under two minutes."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[2]


@pytest.mark.slow
def test_demo_runs_end_to_end() -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("PCSCLITE_CSOCK_NAME",
                                                            "MYNACARD_HOME")}
    env["PYTHONPATH"] = str(ROOT)
    started = time.monotonic()
    proc = subprocess.run([sys.executable, "-m", "issuance.demo"], env=env, cwd=ROOT,
                          capture_output=True, text=True, timeout=180, check=False)
    took = time.monotonic() - started
    out = proc.stdout
    assert proc.returncode == 0, out + proc.stderr
    assert took < 120
    steps = re.findall(r"^\[(\d+)/(\d+)\] ", out, re.M)
    assert len(steps) == int(steps[0][1]) >= 9
    assert out.count("      ok (") == len(steps)
    for line in ("created  HSM token", "created  JPKI CA", "created  issuer master key",
                 "card locked against personalisation: issued",
                 "holder set: auth, sign, text, juki", "VALID: signing certificate",
                 "revocation: good by ocsp", "death notice from 住基ネット",
                 "revocation: revoked by ocsp", "audit log intact", "demo finished"):
        assert line in out, line
    assert "DEMO2026" not in out + proc.stderr  # the holder's signing password
    # the emulator and the responder were shut down
    home = re.search(r"home (\S+)", out)
    assert home is not None and not Path(home.group(1)).exists()
