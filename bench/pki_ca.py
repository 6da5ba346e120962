"""The HSM-backed JPKI CA: issuance, a CRL shard and OCSP over HTTP, each beside a baseline.

    python -m bench.pki_ca [--json] [--certs N] [--crl-entries N] [--ocsp-seconds S]
                           [--module softhsm|opencryptoki] [--issuance-only]
                           [--store sqlite|postgresql]

One run, in a temporary home with its own SoftHSM2 token (removed afterwards), or with
`--module opencryptoki` on opencryptoki's software token (reset first: every object on
it is destroyed). The mechanisms chosen on the token are reported beside the rates.
The certificate store is a SQLite file, or with `--store postgresql` (or
$MYNACARD_BENCH_STORE, as `make bench` sets it) a private PostgreSQL cluster.

* raw RSA-2048 PKCS#1 v1.5 signatures/s in the HSM, with bare python-pkcs11 calls (the
  floor) and through our signer (`hsm.signers.HsmRsaSigner`), beside certificates
  issued/s through `pki.ca.IssuingCA` (built, signed in the HSM, recorded in the SQLite
  store in one transaction each), with 1 and 2 threads; and through
  `IssuingCA.issue_many` with 1 and 2 HSM signing threads (the HSM signs certificate
  k+1 while the calling thread assembles and records certificate k, in transactions of
  64), and through `issue_many` signed by one `hsm.SigningProcess` (a process of its
  own, so the GIL this thread holds never keeps the HSM waiting). Rounds alternate raw
  signing and issuance so all see the same machine. Target:
  issuance >= 90 % of the raw rate. SoftHSM2 signs on the host's own 2 cores, so with
  2 threads the HSM and our code compete for the same CPUs (a hardware HSM signs on its
  own); with 1 signing thread the other core is ours, as beside a hardware HSM.
  Beside them, signatures/s while another thread of the same process runs Python, over
  signatures/s alone: what the GIL costs `issue_many`'s signing thread.
* one CRL shard of 100,000 revoked entries read from the store and signed in the HSM
  (`pki.crl.CrlPublisher`), beside the same CRL built by cryptography's
  CertificateRevocationListBuilder and signed with a software key. Target: <= 2 s.
* OCSP responses/s from our HTTP server (uvicorn, 2 worker processes, on 127.0.0.1)
  for one fixed nonce-less GET request, measured with `wrk`, beside the same responder
  core called in-process. Target: >= 5,000/s on 2 cores.
"""

from __future__ import annotations

import argparse
import base64
import datetime as dt
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
from pathlib import Path
from typing import Any

from hsm.errors import HsmError

ISSUANCE_TARGET = 0.90
CRL_TARGET_S = 2.0
OCSP_TARGET = 5000.0
PIN_ENV = "MYNACARD_BENCH_PKI_PIN"
CONFIG_ENV = "MYNACARD_BENCH_OCSP"
TOKEN = "bench-pki"
ROOT = Path(__file__).resolve().parent.parent


# -- the OCSP server's app (imported by uvicorn in each worker process) ----------------------
def ocsp_app() -> Any:
    """uvicorn factory: the responder of the bench CA, read-only store, keys in the HSM."""
    from hsm import PinSource, open_key_manager
    from hsm.softhsm import use_softhsm
    from pki.ca import load_ca
    from pki.ocsp import OcspResponder
    from pki.ocsp.server import build_app
    from pki.store import open_readonly_store

    cfg = json.loads(os.environ[CONFIG_ENV])
    home = Path(cfg["home"])
    if cfg["module"] == "softhsm":
        use_softhsm(home)
    km = open_key_manager(cfg["uri"], pin_source=PinSource.from_spec(f"env:{PIN_ENV}"))
    store = open_readonly_store(cfg["store"])
    responder = OcspResponder.from_ca(key_source=km, ca=load_ca(home / "ca"), store=store)
    app = build_app(responder)  # no authorizer: the bench measures the responder
    app.state.bench_resources = (km, store)
    return app


# -- measurements ----------------------------------------------------------------------------
def _issuance(km: Any, ca: Any, label: str, n: int, rounds: int,
              signing: Any) -> dict[str, Any]:
    from cryptography.hazmat.primitives.asymmetric import rsa

    from bench._pki_support import (
        bare_pkcs11_sign_rate,
        issuance_rate,
        pipelined_issuance_rate,
        raw_sign_rate,
        sign_rate_beside_python,
    )

    signer = km.signer(label)
    holder = rsa.generate_private_key(public_exponent=65537, key_size=2048).public_key()
    out: dict[str, Any] = {}
    for threads in (1, 2):
        bare: list[float] = []
        raw: list[float] = []
        issued: list[float] = []
        piped: list[float] = []
        process: list[float] = []
        # warm up (sessions per thread, caches), then alternate
        raw_sign_rate(signer, n=20 * threads, threads=threads)
        issuance_rate(ca, n=20 * threads, public_key=holder, threads=threads)
        pipelined_issuance_rate(ca, n=20 * threads, public_key=holder, parallel=threads)
        pipelined_issuance_rate(ca, n=20, public_key=holder, signing=signing)
        for k in range(rounds):
            # alternate the order, so a drift in the machine's load favours neither
            steps = [("bare", bare), ("raw", raw), ("issued", issued), ("piped", piped)]
            if threads == 1:  # one signing process: compared with one signing thread
                steps.append(("process", process))
            for name, into in (steps if k % 2 == 0 else steps[::-1]):
                if name == "bare":
                    into.append(bare_pkcs11_sign_rate(km, label, n=n, threads=threads))
                elif name == "raw":
                    into.append(raw_sign_rate(signer, n=n, threads=threads))
                elif name == "piped":
                    into.append(pipelined_issuance_rate(ca, n=n, public_key=holder,
                                                        parallel=threads))
                elif name == "process":
                    into.append(pipelined_issuance_rate(ca, n=n, public_key=holder,
                                                        signing=signing))
                else:
                    into.append(issuance_rate(ca, n=n, public_key=holder, threads=threads))
        med = {k: statistics.median(v) for k, v in
               (("bare_pkcs11", bare), ("signer", raw), ("issued", issued),
                ("pipelined", piped))}
        ratios = [i / r for i, r in zip(issued, raw, strict=True)]
        piped_ratios = [i / r for i, r in zip(piped, raw, strict=True)]
        out[f"threads_{threads}"] = {
            "per_round": {"bare_pkcs11": bare, "signer": raw, "issued": issued,
                          "pipelined": piped, "ratio_issued_to_signer": ratios,
                          "ratio_pipelined_to_signer": piped_ratios},
            "bare_pkcs11_per_s": med["bare_pkcs11"],
            "signer_per_s": med["signer"],
            "issued_per_s": med["issued"],
            "pipelined_per_s": med["pipelined"],
            "ratio_pipelined_to_signer": statistics.median(piped_ratios),
            "process_per_s": statistics.median(process) if process else None,
            "ratio_process_to_signer": statistics.median(
                [i / r for i, r in zip(process, raw, strict=True)]) if process else None,
            # the median of each round's ratio (raw and issued measured back to back)
            "ratio_issued_to_signer": statistics.median(ratios),
            "ratio_issued_to_bare": statistics.median(
                [i / b for i, b in zip(issued, bare, strict=True)]),
            "python_us_per_cert": (1 / med["issued"] - 1 / med["signer"]) * 1e6 * threads,
        }
    # the GIL: signatures beside a thread running Python in the same process, each round
    # beside signatures alone
    alone, beside = [], []
    for _ in range(3):
        alone.append(raw_sign_rate(signer, n=100))
        beside.append(sign_rate_beside_python(signer, n=100))
    out["gil"] = {"alone_per_s": statistics.median(alone),
                  "beside_python_per_s": statistics.median(beside),
                  "ratio": statistics.median([b / a for a, b in zip(alone, beside,
                                                                     strict=True)])}
    # CPU time of the calling thread per operation (SoftHSM2 signs in this thread): the
    # same comparison, insensitive to other processes competing for the cores
    from bench._pki_support import BENCH_IDENTITY

    sign_cpu, issue_cpu = [], []
    for _ in range(rounds):
        t = time.thread_time()
        raw_sign_rate(signer, n=n)
        sign_cpu.append((time.thread_time() - t) / n)
        t = time.thread_time()
        for i in range(n):
            ca.issue_user_authentication(public_key=holder, identity=BENCH_IDENTITY,
                                         holder_id=f"cpu-{i}", card_expiry=dt.date(2040, 1, 1))
        issue_cpu.append((time.thread_time() - t) / n)
    s_cpu, i_cpu = statistics.median(sign_cpu), statistics.median(issue_cpu)
    out["cpu"] = {"sign_us": s_cpu * 1e6, "issue_us": i_cpu * 1e6,
                  "ratio_sign_to_issue": s_cpu / i_cpu, "extra_us": (i_cpu - s_cpu) * 1e6}
    out["certs_per_round"] = n
    out["rounds"] = rounds
    out["target_ratio"] = ISSUANCE_TARGET
    return out


def _crl(km: Any, config: Any, store: Any, entries: int) -> dict[str, Any]:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import rsa

    from bench._pki_support import seed_certificates
    from pki.crl import CrlPublisher, issuing_distribution_point
    from pki.profiles import Hierarchy

    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    t = time.perf_counter()
    seed_certificates(store, count=entries, hierarchy="sign", shards=config.shards,
                      only_shard=0, revoked=True, now=now)
    seed_s = time.perf_counter() - t
    publisher = CrlPublisher(key_source=km, ca=config, store=store, clock=lambda: now)
    publisher.build_shard(Hierarchy.SIGN, 1)  # warm up: signer lookup, an empty shard
    t = time.perf_counter()
    crl = publisher.build_shard(Hierarchy.SIGN, 0)
    hsm_s = time.perf_counter() - t
    root = config.hierarchies[Hierarchy.SIGN].root_cert
    root_pub = root.public_key()
    assert isinstance(root_pub, rsa.RSAPublicKey)
    if len(crl) != entries or not crl.is_signature_valid(root_pub):
        raise RuntimeError(f"CRL shard: {len(crl)} entries, signature valid: "
                           f"{crl.is_signature_valid(root_pub)}")
    der_len = len(crl.public_bytes(_der()))

    # baseline: the same entries through cryptography's builders, software RSA-2048 key
    rows = store.revoked_in_shard("sign", 0, unexpired_at=now)
    soft_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    t = time.perf_counter()
    revoked = []
    for e in rows:
        rb = (x509.RevokedCertificateBuilder().serial_number(e.serial)
              .revocation_date(e.revoked_at))
        if e.reason is not None and e.reason is not x509.ReasonFlags.unspecified:
            rb = rb.add_extension(x509.CRLReason(e.reason), critical=False)
        revoked.append(rb.build())
    # the constructor takes the whole list (add_revoked_certificate copies it every call)
    b = x509.CertificateRevocationListBuilder(
        issuer_name=root.subject, last_update=now, next_update=now + dt.timedelta(days=1),
        extensions=[
            x509.Extension(x509.CRLNumber.oid, False, x509.CRLNumber(1)),
            x509.Extension(x509.IssuingDistributionPoint.oid, True,
                           issuing_distribution_point(config.crl_url(Hierarchy.SIGN, 0))),
        ],
        revoked_certificates=revoked)
    soft = b.sign(soft_key, hashes.SHA256())
    soft_s = time.perf_counter() - t
    return {"entries": entries, "hsm_s": hsm_s, "software_builder_s": soft_s,
            "ratio_hsm_to_software": hsm_s / soft_s, "der_bytes": der_len,
            "software_der_bytes": len(soft.public_bytes(_der())), "seed_s": seed_s,
            "target_s": CRL_TARGET_S}


def _der() -> Any:
    from cryptography.hazmat.primitives.serialization import Encoding

    return Encoding.DER


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_http(url: str, deadline: float) -> bytes:
    last: Exception | None = None
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                return bytes(r.read())
        except Exception as exc:  # not up yet
            last = exc
            time.sleep(0.2)
    raise RuntimeError(f"OCSP server did not answer: {last}")


_WRK_RPS = re.compile(r"Requests/sec:\s+([\d.]+)")
_WRK_NON2XX = re.compile(r"Non-2xx or 3xx responses:\s+(\d+)")
_WRK_TOTAL = re.compile(r"(\d+) requests in ([\d.]+)(\w+)")
_WRK_LAT = re.compile(r"^\s+(50|99)%\s+([\d.]+)(us|ms|s)\s*$", re.M)


def _lat_ms(value: str, unit: str) -> float:
    return float(value) * {"us": 1e-3, "ms": 1.0, "s": 1e3}[unit]


def _ocsp(home: Path, config: Any, km: Any, store_path: Path | str, seconds: int,
          module: str = "softhsm", uri: str = f"pkcs11:token={TOKEN}") -> dict[str, Any]:
    from cryptography.x509 import ocsp as xocsp

    from bench._pki_support import ocsp_core_rate, ocsp_requests
    from pki.ocsp import OcspResponder
    from pki.profiles import Hierarchy
    from pki.store import open_readonly_store

    wrk = shutil.which("wrk")
    if wrk is None:
        raise RuntimeError("wrk is not installed (apt-get install wrk; `make setup` does)")
    ro = open_readonly_store(store_path)
    try:
        serial = next(r.serial for r in ro.by_holder("bench-0") if r.hierarchy == "auth")
        cert = ro.get(serial).certificate()
        issuer = config.hierarchies[Hierarchy.AUTH].root_cert
        request = ocsp_requests([cert], issuer)[0]
        responder = OcspResponder.from_ca(key_source=km, ca=config, store=ro)
        core = ocsp_core_rate(responder, [request], n=20_000)
    finally:
        ro.close()
    path = "/" + urllib.parse.quote(base64.b64encode(request).decode(), safe="")
    port = _free_port()
    url = f"http://127.0.0.1:{port}{path}"
    cfg = {"home": str(home), "module": module, "uri": uri, "store": str(store_path)}
    env = dict(os.environ, **{CONFIG_ENV: json.dumps(cfg)})
    server = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "bench.pki_ca:ocsp_app", "--factory",
         "--host", "127.0.0.1", "--port", str(port), "--workers", "2",
         "--log-level", "warning", "--no-access-log", "--no-server-header"],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        body = _wait_http(url, time.monotonic() + 60)
        status = xocsp.load_der_ocsp_response(body)
        if status.response_status is not xocsp.OCSPResponseStatus.SUCCESSFUL \
                or status.certificate_status is not xocsp.OCSPCertStatus.GOOD:
            raise RuntimeError(f"OCSP server answered {status.response_status}")
        for _ in range(50):  # each worker signs once, then serves its cache
            _wait_http(url, time.monotonic() + 10)
        run = subprocess.run([wrk, "-t1", "-c32", f"-d{seconds}s", "--latency", url],
                             capture_output=True, text=True, timeout=seconds + 30)
        if run.returncode != 0:
            raise RuntimeError(f"wrk failed: {run.stderr.strip() or run.stdout.strip()}")
        out = run.stdout
    finally:
        server.terminate()
        try:
            server.wait(timeout=15)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
    m = _WRK_RPS.search(out)
    if m is None:
        raise RuntimeError(f"cannot read wrk output:\n{out}")
    non2xx = _WRK_NON2XX.search(out)
    if non2xx and int(non2xx.group(1)):
        raise RuntimeError(f"the OCSP server refused {non2xx.group(1)} requests:\n{out}")
    total = _WRK_TOTAL.search(out)
    lat = {p: _lat_ms(v, u) for p, v, u in _WRK_LAT.findall(out)}
    http = float(m.group(1))
    return {"http_per_s": http, "core_per_s": core, "ratio_http_to_core": http / core,
            "requests": int(total.group(1)) if total else None,
            "non_2xx": int(non2xx.group(1)) if non2xx else 0,
            "p50_ms": lat.get("50"), "p99_ms": lat.get("99"),
            "wrk": f"wrk -t1 -c32 -d{seconds}s --latency <GET url>",
            "server": "uvicorn --workers 2 (httptools, uvloop) on 127.0.0.1",
            "cores": os.cpu_count(), "target_per_s": OCSP_TARGET}


def _mechanisms(km: Any) -> dict[str, Any]:
    """What the token offers for each operation, as the center would choose it."""
    from hsm.mechanisms import MechanismMissing

    offered = km.mechanisms()
    try:
        derivation = offered.derivation().value
    except MechanismMissing as exc:
        derivation = f"none ({exc})"
    try:
        offered.hmac()
        audit = "CKM_SHA256_HMAC"
    except MechanismMissing as exc:
        audit = f"none ({exc})"
    return {"card_key_derivation": derivation, "audit_mac": audit,
            "certificate_signing": "CKM_RSA_PKCS (DigestInfo built on the host)"}


def run(certs: int = 200, rounds: int = 7, crl_entries: int = 100_000,
        ocsp_seconds: int = 10, module: str = "softhsm",
        issuance_only: bool = False, store_kind: str = "sqlite") -> dict[str, Any]:
    from hsm import PinSource, open_key_manager
    from hsm.opencryptoki import reset_token
    from hsm.signing_process import SigningProcess
    from hsm.softhsm import init_token
    from pki.ca import IssuingCA, init_ca
    from pki.profiles import Hierarchy
    from pki.store import open_store

    home = Path(tempfile.mkdtemp(prefix="mynacard-bench-pki-"))
    os.environ[PIN_ENV] = os.urandom(4).hex()  # 8 characters: opencryptoki's maximum
    started = time.monotonic()
    crl: dict[str, Any] | None = None
    ocsp: dict[str, Any] | None = None
    cluster: Any = None
    try:
        store_path: Path | str = home / "store.sqlite"
        if store_kind == "postgresql":
            from bench._pg import private_cluster

            cluster = private_cluster("benchpki")
            store_path = cluster.__enter__()
        if module == "opencryptoki":
            uri = reset_token(TOKEN, os.environ[PIN_ENV])
        else:
            init_token(home, TOKEN, os.urandom(8).hex(), os.environ[PIN_ENV])
            uri = f"pkcs11:token={TOKEN}"
        with open_key_manager(uri, pin_source=PinSource.from_spec(f"env:{PIN_ENV}")) as km:
            mechanisms = _mechanisms(km)
            config = init_ca(km, home / "ca", shards=16)
            with open_store(store_path) as store:
                ca = IssuingCA(key_source=km, ca=config, store=store)
                label = config.hierarchies[Hierarchy.AUTH].root_key
                with SigningProcess(km.uri, PinSource.from_spec(f"env:{PIN_ENV}")) as signing:
                    issuance = _issuance(km, ca, label, certs, rounds, signing)
                if not issuance_only:
                    crl = _crl(km, config, store, crl_entries)
            if not issuance_only:
                ocsp = _ocsp(home, config, km, store_path, ocsp_seconds, module, uri)
    finally:
        if cluster is not None:
            cluster.__exit__(None, None, None)
        shutil.rmtree(home, ignore_errors=True)
    return {"module": module, "mechanisms": mechanisms, "issuance": issuance, "crl": crl,
            "ocsp": ocsp, "store": store_kind, "seconds": time.monotonic() - started}


def _verdict(ok: bool) -> str:
    return "ok" if ok else "MISSES TARGET"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.pki_ca", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--certs", type=int, default=200, help="certificates per round (>= 100)")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--crl-entries", type=int, default=100_000)
    parser.add_argument("--ocsp-seconds", type=int, default=10)
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--module", choices=("softhsm", "opencryptoki"), default="softhsm",
                        help="the PKCS#11 module (opencryptoki: its software token is reset)")
    parser.add_argument("--store", choices=("sqlite", "postgresql"),
                        default=os.environ.get("MYNACARD_BENCH_STORE", "sqlite"))
    parser.add_argument("--issuance-only", action="store_true",
                        help="measure signing and issuance only (no CRL, no OCSP)")
    args = parser.parse_args(argv)
    if args.certs < 100 or not 1 <= args.rounds <= 15 or not 1 <= args.ocsp_seconds <= 60:
        parser.error("need --certs >= 100, --rounds 1..10, --ocsp-seconds 1..60")
    try:
        r = run(args.certs, args.rounds, args.crl_entries, args.ocsp_seconds, args.module,
                args.issuance_only, args.store)
    except (RuntimeError, HsmError) as exc:
        print(f"bench: {exc}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(r, indent=2))
        return 0
    iss, crl, oc = r["issuance"], r["crl"], r["ocsp"]
    name = {"softhsm": "SoftHSM2", "opencryptoki": "opencryptoki soft token"}[r["module"]]
    print(f"HSM-backed JPKI CA ({name}, RSA-2048, {r['store']} store, {os.cpu_count()} cores); "
          f"medians of {iss['rounds']} alternating rounds of {iss['certs_per_round']} "
          "(ratios: median of the per-round ratios)")
    print(f"{'':44}{'1 thread':>12}{'2 threads':>12}   (issue_many: HSM signing threads)")
    t1, t2 = iss["threads_1"], iss["threads_2"]
    rows = [("raw HSM signatures/s, bare python-pkcs11", "bare_pkcs11_per_s", "{:.0f}"),
            ("raw HSM signatures/s, through our signer", "signer_per_s", "{:.0f}"),
            ("certificates issued/s (IssuingCA + store)", "issued_per_s", "{:.0f}"),
            ("issued / signer", "ratio_issued_to_signer", "{:.1%}"),
            ("issued / bare python-pkcs11", "ratio_issued_to_bare", "{:.1%}"),
            ("extra µs per certificate and thread", "python_us_per_cert", "{:.0f}"),
            ("issue_many/s (HSM signs while we record)", "pipelined_per_s", "{:.0f}"),
            ("issue_many / signer", "ratio_pipelined_to_signer", "{:.1%}")]
    for name, key, fmt in rows:
        print(f"{name:<44}{fmt.format(t1[key]):>12}{fmt.format(t2[key]):>12}")
    cpu = iss["cpu"]
    print(f"{'CPU µs per signature / per certificate':<44}{cpu['sign_us']:>12.0f}"
          f"{cpu['issue_us']:>12.0f}  (1 thread)")
    print(f"{'CPU-time ratio (signature / certificate)':<44}"
          f"{cpu['ratio_sign_to_issue']:>12.1%}  (+{cpu['extra_us']:.0f} µs per certificate)")
    print(f"{'issue_many/s, signed by a process of its own':<44}"
          f"{t1['process_per_s']:>12.0f}{'':>12}  ({t1['ratio_process_to_signer']:.1%} of "
          "the signer: no GIL shared with the HSM)")
    gil = iss["gil"]
    print(f"{'HSM signatures/s alone / beside a Python thread':<44}{gil['alone_per_s']:>12.0f}"
          f"{gil['beside_python_per_s']:>12.0f}  ({gil['ratio']:.1%}: the signing thread "
          "waits for the GIL after each PKCS#11 call)")
    for label, t in (("1 thread", t1), ("2 threads", t2)):
        for what, key in (("one call per certificate", "ratio_issued_to_signer"),
                          ("issue_many, pipelined", "ratio_pipelined_to_signer"),
                          ("issue_many, signed by a process of its own",
                           "ratio_process_to_signer")):
            if t[key] is None:
                continue
            ok = t[key] >= ISSUANCE_TARGET
            print(f"issuance, {label}, {what}: {t[key]:.1%} of the raw signing rate "
                  f"(target ≥ {ISSUANCE_TARGET:.0%}: {_verdict(ok)})")
    for what, chosen in r["mechanisms"].items():
        print(f"mechanism chosen, {what.replace('_', ' ')}: {chosen}")
    if crl is None or oc is None:
        print(f"(bench ran {r['seconds']:.0f} s; no CRL or OCSP: --issuance-only)")
        return 0
    print()
    print(f"CRL shard, {crl['entries']:,} revoked entries ({crl['der_bytes']:,} bytes DER)")
    print(f"{'  read from the store + signed in the HSM':<44}{crl['hsm_s']:>10.2f} s")
    print(f"{'  cryptography CRL builder, software key':<44}{crl['software_builder_s']:>10.2f} s")
    print(f"{'  ratio HSM shard / software builder':<44}{crl['ratio_hsm_to_software']:>10.2f}")
    print(f"CRL shard: {crl['hsm_s']:.2f} s (target ≤ {CRL_TARGET_S:.0f} s: "
          f"{_verdict(crl['hsm_s'] <= CRL_TARGET_S)})")
    print()
    print(f"OCSP, one fixed nonce-less GET ({oc['server']}; {oc['wrk']})")
    print(f"{'  HTTP responses/s (wrk)':<44}{oc['http_per_s']:>10.0f}"
          f"   p50 {oc['p50_ms']} ms, p99 {oc['p99_ms']} ms, non-2xx {oc['non_2xx']}")
    print(f"{'  responder core in-process/s':<44}{oc['core_per_s']:>10.0f}")
    print(f"{'  ratio HTTP / core':<44}{oc['ratio_http_to_core']:>10.2f}")
    print(f"OCSP over HTTP: {oc['http_per_s']:.0f}/s on {oc['cores']} cores (target ≥ "
          f"{OCSP_TARGET:.0f}/s: {_verdict(oc['http_per_s'] >= OCSP_TARGET)}); fast because "
          "each signed response is cached per (issuer, serial, hash) and served again "
          "until the certificate's status_version changes or half its validity has passed: "
          "a request costs a parse, one primary-key read in the store and no HSM call")
    print(f"(bench ran {r['seconds']:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
