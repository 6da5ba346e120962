"""The verification service (`mynacard verify-serve`): CMS verifications/s with a warm
OCSP cache beside `openssl cms -verify` over the same documents, and login
verifications/s.

    python -m bench.verify_service [--json] [--docs N]

One run, in a temporary home (CA keys in a fresh SoftHSM2 token, removed afterwards):
a signing and a user-authentication certificate issued with keys the benchmark holds,
N detached CMS signatures over different documents, `ocsp serve --open` and
`verify-serve --insecure-http` on 127.0.0.1. The service is asked about every document
in turn from one client thread (one connection per request, as urllib does; the OCSP
cache is warmed first, so the figure is the verification itself); openssl is run once
per document (`openssl cms -verify -binary -purpose any`, one process each, as a shell
script over files would). Target: the service >= the openssl rate, per core. Logins:
challenges are made first, then each answer is checked (seal, expiry, signature, path,
cached OCSP, the spent-challenge ledger).
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

MYNACARD = str(Path(sys.executable).parent / "mynacard")
PIN, SO_PIN = "246810", "13579135"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait(port: int, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"a server exited: {proc.stderr.read() if proc.stderr else ''!r}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listens on {port}")


def run(docs: int) -> dict[str, Any]:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import padding, rsa
    from cryptography.hazmat.primitives.serialization import pkcs7

    from pki.login import LOGIN_CONTEXT, canonical
    from pki.verify_client import VerifyClient

    home = Path(tempfile.mkdtemp(prefix="bench-verify-"))
    env = dict(os.environ, BENCH_PIN=PIN, BENCH_SO_PIN=SO_PIN, MYNACARD_OPERATOR="bench")
    env.pop("SOFTHSM2_CONF", None)
    hsm = ["--token", "bench-verify", "--pin-source", "env:BENCH_PIN"]
    procs: list[subprocess.Popen[bytes]] = []

    def cli(*args: str) -> str:
        res = subprocess.run([MYNACARD, "--home", str(home), *args], env=env,
                             capture_output=True, text=True, timeout=120)
        if res.returncode != 0:
            raise RuntimeError(f"mynacard {args[0]} failed: {res.stderr.strip()}")
        return res.stdout

    try:
        cli("ca", "init", *hsm, "--so-pin-source", "env:BENCH_SO_PIN", "--shards", "1")
        (home / "id.json").write_text(json.dumps({
            "name": "佐藤 花子", "sex": 2, "birth_date": "1985-07-07",
            "address": "大阪府大阪市北区1-2-3"}, ensure_ascii=False), encoding="utf-8")
        keys, certs = {}, {}
        for profile in ("signing", "user-authentication"):
            key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
            (home / f"{profile}.pub").write_bytes(key.public_key().public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
            cli("ca", "issue", *hsm, "--profile", profile, "--public-key",
                str(home / f"{profile}.pub"), "--identity", str(home / "id.json"),
                "--holder-id", "BENCH-1", "--card-expiry", "2035-01-01",
                "--out", str(home / f"{profile}.pem"))
            keys[profile] = key
            certs[profile] = x509.load_pem_x509_certificate(
                (home / f"{profile}.pem").read_bytes())
        token = json.loads(cli("rp", "add", "bench platform", "--kind", "platform-operator",
                               "--json"))["token"]
        ocsp_port, svc_port = _free_port(), _free_port()
        procs.append(subprocess.Popen(
            [MYNACARD, "--home", str(home), "ocsp", "serve", *hsm, "--port", str(ocsp_port),
             "--open"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE))
        _wait(ocsp_port, procs[-1])
        procs.append(subprocess.Popen(
            [MYNACARD, "--home", str(home), "verify-serve", "--insecure-http", "--port",
             str(svc_port), "--ocsp", f"http://127.0.0.1:{ocsp_port}"],
            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE))
        _wait(svc_port, procs[-1])
        client = VerifyClient(f"http://127.0.0.1:{svc_port}", token)

        work = home / "docs"
        work.mkdir()
        documents = []
        for i in range(docs):
            data = f"電子申請 {i}\n".encode() * 200
            sig = pkcs7.PKCS7SignatureBuilder().set_data(data).add_signer(
                certs["signing"], keys["signing"], hashes.SHA256()).sign(
                serialization.Encoding.DER, [pkcs7.PKCS7Options.DetachedSignature,
                                             pkcs7.PKCS7Options.Binary])
            (work / f"{i}.txt").write_bytes(data)
            (work / f"{i}.p7s").write_bytes(sig)
            documents.append((data, sig))
        if client.cms(documents[0][1], documents[0][0])["result"] != "valid":
            raise RuntimeError("the service does not find the benchmark's signature valid")

        t0 = time.perf_counter()
        for data, sig in documents:
            if client.cms(sig, data)["result"] != "valid":
                raise RuntimeError("a signature was not valid")
        service_rate = docs / (time.perf_counter() - t0)

        root = str(home / "ca" / "sign-root.pem")
        t0 = time.perf_counter()
        for i in range(docs):
            res = subprocess.run(["openssl", "cms", "-verify", "-binary", "-inform", "DER",
                                  "-in", str(work / f"{i}.p7s"), "-content",
                                  str(work / f"{i}.txt"), "-CAfile", root, "-purpose", "any",
                                  "-out", os.devnull], capture_output=True)
            if res.returncode != 0:
                raise RuntimeError(f"openssl cms -verify failed: {res.stderr.decode()[:200]}")
        openssl_rate = docs / (time.perf_counter() - t0)

        auth_der = certs["user-authentication"].public_bytes(serialization.Encoding.DER)
        answers = []
        for _ in range(docs):
            ch = client.login_challenge(ttl=600)
            sig = keys["user-authentication"].sign(LOGIN_CONTEXT + canonical(ch),
                                                   padding.PKCS1v15(), hashes.SHA256())
            answers.append({"challenge": ch, "certificate": base64.b64encode(auth_der).decode(),
                            "signature": base64.b64encode(sig).decode()})
        client.certificate(auth_der)  # warm the OCSP cache for the user certificate
        t0 = time.perf_counter()
        for answer in answers:
            if client.login(answer)["result"] != "valid":
                raise RuntimeError("a login was refused")
        login_rate = docs / (time.perf_counter() - t0)
        return {"documents": docs, "cores": os.cpu_count(),
                "service_cms_per_s": round(service_rate, 1),
                "openssl_cms_verify_per_s": round(openssl_rate, 1),
                "ratio_service_to_openssl": round(service_rate / openssl_rate, 2),
                "service_logins_per_s": round(login_rate, 1)}
    finally:
        for p in procs:
            p.terminate()
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()
        shutil.rmtree(home, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.verify_service", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--docs", type=int, default=300, help="documents (and logins)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    if not 10 <= args.docs <= 10_000:
        parser.error("--docs is 10 to 10000")
    try:
        r = run(args.docs)
    except RuntimeError as exc:
        print(f"bench: {exc}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(r, indent=2))
        return 0
    print(f"verification service, {r['documents']} documents, one client thread, "
          f"{r['cores']} cores")
    print(f"  CMS verified/s through the service (warm OCSP cache): {r['service_cms_per_s']}")
    print(f"  openssl cms -verify/s, one process per document:      "
          f"{r['openssl_cms_verify_per_s']}")
    print(f"  service / openssl:                                    "
          f"{r['ratio_service_to_openssl']}")
    print(f"  logins verified/s through the service:                {r['service_logins_per_s']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
