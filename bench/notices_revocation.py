"""Notices against a national-scale certificate store: throughput, freshness, OCSP under load.

    python -m bench.notices_revocation [--certs N] [--notices M] [--db sqlite|postgresql|both]
                                      [--pg-url URL] [--workers-pg K] [--quick] [--json]
                                      [--no-ocsp] [--profile DIR] [--stages]

One run, on one machine, every figure beside a baseline measured in the same run, for
each database asked for (`--db`; PostgreSQL: a private cluster started in the work
directory unless `--pg-url` names a server; the issuance database and the certificate
store are two schemas of it):
1. seed N synthetic certificate rows (N/2 holders, a signing and a user-authentication
   certificate each; no card, placeholder DER) in a fresh store (SQLite: executemany;
   PostgreSQL: COPY); the rate of `bench._pki_support.seed_certificates` on a sample
   (SQLite) is shown beside ours;
2. ingest M mixed notices (deaths, deletions, emigrations with and without continued use,
   changes of the four facts, from 住基ネット and 附票ネット, plus 2 % unknown persons,
   1 % duplicates, 0.5 % malformed) with `NoticeIntake` + `NoticeProcessor` as
   `mynacard notices ingest` runs them for a large file (the processor in a child
   process, `issuance.notices.alongside`, applying what intake has committed while
   intake stores the rest; on PostgreSQL `--workers-pg` processors sharing the notices by
   resident bucket), timed from the first line to the last notice applied, beside a bare
   INSERT (SQLite) / COPY (PostgreSQL) of the same lines into the same database. Targets:
   M = 1,000,000 against N = 10,000,000 in ≤ 60 s, and within 20× the bare load;
3. a real OCSP responder over HTTP (uvicorn, HSM-signed, bearer-token check on) and:
   - notice accepted → OCSP says revoked: a steady stream of death notices (50/s), each
     accepted, applied, then polled over HTTP until revoked; p50/p99 (target p99 ≤ 1 s);
   - OCSP responses/s from an asyncio keep-alive client (16 connections, a warm pool of
     2,000 serials, no nonce) with no notices streaming, then while notices stream
     (target: ≥ 80 % of the rate without them).

`--profile DIR` replaces 2. and 3. by a profile: intake, then one processor pass, both in
this process under cProfile, with each phase's µs per notice and its top costs.
`--stages` does the same without cProfile: what each stage costs per notice on its own
(no contention between the two, no profiling overhead), the figure a speed-up moves.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import hashlib
import json
import os
import random
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

PIN, SO_PIN = "1234", "12345678"
TARGET_SECONDS_PER_MILLION = 60.0
TARGET_BARE_RATIO = 20.0
TARGET_OCSP_RATIO = 0.8
TARGET_P99_MS = 1000.0
FIRST_SERIAL = 1 << 80
ISSUED = int(dt.datetime(2025, 4, 1, 1, 0, tzinfo=dt.UTC).timestamp())
KINDS = [("death", 25), ("address_change", 30), ("name_change", 8), ("record_deleted", 5),
         ("emigration_continued_use", 10), ("emigration_without_continued_use", 5),
         ("birth_date_change", 3), ("sex_change", 2), ("correction", 2)]
FACTS = {"name_change": {"name": "佐藤 花子"},
         "address_change": {"address": "大阪府大阪市北区梅田1丁目1番1号"},
         "birth_date_change": {"birth_date": "1985-07-02"}, "sex_change": {"sex": 1},
         "correction": {"name": "山田 華子"}}


def _pct(values: list[float], q: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, int(len(s) * q))] if s else float("nan")


def _code(i: int) -> str:
    from issuance.registry.checkdigits import complete_resident_code

    return complete_resident_code(f"{i + 1:010d}")


def _serials(holder: int) -> tuple[int, int]:
    return FIRST_SERIAL + 2 * holder, FIRST_SERIAL + 2 * holder + 1


# -- 1. seeding -------------------------------------------------------------------------
def _cert_rows(start: int, end: int, not_after: int) -> list[tuple[Any, ...]]:
    rows = []
    for h in range(start, end):
        code = _code(h)
        s, a = _serials(h)
        rows.append((format(s, "x"), "sign", "signing", code, s % 16, ISSUED, ISSUED,
                     not_after, ISSUED))
        rows.append((format(a, "x"), "auth", "user-authentication", code, a % 16, ISSUED,
                     ISSUED, not_after, ISSUED))
    return rows


def seed(store: Any, holders: int, *, chunk: int = 200_000) -> float:
    """Two rows per holder, in serial order (appends to the primary key and holder
    indexes); one transaction per chunk (SQLite: executemany; PostgreSQL: COPY);
    returns rows per second."""
    db = store._db
    conn = db.conn
    not_after = ISSUED + 5 * 365 * 86400
    columns = ("serial, hierarchy, profile, holder_id, shard, issued_at, not_before,"
               " not_after, updated_at, status, der")
    if not db.postgres:
        conn.execute("PRAGMA cache_size=-1000000")
    t = time.perf_counter()
    for start in range(0, holders, chunk):
        rows = _cert_rows(start, min(holders, start + chunk), not_after)
        with store.transaction():
            if db.postgres:
                with conn.cursor() as cur, cur.copy(
                        f"COPY certificates ({columns}) FROM STDIN") as copy:
                    for row in rows:
                        copy.write_row((*row, "good", b"\x30\x00"))
            else:
                conn.executemany(f"INSERT INTO certificates ({columns}) VALUES"
                                 " (?, ?, ?, ?, ?, ?, ?, ?, ?, 'good', X'3000')", rows)
    if db.postgres:
        conn.execute("ANALYZE certificates")
    return 2 * holders / (time.perf_counter() - t)


def bench_support_seed_rate(work: Path, n: int) -> float:
    from bench._pki_support import seed_certificates
    from pki.store import open_store

    with open_store(work / "sample-store.sqlite") as s:
        t = time.perf_counter()
        seed_certificates(s, count=n)
        rate = n / (time.perf_counter() - t)
    (work / "sample-store.sqlite").unlink()
    return rate


# -- 2. notices -------------------------------------------------------------------------
def make_notices(holders: int, count: int, seed_value: int = 7) -> tuple[list[str], list[int]]:
    """JSON Lines; and the holders who need a registry entry."""
    rnd = random.Random(seed_value)
    weights = [w for _, w in KINDS]
    kinds = [k for k, _ in KINDS]
    n_bad, n_dup, n_unknown = count // 200, count // 100, count // 50
    n_valid = count - n_bad - n_dup - n_unknown
    distinct = max(1, int(n_valid * 0.85))
    stride = max(1, holders // distinct)
    lines: list[str] = []
    people: list[int] = []
    for k in range(n_valid):
        holder = (k % distinct) * stride
        if k < distinct:
            people.append(holder)
        kind = rnd.choices(kinds, weights)[0]
        body: dict[str, Any] = {"id": f"B-{k:09d}", "source": "fuhyo" if k % 10 == 0 else "juki",
                                "kind": kind, "resident_code": _code(holder),
                                "effective_date": "2026-06-01" if k < distinct else "2026-07-01"}
        if kind in FACTS:
            body["facts"] = FACTS[kind]
        lines.append(json.dumps(body, ensure_ascii=False))
    for k in range(n_unknown):
        lines.append(json.dumps({"id": f"U-{k:09d}", "source": "juki", "kind": "death",
                                 "resident_code": _code(holders + 10 + k),
                                 "effective_date": "2026-06-01"}))
    lines.extend(rnd.sample(lines, n_dup))  # resent, byte for byte
    lines.extend(f'{{"id": "X-{k}", "source": "juki", "kind": "death"}}' for k in range(n_bad))
    rnd.shuffle(lines)
    return lines, people


def load_residents(db: Any, people: list[int]) -> float:
    from issuance.registry.checkdigits import complete_my_number
    from issuance.registry.model import Nationality, Resident, ResidentStatus, Sex
    from issuance.registry.store import note_registry_load, put_residents

    t = time.perf_counter()
    for start in range(0, len(people), 20_000):
        batch = [Resident(resident_code=_code(h), my_number=complete_my_number(f"{h + 1:011d}"),
                          name="山田 花子", address="東京都千代田区千代田1丁目1番1号",
                          birth_date=dt.date(1985, 7, 1), sex=Sex.FEMALE,
                          nationality=Nationality.JAPANESE, status=ResidentStatus.RESIDENT,
                          municipality_code="131016")
                 for h in people[start:start + 20_000]]
        with db.transaction() as tx:
            put_residents(tx, batch)
            note_registry_load(tx)  # as the registry loader does
    return len(people) / (time.perf_counter() - t)


def bare_insert_rate(db: Any, lines: list[str]) -> float:
    with db.transaction() as tx:
        tx.execute("CREATE TABLE IF NOT EXISTS bench_bare_notices (n INTEGER PRIMARY KEY,"
                   " received_at TEXT NOT NULL, payload TEXT NOT NULL)")
    now = dt.datetime.now(dt.UTC).isoformat()
    t = time.perf_counter()
    for start in range(0, len(lines), 5000):
        part = [(start + i, now, line) for i, line in enumerate(lines[start:start + 5000])]
        with db.transaction() as tx:
            if db.dialect == "postgresql":
                with tx._conn.cursor() as cur, cur.copy(
                        "COPY bench_bare_notices (n, received_at, payload) FROM STDIN") as copy:
                    for row in part:
                        copy.write_row(row)
            else:
                tx.executemany("INSERT INTO bench_bare_notices (n, received_at, payload)"
                               " VALUES (?, ?, ?)", part)
    rate = len(lines) / (time.perf_counter() - t)
    with db.transaction() as tx:
        tx.execute("DROP TABLE bench_bare_notices")
    return rate


# -- 3. OCSP ----------------------------------------------------------------------------
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def app_from_env() -> Any:
    """uvicorn factory: the responder with the relying-party token check."""
    from hsm import PinSource, open_key_manager
    from hsm.softhsm import use_softhsm
    from pki.ca import load_ca
    from pki.ocsp import OcspResponder
    from pki.ocsp.server import build_app
    from pki.relying_parties.registry import TokenAuthorizer
    from pki.store import open_readonly_store

    cfg = json.loads(os.environ["MYNACARD_BENCH_OCSP"])
    home = Path(cfg["home"])
    use_softhsm(home)
    km = open_key_manager("pkcs11:token=bench", pin_source=PinSource.from_spec("env:BENCH_PIN"))
    store = open_readonly_store(cfg["db"])
    responder = OcspResponder.from_ca(key_source=km, ca=load_ca(home / "ca"), store=store)
    app = build_app(responder, authorizer=TokenAuthorizer(cfg["db"]))
    app.state.keep = (km, store)
    return app


def start_ocsp(home: Path, db: str | Path, workers: int) -> tuple[subprocess.Popen[bytes], int]:
    port = _free_port()
    env = {**os.environ, "BENCH_PIN": PIN,
           "MYNACARD_BENCH_OCSP": json.dumps({"home": str(home), "db": str(db)})}
    proc = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "bench.notices_revocation:app_from_env", "--factory",
         "--host", "127.0.0.1", "--port", str(port), "--workers", str(workers),
         "--log-level", "warning", "--no-access-log", "--no-server-header"],
        env=env, cwd=Path(__file__).parents[1])
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            time.sleep(1.0 if workers > 1 else 0.2)
            return proc, port
        except OSError:
            if proc.poll() is not None:
                raise RuntimeError("OCSP server exited") from None
            time.sleep(0.1)
    raise RuntimeError("OCSP server did not start")


def ocsp_request(issuer: Any, serial: int) -> bytes:
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
    from cryptography.x509 import ocsp

    name_hash = hashlib.sha1(issuer.subject.public_bytes()).digest()  # noqa: S324
    key_hash = hashlib.sha1(issuer.public_key().public_bytes(  # noqa: S324
        Encoding.DER, PublicFormat.PKCS1)).digest()
    return (ocsp.OCSPRequestBuilder()
            .add_certificate_by_hash(name_hash, key_hash, serial, hashes.SHA1())
            .build().public_bytes(Encoding.DER))


def _http_request(body: bytes, token: str) -> bytes:
    return (b"POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/ocsp-request\r\n"
            b"Authorization: Bearer " + token.encode() + b"\r\nContent-Length: "
            + str(len(body)).encode() + b"\r\n\r\n" + body)


async def _read_response(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    length = 0
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":", 1)[1])
    return status, await reader.readexactly(length)


async def _load(port: int, requests: list[bytes], seconds: float, conns: int) -> int:
    done = 0
    stop = time.monotonic() + seconds

    async def worker(i: int) -> None:
        nonlocal done
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        k = i
        while time.monotonic() < stop:
            writer.write(requests[k % len(requests)])
            status, _ = await _read_response(reader)
            if status != 200:
                raise RuntimeError(f"OCSP answered HTTP {status}")
            done += 1
            k += conns
        writer.close()

    await asyncio.gather(*(worker(i) for i in range(conns)))
    return done


def loadgen_main(argv: list[str]) -> int:
    """Child process: `--_loadgen PORT SECONDS CONNS FILE` (FILE: JSON list of hex bodies)."""
    port, seconds, conns, path = int(argv[0]), float(argv[1]), int(argv[2]), argv[3]
    requests = [bytes.fromhex(h) for h in json.loads(Path(path).read_text())]
    t = time.perf_counter()
    n = asyncio.run(_load(port, requests, seconds, conns))
    print(json.dumps({"responses": n, "seconds": time.perf_counter() - t}))
    return 0


def run_load(port: int, reqfile: Path, seconds: float, conns: int = 16) -> float:
    out = subprocess.run([sys.executable, "-m", "bench.notices_revocation", "--_loadgen",
                          str(port), str(seconds), str(conns), str(reqfile)],
                         capture_output=True, text=True, check=True,
                         cwd=Path(__file__).parents[1])
    r = json.loads(out.stdout)
    return float(r["responses"] / r["seconds"])


def ocsp_status(conn: Any, body: bytes, token: str) -> str:
    from cryptography.x509 import ocsp

    conn.request("POST", "/", body=body, headers={"Content-Type": "application/ocsp-request",
                                                  "Authorization": f"Bearer {token}"})
    resp = conn.getresponse()
    data = resp.read()
    if resp.status != 200:
        raise RuntimeError(f"OCSP answered HTTP {resp.status}")
    return str(ocsp.load_der_ocsp_response(data).certificate_status.name)


def stream(db: Any, store_path: str | Path, issuer: Any, port: int, token: str, holders: list[int],
           rate: float, seconds: float, stop: threading.Event | None = None) -> list[float]:
    """Death notices at `rate`/s; each accepted, applied (as `notices serve` does), then
    polled over HTTP until OCSP says revoked. Latencies in ms."""
    import http.client

    from issuance.notices.certificates import CertificateGateway
    from issuance.notices.intake import NoticeIntake
    from issuance.notices.processor import NoticeProcessor

    intake = NoticeIntake(db)
    latencies: list[float] = []
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    n = int(rate * seconds)
    t0 = time.monotonic()
    with CertificateGateway.open(store_path) as certs:
        processor = NoticeProcessor(db, certs)
        for i in range(min(n, len(holders))):
            if stop is not None and stop.is_set():
                break
            delay = t0 + i / rate - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            h = holders[i]
            line = json.dumps({"id": f"S-{h}", "source": "juki", "kind": "death",
                               "resident_code": _code(h), "effective_date": "2026-06-01"})
            result = intake.accept(line)
            accepted = time.perf_counter()
            assert result.outcome == "accepted", result
            processor.process()
            body = ocsp_request(issuer, _serials(h)[0])
            while ocsp_status(conn, body, token) != "REVOKED":
                time.sleep(0.002)
            latencies.append((time.perf_counter() - accepted) * 1000)
    conn.close()
    return latencies


# -- the run ----------------------------------------------------------------------------
PG_BIN = Path(os.environ.get("MYNACARD_PG_BIN", "/usr/lib/postgresql/15/bin"))


def start_postgres() -> tuple[str, Any]:
    """A private PostgreSQL cluster in a temporary directory (as the test fixtures start
    one; durable commits except `synchronous_commit=off`, as SQLite's WAL with
    synchronous=NORMAL): its URL and a function that stops it."""
    import pwd

    base = Path(tempfile.mkdtemp(prefix="bench-notices-pg-"))  # the server's user enters it
    as_user: list[str] = []
    if os.geteuid() == 0:
        pw = pwd.getpwnam("postgres")
        os.chown(base, pw.pw_uid, pw.pw_gid)
        as_user = ["runuser", "-u", "postgres", "--"]
    user = "postgres" if as_user else pwd.getpwuid(os.geteuid()).pw_name
    port = _free_port()
    subprocess.run([*as_user, str(PG_BIN / "initdb"), "-D", str(base / "data"), "-U", user,
                    "--auth=trust", "-E", "UTF8", "--locale=C"], check=True,
                   capture_output=True)
    opts = (f"-c listen_addresses='' -c unix_socket_directories={base} -p {port}"
            " -c synchronous_commit=off -c shared_buffers=1GB -c max_wal_size=8GB"
            " -c checkpoint_timeout=30min -c work_mem=64MB -c maintenance_work_mem=512MB")
    subprocess.run([*as_user, str(PG_BIN / "pg_ctl"), "-D", str(base / "data"), "-l",
                    str(base / "log"), "-o", opts, "-w", "-t", "60", "start"], check=True,
                   capture_output=True)

    def stop() -> None:
        subprocess.run([*as_user, str(PG_BIN / "pg_ctl"), "-D", str(base / "data"), "-m",
                        "fast", "-w", "stop"], check=False, capture_output=True)
        shutil.rmtree(base, ignore_errors=True)

    return f"postgresql://{user}@/postgres?host={base}&port={port}", stop


def pg_schema(url: str, schema: str) -> str:
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
        conn.execute(f"CREATE SCHEMA {schema}")
    return f"{url}&options=-csearch_path%3D{schema}"


def run_backend(args: argparse.Namespace, backend: str, work: Path, home: Path, issuer: Any,
                store_loc: str | Path, db_url: str, lines: list[str],
                people: list[int]) -> dict[str, Any]:
    from issuance.notices.alongside import ApplyAlongside
    from issuance.notices.intake import BULK_BATCH, NoticeIntake
    from issuance.storage import open_database
    from pki.relying_parties.registry import RelyingPartyRegistry
    from pki.store import open_store

    out: dict[str, Any] = {"backend": backend}
    holders = args.certs // 2
    t = time.perf_counter()
    with open_store(store_loc) as store:
        out["seed_rows_per_s"] = seed(store, holders)
    out["seed_seconds"] = time.perf_counter() - t
    print(f"[{backend}] seeded {2 * holders:,} rows in {out['seed_seconds']:.1f} s "
          f"({out['seed_rows_per_s']:,.0f}/s)", file=sys.stderr, flush=True)

    db = open_database(db_url)
    out["registry_residents"] = len(people)
    out["registry_load_per_s"] = load_residents(db, people)
    NoticeIntake(db)  # migrations outside the timings
    out["bare_insert_per_s"] = bare_insert_rate(db, lines)
    out["bare_seconds"] = len(lines) / out["bare_insert_per_s"]

    now = dt.datetime(2026, 11, 22, 3, 0, tzinfo=dt.UTC)
    if args.profile or args.stages:
        out["profile"] = profile_pass(db, store_loc, lines, now,
                                      Path(args.profile) if args.profile else None, backend)
        db.close()
        return out
    appliers = 1 if backend == "sqlite" else max(1, args.workers_pg)
    t = time.perf_counter()
    # as `mynacard notices ingest` does for a large file: intake here, processors
    # applying what is committed in child processes meanwhile (PostgreSQL: several,
    # sharing the notices by resident bucket)
    children = [ApplyAlongside(db.url, store_loc, now=now) for _ in range(appliers)]
    try:
        intake_report = NoticeIntake(db, batch=BULK_BATCH).accept_lines(lines)
        t_intake = time.perf_counter() - t
        reports = [c.finish() for c in children]
    except BaseException:
        for c in children:
            c.abort()
        raise
    total = time.perf_counter() - t
    processed = {k: sum(getattr(r, k) for r in reports)
                 for k in ("applied", "revoked", "already_revoked", "kept", "unmatched")}
    out.update({
        "appliers": appliers, "intake_seconds": t_intake,
        "apply_after_intake_seconds": total - t_intake, "total_seconds": total,
        "notices_per_s": len(lines) / total, "intake": intake_report.counts,
        "processed": processed,
        "target_seconds": TARGET_SECONDS_PER_MILLION * args.notices / 1_000_000,
    })
    out["ratio_to_bare_insert"] = total / out["bare_seconds"]
    print(f"[{backend}] {len(lines):,} notices in {total:.1f} s (intake {t_intake:.1f} s,"
          f" {appliers} applier(s) alongside; {total - t_intake:.1f} s more after intake):"
          f" {out['notices_per_s']:,.0f}/s", file=sys.stderr, flush=True)
    if args.no_ocsp:
        db.close()
        return out

    # 3. OCSP: a registered relying party, a real server
    with RelyingPartyRegistry(store_loc) as reg:
        token = reg.add("bench", kind="platform_operator").token
    unused = sorted(set(range(0, holders, 1)) - set(people))
    rnd = random.Random(3)
    stream_holders = rnd.sample(unused[: max(10_000, len(unused) // 2)],
                                min(len(unused) // 2, 20_000))
    pool = [ocsp_request(issuer, _serials(h)[0]) for h in rnd.sample(unused, 2000)]
    reqfile = work / f"requests-{backend}.json"
    reqfile.write_text(json.dumps([_http_request(b, token).hex() for b in pool]))
    load_residents(db, stream_holders)  # the stream revokes registered holders nobody asked about
    proc, port = start_ocsp(home, store_loc, args.workers)
    try:
        run_load(port, reqfile, 1.0)  # warm the caches
        lat = stream(db, store_loc, issuer, port, token, stream_holders, args.rate,
                     args.stream_seconds)
        out["latency_ms"] = {"n": len(lat), "p50": _pct(lat, 0.5), "p99": _pct(lat, 0.99),
                             "max": max(lat), "mean": statistics.fmean(lat)}
        out["ocsp_idle_per_s"] = run_load(port, reqfile, args.load_seconds)
        stop = threading.Event()
        under: list[float] = []
        th = threading.Thread(target=lambda: under.extend(stream(
            db, store_loc, issuer, port, token, stream_holders[len(lat):], args.rate,
            args.load_seconds + 5, stop)))
        th.start()
        time.sleep(1.0)
        out["ocsp_streaming_per_s"] = run_load(port, reqfile, args.load_seconds)
        stop.set()
        th.join()
        out["latency_under_load_ms"] = {"n": len(under), "p50": _pct(under, 0.5),
                                        "p99": _pct(under, 0.99)}
    finally:
        proc.terminate()
        proc.wait(30)
    out["ocsp_ratio_streaming_to_idle"] = out["ocsp_streaming_per_s"] / out["ocsp_idle_per_s"]
    db.close()
    return out


def profile_pass(db: Any, store_loc: str | Path, lines: list[str], now: dt.datetime,
                 out_dir: Path | None, backend: str) -> dict[str, Any]:
    """`--profile`: intake, then one `NoticeProcessor` pass, in THIS process (no child),
    each under cProfile; writes `<backend>-intake.prof` and `<backend>-process.prof` to
    `out_dir` and returns each phase's wall and CPU time per notice and its top costs
    (own time per notice, in µs; profiling inflates them, read them as shares).
    `out_dir` None (`--stages`): the same phases unprofiled, times only."""
    import cProfile
    import pstats

    from issuance.notices.certificates import CertificateGateway
    from issuance.notices.intake import BULK_BATCH, NoticeIntake
    from issuance.notices.processor import NoticeProcessor

    if out_dir is not None:
        out_dir.mkdir(parents=True, exist_ok=True)
    result: dict[str, Any] = {}
    with CertificateGateway.open(store_loc) as certs:
        intake = NoticeIntake(db, batch=BULK_BATCH)
        processor = NoticeProcessor(db, certs, clock=lambda: now, first_batch=BULK_BATCH)
        for phase, work in (("intake", lambda: intake.accept_lines(lines)),
                            ("process", processor.process)):
            prof = cProfile.Profile() if out_dir is not None else None
            wall, cpu = time.perf_counter(), time.process_time()
            if prof is not None:
                prof.runcall(work)
            else:
                work()
            wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
            result[phase] = {"wall_us_per_notice": wall / len(lines) * 1e6,
                             "cpu_us_per_notice": cpu / len(lines) * 1e6}
            how = "profiled" if prof is not None else "unprofiled, alone"
            print(f"[{backend}] {phase}: {result[phase]['wall_us_per_notice']:.0f} µs/notice"
                  f" wall, {result[phase]['cpu_us_per_notice']:.0f} µs CPU (this process,"
                  f" {how})", file=sys.stderr, flush=True)
            if prof is None or out_dir is None:
                continue
            path = out_dir / f"{backend}-{phase}.prof"
            prof.dump_stats(str(path))
            stats = pstats.Stats(str(path)).stats  # type: ignore[attr-defined]
            top = sorted(((tt, f"{Path(fn).name}:{line}({name})")
                          for (fn, line, name), (_cc, _nc, tt, _ct, _cl) in stats.items()),
                         reverse=True)[:15]
            result[phase]["top_own_us_per_notice"] = {k: tt / len(lines) * 1e6
                                                      for tt, k in top}
            print(f"    {path}", file=sys.stderr)
            for k, v in result[phase]["top_own_us_per_notice"].items():
                print(f"    {v:8.1f} µs  {k}", file=sys.stderr)
    return result


def run(args: argparse.Namespace) -> dict[str, Any]:
    from hsm import PinSource, open_key_manager
    from hsm.softhsm import init_token, use_softhsm
    from pki.ca import init_ca

    work = Path(args.dir) if args.dir else Path(tempfile.mkdtemp(prefix="bench-notices-"))
    work.mkdir(parents=True, exist_ok=True)
    backends = ["sqlite", "postgresql"] if args.db == "both" else [args.db]
    out: dict[str, Any] = {"certificates": args.certs, "notices": args.notices,
                           "cores": os.cpu_count(), "backends": {}}
    stop_pg = None
    try:
        home = work / "home"
        init_token(home, "bench", SO_PIN, PIN)
        use_softhsm(home)
        os.environ["BENCH_PIN"] = PIN
        with open_key_manager("pkcs11:token=bench",
                              pin_source=PinSource.from_spec("env:BENCH_PIN")) as km:
            ca = init_ca(km, home / "ca", shards=16)
        issuer = ca.hierarchies[next(h for h in ca.hierarchies if h.value == "sign")].root_cert
        out["seed_bench_support_rows_per_s"] = bench_support_seed_rate(
            work, min(200_000, args.certs))
        lines, people = make_notices(args.certs // 2, args.notices)
        for backend in backends:
            store_loc: str | Path
            if backend == "sqlite":
                store_loc = home / "store.sqlite"
                db_url = f"sqlite:///{work / 'issuance.sqlite3'}"
            else:
                url = args.pg_url
                if url is None:
                    url, stop_pg = start_postgres()
                store_loc = pg_schema(url, "bench_store")
                db_url = pg_schema(url, "bench_issuance")
            out["backends"][backend] = run_backend(args, backend, work, home, issuer,
                                                   store_loc, db_url, lines, people)
    finally:
        if stop_pg is not None:
            stop_pg()
        if not args.keep and not args.dir:
            shutil.rmtree(work, ignore_errors=True)
    return out


def report(r: dict[str, Any]) -> None:
    for name, b in r["backends"].items():
        if "profile" in b:
            continue  # printed as it ran
        ok = "meets" if b["total_seconds"] <= b["target_seconds"] else "MISSES"
        ok_bare = "meets" if b["ratio_to_bare_insert"] <= TARGET_BARE_RATIO else "MISSES"
        bare = "INSERT" if name == "sqlite" else "COPY"
        print(f"[{name}] store: {r['certificates']:,} certificate rows seeded at "
              f"{b['seed_rows_per_s']:,.0f} rows/s ({b['seed_seconds']:.1f} s); baseline "
              f"bench._pki_support.seed_certificates {r['seed_bench_support_rows_per_s']:,.0f}"
              f" rows/s (x{b['seed_rows_per_s'] / r['seed_bench_support_rows_per_s']:.2f})")
        print(f"[{name}] notices: {r['notices']:,} in {b['total_seconds']:.1f} s = "
              f"{b['notices_per_s']:,.0f}/s (intake {b['intake_seconds']:.1f} s with "
              f"{b['appliers']} processor(s) applying alongside, then "
              f"{b['apply_after_intake_seconds']:.1f} s to apply the rest); target ≤ "
              f"{b['target_seconds']:.0f} s: {ok}")
        print(f"[{name}]   baseline bare {bare} of the same lines {b['bare_seconds']:.1f} s "
              f"({b['bare_insert_per_s']:,.0f}/s): ratio {b['ratio_to_bare_insert']:.1f}x;"
              f" target ≤ {TARGET_BARE_RATIO:.0f}x: {ok_bare}")
        print(f"[{name}]   outcomes: {b['intake']}; applied {b['processed']['applied']:,},"
              f" revoked {b['processed']['revoked']:,}")
        if "latency_ms" not in b:
            continue
        lat, under = b["latency_ms"], b["latency_under_load_ms"]
        ok = "meets" if lat["p99"] <= TARGET_P99_MS else "MISSES"
        print(f"[{name}] notice accepted → OCSP revoked ({lat['n']} notices at a steady "
              f"stream): p50 {lat['p50']:.1f} ms, p99 {lat['p99']:.1f} ms, max "
              f"{lat['max']:.1f} ms; target p99 ≤ {TARGET_P99_MS:.0f} ms: {ok}; under OCSP "
              f"load: p50 {under['p50']:.1f} ms, p99 {under['p99']:.1f} ms")
        ratio = b["ocsp_ratio_streaming_to_idle"]
        ok = "meets" if ratio >= TARGET_OCSP_RATIO else "MISSES"
        print(f"[{name}] OCSP over HTTP: {b['ocsp_streaming_per_s']:,.0f} responses/s while "
              f"notices stream, baseline {b['ocsp_idle_per_s']:,.0f}/s with none (ratio "
              f"{ratio:.2f}); target ≥ {TARGET_OCSP_RATIO:.2f}: {ok}")


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "--_loadgen":
        return loadgen_main(argv[1:])
    p = argparse.ArgumentParser(prog="python -m bench.notices_revocation",
                                description=__doc__.split("\n\n")[0])
    p.add_argument("--certs", type=int, default=10_000_000)
    p.add_argument("--notices", type=int, default=1_000_000)
    p.add_argument("--quick", action="store_true",
                   help="smoke size: 200,000 certificates, 20,000 notices, short streams")
    p.add_argument("--rate", type=float, default=50.0, help="notices/s in the stream")
    p.add_argument("--stream-seconds", type=float, default=20.0)
    p.add_argument("--load-seconds", type=float, default=10.0)
    p.add_argument("--workers", type=int, default=2, help="OCSP server worker processes")
    p.add_argument("--db", choices=["sqlite", "postgresql", "both"], default="sqlite",
                   help="the databases to measure (default sqlite)")
    p.add_argument("--pg-url", help="a PostgreSQL server to use (default: a private cluster"
                   " started in a temporary directory)")
    p.add_argument("--workers-pg", type=int, default=2,
                   help="PostgreSQL: notice processors applying alongside intake")
    p.add_argument("--no-ocsp", action="store_true", help="skip the OCSP measurements")
    p.add_argument("--profile", metavar="DIR",
                   help="instead of the timed run: intake then one processor pass in this"
                   " process, each under cProfile (.prof files to DIR, top costs per notice"
                   " printed); no OCSP")
    p.add_argument("--stages", action="store_true",
                   help="instead of the timed run: intake then one processor pass in this"
                   " process, unprofiled, one after the other: each stage's µs per notice"
                   " on its own; no OCSP")
    p.add_argument("--dir", help="work directory (kept); default a temporary one")
    p.add_argument("--keep", action="store_true", help="keep the temporary directory")
    p.add_argument("--json", action="store_true")
    args = p.parse_args(argv)
    if args.quick:
        args.certs, args.notices = 200_000, 20_000
        args.stream_seconds, args.load_seconds = 4.0, 3.0
    r = run(args)
    if args.json:
        print(json.dumps(r, indent=2, ensure_ascii=False))
    else:
        report(r)
    return 0


if __name__ == "__main__":
    sys.exit(main())
