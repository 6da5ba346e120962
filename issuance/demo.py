"""`make demo` (`python -m issuance.demo`): the main job end to end, in a fresh home.

An issuance center is set up (SoftHSM2 token, JPKI CA, issuer keys), synthetic residents
are loaded, an emulated blank card is started, an adult applies, the card is
personalised, handed over and activated with the holder's PINs, a document is signed
with the card, and a relying party verifies the signature by asking the center's OCSP
responder. Second act: a death notice arrives from 住基ネット, the notice run revokes the
holder's certificates, and the same signature now verifies as revoked (exit 1). Every
step runs the real `mynacard` command as a separate process; the emulator and the
responder are always shut down. Exit status 0 only when every step
worked.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

OPERATOR = "demo-operator"
# the demo's operator password (a throwaway, handed over through a pin source); the demo
# operator works alone, so it holds the counter's, the supervisor's and the CA's roles
OPERATOR_PASSWORD = ("MYNACARD_DEMO_OPERATOR_PASSWORD", "demo-operator-2026")
PINS = {  # the holder's PINs, handed to `mynacard` through pin sources (env:NAME)
    "auth": ("MYNACARD_DEMO_AUTH_PIN", "1357"),
    "sign": ("MYNACARD_DEMO_SIGN_PASSWORD", "DEMO2026"),
    "text": ("MYNACARD_DEMO_TEXT_PIN", "2468"),
    "juki": ("MYNACARD_DEMO_JUKI_PIN", "9753"),
}


class StepFailed(Exception):
    pass


@dataclass
class Demo:
    home: Path
    env: dict[str, str]
    total: int
    n: int = 0
    started: float = field(default_factory=time.monotonic)
    cleanups: list[Callable[[], None]] = field(default_factory=list)

    def mynacard(self, *argv: str, check: bool = True,
                 timeout: float = 120) -> subprocess.CompletedProcess[str]:
        cmd = [sys.executable, "-m", "issuance.cli.main", "--home", str(self.home), *argv]
        proc = subprocess.run(cmd, env=self.env, capture_output=True, text=True,
                              timeout=timeout, check=False)
        if check and proc.returncode != 0:
            raise StepFailed(f"`mynacard {' '.join(argv)}` exited {proc.returncode}:\n"
                             f"{proc.stderr.strip() or proc.stdout.strip()}")
        return proc

    def step(self, title: str, run: Callable[[], list[str]]) -> None:
        self.n += 1
        print(f"\n[{self.n}/{self.total}] {title}", flush=True)
        t0 = time.monotonic()
        try:
            lines = run()
        except StepFailed as exc:
            print(f"      FAILED after {time.monotonic() - t0:.2f}s", flush=True)
            for line in str(exc).splitlines():
                print(f"      | {line}", flush=True)
            raise
        for line in lines:
            print(f"      {line}", flush=True)
        print(f"      ok ({time.monotonic() - t0:.2f}s)", flush=True)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_http(url: str, proc: subprocess.Popen[str], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise StepFailed(f"the OCSP responder exited {proc.returncode}")
        try:
            opener.open(url, timeout=1).close()
            return
        except urllib.error.HTTPError:
            return  # it answers (a bare GET is not an OCSP request)
        except OSError:
            time.sleep(0.1)
    raise StepFailed("the OCSP responder did not start")


def _notice_summary(report: dict[str, Any]) -> str:
    """What the notice run did, from its JSON report (whatever its exact shape)."""
    keys = ("accepted", "applied", "processed", "revoked", "certificates_revoked")
    found = {k: report[k] for k in keys if k in report and not isinstance(report[k], dict)}
    for value in report.values():
        if isinstance(value, dict):
            found.update({k: value[k] for k in keys if k in value
                          and not isinstance(value[k], (dict, list))})
    return ", ".join(f"{k} {v if not isinstance(v, list) else len(v)}"
                     for k, v in found.items()) or "applied"


def _adult(residents: Path) -> dict[str, Any]:
    today = date.today()
    for line in residents.read_text(encoding="utf-8").splitlines():
        r = json.loads(line)
        born = date.fromisoformat(r["birth_date"])
        if (r["status"] == "resident" and r["nationality"] == "japanese"
                and not r["adult_ward"] and 25 <= today.year - born.year <= 70):
            return dict(r)
    raise StepFailed("no adult resident among the synthetic residents")


def run(home: Path, *, pkcs11_uri: str | None = None, pin_source: str | None = None) -> None:
    """The demo in `home`; on a SoftHSM2 token it makes there, or on the token
    `pkcs11_uri` names (its user PIN from `pin_source`)."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("PCSCLITE_CSOCK_NAME", "MYNACARD_DB", "MYNACARD_HOME",
                        "MYNACARD_DEVELOPMENT")  # the demo logs in
           and not k.lower().endswith("_proxy")}
    env.update({"MYNACARD_HOME": str(home), "MYNACARD_OPERATOR": OPERATOR,
                "NO_PROXY": "127.0.0.1,localhost", "PYTHONUNBUFFERED": "1"})
    root = str(Path(__file__).resolve().parents[1])
    env["PYTHONPATH"] = root + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    for name, value in (*PINS.values(), OPERATOR_PASSWORD):
        env[name] = value
    demo = Demo(home, env, total=10)
    port = _free_port()
    ocsp_url = f"http://127.0.0.1:{port}/jpki"
    state: dict[str, Any] = {}
    hsm_pin = pin_source or f"file:{home / 'hsm' / 'jpki.pin'}"
    token = ["--pkcs11-uri", pkcs11_uri, "--pin-source", hsm_pin] if pkcs11_uri else []

    def center() -> list[str]:
        out = demo.mynacard("center", "init", "--master-key", "test", "--shards", "4",
                            "--ocsp-url", ocsp_url, *token).stdout
        password = f"env:{OPERATOR_PASSWORD[0]}"
        demo.mynacard("operator", "add", OPERATOR, "--role", "clerk,supervisor,ca-officer",
                      "--pin-source", password)
        login = demo.mynacard("login", "--pin-source", password).stdout.strip()
        return [line.strip() for line in out.splitlines()[1:-1]] + [
            f"first operator enrolled; {login}"]

    def residents() -> list[str]:
        path = home / "residents.jsonl"
        demo.mynacard("registry", "generate", "--count", "50", "--seed", "2026",
                      "--out", str(path))
        out = demo.mynacard("registry", "load", str(path)).stdout.strip()
        state["resident"] = _adult(path)
        r = state["resident"]
        return [out, f"chose {r['name']} (resident code {r['resident_code']}, born "
                     f"{r['birth_date']})"]

    def emulator() -> list[str]:
        def down() -> None:
            demo.mynacard("emulator", "down", check=False)

        demo.cleanups.append(down)
        out = demo.mynacard("emulator", "up", "--cards", "1").stdout.splitlines()
        if not out:
            raise StepFailed("`mynacard emulator up` printed no reader")
        state["reader"] = out[0].strip()
        info = demo.mynacard("card", "info", "--reader", state["reader"], "--json").stdout
        card = json.loads(info)
        state["serial"] = card.get("serial")
        return [f"reader {state['reader']!r}: blank card, serial {card.get('serial')}, "
                f"life cycle {card.get('life_cycle')}"]

    def apply() -> list[str]:
        out = demo.mynacard("apply", "--resident-code", state["resident"]["resident_code"],
                            "--json").stdout
        result = json.loads(out)
        if not result["accepted"]:
            raise StepFailed(f"application refused: {result['refusal']}")
        state["app"] = result["application_id"]
        d = result["decision"]
        return [f"application {state['app']} accepted: card valid {d['validity_years']} "
                f"years, signing certificate {'yes' if d['signing_certificate'] else 'no'}"]

    def issue() -> list[str]:
        proc = demo.mynacard("issue", state["app"], "--reader", state["reader"], "--json")
        result = json.loads(proc.stdout)
        lines = [line.split("  ", 1)[-1].strip() for line in proc.stderr.splitlines()
                 if line.startswith("[")]
        state["sign_serial"] = result["signing_certificate"]
        return lines + [f"card {result['card_serial']} {result['life_cycle']} in "
                        f"{result['seconds']:.2f}s"]

    def activate() -> list[str]:
        argv = ["activate", "--reader", state["reader"], "--json"]
        for kind, (name, _value) in PINS.items():
            argv += ["--pin-source", f"{kind}={'env:' + name}"]
        proc = demo.mynacard(*argv)
        result = json.loads(proc.stdout)
        return [f"holder set: {', '.join(result['pins_set'])} (from pin sources, never "
                f"printed)", f"card {result['card_serial']} {result['life_cycle']}; "
                f"application {result['application_id']} {result['application_state']}"]

    def sign() -> list[str]:
        doc = home / "contract.txt"
        doc.write_text("賃貸借契約書 — signed with a My Number Card (mynacard demo)\n",
                       encoding="utf-8")
        demo.mynacard("card", "sign", str(doc), "--reader", state["reader"],
                      "--pin-source", f"env:{PINS['sign'][0]}")
        state["doc"] = doc
        return [f"{doc.name} signed on the card with the signing key: "
                f"{doc.name}.p7s ({(home / (doc.name + '.p7s')).stat().st_size} bytes, CMS)"]

    def ocsp() -> list[str]:
        log = open(home / "ocsp.log", "w")  # noqa: SIM115 - closed by the cleanup
        proc = subprocess.Popen(
            [sys.executable, "-m", "issuance.cli.main", "--home", str(home), "ocsp", "serve",
             # the demo's certificates name an http:// responder on localhost; a
             # deployment serves OCSP with --tls-cert/--tls-key
             "--port", str(port), "--pin-source", hsm_pin, "--insecure-http"],
            env=env, stdout=log, stderr=subprocess.STDOUT, text=True, start_new_session=True)

        def stop() -> None:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
                try:
                    proc.wait(10)
                except subprocess.TimeoutExpired:
                    os.killpg(proc.pid, signal.SIGKILL)
            log.close()

        demo.cleanups.append(stop)
        _wait_http(f"http://127.0.0.1:{port}/", proc)
        # OCSP is for registered relying parties only: register one, keep its token secret.
        party = json.loads(demo.mynacard("rp", "add", "demo verifier", "--kind",
                                         "signature-verifier", "--json").stdout)
        env["MYNACARD_OCSP_TOKEN"] = party["token"]
        return [f"OCSP responder for both hierarchies at {ocsp_url} (keys in the HSM)",
                "relying party 'demo verifier' registered (署名検証者); its token is what "
                "the responder asks for"]

    def verify() -> list[str]:
        doc = state["doc"]
        out = demo.mynacard("verify", "--cms", str(doc) + ".p7s", "--data", str(doc)).stdout
        lines = [line.strip() for line in out.splitlines() if line.strip()]
        if not lines or not lines[0].startswith("VALID"):
            raise StepFailed("\n".join(lines))
        if not any(line.startswith("revocation: good by ocsp") for line in lines):
            raise StepFailed("the signature was not checked by OCSP:\n" + "\n".join(lines))
        return lines

    def death() -> list[str]:
        notice = home / "notices.jsonl"
        today = date.today().isoformat()
        notice.write_text(json.dumps({
            "id": "DEMO-DEATH-1", "source": "juki", "kind": "death",
            "resident_code": state["resident"]["resident_code"], "effective_date": today},
            ensure_ascii=False) + "\n", encoding="utf-8")
        out = demo.mynacard("notices", "ingest", str(notice), "--json").stdout
        report = json.loads(out)
        return [f"death notice from 住基ネット for {state['resident']['resident_code']} "
                f"({today}): {_notice_summary(report)}"]

    def verify_revoked() -> list[str]:
        doc = state["doc"]
        proc = demo.mynacard("verify", "--cms", str(doc) + ".p7s", "--data", str(doc),
                             check=False)
        lines = [line.strip() for line in proc.stdout.splitlines() if line.strip()]
        if proc.returncode != 1 or not lines or not lines[0].startswith("INVALID"):
            raise StepFailed(f"exit {proc.returncode}:\n" + "\n".join(lines))
        if not any(line.startswith("revocation: revoked by ocsp") for line in lines):
            raise StepFailed("the revocation was not reported by OCSP:\n" + "\n".join(lines))
        return lines[:3] + [f"exit {proc.returncode}: the relying party refuses the signature"]

    def audit() -> list[str]:
        out = demo.mynacard("audit", "verify").stdout.strip()
        return out.splitlines()[:2]

    steps: list[tuple[str, Callable[[], list[str]]]] = [
        ("Set up the issuance center: HSM token, JPKI CA, issuer keys", center),
        ("Load synthetic residents into the registry view", residents),
        ("Start an emulated blank My Number Card", emulator),
        ("Take the application of an adult resident", apply),
        ("Personalise and issue the card (`mynacard issue`)", issue),
        ("Hand over and activate: the holder sets the PINs (`mynacard activate`)", activate),
        ("Sign a document with the card's signing key", sign),
        ("Start the center's OCSP responder", ocsp),
        ("Verify the signature as a relying party, by OCSP", verify),
        ("Second act: a death notice arrives from 住基ネット", death),
        ("Verify the same signature again: revoked", verify_revoked),
        ("Check the keyed, hash-chained audit log", audit),
    ]
    demo.total = len(steps)
    print(f"mynacard demo — home {home}", flush=True)
    try:
        for title, body in steps:
            demo.step(title, body)
    finally:
        for cleanup in reversed(demo.cleanups):
            try:
                cleanup()
            except Exception as exc:  # keep shutting the rest down
                print(f"cleanup: {exc}", file=sys.stderr)
    print(f"\ndemo finished: every step worked in {time.monotonic() - demo.started:.1f}s",
          flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m issuance.demo",
        description="The main job end to end in a fresh home (what `make demo` runs).")
    parser.add_argument("--pkcs11-uri", metavar="URI",
                        help="run the center on this token (pkcs11:token=…?module-path=…) "
                             "instead of a SoftHSM2 token of its own")
    parser.add_argument("--pin-source", metavar="SPEC",
                        help="the token's user PIN (env:NAME or file:PATH), with --pkcs11-uri")
    args = parser.parse_args(argv)
    if bool(args.pkcs11_uri) != bool(args.pin_source):
        parser.error("--pkcs11-uri and --pin-source go together")
    home = Path(tempfile.mkdtemp(prefix="mynacard-demo-"))
    keep = bool(os.environ.get("MYNACARD_DEMO_KEEP"))
    try:
        run(home, pkcs11_uri=args.pkcs11_uri, pin_source=args.pin_source)
        return 0
    except (StepFailed, subprocess.TimeoutExpired, OSError) as exc:
        print(f"\ndemo FAILED: {str(exc).splitlines()[0] if str(exc) else exc}", flush=True)
        print(f"(state kept in {home})", flush=True)
        keep = True
        return 1
    finally:
        if not keep:
            shutil.rmtree(home, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
