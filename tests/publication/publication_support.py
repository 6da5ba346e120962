"""Helpers of the publication tests: the CLI, ports, residents, notices, issuing."""

from __future__ import annotations

import datetime as dt
import json
import os
import socket
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from leaks import shows

MYNACARD = str(Path(sys.executable).parent / "mynacard")
PIN = "975310"
SO_PIN = "86420864"
HSM = ["--token", "pub-test", "--pin-source", "env:PUB_TEST_PIN"]
OPERATOR = ["--operator", "clerk-pub"]


def env() -> dict[str, str]:
    e = dict(os.environ, PUB_TEST_PIN=PIN, PUB_TEST_SO_PIN=SO_PIN)
    e.setdefault("MYNACARD_OPERATOR", "clerk-pub")  # commands that change things need one
    e.pop("SOFTHSM2_CONF", None)
    return e


def run(home: Path, *args: str, check: bool = False,
        timeout: float = 60) -> subprocess.CompletedProcess[str]:
    res = subprocess.run([MYNACARD, "--home", str(home), *args], capture_output=True,
                         text=True, env=env(), timeout=timeout)
    assert "Traceback" not in res.stderr, res.stderr
    assert not shows(res.stdout + res.stderr, PIN) and not shows(res.stdout + res.stderr, SO_PIN)
    if check:
        assert res.returncode == 0, res.stdout + res.stderr
    return res


def run_rp(home: Path, *args: str, check: bool = False) -> subprocess.CompletedProcess[str]:
    """`mynacard rp …`."""
    return run(home, "rp", *args, check=check)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_port(port: int, proc: subprocess.Popen[str] | None = None, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            if proc is not None:
                assert proc.poll() is None, proc.communicate()
            time.sleep(0.05)
    raise AssertionError(f"nothing listens on {port}")


_counter = iter(range(os.getpid() % 1000 * 1000 + 1, 10**9))


def new_resident(**changes: Any) -> Any:
    from dataclasses import replace

    from issuance.registry.checkdigits import complete_my_number, complete_resident_code
    from issuance.registry.model import Nationality, Resident, ResidentStatus, Sex

    n = next(_counter)
    base = Resident(
        resident_code=complete_resident_code(f"{n + 3_000_000_000:010d}"),
        my_number=complete_my_number(f"{n + 70_000_000_000:011d}"),
        name="佐藤 花子", address="大阪府大阪市北区1-2-3", birth_date=dt.date(1985, 7, 7),
        sex=Sex.FEMALE, nationality=Nationality.JAPANESE, status=ResidentStatus.RESIDENT,
        municipality_code="131016")
    return replace(base, **changes)


def load_resident(home: Path, resident: Any) -> None:
    from issuance.registry.store import ResidentStore
    from issuance.storage import default_url, open_database

    with open_database(default_url(home)) as db:
        ResidentStore(db).put(resident)


def issue(home: Path, holder_id: str, profile: str = "signing", *,
          replaces: str | None = None) -> tuple[str, Path]:
    """Issue a certificate through the CLI (keys in the HSM); (hex serial, PEM path)."""
    out = home / f"{holder_id}-{profile}-{time.monotonic_ns()}.pem"
    extra = ["--replaces", replaces] if replaces else []
    # a card makes a new key for every certificate: the CA never certifies one key twice
    pub = out.with_suffix(".pub")
    pub.write_bytes(rsa.generate_private_key(public_exponent=65537, key_size=2048).public_key()
                    .public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo))
    res = run(home, "ca", "issue", *HSM, "--profile", profile, "--public-key",
              str(pub), "--identity", str(home / "id.json"), "--holder-id",
              holder_id, "--card-expiry", "2035-01-01", "--out", str(out), "--json", *extra,
              check=True)
    return json.loads(res.stdout)["serial"], out


def notice_file(path: Path, *notices: dict[str, Any]) -> Path:
    path.write_text("".join(json.dumps(n, ensure_ascii=False) + "\n" for n in notices),
                    encoding="utf-8")
    return path


class Receiver:
    """A webhook endpoint on 127.0.0.1 that answers 500 to the first `fail_first` POSTs."""

    def __init__(self, fail_first: int = 0) -> None:
        self.fail_first = fail_first
        self.calls: list[tuple[int, dict[str, str], bytes]] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                code = 500 if len(receiver.calls) < receiver.fail_first else 204
                receiver.calls.append((code, dict(self.headers.items()), body))
                self.send_response(code)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks/revoked"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def today_in_japan() -> str:
    return dt.datetime.now(dt.timezone(dt.timedelta(hours=9))).date().isoformat()
