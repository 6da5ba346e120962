"""OCSP from pre-generated responses (`ocsp serve --pregenerated --workers 2`) beside
nginx serving the same bytes as a static file, in the same run, with the same client.

    python -m bench.ocsp_pregenerated [--json] [--store sqlite|postgresql] [--certs N]
                                      [--seconds S] [--workers N]

One run, in a temporary home: a CA with its keys in a fresh SoftHSM2 token, N certificate
rows (synthetic, as `bench._pki_support.seed_certificates` writes them; a tenth revoked),
their responses pre-generated into the store (`Pregenerator`, timed), then:

* the responder core in-process, per second, one thread: `OcspResponder.respond` on
  pre-generated responses (parse the request, one indexed read, no signature), the same
  behind the per-process memory (`pki.ocsp.memory`: a change check and a dict read), and
  the lean server's whole answer to a GET target (`pki.ocsp.lean.Server.answer`);
* `mynacard ocsp serve --pregenerated --workers W --no-refresh --open` on 127.0.0.1,
  loaded by `wrk` (keep-alive, 64 connections) with GET requests spread over all N
  serials (a Lua script returns the next of the requests it formatted once at start);
* nginx (Debian's, a private config on a free port: `worker_processes W`, access log
  off, `sendfile on`) serving one of those responses as a static file, loaded by the
  same wrk with the same connection count (one path: a file server's best case).

Also reported: the CPU time (user + system, from /proc) the responder processes, nginx
and wrk spent per response over the three timed rounds each.

Targets: >= 20,000 responses/s from the responder, >= 50 % of nginx. wrk runs on the
same cores as the servers (2 here), so both figures include the client's share.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import re
import resource
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

MYNACARD = str(Path(sys.executable).parent / "mynacard")
TOKEN = "bench-ocsp"
PIN_ENV = "MYNACARD_BENCH_OCSP_PIN"
TARGET_PER_S = 20_000.0
TARGET_OF_NGINX = 0.5
_WRK_RPS = re.compile(r"Requests/sec:\s+([\d.]+)")
_WRK_NON2XX = re.compile(r"Non-2xx or 3xx responses:\s+(\d+)")
_WRK_ERRORS = re.compile(r"Socket errors: (.*)")
_WRK_DONE = re.compile(r"(\d+) requests in ")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_http(url: str, proc: subprocess.Popen[bytes], deadline: float) -> bytes:
    last: Exception | None = None
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
            raise RuntimeError(f"the server exited: {err.strip()}")
        try:
            with urllib.request.urlopen(url, timeout=5) as resp:
                return bytes(resp.read())
        except OSError as exc:
            last = exc
            time.sleep(0.1)
    raise RuntimeError(f"no answer from {url}: {last}")


def _stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def _cpu_seconds(pid: int) -> float:
    """CPU time (user + system) of process `pid` and all its descendants (Linux /proc)."""
    tick = os.sysconf("SC_CLK_TCK")
    total, todo = 0.0, [pid]
    while todo:
        p = todo.pop()
        try:
            stat = Path(f"/proc/{p}/stat").read_text()
            fields = stat[stat.rindex(")") + 2:].split()
            total += (int(fields[11]) + int(fields[12])) / tick
            for task in Path(f"/proc/{p}/task").iterdir():
                todo += [int(c) for c in (task / "children").read_text().split()]
        except (OSError, ValueError):
            continue  # gone meanwhile
    return total


def _wrk(url: str, seconds: int, connections: int, script: Path | None = None,
         threads: int = 1, served: list[int] | None = None) -> float:
    wrk = shutil.which("wrk")
    if wrk is None:
        raise RuntimeError("wrk is not installed (apt-get install wrk; `make setup` does)")
    cmd = [wrk, f"-t{threads}", f"-c{connections}", f"-d{seconds}s"]
    if script is not None:
        cmd += ["-s", str(script)]
    res = subprocess.run([*cmd, url], capture_output=True, text=True, timeout=seconds + 60)
    if res.returncode != 0:
        raise RuntimeError(f"wrk failed: {res.stderr.strip() or res.stdout.strip()}")
    m = _WRK_RPS.search(res.stdout)
    if m is None:
        raise RuntimeError(f"cannot read wrk output:\n{res.stdout}")
    if served is not None:
        done = _WRK_DONE.search(res.stdout)
        served.append(int(done.group(1)) if done else 0)
    bad = _WRK_NON2XX.search(res.stdout)
    if bad and int(bad.group(1)):
        raise RuntimeError(f"{bad.group(1)} non-2xx answers from {url}:\n{res.stdout}")
    return float(m.group(1))


def _nginx(root: Path, workers: int) -> tuple[subprocess.Popen[bytes], int]:
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    if not Path(nginx).exists():
        raise RuntimeError("nginx is not installed (apt-get install nginx; `make setup` does)")
    port = _free_port()
    prefix = root / "nginx"
    (prefix / "logs").mkdir(parents=True)
    user = "user root root;" if os.geteuid() == 0 else ""
    conf = prefix / "nginx.conf"
    conf.write_text(f"""{user}
daemon off;
worker_processes {workers};
pid {prefix}/nginx.pid;
error_log {prefix}/logs/error.log warn;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    sendfile on;
    tcp_nopush on;
    keepalive_requests 1000000;
    client_body_temp_path {prefix}/body;
    proxy_temp_path {prefix}/proxy;
    fastcgi_temp_path {prefix}/fastcgi;
    uwsgi_temp_path {prefix}/uwsgi;
    scgi_temp_path {prefix}/scgi;
    types {{ application/ocsp-response der; }}
    server {{
        listen 127.0.0.1:{port};
        root {root}/static;
    }}
}}
""")
    proc = subprocess.Popen([nginx, "-p", str(prefix), "-c", str(conf)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    return proc, port


def run(*, store_kind: str = "sqlite", certs: int = 2000, seconds: int = 10,
        workers: int = 2, connections: int = 64) -> dict[str, Any]:
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.serialization import Encoding
    from cryptography.x509 import ocsp

    from bench._pki_support import ocsp_core_rate, seed_certificates
    from hsm import PinSource, open_key_manager
    from hsm.softhsm import init_token
    from pki.ca import init_ca
    from pki.ocsp import OcspResponder, Pregenerator
    from pki.ocsp.lean import Server
    from pki.ocsp.memory import MemoryResponses
    from pki.ocsp.responder import issuer_hashes
    from pki.profiles import Hierarchy
    from pki.store import open_readonly_store, open_store

    home = Path(tempfile.mkdtemp(prefix="mynacard-bench-ocsp-"))
    os.environ[PIN_ENV] = os.urandom(4).hex()
    started = time.monotonic()
    out: dict[str, Any] = {"store": store_kind, "certs": certs, "workers": workers,
                           "connections": connections, "seconds": seconds,
                           "cores": os.cpu_count()}
    procs: list[subprocess.Popen[bytes]] = []
    cluster: Any = None
    try:
        if store_kind == "postgresql":
            from bench._pg import private_cluster

            cluster = private_cluster("benchocsp")
            location: str | Path = cluster.__enter__()
        else:
            location = home / "store.sqlite"
        init_token(home, TOKEN, os.urandom(8).hex(), os.environ[PIN_ENV])
        pin = PinSource.from_spec(f"env:{PIN_ENV}")
        with open_key_manager(f"pkcs11:token={TOKEN}", pin_source=pin) as km:
            config = init_ca(km, home / "ca", shards=16)
            issuer = config.hierarchies[Hierarchy.SIGN].root_cert
            name_hash, key_hash = issuer_hashes(issuer)
            with open_store(location) as store:
                serials = seed_certificates(store, count=certs - certs // 10)
                serials += seed_certificates(store, count=certs // 10, revoked=True,
                                             first_serial=1 << 90)
                pregen = Pregenerator.from_ca(key_source=km, ca=config, store=store)
                t = time.perf_counter()
                report = pregen.run_once()
                took = time.perf_counter() - t
                out["pregenerate"] = {"signed": report.signed, "seconds": took,
                                      "per_s": report.signed / took}
            requests = [ocsp.OCSPRequestBuilder().add_certificate_by_hash(
                name_hash, key_hash, s, hashes.SHA1()).build().public_bytes(Encoding.DER)
                for s in serials]
            ro = open_readonly_store(location)
            try:
                responder = OcspResponder.from_ca(key_source=km, ca=config, store=ro)
                sample = responder.respond(requests[0])
                if sample.status != "good":
                    raise RuntimeError(f"the responder answered {sample.status}")
                out["core_per_s"] = ocsp_core_rate(responder, requests[:1000], n=20_000)
                out["core_memory_per_s"] = ocsp_core_rate(MemoryResponses(responder),
                                                          requests[:1000], n=100_000)
                out["answer_per_s"] = _answer_rate(Server(responder), requests[:1000])
            finally:
                ro.close()
        paths = ["/" + base64.b64encode(r).decode().replace("+", "%2B").replace("/", "%2F")
                 .replace("=", "%3D") for r in requests]
        script = home / "paths.lua"
        # the requests are formatted once, in init (after wrk set its Host header), not
        # per request: the client shares the cores, and nginx's wrk formats nothing either
        script.write_text("paths = {" + ",".join(f'"{p}"' for p in paths) + "}\n"
                          "reqs = {}\ni = 0\ninit = function(args)\n"
                          "  for k, p in ipairs(paths) do reqs[k] = wrk.format(\"GET\", p) end\n"
                          "end\nrequest = function()\n  i = i % #reqs + 1\n"
                          "  return reqs[i]\nend\n")
        env = dict(os.environ)
        env.pop("SOFTHSM2_CONF", None)
        port = _free_port()
        store_args = ["--store", str(location)]
        server = subprocess.Popen(
            [MYNACARD, "--home", str(home), "ocsp", "serve", "--token", TOKEN, "--pin-source",
             f"env:{PIN_ENV}", *store_args, "--port", str(port), "--open", "--pregenerated",
             "--no-refresh", "--workers", str(workers), "--max-connections", "10000"],
            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        procs.append(server)
        url = f"http://127.0.0.1:{port}"
        body = _wait_http(url + paths[0], server, time.monotonic() + 120)
        if body != sample.der:
            raise RuntimeError("the server did not answer with the pre-generated bytes")
        static = home / "static"
        static.mkdir()
        (static / "r.der").write_bytes(body)
        nginx, nport = _nginx(home, workers)
        procs.append(nginx)
        nurl = f"http://127.0.0.1:{nport}/r.der"
        if _wait_http(nurl, nginx, time.monotonic() + 30) != body:
            raise RuntimeError("nginx did not serve the same bytes")
        _wrk(url + paths[0], 2, connections)  # warm-up
        _wrk(nurl, 2, connections)
        ours, theirs = [], []
        served: dict[str, list[int]] = {"ours": [], "nginx": []}
        cpu = {"ours": 0.0, "nginx": 0.0, "wrk": 0.0}
        for k in range(3):  # alternate, so a drift in the machine's load favours neither
            steps = [("ours", url, script, server), ("nginx", nurl, None, nginx)]
            for name, u, s, proc in (steps if k % 2 == 0 else steps[::-1]):
                before = _cpu_seconds(proc.pid)
                client = resource.getrusage(resource.RUSAGE_CHILDREN)
                rate = _wrk(u if s is None else url, seconds, connections, s,
                            served=served[name])
                cpu[name] += _cpu_seconds(proc.pid) - before
                if name == "ours":
                    after = resource.getrusage(resource.RUSAGE_CHILDREN)
                    cpu["wrk"] += (after.ru_utime + after.ru_stime - client.ru_utime
                                   - client.ru_stime)
                (ours if name == "ours" else theirs).append(rate)
        fixed = _wrk(url + paths[0], seconds, connections)
        ours.sort()
        theirs.sort()
        out.update({
            "responder_per_s": ours[1], "nginx_per_s": theirs[1],
            "responder_one_path_per_s": fixed,
            "ratio_to_nginx": ours[1] / theirs[1],
            # CPU of the responder processes (and of wrk) per response, over the 3 rounds
            "responder_cpu_us": cpu["ours"] / max(1, sum(served["ours"])) * 1e6,
            "nginx_cpu_us": cpu["nginx"] / max(1, sum(served["nginx"])) * 1e6,
            "client_cpu_us": cpu["wrk"] / max(1, sum(served["ours"])) * 1e6,
            "rounds": {"responder": ours, "nginx": theirs},
            "response_bytes": len(body),
            "client": f"wrk -t1 -c{connections} -d{seconds}s (Lua: next serial per request)",
            "target_per_s": TARGET_PER_S, "target_of_nginx": TARGET_OF_NGINX,
        })
    except RuntimeError as exc:
        died = [p for p in procs if p.poll() is not None and p.stderr is not None]
        if died:  # say why a server stopped, not only that wrk could not connect
            err = died[0].stderr.read().decode(errors="replace")[-2000:]  # type: ignore[union-attr]
            raise RuntimeError(f"{exc}; {died[0].args[0]} exited {died[0].returncode}: {err}") \
                from exc
        raise
    finally:
        for p in procs:
            _stop(p)
        if cluster is not None:
            cluster.__exit__(None, None, None)
        shutil.rmtree(home, ignore_errors=True)
    out["bench_seconds"] = time.monotonic() - started
    return out


def _answer_rate(server: Any, requests: list[bytes], n: int = 100_000) -> float:
    """HTTP answers per second from the lean server's request handler in-process (GET
    target in, whole HTTP response out; no socket, no parsing of headers), one thread."""
    targets = [b"/" + base64.b64encode(r).replace(b"+", b"%2B").replace(b"/", b"%2F")
               .replace(b"=", b"%3D") for r in requests]
    for t in targets:
        server.answer(b"GET", t, b"", None, None, "127.0.0.1")
    t0 = time.perf_counter()
    for i in range(n):
        server.answer(b"GET", targets[i % len(targets)], b"", None, None, "127.0.0.1")
    return n / (time.perf_counter() - t0)


def _verdict(ok: bool) -> str:
    return "ok" if ok else "MISSES TARGET"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.ocsp_pregenerated",
                                     description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--store", choices=("sqlite", "postgresql"),
                        default=os.environ.get("MYNACARD_BENCH_STORE", "sqlite"))
    parser.add_argument("--certs", type=int, default=2000)
    parser.add_argument("--seconds", type=int, default=8)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    if args.certs < 10 or not 1 <= args.seconds <= 60 or not 1 <= args.workers <= 16:
        parser.error("need --certs >= 10, --seconds 1..60, --workers 1..16")
    try:
        r = run(store_kind=args.store, certs=args.certs, seconds=args.seconds,
                workers=args.workers, connections=args.connections)
    except (RuntimeError, OSError) as exc:
        print(f"bench: {exc}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(r, indent=2))
        return 0
    pg = r["pregenerate"]
    print(f"OCSP from pre-generated responses ({r['store']} store, {r['certs']:,} certificates, "
          f"{r['cores']} cores, {r['workers']} responder processes; {r['client']}; medians "
          "of 3 alternating rounds)")
    print(f"{'  pre-generated (signed in SoftHSM2)':<48}{pg['signed']:>10,}"
          f"   {pg['per_s']:.0f}/s, {pg['seconds']:.1f} s")
    print(f"{'  responder core in-process/s, SQL (1 thread)':<48}{r['core_per_s']:>10.0f}")
    print(f"{'  responder core in-process/s, memory':<48}{r['core_memory_per_s']:>10.0f}")
    print(f"{'  HTTP answer in-process/s (GET, memory)':<48}{r['answer_per_s']:>10.0f}")
    print(f"{'  HTTP responses/s, all serials (ours)':<48}{r['responder_per_s']:>10.0f}")
    print(f"{'  HTTP responses/s, one path (ours)':<48}{r['responder_one_path_per_s']:>10.0f}")
    print(f"{'  HTTP responses/s, static file (nginx)':<48}{r['nginx_per_s']:>10.0f}")
    print(f"{'  responder CPU per response, all serials (µs)':<48}{r['responder_cpu_us']:>10.1f}")
    print(f"{'  nginx CPU per response (µs)':<48}{r['nginx_cpu_us']:>10.1f}")
    print(f"{'  wrk CPU per response, all serials (µs)':<48}{r['client_cpu_us']:>10.1f}")
    print(f"OCSP over HTTP ({r['store']}): {r['responder_per_s']:.0f}/s (target ≥ "
          f"{TARGET_PER_S:.0f}/s: {_verdict(r['responder_per_s'] >= TARGET_PER_S)}); "
          f"{r['ratio_to_nginx']:.0%} of nginx (target ≥ {TARGET_OF_NGINX:.0%}: "
          f"{_verdict(r['ratio_to_nginx'] >= TARGET_OF_NGINX)})")
    print(f"(bench ran {r['bench_seconds']:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
