"""The pytest plugin travels: a wheel of mynacard, installed into a fresh virtual
environment (no system site-packages, no source tree), runs README's example test file
with emulated cards and the HSM fixtures, and leaves PC/SC and SoftHSM2 settings alone
when no fixture is used."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
UNTOUCHED = '''
import os


def test_settings_are_left_alone():
    assert os.environ["PCSCLITE_CSOCK_NAME"] == "/nonexistent/pcscd.comm"
    assert os.environ["SOFTHSM2_CONF"] == "/nonexistent/softhsm2.conf"
'''


def readme_example() -> str:
    text = (REPO / "README.md").read_text()
    found = re.search(r"<!-- example-test -->\n```python\n(.*?)```", text, re.S)
    assert found, "README.md lost its example test"
    return found.group(1)


def _run(argv: list[str], cwd: Path, env: dict[str, str],
         timeout: float) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=timeout)


@pytest.mark.slow
def test_wheel_in_a_fresh_venv_runs_the_readme_example(
    mynacard_emulator: object, tmp_path: Path
) -> None:
    # Nothing of this checkout may leak in: no PYTHONPATH, no jar override, no sockets.
    env = {k: v for k, v in os.environ.items()
           if k not in ("PYTHONPATH", "MYNACARD_BRIDGE_JAR", "PCSCLITE_CSOCK_NAME",
                        "SOFTHSM2_CONF", "VIRTUAL_ENV")}
    built = _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w",
                  str(tmp_path / "dist"), str(REPO)], tmp_path, env, 300)
    assert built.returncode == 0, built.stderr[-2000:]
    (wheel,) = (tmp_path / "dist").glob("mynacard-*.whl")
    venv = tmp_path / "venv"
    made = _run([sys.executable, "-m", "venv", str(venv)], tmp_path, env, 120)
    assert made.returncode == 0, made.stderr
    assert "include-system-site-packages = false" in (venv / "pyvenv.cfg").read_text()
    python = str(venv / "bin" / "python")
    installed = _run([python, "-m", "pip", "install", "-q", str(wheel)], tmp_path, env, 600)
    assert installed.returncode == 0, installed.stderr[-2000:]

    project = tmp_path / "project"  # another project's tests, outside this checkout
    project.mkdir()
    where = _run([python, "-c", "import emulator.components as l; print(l.DEFAULT_BRIDGE_JAR); "
                  "print(l.LOOPBACK_SHIM)"], project, env, 60)
    jar, shim = (Path(line) for line in where.stdout.split())
    assert jar.is_file() and shim.is_file()
    assert jar.is_relative_to(venv) and shim.is_relative_to(venv)

    (project / "test_untouched.py").write_text(UNTOUCHED)
    alone = _run([python, "-m", "pytest", "-q", "-p", "no:cacheprovider", "test_untouched.py"],
                 project, {**env, "PCSCLITE_CSOCK_NAME": "/nonexistent/pcscd.comm",
                           "SOFTHSM2_CONF": "/nonexistent/softhsm2.conf"}, 120)
    assert alone.returncode == 0, alone.stdout[-2000:]

    (project / "test_my_app.py").write_text(readme_example())
    example = _run([python, "-m", "pytest", "-q", "-p", "no:cacheprovider", "test_my_app.py"],
                   project, env, 300)
    assert example.returncode == 0, example.stdout[-3000:] + example.stderr[-2000:]
    assert "3 passed" in example.stdout
