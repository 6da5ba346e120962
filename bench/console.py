"""The counter console (`mynacard console serve`): pages served per second and the median
page time for the dashboard and search with 100,000 residents loaded, beside a static file
of the same server (the baseline) as a ratio.

    python -m bench.console [--json] [--residents N] [--requests N]

One run, in a temporary home: a center (`init_center`, a fresh SoftHSM2 token), N
residents from the registry generator (issuance/registry/generator.py) and a few hundred
applications (some express) taken through the intake, an enrolled clerk who logs in over
HTTP; then one client thread asks each page in turn (one connection per request, as
urllib does). Target: the median page time <= 100 ms.
"""

from __future__ import annotations

import argparse
import http.cookiejar
import json
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

MYNACARD = str(Path(sys.executable).parent / "mynacard")
PASSWORD = "bench-clerk-password"
TARGET_MS = 100.0


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _prepare(home: Path, residents: int, applications: int) -> tuple[str, str]:
    """The center, the registry and the applications; a resident's kana and name prefix."""
    from issuance.applications.express import ExpressReason
    from issuance.applications.intake import take_application
    from issuance.applications.rules import ApplicationRequest
    from issuance.operators import OperatorStore
    from issuance.registry.generator import ResidentGenerator
    from issuance.registry.store import put_residents
    from issuance.storage import open_database
    from issuance.workflow.center import init_center

    init_center(home, master_key="test", shards=1)
    gen = ResidentGenerator(seed=42, as_of=date.today())
    with open_database(f"sqlite:///{home / 'issuance.sqlite3'}") as db:
        batch: list[Any] = []
        people: list[Any] = []
        for person in gen.generate(residents):
            batch.append(person)
            if len(people) < applications * 2:
                people.append(person)
            if len(batch) == 5000:
                with db.transaction() as tx:
                    put_residents(tx, batch)
                batch = []
        if batch:
            with db.transaction() as tx:
                put_residents(tx, batch)
        taken = 0
        for i, person in enumerate(people):
            if taken >= applications:
                break
            express = ExpressReason.ARRIVAL_FROM_ABROAD if i % 5 == 0 else None
            result = take_application(db, ApplicationRequest(
                resident_code=person.resident_code, express=express,
                express_requested=express is not None,
                event_date=datetime.now(UTC).date() if express else None), operator="bench")
            taken += result.accepted
        OperatorStore(db).add("clerk", ("clerk",), PASSWORD)
    sample = people[len(people) // 2]
    return (sample.name_kana or "")[:2], sample.name[:1]


def _login(url: str) -> urllib.request.OpenerDirector:
    jar = http.cookiejar.CookieJar()
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
    page = opener.open(url + "/login").read().decode()
    token = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert token is not None
    opener.open(url + "/login", urllib.parse.urlencode({
        "csrf_token": token.group(1), "method": "password", "operator": "clerk",
        "password": PASSWORD}).encode()).read()
    home = opener.open(url + "/").read().decode()
    if "clerk (clerk)" not in home:
        raise RuntimeError("could not log in")
    return opener


def _measure(opener: urllib.request.OpenerDirector, url: str, n: int) -> dict[str, float]:
    opener.open(url).read()  # warm
    times = []
    start = time.perf_counter()
    for _ in range(n):
        t0 = time.perf_counter()
        with opener.open(url) as answer:
            answer.read()
            if answer.status != 200:
                raise RuntimeError(f"{url}: HTTP {answer.status}")
        times.append(time.perf_counter() - t0)
    total = time.perf_counter() - start
    return {"pages_per_s": round(n / total, 1),
            "median_ms": round(statistics.median(times) * 1000, 2),
            "p95_ms": round(sorted(times)[int(0.95 * (n - 1))] * 1000, 2)}


def run(residents: int, requests: int, applications: int) -> dict[str, Any]:
    home = Path(tempfile.mkdtemp(prefix="bench-console-"))
    env = dict(os.environ, MYNACARD_DEVELOPMENT="1")
    env.pop("SOFTHSM2_CONF", None)
    proc: subprocess.Popen[bytes] | None = None
    try:
        t0 = time.monotonic()
        kana, kanji = _prepare(home, residents, applications)
        prepared = time.monotonic() - t0
        port = _free_port()
        proc = subprocess.Popen([MYNACARD, "--home", str(home), "console", "serve",
                                 "--listen", f"127.0.0.1:{port}", "--operator", "bench"],
                                env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            try:
                urllib.request.urlopen(url + "/login", timeout=1).read()
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("the console did not start") from None
                time.sleep(0.2)
        opener = _login(url)
        pages = {
            "baseline: static file": url + "/static/console.css",
            "dashboard": url + "/",
            "search: kana prefix": url + "/search?q=" + urllib.parse.quote(kana),
            "search: name (kanji)": url + "/search?q=" + urllib.parse.quote(kanji),
            "search: resident code": url + "/search?q=" + "00000000000",
        }
        out = {name: _measure(opener, page, requests) for name, page in pages.items()}
        base = out["baseline: static file"]["median_ms"]
        for figures in out.values():
            figures["ratio_to_baseline"] = round(figures["median_ms"] / base, 1)
        return {"residents": residents, "applications": applications,
                "requests_per_page": requests, "prepare_s": round(prepared, 1),
                "target_median_ms": TARGET_MS, "pages": out,
                "within_target": all(v["median_ms"] <= TARGET_MS for v in out.values())}
    finally:
        if proc is not None:
            proc.terminate()
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
        shutil.rmtree(home, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.console")
    parser.add_argument("--residents", type=int, default=100_000)
    parser.add_argument("--applications", type=int, default=300)
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    result = run(args.residents, args.requests, args.applications)
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    print(f"console with {result['residents']:,} residents, {result['applications']} "
          f"applications (prepared in {result['prepare_s']} s); {args.requests} requests "
          "per page, one client")
    print(f"{'page':24} {'pages/s':>8} {'median ms':>10} {'p95 ms':>8} {'x baseline':>10}")
    for name, f in result["pages"].items():
        print(f"{name:24} {f['pages_per_s']:8.1f} {f['median_ms']:10.2f} {f['p95_ms']:8.2f} "
              f"{f['ratio_to_baseline']:10.1f}")
    print(f"target: median <= {TARGET_MS:g} ms: "
          f"{'met' if result['within_target'] else 'NOT met'}")
    return 0 if result["within_target"] else 1


if __name__ == "__main__":
    sys.exit(main())
