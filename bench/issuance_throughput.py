"""Issuance throughput: one card end to end, and cards per hour over 1, 2 and 4 readers.

    python -m bench.issuance_throughput [--rounds N] [--json]

One run: a private emulator with 4 readers, a fresh issuance center (SoftHSM2 token, JPKI
CA, issuer keys) and synthetic adult residents with applications. Measured:
- one card end to end (`Issuer.issue`: bind, issuer authentication with the card key
  derived in the HSM, data, two RSA-2048 keys generated on the card, two certificates
  from the HSM-backed CA, integrity record signed in the HSM, lock, final transaction),
  beside the `sample` personaliser (host-derived issuer key, software CA) in the same run;
- cards per hour with K = 1, 2 and 4 readers issuing at once (one worker per reader),
  over N rounds of K blank cards; inserting the blank cards (a new JVM per card in the
  emulator, a hopper in a real encoder) is not timed.
Compared with the national express capacity (10,000 cards/day, jpki-rules 4.7) and the
target (DESIGN.md): that capacity in under one hour on one machine.
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

from emulator.launcher import SOCKET_ENV, Emulator, EmulatorError, socket_path

EXPRESS_PER_DAY = 10_000
READER_COUNTS = (1, 2, 4)


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

    needed = singles + rounds * sum(READER_COUNTS)
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
            for _ in range(singles):
                emulator.replace_card(readers[0])
                t0 = time.perf_counter()
                issuer.issue(apps.pop(), readers[0])
                single.append(time.perf_counter() - t0)
            sample = [ep for ep in entry_points(group="mynacard.personalisers")
                      if ep.name == "sample"][0].load()
            emulator.replace_card(readers[0])
            sample(readers[0])  # warm the throwaway software CA (key generation)
            emulator.replace_card(readers[0])
            t0 = time.perf_counter()
            sample(readers[0])
            sample_s = time.perf_counter() - t0

            per_k: dict[int, dict[str, Any]] = {}
            for k in READER_COUNTS:
                cards, seconds = 0, 0.0
                for _ in range(rounds):
                    _replace_all(emulator, readers[:k])
                    batch = [apps.pop() for _ in range(k)]
                    report = issue_batch(lambda _r: Issuer(db, center, operator="bench"),
                                         batch, readers[:k])
                    if len(report.issued) != k:
                        raise RuntimeError(f"K={k}: {report.to_json()}")
                    cards += k
                    seconds += report.seconds
                per_hour = cards / seconds * 3600
                per_k[k] = {"cards": cards, "seconds": seconds, "cards_per_hour": per_hour,
                            "cards_per_day": per_hour * 24,
                            "ratio_to_express_capacity_per_day": per_hour * 24 / EXPRESS_PER_DAY,
                            "hours_for_10000": EXPRESS_PER_DAY / per_hour}
    finally:
        shutil.rmtree(rt, ignore_errors=True)
        shutil.rmtree(home, ignore_errors=True)
    base = per_k[1]["cards_per_hour"]
    for row in per_k.values():
        row["speedup_vs_1_reader"] = row["cards_per_hour"] / base
    return {"center_setup_s": setup_s, "one_card_s": {"median": statistics.median(single),
                                                     "all": single},
            "sample_personaliser_s": sample_s, "readers": per_k, "cores": os.cpu_count(),
            "express_capacity_per_day": EXPRESS_PER_DAY}


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
    print(f"issuance center set up (token, CA, issuer keys): {r['center_setup_s']:.2f} s")
    print(f"one card end to end (HSM-derived issuer key, HSM CA, 2 on-card RSA keys): "
          f"median {one['median']:.2f} s over {len(one['all'])} (target ≤ 2 s); "
          f"sample personaliser (software CA) in the same run: "
          f"{r['sample_personaliser_s']:.2f} s")
    print(f"{'readers':>8}{'cards':>7}{'seconds':>9}{'cards/hour':>12}{'x 1 reader':>12}"
          f"{'per day / 10,000':>18}{'h for 10,000':>14}")
    for k, row in r["readers"].items():
        print(f"{k:>8}{row['cards']:>7}{row['seconds']:>9.2f}{row['cards_per_hour']:>12.0f}"
              f"{row['speedup_vs_1_reader']:>12.2f}"
              f"{row['ratio_to_express_capacity_per_day']:>18.1f}{row['hours_for_10000']:>14.2f}")
    best = max(r["readers"].values(), key=lambda row: row["cards_per_hour"])
    verdict = "met" if best["hours_for_10000"] <= 1 else "NOT met"
    print(f"national express capacity {EXPRESS_PER_DAY:,} cards/day: best rate issues it in "
          f"{best['hours_for_10000']:.2f} h (target < 1 h on one machine: {verdict}; "
          f"{r['cores']} cores)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
