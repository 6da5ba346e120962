"""End to end through the `mynacard` command: ca init/issue/revoke, crl publish,
ocsp serve (with openssl as the OCSP client), verify."""

from __future__ import annotations

import datetime as dt
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import pkcs7
from leaks import shows

MYNACARD = str(Path(sys.executable).parent / "mynacard")
PIN = "246810"
SO_PIN = "13579135"


def run(home: Path, *args: str, check: bool = False) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, CLI_TEST_PIN=PIN, CLI_TEST_SO_PIN=SO_PIN,
               MYNACARD_OPERATOR="clerk-pki")  # commands that change things need one
    env.pop("SOFTHSM2_CONF", None)
    res = subprocess.run([MYNACARD, "--home", str(home), *args], capture_output=True,
                         text=True, env=env, timeout=60)
    assert "Traceback" not in res.stderr, res.stderr
    assert not shows(res.stdout + res.stderr, PIN) and not shows(res.stdout + res.stderr, SO_PIN)
    if check:
        assert res.returncode == 0, res.stderr
    return res


HSM = ["--token", "cli-test", "--pin-source", "env:CLI_TEST_PIN"]


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    home = tmp_path_factory.mktemp("cli-home")
    res = run(home, "ca", "init", *HSM, "--so-pin-source", "env:CLI_TEST_SO_PIN",
              "--shards", "4", "--json", check=True)
    out = json.loads(res.stdout)
    assert set(out["fingerprints"]) == {"sign-root", "sign-ocsp", "auth-root", "auth-ocsp",
                                        "operator-root", "operator-ocsp"}
    assert (home / "ca" / "sign-root.pem").exists() and (home / "ca" / "auth-root.der").exists()
    _new_key(home, "holder")
    (home / "id.json").write_text(json.dumps({
        "name": "佐藤 花子", "sex": 2, "birth_date": "1985-07-07",
        "address": "大阪府大阪市北区1-2-3"}, ensure_ascii=False), encoding="utf-8")
    # a card makes one key per certificate (one key is never certified twice)
    for profile, out_name, pub in (("signing", "s.pem", "holder.pub"),
                                   ("user-authentication", "u.pem",
                                    _new_key(home, "holder-auth").name)):
        run(home, "ca", "issue", *HSM, "--profile", profile, "--public-key",
            str(home / pub), "--identity", str(home / "id.json"), "--holder-id", "R77",
            "--card-expiry", "2035-01-01", "--out", str(home / out_name), check=True)
    return home


def _new_key(where: Path, stem: str, *, key_size: int = 2048,
             exponent: int = 65537) -> Path:
    """A new holder key pair as STEM.key and STEM.pub (PEM) in `where`; the .pub path."""
    key = rsa.generate_private_key(public_exponent=exponent, key_size=key_size)
    (where / f"{stem}.key").write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()))
    pub = where / f"{stem}.pub"
    pub.write_bytes(key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
    return pub


def _serial(pem: Path) -> str:
    from cryptography import x509

    return format(x509.load_pem_x509_certificate(pem.read_bytes()).serial_number, "x")


def _start_server(home: Path, *extra: str) -> Iterator[str]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = dict(os.environ, CLI_TEST_PIN=PIN)
    env.pop("SOFTHSM2_CONF", None)
    proc = subprocess.Popen([MYNACARD, "--home", str(home), "ocsp", "serve", *HSM,
                             "--port", str(port), "--open", *extra], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            break
        except OSError:
            assert proc.poll() is None, proc.communicate()
            time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    proc.terminate()
    _, err = proc.communicate(timeout=10)
    assert "Traceback" not in err and not shows(err, PIN)


@pytest.fixture(scope="module")
def ocsp_url(home: Path) -> Iterator[str]:
    yield from _start_server(home)


def openssl_ocsp(home: Path, url: str, cert: str, *extra: str) -> str:
    res = subprocess.run(
        ["openssl", "ocsp", "-issuer", str(home / "ca" / "sign-root.pem"),
         "-cert", str(home / cert), "-url", url, "-CAfile", str(home / "ca" / "sign-root.pem"),
         *extra], capture_output=True, text=True, timeout=30)
    assert res.returncode == 0, res.stderr
    return res.stdout + res.stderr


def test_init_refuses_to_overwrite(home: Path) -> None:
    res = run(home, "ca", "init", *HSM, "--so-pin-source", "env:CLI_TEST_SO_PIN")
    assert res.returncode == 1
    assert "refusing to overwrite" in res.stderr
    assert len([ln for ln in res.stderr.splitlines() if ln.startswith("mynacard: error")]) == 1


def test_issue_refuses_under_15(home: Path, tmp_path: Path) -> None:
    child = tmp_path / "child.json"
    birth = (dt.date.today() - dt.timedelta(days=365 * 10)).isoformat()
    child.write_text(json.dumps({"name": "子", "sex": 1, "birth_date": birth, "address": "x"}))
    res = run(home, "ca", "issue", *HSM, "--profile", "signing", "--public-key",
              str(home / "holder.pub"), "--identity", str(child), "--holder-id", "C1",
              "--card-expiry", "2030-01-01")
    assert res.returncode == 1 and "under 15" in res.stderr


def test_openssl_ocsp_good_then_revoked_within_a_second(home: Path, ocsp_url: str) -> None:
    out = openssl_ocsp(home, ocsp_url, "s.pem", "-resp_text")
    assert "Response verify OK" in out
    assert "s.pem: good" in out
    assert "OCSP Nonce" in out  # openssl sends a nonce; we echo it (else "WARNING: no nonce")
    assert "no nonce" not in out.lower()
    assert "s.pem: good" in openssl_ocsp(home, ocsp_url, "s.pem", "-no_nonce")  # cached path
    serial = _serial(home / "s.pem")
    run(home, "ca", "revoke", serial, "--reason", "keyCompromise", "--cause", "notice-1",
        check=True)
    # The very next request (no nonce: the cached path) already sees the revocation; the
    # latency figure itself is measured by bench/notices_revocation.py, not timed here.
    out = openssl_ocsp(home, ocsp_url, "s.pem", "-no_nonce")
    assert "s.pem: revoked" in out and "keyCompromise" in out
    status = json.loads(run(home, "ca", "status", serial, "--json", check=True).stdout)
    assert status["status"] == "revoked" and status["cause"] == "notice-1"


def test_verify_exit_codes_and_facts(home: Path, ocsp_url: str) -> None:
    res = run(home, "verify", "--cert", str(home / "u.pem"), "--ocsp", ocsp_url)
    assert res.returncode == 0, res.stdout + res.stderr
    assert "VALID" in res.stdout
    res = run(home, "verify", "--cert", str(home / "s.pem"), "--no-revocation")
    assert res.returncode == 0
    assert "佐藤 花子" in res.stdout and "1985-07-07" in res.stdout
    res = run(home, "verify", "--cert", str(home / "s.pem"), "--ocsp", ocsp_url, "--json")
    assert res.returncode == 1
    out = json.loads(res.stdout)
    assert out["valid"] is False and out["revocation"]["status"] == "revoked"
    assert out["identity"]["address"] == "大阪府大阪市北区1-2-3"


def test_crl_publish_and_verify_by_crl(home: Path, ocsp_url: str) -> None:
    res = run(home, "crl", "publish", *HSM, "--out", str(home / "crl"), "--json", check=True)
    shards = json.loads(res.stdout)
    assert len(shards) == 12 and sum(s["entries"] for s in shards) >= 1
    serial = int(_serial(home / "s.pem"), 16)
    shard = home / "crl" / "sign" / f"shard-{serial % 4:04d}.crl"
    res = run(home, "verify", "--cert", str(home / "s.pem"), "--crl", str(shard))
    assert res.returncode == 1 and "revoked" in res.stdout
    user_serial = int(_serial(home / "u.pem"), 16)
    res = run(home, "verify", "--cert", str(home / "u.pem"), "--crl",
              str(home / "crl" / "auth" / f"shard-{user_serial % 4:04d}.crl"))
    assert res.returncode == 0, res.stdout


def test_verify_cms(home: Path, tmp_path: Path) -> None:
    from cryptography import x509

    run(home, "ca", "issue", *HSM, "--profile", "signing", "--public-key",
        str(_new_key(tmp_path, "cms")), "--identity", str(home / "id.json"), "--holder-id",
        "R77", "--card-expiry", "2035-01-01", "--out", str(tmp_path / "s2.pem"), check=True)
    key = serialization.load_pem_private_key((tmp_path / "cms.key").read_bytes(), None)
    cert = x509.load_pem_x509_certificate((tmp_path / "s2.pem").read_bytes())
    data = tmp_path / "doc.txt"
    data.write_bytes("申請書".encode())
    sig = (pkcs7.PKCS7SignatureBuilder().set_data(data.read_bytes())
           .add_signer(cert, key, hashes.SHA256())
           .sign(serialization.Encoding.DER, [pkcs7.PKCS7Options.DetachedSignature]))
    (tmp_path / "doc.p7s").write_bytes(sig)
    res = run(home, "verify", "--cms", str(tmp_path / "doc.p7s"), "--data", str(data),
              "--no-revocation")
    assert res.returncode == 0, res.stdout
    assert "佐藤 花子" in res.stdout
    data.write_bytes(b"tampered")
    res = run(home, "verify", "--cms", str(tmp_path / "doc.p7s"), "--data", str(data),
              "--no-revocation")
    assert res.returncode == 1


def test_errors_are_one_line(home: Path, tmp_path: Path) -> None:
    res = run(home, "verify", "--cert", str(tmp_path / "missing.pem"))
    assert res.returncode == 1 and res.stderr.strip().splitlines()[-1].startswith("mynacard:")
    res = run(tmp_path, "crl", "publish", *HSM, "--out", str(tmp_path / "x"))
    assert res.returncode == 1 and "no CA" in res.stderr
    res = run(home, "ca", "revoke", "zz-not-hex")
    assert res.returncode == 1 and "not a hex serial" in res.stderr
    res = run(home, "ca", "status", "abcdef0123456789")
    assert res.returncode == 1 and "no certificate" in res.stderr


def test_help_teaches(home: Path) -> None:
    for cmd in (["ca", "--help"], ["ca", "init", "--help"], ["verify", "--help"],
                ["ocsp", "serve", "--help"], ["crl", "publish", "--help"]):
        res = run(home, *cmd, check=True)
        assert "usage:" in res.stdout
    assert "Examples" in run(home, "verify", "--help").stdout


def test_ocsp_serve_with_two_workers(home: Path) -> None:
    server = _start_server(home, "--workers", "2")
    url = next(server)
    try:
        for _ in range(4):  # spread over both workers
            res = subprocess.run(
                ["openssl", "ocsp", "-issuer", str(home / "ca" / "auth-root.pem"), "-cert",
                 str(home / "u.pem"), "-url", url, "-CAfile",
                 str(home / "ca" / "auth-root.pem")],
                capture_output=True, text=True, timeout=30)
            assert "u.pem: good" in res.stdout, res.stdout + res.stderr
            assert "Response verify OK" in res.stderr + res.stdout
    finally:
        next(server, None)


def test_issue_batch_signed_by_a_process_of_its_own(home: Path, tmp_path: Path) -> None:
    ident = json.loads((home / "id.json").read_text())
    lines = [{"profile": "signing" if i % 2 else "user-authentication",
              "public_key": _new_key(tmp_path, f"p{i}").read_text(), "identity": ident,
              "holder_id": f"PROC{i}", "card_expiry": "2034-01-01"} for i in range(4)]
    batch = tmp_path / "proc.jsonl"
    batch.write_text("".join(json.dumps(x) + "\n" for x in lines))
    res = run(home, "ca", "issue-batch", *HSM, str(batch), "--signer", "process", "--out-dir",
              str(tmp_path / "out"), "--json", check=True)
    issued = json.loads(res.stdout)["issued"]
    assert [r["holder_id"] for r in issued] == [f"PROC{i}" for i in range(4)]
    roots = {name: x509.load_pem_x509_certificate((home / "ca" / f"{name}-root.pem").read_bytes())
             for name in ("sign", "auth")}
    for r, line in zip(issued, lines, strict=True):
        cert = x509.load_pem_x509_certificate(Path(r["out"]).read_bytes())
        cert.verify_directly_issued_by(roots["sign" if line["profile"] == "signing" else "auth"])
        status = json.loads(run(home, "ca", "status", r["serial"], "--json",
                                check=True).stdout)
        assert status["holder_id"] == r["holder_id"] and status["status"] == "good"


def test_issue_batch_refuses_bad_lines_and_issues_the_rest(home: Path, tmp_path: Path) -> None:
    ident = json.loads((home / "id.json").read_text())
    child = dict(ident, birth_date=(dt.date.today() - dt.timedelta(days=3650)).isoformat())
    pubs = [_new_key(tmp_path, f"b{i}").read_text() for i in range(5)]
    lines = [{"profile": "signing" if i % 2 else "user-authentication", "public_key": pubs[i],
              "identity": ident, "holder_id": f"BATCH{i}", "card_expiry": "2034-01-01"}
             for i in range(5)]
    under_15 = dict(lines[1], identity=child, public_key=_new_key(tmp_path, "c").read_text())
    mixed = tmp_path / "mixed.jsonl"
    mixed.write_text("\n".join([json.dumps(lines[0]), json.dumps(under_15), "{not json",
                                *(json.dumps(x) for x in lines[1:])]) + "\n")
    res = run(home, "ca", "issue-batch", *HSM, str(mixed), "--parallel", "2", "--out-dir",
              str(tmp_path / "out"), "--json")
    assert res.returncode == 1 and "Traceback" not in res.stderr
    report = json.loads(res.stdout)
    assert [(r["line"], "under 15" in r["reason"]) for r in report["rejected"]] == \
        [(2, True), (3, False)]
    assert "not JSON" in report["rejected"][1]["reason"]
    assert f"{mixed} line 2:" in res.stderr and f"{mixed} line 3:" in res.stderr
    issued = report["issued"]
    assert [r["holder_id"] for r in issued] == [f"BATCH{i}" for i in range(5)]
    assert [r["line"] for r in issued] == [1, 4, 5, 6, 7]
    assert [r["profile"] for r in issued] == [x["profile"] for x in lines]
    for r in issued:
        cert = x509.load_pem_x509_certificate(Path(r["out"]).read_bytes())
        assert format(cert.serial_number, "x") == r["serial"]
        assert Path(r["out"]).stat().st_mode & 0o777 == 0o600
        status = json.loads(run(home, "ca", "status", r["serial"], "--json",
                                check=True).stdout)
        assert status["holder_id"] == r["holder_id"] and status["status"] == "good"
    # the same lines again: every key is already certified, nothing more is issued
    res = run(home, "ca", "issue-batch", *HSM, str(mixed), "--json")
    again = json.loads(res.stdout)
    assert res.returncode == 1 and again["issued"] == []
    assert [r["line"] for r in again["rejected"] if "already certified" in r["reason"]] == \
        [1, 4, 5, 6, 7]


def test_issue_refuses_keys_the_card_cannot_make_and_keys_already_certified(
    home: Path, tmp_path: Path
) -> None:
    common = ["--profile", "signing", "--identity", str(home / "id.json"), "--holder-id",
              "R9", "--card-expiry", "2035-01-01"]
    e3 = _new_key(tmp_path, "e3", exponent=3)
    res = run(home, "ca", "issue", *HSM, *common, "--public-key", str(e3))
    assert res.returncode == 1 and "exponent is 3, not 65537" in res.stderr
    big = _new_key(tmp_path, "big", key_size=3072)
    res = run(home, "ca", "issue", *HSM, *common, "--public-key", str(big))
    assert res.returncode == 1 and "RSA-3072" in res.stderr
    res = run(home, "ca", "issue", *HSM, *common, "--public-key", str(home / "holder.pub"))
    assert res.returncode == 1 and "already certified" in res.stderr
    assert len(res.stderr.strip().splitlines()) == 1
    bell = tmp_path / "bell.json"
    bell.write_text(json.dumps(dict(json.loads((home / "id.json").read_text()),
                                    name="佐藤\u0085花子")))
    res = run(home, "ca", "issue", *HSM, *common[:2], "--identity", str(bell),
              "--holder-id", "R9", "--card-expiry", "2035-01-01", "--public-key",
              str(_new_key(tmp_path, "fresh")))
    assert res.returncode == 1 and "control character" in res.stderr


def test_issue_out_is_private_and_never_follows_a_symlink(home: Path, tmp_path: Path) -> None:
    victim = tmp_path / "victim.pem"
    victim.write_text("precious")
    link = tmp_path / "out.pem"
    link.symlink_to(victim)
    common = ["--profile", "user-authentication", "--identity", str(home / "id.json"),
              "--holder-id", "R10", "--card-expiry", "2035-01-01"]
    res = run(home, "ca", "issue", *HSM, *common, "--public-key",
              str(_new_key(tmp_path, "k1")), "--out", str(link))
    assert res.returncode == 1 and "--force" in res.stderr
    assert victim.read_text() == "precious" and link.is_symlink()
    res = run(home, "ca", "issue", *HSM, *common, "--public-key",
              str(_new_key(tmp_path, "k2")), "--out", str(link), "--force", check=True)
    assert not link.is_symlink() and link.read_text().startswith("-----BEGIN CERTIFICATE")
    assert link.stat().st_mode & 0o777 == 0o600 and victim.read_text() == "precious"


def test_verify_crl_folder_and_unchecked_revocation(home: Path, tmp_path: Path) -> None:
    """--crl DIR picks the certificate's own shard; a revocation that could not be
    checked (wrong shard, responder unreachable) exits 4, not 1 (INVALID)."""
    out = tmp_path / "crl"
    run(home, "crl", "publish", *HSM, "--out", str(out), "--json", check=True)
    res = run(home, "verify", "--cert", str(home / "u.pem"), "--crl", str(out), "--json")
    assert res.returncode == 0, res.stdout
    user_serial = int(_serial(home / "u.pem"), 16)
    assert json.loads(res.stdout)["revocation"]["source"].endswith(
        f"auth/shard-{user_serial % 4:04d}.crl")
    wrong = out / "auth" / f"shard-{(user_serial + 1) % 4:04d}.crl"
    res = run(home, "verify", "--cert", str(home / "u.pem"), "--crl", str(wrong))
    assert res.returncode == 4, res.stdout
    assert res.stdout.startswith("UNCHECKED") and "revocation status error" in res.stdout
    res = run(home, "verify", "--cert", str(home / "u.pem"), "--ocsp", "http://127.0.0.1:9/")
    assert res.returncode == 4, res.stdout
    # a folder without the shard: one line, refused (1)
    (tmp_path / "empty").mkdir()
    res = run(home, "verify", "--cert", str(home / "u.pem"), "--crl", str(tmp_path / "empty"))
    assert res.returncode == 1 and len(res.stderr.strip().splitlines()) == 1
    assert "no CRL shard" in res.stderr
