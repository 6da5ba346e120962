"""Helpers for the benchmarks in bench/: rates measured the same way every run.

Benchmark code, kept out of the product: the CA never imports it, and the leading
underscore keeps `python -m bench` from running it as a benchmark. `seed_certificates`
writes synthetic rows (real column values, a placeholder DER) fast, for store, CRL and
OCSP benchmarks at scale.
"""

from __future__ import annotations

import datetime as dt
import os
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509 import ocsp

from pki.ca import IssuingCA
from pki.identity import Identity
from pki.ocsp import OcspResponder
from pki.store import REASON_CODES, CertificateStore

BENCH_IDENTITY = Identity(name="試験 太郎", birth_date=dt.date(1990, 1, 1), sex=1,
                          address="東京都千代田区1-1")


def _threaded_rate(work: Callable[[int], None], n: int, threads: int) -> float:
    """Operations per second when `threads` threads run `work(i)` for i in 0..n-1 (split
    evenly), timed from a common start to the last thread's end."""
    if threads < 1 or n < threads:
        raise ValueError("need threads >= 1 and n >= threads")
    if threads == 1:
        t = time.perf_counter()
        for i in range(n):
            work(i)
        return n / (time.perf_counter() - t)
    start = threading.Barrier(threads + 1)
    errors: list[BaseException] = []

    def run(k: int) -> None:
        start.wait()
        try:
            for i in range(k, n, threads):
                work(i)
        except BaseException as exc:  # reported in the calling thread
            errors.append(exc)

    pool = [threading.Thread(target=run, args=(k,)) for k in range(threads)]
    for th in pool:
        th.start()
    start.wait()
    t = time.perf_counter()
    for th in pool:
        th.join()
    elapsed = time.perf_counter() - t
    if errors:
        raise errors[0]
    return n / elapsed


def raw_sign_rate(signer: Any, *, n: int = 200, threads: int = 1) -> float:
    """RSA PKCS#1 v1.5 SHA-256 signatures per second with `signer` (e.g. an HSM key)."""
    return _threaded_rate(
        lambda i: signer.sign(i.to_bytes(32, "big"), padding.PKCS1v15(), hashes.SHA256()),
        n, threads)


def sign_rate_beside_python(signer: Any, *, n: int = 100) -> float:
    """Signatures/s with `signer` while another thread of this process runs pure Python:
    what the HSM signing thread of `IssuingCA.issue_many` meets while the calling thread
    builds and records. python-pkcs11 lets go of the GIL inside each PKCS#11 call and must
    take it back after each, from a thread that does not let go of it on its own."""
    stop = threading.Event()

    def spin() -> None:
        while not stop.is_set():
            total = 0
            for i in range(10_000):
                total += i

    beside = threading.Thread(target=spin, name="bench-python-beside", daemon=True)
    beside.start()
    try:
        return raw_sign_rate(signer, n=n)
    finally:
        stop.set()
        beside.join()


def bare_pkcs11_sign_rate(key_manager: Any, label: str, *, n: int = 200,
                          threads: int = 1) -> float:
    """The floor: CKM_RSA_PKCS signatures per second over a SHA-256 DigestInfo with bare
    python-pkcs11 calls (one session and key handle per thread, looked up beforehand;
    no hashing, no signer object, no pool) on the key manager's token."""
    from pkcs11 import Mechanism, ObjectClass

    digest_info = bytes.fromhex("3031300d060960864801650304020105000420") + bytes(32)
    pool = key_manager._pool
    sessions = [pool._acquire() for _ in range(threads)]
    try:
        keys = [ps.session.get_key(object_class=ObjectClass.PRIVATE_KEY, label=label)
                for ps in sessions]

        def work(i: int) -> None:  # thread k signs i = k, k + threads, ...: its own session
            keys[i % threads].sign(digest_info, mechanism=Mechanism.RSA_PKCS)

        return _threaded_rate(work, n, threads)
    finally:
        for ps in sessions:
            pool._release(ps, True)


def issuance_rate(ca: IssuingCA, *, n: int = 200, public_key: rsa.RSAPublicKey | None = None,
                  card_expiry: dt.date = dt.date(2040, 1, 1), threads: int = 1) -> float:
    """User-authentication certificates issued (signed in the HSM and stored) per second,
    by `threads` threads issuing at once."""
    key = public_key or rsa.generate_private_key(
        public_exponent=65537, key_size=2048).public_key()

    def work(i: int) -> None:
        ca.issue_user_authentication(public_key=key, identity=BENCH_IDENTITY,
                                     holder_id=f"bench-{i}", card_expiry=card_expiry)

    return _threaded_rate(work, n, threads)


def pipelined_issuance_rate(ca: IssuingCA, *, n: int = 200,
                            public_key: rsa.RSAPublicKey | None = None,
                            card_expiry: dt.date = dt.date(2040, 1, 1),
                            parallel: int = 1, commit_every: int = 64,
                            signing: Any = None) -> float:
    """User-authentication certificates issued per second by `IssuingCA.issue_many`
    (`parallel` HSM signing threads, this thread building and recording)."""
    from pki.ca import CertificateRequest
    from pki.profiles import Profile

    key = public_key or rsa.generate_private_key(
        public_exponent=65537, key_size=2048).public_key()
    requests = [CertificateRequest(profile=Profile.USER_AUTHENTICATION, public_key=key,
                                   identity=BENCH_IDENTITY, holder_id=f"pipe-{i}",
                                   card_expiry=card_expiry) for i in range(n)]
    t = time.perf_counter()
    issued = ca.issue_many(requests, parallel=parallel, commit_every=commit_every,
                           signing=signing)
    elapsed = time.perf_counter() - t
    if len(issued) != n:
        raise RuntimeError(f"issue_many returned {len(issued)} of {n}")
    return n / elapsed


def ocsp_requests(certs: Sequence[x509.Certificate], issuer: x509.Certificate, *,
                  nonce: bool = False) -> list[bytes]:
    """DER OCSP requests (SHA-1 CertID, as openssl sends) for `certs`."""
    out = []
    for c in certs:
        b = ocsp.OCSPRequestBuilder().add_certificate(c, issuer, hashes.SHA1())
        if nonce:
            b = b.add_extension(x509.OCSPNonce(os.urandom(16)), critical=False)
        out.append(b.build().public_bytes(Encoding.DER))
    return out


def ocsp_core_rate(responder: OcspResponder, requests: Sequence[bytes], *,
                   n: int = 20_000) -> float:
    """Responses per second from the responder core (no HTTP), after warming its cache."""
    for r in requests:
        responder.respond(r)
    t = time.perf_counter()
    for i in range(n):
        responder.respond(requests[i % len(requests)])
    return n / (time.perf_counter() - t)


def seed_certificates(store: CertificateStore, *, count: int, hierarchy: str = "sign",
                      shards: int = 16, only_shard: int | None = None,
                      revoked: bool = False, first_serial: int = 1 << 80,
                      batch: int = 50_000, now: dt.datetime | None = None) -> list[int]:
    """Insert `count` synthetic certificate rows (serials from `first_serial`, spaced so
    they land in `only_shard` when given); revoked (keyCompromise) when `revoked`.
    Returns the serials."""
    now_s = int((now or dt.datetime.now(dt.UTC)).timestamp())
    profile = "signing" if hierarchy == "sign" else "user-authentication"
    status, reason = ("revoked", REASON_CODES[x509.ReasonFlags.key_compromise]) if revoked \
        else ("good", None)
    step = shards if only_shard is not None else 1
    base = first_serial + ((only_shard - first_serial) % shards if only_shard is not None else 0)
    serials = [base + i * step for i in range(count)]
    sql = store._db.q(
        "INSERT INTO certificates (serial, hierarchy, profile, holder_id, shard, issued_at,"
        " not_before, not_after, status, reason, revoked_at, updated_at, der)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)")
    for start in range(0, count, batch):
        rows = [(format(s, "x"), hierarchy, profile, f"seed-{s:x}", s % shards, now_s, now_s,
                 now_s + 5 * 365 * 86400, status, reason, now_s if revoked else None, now_s,
                 b"\x30\x00") for s in serials[start:start + batch]]
        with store.transaction():
            cur = store._db.conn.cursor()
            cur.executemany(sql, rows)
    return serials
