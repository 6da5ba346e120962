"""Run every benchmark: `python -m bench [NAME ...]` (`make bench`).

Each benchmark is a module `bench/<name>.py` with a `main(argv)`; each runs in its own
process, because a process reaches only the first pcscd it talks to and keeps its HSM
library loaded. Every figure is printed beside a baseline measured in the same run.
"""

from __future__ import annotations

import pkgutil
import subprocess
import sys
import time
from pathlib import Path


def benchmarks() -> list[str]:
    here = Path(__file__).parent
    return sorted(m.name for m in pkgutil.iter_modules([str(here)]) if not m.name.startswith("_"))


def main(argv: list[str]) -> int:
    names = argv or benchmarks()
    unknown = sorted(set(names) - set(benchmarks()))
    if unknown:
        print(f"unknown benchmark(s): {', '.join(unknown)}; have: {', '.join(benchmarks())}",
              file=sys.stderr)
        return 2
    failed = []
    for name in names:
        print(f"\n== bench.{name} ==", flush=True)
        start = time.monotonic()
        rc = subprocess.call([sys.executable, "-m", f"bench.{name}"])
        print(f"(bench.{name}: exit {rc}, {time.monotonic() - start:.1f} s)", flush=True)
        if rc:
            failed.append(name)
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
