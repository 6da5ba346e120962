"""Run every benchmark: `python -m bench [NAME ...]` (`make bench`).

Each benchmark is a module `bench/<name>.py` with a `main(argv)`; each runs in its own
process, because a process reaches only the first pcscd it talks to and keeps its HSM
library loaded. Every figure is printed beside a baseline measured in the same run.

`--stores sqlite,postgresql` (what `make bench` passes) runs the benchmarks that keep a
certificate store (STORE_BENCHES) once per store, with $MYNACARD_BENCH_STORE set; they
read it as the default of their own `--store` option.
"""

from __future__ import annotations

import os
import pkgutil
import subprocess
import sys
import time
from pathlib import Path


def benchmarks() -> list[str]:
    here = Path(__file__).parent
    return sorted(m.name for m in pkgutil.iter_modules([str(here)]) if not m.name.startswith("_"))


STORE_ENV = "MYNACARD_BENCH_STORE"
STORE_BENCHES = {"pki_ca", "ocsp_pregenerated", "notices_revocation"}


def main(argv: list[str]) -> int:
    stores = ["sqlite"]
    if argv and argv[0].startswith("--stores"):
        spec = argv[0].partition("=")[2] if "=" in argv[0] else (argv[1] if len(argv) > 1 else "")
        argv = argv[1:] if "=" in argv[0] else argv[2:]
        stores = [s for s in spec.split(",") if s]
        if not stores or set(stores) - {"sqlite", "postgresql"}:
            print("--stores takes sqlite, postgresql or both (comma-separated)", file=sys.stderr)
            return 2
    names = argv or benchmarks()
    unknown = sorted(set(names) - set(benchmarks()))
    if unknown:
        print(f"unknown benchmark(s): {', '.join(unknown)}; have: {', '.join(benchmarks())}",
              file=sys.stderr)
        return 2
    failed = []
    runs = [(name, store) for name in names
            for store in (stores if name in STORE_BENCHES else [None])]
    for name, store in runs:
        label = name if store is None else f"{name} ({store})"
        print(f"\n== bench.{label} ==", flush=True)
        start = time.monotonic()
        env = dict(os.environ, **({STORE_ENV: store} if store else {}))
        rc = subprocess.call([sys.executable, "-m", f"bench.{name}"], env=env)
        print(f"(bench.{label}: exit {rc}, {time.monotonic() - start:.1f} s)", flush=True)
        if rc:
            failed.append(label)
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
