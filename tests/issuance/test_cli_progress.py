"""Progress on long work shows on a terminal only: counts and rate on stderr when it is a
terminal (a real pty), nothing when stderr is a pipe, with --quiet or under --json."""

from __future__ import annotations

import os
import pty
import select
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _env() -> dict[str, str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "MYNACARD_DEVELOPMENT": "1",
           "MYNACARD_OPERATOR": "progress-walker"}
    env.pop("MYNACARD_DB", None)
    env.pop("NO_COLOR", None)
    return env


def on_a_terminal(home: Path, *argv: str) -> tuple[int, str, str]:
    """Run with stderr on a pty (stdout a pipe): exit code, stdout, what the pty showed."""
    master, slave = pty.openpty()
    proc = subprocess.Popen([sys.executable, "-m", "issuance.cli.main", "--home", str(home),
                             *argv], env=_env(), stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=slave)
    os.close(slave)
    shown = b""
    while True:
        ready, _, _ = select.select([master], [], [], 120)
        if not ready:
            proc.kill()
            raise AssertionError("no output for 120 s")
        try:
            chunk = os.read(master, 4096)
        except OSError:  # EIO: the child closed the pty
            break
        if not chunk:
            break
        shown += chunk
    out = proc.stdout.read().decode() if proc.stdout else ""
    code = proc.wait(timeout=60)
    os.close(master)
    return code, out, shown.decode(errors="replace")


def piped(home: Path, *argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "issuance.cli.main", "--home", str(home),
                           *argv], env=_env(), capture_output=True, text=True, timeout=300,
                          check=False)


def test_registry_generate_and_load_show_progress_on_a_terminal_only(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    data = tmp_path / "residents.jsonl"
    code, out, shown = on_a_terminal(home, "registry", "generate", "--count", "400",
                                     "--out", str(data))
    assert code == 0, shown
    assert "generated: 400/400 (" in shown and "/s)" in shown
    code, out, shown = on_a_terminal(home, "registry", "load", str(data))
    assert code == 0, shown
    assert "rows read: 400 (" in shown and "loaded 400 resident(s)" in out
    # the summary on stdout is not on the progress line: that line was ended
    assert shown.rstrip().endswith("/s)")
    # piped, --quiet, --json: nothing but results
    again = tmp_path / "again.jsonl"
    res = piped(home, "registry", "generate", "--count", "400", "--out", str(again))
    assert res.returncode == 0 and res.stderr == "", res.stderr
    res = piped(home, "registry", "load", str(again))
    assert res.returncode == 0 and "rows read" not in res.stderr and "\r" not in res.stderr
    for extra in (["--quiet"], ["--json"]):
        code, out, shown = on_a_terminal(home, "registry", "load", str(again), *extra)
        assert code == 0 and "rows read" not in shown, (extra, shown)


def test_crl_publish_and_the_key_ceremony_count_their_steps(tmp_path: Path) -> None:
    home = tmp_path / "center"
    home.mkdir()
    res = piped(home, "center", "init", "--master-key", "test", "--shards", "2")
    assert res.returncode == 0, res.stderr
    assert "key ceremony" not in res.stderr
    code, out, shown = on_a_terminal(home, "crl", "publish")
    assert code == 0, shown
    # two shards in each of the three hierarchies (signing, user authentication, operator)
    assert "CRL shards signed: 6/6 (" in shown and "published 6 CRL shards" in out
    res = piped(home, "crl", "publish")
    assert res.returncode == 0 and "CRL shards signed" not in res.stderr
