"""Issuance throughput: one card end to end, and cards per hour over 1, 2 and 4 readers.

    python -m bench.issuance_throughput [--rounds N] [--json]

One run: a private emulator with 4 readers, a fresh issuance center (SoftHSM2 token, JPKI
CA, issuer keys) and synthetic adult residents with applications. Measured:
- one card end to end (`Issuer.issue`: bind, issuer authentication with the card key
  derived in the HSM, data, two RSA-2048 keys generated on the card, two certificates
  from the HSM-backed CA, integrity record signed in the HSM, lock, final transaction),
  beside the `sample` personaliser (host-derived issuer key, software CA) in the same run;
- cards per hour with K = 1, 2 and 4 readers issuing at once (one worker per reader),
  over N rounds of K blank cards; inserting the blank cards (in the emulator a brand-new
  card manufactured in the reader's running bridge JVM, a hopper in a real encoder) is
  not timed. The JVM of each reader is reused from card to card, as a card encoder is:
  its first card pays the JIT warm-up of the on-card key generation (~1 s of CPU), the
  following ones do not.
Compared with the national express capacity (10,000 cards/day, jpki-rules 4.7) and the
target (docs/ARCHITECTURE.md): that capacity in under one hour on one machine, i.e.
>= 10,000 cards/hour.

CPU seconds per card, split by process, over the timed batches: `issuer` is this Python
process (workflow, SQLite, SoftHSM2 in-process, pyscard), `pcscd` the private pcscd,
`card` the bridge JVMs (jCardSim: the applets and the on-card RSA key generation). They
are read from /proc/<pid>/stat and os.times() around each batch. The load average at the
start and end of the run is reported too: other work on the machine slows the wall-clock
figures, not the CPU seconds.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from datetime import date
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

from emulator.components import SOCKET_ENV
from emulator.errors import EmulatorError
from emulator.launcher import Emulator
from emulator.state import socket_path

EXPRESS_PER_DAY = 10_000
TARGET_PER_HOUR = EXPRESS_PER_DAY  # the day's express capacity within one hour
READER_COUNTS = (1, 2, 4)
_TICK = os.sysconf("SC_CLK_TCK")


def _proc_cpu(pid: int) -> float:
    """User + system CPU seconds of a running process (0 when it is gone)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0.0
    fields = stat[stat.rfind(")") + 2:].split()
    return (int(fields[11]) + int(fields[12])) / _TICK


def _cpu_snapshot(emulator: Emulator, readers: list[str]) -> dict[str, float]:
    own = os.times()
    assert emulator.state is not None
    cards = [c.pid for c in emulator.state.cards if c.reader in readers]
    return {"issuer": own.user + own.system,
            "pcscd": _proc_cpu(emulator.state.pcscd_pid),
            "card": sum(_proc_cpu(pid) for pid in cards)}


def _cpu_delta(before: dict[str, float], after: dict[str, float]) -> dict[str, float]:
    return {k: after[k] - before[k] for k in before}


def _replace_all(emulator: Emulator, readers: list[str]) -> None:
    for reader in readers:  # one at a time: the emulator's state file has one writer
        emulator.replace_card(reader)


def run(rounds: int = 2, singles: int = 3) -> dict[str, Any]:
    rt = Path(tempfile.mkdtemp(prefix="mynacard-bench-issue-"))
    home = Path(tempfile.mkdtemp(prefix="mynacard-bench-center-"))
    os.environ[SOCKET_ENV] = str(socket_path(rt))  # before any PC/SC call in this process
    from issuance.applications.intake import take_application
    from issuance.applications.rules import ApplicationRequest
    from issuance.registry.generator import ResidentGenerator
    from issuance.registry.model import Nationality, ResidentStatus
    from issuance.registry.store import ResidentStore
    from issuance.storage import open_database
    from issuance.workflow.batch import issue_batch
    from issuance.workflow.center import Center, init_center
    from issuance.workflow.issue import Issuer

    needed = singles + rounds * sum(READER_COUNTS) + max(READER_COUNTS) - 1
    load_before = os.getloadavg()
    try:
        t0 = time.perf_counter()
        init_center(home, master_key="test", shards=4)
        setup_s = time.perf_counter() - t0
        with Emulator(rt, max(READER_COUNTS)) as emulator, \
                open_database(f"sqlite:///{home / 'issuance.sqlite3'}") as db, \
                Center.open(home) as center:
            gen = ResidentGenerator(seed=2026, as_of=date.today())
            apps: list[str] = []
            while len(apps) < needed:
                r = gen.resident()
                if (r.status is not ResidentStatus.RESIDENT or r.adult_ward
                        or r.nationality is not Nationality.JAPANESE
                        or date.today().year - r.birth_date.year < 20):
                    continue
                ResidentStore(db).put(r)
                result = take_application(db, ApplicationRequest(r.resident_code),
                                          operator="bench")
                if result.application is not None:
                    apps.append(result.application.id)
            readers = emulator.readers
            issuer = Issuer(db, center, operator="bench")

            # one card end to end, and the sample personaliser beside it
            single: list[float] = []
            single_cpu: list[dict[str, float]] = []
            for _ in range(singles):
                emulator.replace_card(readers[0])
                c0 = _cpu_snapshot(emulator, readers[:1])
                t0 = time.perf_counter()
                issuer.issue(apps.pop(), readers[0])
                single.append(time.perf_counter() - t0)
                single_cpu.append(_cpu_delta(c0, _cpu_snapshot(emulator, readers[:1])))
            sample = [ep for ep in entry_points(group="mynacard.personalisers")
                      if ep.name == "sample"][0].load()
            emulator.replace_card(readers[0])
            sample(readers[0])  # warm the throwaway software CA (key generation)
            emulator.replace_card(readers[0])
            t0 = time.perf_counter()
            sample(readers[0])
            sample_s = time.perf_counter() - t0

            # The first card in each reader's fresh bridge JVM pays the JIT warm-up of the
            # on-card key generation (reader 0's was the first single above): issued here,
            # untimed, and reported, so the K rows measure the steady state of the line.
            cold: list[tuple[float, float]] = []
            _replace_all(emulator, readers[1:])
            for reader in readers[1:]:
                c0 = _cpu_snapshot(emulator, [reader])
                t0 = time.perf_counter()
                issuer.issue(apps.pop(), reader)
                cold.append((time.perf_counter() - t0,
                             _cpu_snapshot(emulator, [reader])["card"] - c0["card"]))

            per_k: dict[int, dict[str, Any]] = {}
            for k in READER_COUNTS:
                cards, seconds = 0, 0.0
                cpu = {"issuer": 0.0, "pcscd": 0.0, "card": 0.0}
                for _ in range(rounds):
                    _replace_all(emulator, readers[:k])
                    batch = [apps.pop() for _ in range(k)]
                    c0 = _cpu_snapshot(emulator, readers[:k])
                    report = issue_batch(lambda _r: Issuer(db, center, operator="bench"),
                                         batch, readers[:k])
                    for key, v in _cpu_delta(c0, _cpu_snapshot(emulator, readers[:k])).items():
                        cpu[key] += v
                    if len(report.issued) != k:
                        raise RuntimeError(f"K={k}: {report.to_json()}")
                    cards += k
                    seconds += report.seconds
                per_hour = cards / seconds * 3600
                per_k[k] = {"cards": cards, "seconds": seconds, "cards_per_hour": per_hour,
                            "cards_per_day": per_hour * 24,
                            "ratio_to_target_per_hour": per_hour / TARGET_PER_HOUR,
                            "ratio_to_express_capacity_per_day": per_hour * 24 / EXPRESS_PER_DAY,
                            "hours_for_10000": EXPRESS_PER_DAY / per_hour,
                            "cpu_s_per_card": {key: v / cards for key, v in cpu.items()}}
    finally:
        shutil.rmtree(rt, ignore_errors=True)
        shutil.rmtree(home, ignore_errors=True)
    base = per_k[1]["cards_per_hour"]
    for row in per_k.values():
        row["speedup_vs_1_reader"] = row["cards_per_hour"] / base
    return {"center_setup_s": setup_s, "one_card_s": {"median": statistics.median(single),
                                                     "all": single},
            # the card with the median total CPU (the first single warms reader 0's JVM)
            "one_card_cpu_s": sorted(single_cpu, key=lambda c: sum(c.values()))[
                len(single_cpu) // 2],
            "first_card_of_a_reader_jvm": {
                "seconds": statistics.median(t for t, _ in cold),
                "card_cpu_s": statistics.median(c for _, c in cold)},
            "sample_personaliser_s": sample_s, "readers": per_k, "cores": os.cpu_count(),
            "express_capacity_per_day": EXPRESS_PER_DAY, "target_per_hour": TARGET_PER_HOUR,
            "load_average": {"start": load_before, "end": os.getloadavg()}}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.issuance_throughput",
                                     description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=2, help="rounds of K cards per K")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    try:
        r = run(max(1, args.rounds))
    except EmulatorError as exc:
        print(f"bench: {exc}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(r, indent=2))
        return 0
    one = r["one_card_s"]
    load = r["load_average"]
    print(f"load average at start {load['start'][0]:.2f}, at end {load['end'][0]:.2f} "
          f"({r['cores']} cores; other work on the machine slows the wall-clock figures)")
    print(f"issuance center set up (token, CA, issuer keys): {r['center_setup_s']:.2f} s")
    cpu1 = r["one_card_cpu_s"]
    print(f"one card end to end (HSM-derived issuer key, HSM CA, 2 on-card RSA keys): "
          f"median {one['median']:.2f} s over {len(one['all'])} (target ≤ 2 s); median CPU "
          f"{sum(cpu1.values()):.3f} s (card {cpu1['card']:.3f}, issuer {cpu1['issuer']:.3f}, "
          f"pcscd {cpu1['pcscd']:.3f}); sample personaliser (software CA) in the same run: "
          f"{r['sample_personaliser_s']:.2f} s")
    cold = r["first_card_of_a_reader_jvm"]
    print(f"first card in a reader's fresh bridge JVM (cold JIT, untimed warm-up of readers "
          f"2-{max(READER_COUNTS)}): median {cold['seconds']:.2f} s, card CPU "
          f"{cold['card_cpu_s']:.2f} s; later cards reuse the warm JVM")
    print(f"{'readers':>8}{'cards':>7}{'seconds':>9}{'cards/hour':>12}{'x 1 reader':>12}"
          f"{'/ 10,000 per h':>16}{'h for 10,000':>14}"
          f"{'CPU s/card: card':>18}{'issuer':>8}{'pcscd':>7}{'total':>7}")
    for k, row in r["readers"].items():
        cpu = row["cpu_s_per_card"]
        print(f"{k:>8}{row['cards']:>7}{row['seconds']:>9.2f}{row['cards_per_hour']:>12.0f}"
              f"{row['speedup_vs_1_reader']:>12.2f}"
              f"{row['ratio_to_target_per_hour']:>16.2f}{row['hours_for_10000']:>14.2f}"
              f"{cpu['card']:>18.3f}{cpu['issuer']:>8.3f}{cpu['pcscd']:>7.3f}"
              f"{sum(cpu.values()):>7.3f}")
    best = max(r["readers"].values(), key=lambda row: row["cards_per_hour"])
    verdict = "met" if best["hours_for_10000"] <= 1 else "NOT met"
    print(f"national express capacity {EXPRESS_PER_DAY:,} cards/day: best rate "
          f"{best['cards_per_hour']:.0f} cards/h = {best['ratio_to_target_per_hour']:.2f} x "
          f"{TARGET_PER_HOUR:,}/h, issues it in {best['hours_for_10000']:.2f} h (target < 1 h "
          f"on one machine: {verdict}; {r['cores']} cores)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
