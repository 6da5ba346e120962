"""APDU round trip through pcscd + vpcd + jCardSim, beside in-process jCardSim.

    python -m bench.apdu_roundtrip [--pairs N] [--json]

One run: a private emulator with one card, personalised with the `sample` personaliser
(timed); then N pairs of SELECT EF 0006 + READ BINARY (160 bytes of JPKI token info)
through PC/SC, and the same pairs sent straight into an in-process jCardSim card by the
bridge's Java baseline (jp.mynacard.bridge.ApduBaseline). Target (docs/ARCHITECTURE.md): an APDU
round trip through pcscd with a median of at most 1 ms.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

from emulator.components import SOCKET_ENV, find_components
from emulator.errors import EmulatorError
from emulator.launcher import Emulator
from emulator.state import socket_path

SELECT_JPKI = bytes.fromhex("00A4040C0AD392F000260100000001")
SELECT_TOKEN_INFO = bytes.fromhex("00A4020C020006")
READ_TOKEN_INFO = bytes.fromhex("00B00000A0")
TARGET_MEDIAN_US = 1000.0


def _percentile(sorted_values: list[float], q: float) -> float:
    return sorted_values[min(len(sorted_values) - 1, int(len(sorted_values) * q))]


def _pcsc_pairs(reader: str, pairs: int, warmup: int) -> dict[str, Any]:
    from smartcard import scard

    rc, ctx = scard.SCardEstablishContext(scard.SCARD_SCOPE_USER)
    assert rc == scard.SCARD_S_SUCCESS, scard.SCardGetErrorMessage(rc)
    rc, card, proto = scard.SCardConnect(ctx, reader, scard.SCARD_SHARE_SHARED,
                                         scard.SCARD_PROTOCOL_T1)
    assert rc == scard.SCARD_S_SUCCESS, scard.SCardGetErrorMessage(rc)
    select, read = list(SELECT_TOKEN_INFO), list(READ_TOKEN_INFO)
    try:
        rc, resp = scard.SCardTransmit(card, proto, list(SELECT_JPKI))
        assert resp[-2:] == [0x90, 0x00], f"SELECT JPKI answered {bytes(resp).hex()}"
        times: list[float] = []
        last: list[int] = []
        for i in range(warmup + pairs):
            t0 = time.perf_counter_ns()
            rc1, r1 = scard.SCardTransmit(card, proto, select)
            rc2, last = scard.SCardTransmit(card, proto, read)
            t1 = time.perf_counter_ns()
            if rc1 or rc2 or r1[-2:] != [0x90, 0x00]:
                raise RuntimeError(f"pair {i} failed: {rc1:x} {rc2:x} {bytes(r1).hex()}")
            if i >= warmup:
                times.append((t1 - t0) / 1000.0)
    finally:
        scard.SCardDisconnect(card, scard.SCARD_LEAVE_CARD)
        scard.SCardReleaseContext(ctx)
    times.sort()
    return {
        "pairs": pairs,
        "median_us": statistics.median(times),
        "p99_us": _percentile(times, 0.99),
        "read_sw": bytes(last[-2:]).hex().upper(),
        "read_len": len(last) - 2,
    }


def _java_pairs(jar: Path, java: Path, pairs: int, warmup: int) -> dict[str, Any]:
    out = subprocess.run(
        [str(java), "-cp", str(jar), "jp.mynacard.bridge.ApduBaseline", str(pairs), str(warmup)],
        capture_output=True, text=True, timeout=300,
    )
    lines = [line for line in out.stdout.splitlines() if line.startswith("{")]
    if out.returncode != 0 or not lines:
        raise RuntimeError(f"Java baseline failed: {out.stdout.strip()} {out.stderr.strip()}")
    result: dict[str, Any] = json.loads(lines[-1])
    return result


def run(pairs: int = 2000, warmup: int = 500) -> dict[str, Any]:
    comps = find_components()
    found = [ep for ep in entry_points(group="mynacard.personalisers") if ep.name == "sample"]
    if not found:
        raise EmulatorError("no `sample` personaliser installed — run `make setup`")
    personalise = found[0].load()
    rt = Path(tempfile.mkdtemp(prefix="mynacard-bench-"))
    os.environ[SOCKET_ENV] = str(socket_path(rt))  # before any PC/SC call in this process
    try:
        with Emulator(rt, 1) as emulator:
            reader = emulator.readers[0]
            t0 = time.perf_counter()
            personalise(reader)
            personalise_s = time.perf_counter() - t0
            pcsc = _pcsc_pairs(reader, pairs, warmup)
    finally:
        shutil.rmtree(rt, ignore_errors=True)
    java = _java_pairs(comps.bridge_jar, comps.java, pairs, max(warmup, 2000))
    return {
        "apdus": "SELECT EF 0006 + READ BINARY 160 bytes (JPKI token info), one pair",
        "pcscd": pcsc,
        "in_process": java,
        "ratio_median": pcsc["median_us"] / java["median_us"],
        "ratio_p99": pcsc["p99_us"] / java["p99_us"],
        "apdu_median_us_through_pcscd": pcsc["median_us"] / 2,
        "target_apdu_median_us": TARGET_MEDIAN_US,
        "sample_personalisation_s": personalise_s,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.apdu_roundtrip", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pairs", type=int, default=2000, help="timed pairs (>= 1000)")
    parser.add_argument("--warmup", type=int, default=500)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    if args.pairs < 1000:
        parser.error("--pairs must be at least 1000")
    try:
        r = run(args.pairs, args.warmup)
    except EmulatorError as exc:
        print(f"bench: {exc}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(r, indent=2))
        return 0
    p, j = r["pcscd"], r["in_process"]
    print(f"APDU round trip: {r['apdus']}, {p['pairs']} pairs")
    print(f"{'path':<36}{'median µs':>12}{'p99 µs':>12}")
    print(f"{'pcscd + vpcd + jCardSim (pair)':<36}{p['median_us']:>12.1f}{p['p99_us']:>12.1f}")
    print(f"{'in-process jCardSim (pair)':<36}{j['median_us']:>12.1f}{j['p99_us']:>12.1f}")
    print(f"{'ratio pcscd / in-process':<36}{r['ratio_median']:>12.1f}{r['ratio_p99']:>12.1f}")
    fast = r["apdu_median_us_through_pcscd"] <= TARGET_MEDIAN_US
    verdict = "ok" if fast else "SLOWER THAN TARGET"
    print(f"one APDU through pcscd: median {r['apdu_median_us_through_pcscd']:.1f} µs "
          f"(target ≤ {TARGET_MEDIAN_US:.0f} µs: {verdict})")
    print(f"sample personalisation of one card: {r['sample_personalisation_s']:.2f} s "
          f"(target ≤ 2 s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
