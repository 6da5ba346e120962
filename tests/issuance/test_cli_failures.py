"""No Python traceback reaches a user: a card pulled while a command waits, pcscd gone,
PostgreSQL stopped, Ctrl-D at a prompt and Ctrl-C each end in one line saying what to do
(or what was left), through the real CLI in a subprocess against real parts."""

from __future__ import annotations

import json
import os
import pty
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from emulator.launcher import SOCKET_ENV

ROOT = Path(__file__).resolve().parents[2]
PG_BIN = Path(os.environ.get("MYNACARD_PG_BIN", "/usr/lib/postgresql/15/bin"))


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in (SOCKET_ENV, "MYNACARD_DB")}
    env.update(PYTHONPATH=str(ROOT), MYNACARD_DEVELOPMENT="1",
               MYNACARD_OPERATOR="failure-walker", **extra)
    return env


def _argv(home: Path, *argv: str) -> list[str]:
    return [sys.executable, "-m", "issuance.cli.main", "--home", str(home), *argv]


def mynacard(home: Path, *argv: str, **extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(_argv(home, *argv), env=_env(**extra), capture_output=True,
                          text=True, timeout=180, check=False, cwd=ROOT)


def one_line(err: str) -> str:
    assert "Traceback" not in err, err
    lines = [ln for ln in err.strip().splitlines() if not ln.startswith("mynacard: warning")]
    assert len(lines) == 1, err
    return lines[0]


@pytest.fixture
def home() -> Iterator[Path]:
    d = Path(tempfile.mkdtemp(prefix="mynacard-f-"))  # short: the pcscd socket path must fit
    yield d
    mynacard(d, "emulator", "down")
    shutil.rmtree(d, ignore_errors=True)


def _waiting(home: Path, *argv: str) -> tuple[subprocess.Popen[str], int]:
    """A command that waits for its PIN on a pipe (fd 3): the process, the writing end."""
    r, w = os.pipe()
    proc = subprocess.Popen([*_argv(home, *argv), "--pin-source", f"fd:{r}"], env=_env(),
                            pass_fds=(r,), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, cwd=ROOT)
    os.close(r)
    wchan = Path(f"/proc/{proc.pid}/wchan")
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline and proc.poll() is None:  # until it blocks reading it
        where = wchan.read_text(errors="replace").strip()
        if "pipe" in where:
            break
        if where == "0":  # the kernel does not say: give it time instead
            time.sleep(5)
            break
        time.sleep(0.2)
    time.sleep(0.3)
    assert proc.poll() is None, proc.communicate()
    return proc, w


def test_a_card_pulled_while_a_command_waits_then_pcscd_gone(home: Path) -> None:
    up = mynacard(home, "emulator", "up", "--cards", "1")
    assert up.returncode == 0, up.stderr
    reader = up.stdout.split("\n")[0]
    doc = home / "doc.txt"
    doc.write_text("to be signed\n")
    proc, w = _waiting(home, "card", "sign", str(doc), "--reader", reader)
    assert mynacard(home, "emulator", "eject", "--reader", reader).returncode == 0
    os.write(w, b"123456\n")
    os.close(w)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 3, err
    line = one_line(err)
    assert f"insert the card in reader {reader!r} and run the command again" in line, line
    assert "123456" not in out + err
    # pcscd killed: one line saying to start it
    status = json.loads(mynacard(home, "emulator", "status", "--json").stdout)
    os.kill(status["pcscd"]["pid"], signal.SIGKILL)
    time.sleep(0.5)
    res = mynacard(home, "card", "info", "--reader", reader)
    assert res.returncode == 3, res.stderr
    assert "start pcscd" in one_line(res.stderr), res.stderr


def test_ctrl_d_at_a_prompt_on_a_terminal(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    doc = tmp_path / "doc.txt"
    doc.write_text("x")
    pid, master = pty.fork()  # the child's controlling terminal is the pty: getpass uses it
    if pid == 0:  # pragma: no cover - the child
        os.execve(sys.executable, _argv(home, "card", "sign", str(doc), "--pin-source",
                                        "prompt"), _env())
    shown = b""
    deadline = time.monotonic() + 60
    while b"password: " not in shown and time.monotonic() < deadline:
        if select.select([master], [], [], 1)[0]:
            shown += os.read(master, 1024)
    assert b"signing password: " in shown, shown
    os.write(master, b"\x04")  # Ctrl-D
    while True:
        try:
            ready = select.select([master], [], [], 30)[0]
            chunk = os.read(master, 1024) if ready else b""
        except OSError:
            break
        if not chunk:
            break
        shown += chunk
    _, status = os.waitpid(pid, 0)
    os.close(master)
    text = shown.decode(errors="replace")
    assert os.waitstatus_to_exitcode(status) == 1, text
    assert "end of input at a prompt" in text and "Traceback" not in text


def test_ctrl_c_says_what_it_left(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    doc = tmp_path / "doc.txt"
    doc.write_text("x")
    for argv, left in ((["card", "sign", str(doc)], "nothing was changed"),
                       (["operator", "add", "kato", "--role", "clerk"],
                        "what completed is kept and recorded in the audit log")):
        proc, w = _waiting(home, *argv)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
        os.close(w)
        assert proc.returncode == 130, err
        line = one_line(err)
        assert line.startswith(f"mynacard {' '.join(argv[:2])}: interrupted;") and left in line
    shown = mynacard(home, "audit", "show", "--json")
    entries = json.loads(shown.stdout)
    assert [(e["action"], e["detail"]["exit"]) for e in entries] == [("operator.add", 130)]


def _cards_running(home: Path) -> list[int]:
    """Processes whose command line names this home's emulator (cards, pcscd)."""
    pids = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit() and int(proc.name) != os.getpid():
            try:
                cmd = (proc / "cmdline").read_bytes()
            except OSError:
                continue
            if str(home).encode() in cmd and b"issuance.cli.main" not in cmd:
                pids.append(int(proc.name))
    return pids


def test_ctrl_c_during_emulator_up_sample_leaves_no_card(home: Path) -> None:
    proc = subprocess.Popen(_argv(home, "emulator", "up", "--cards", "1", "--sample"),
                            env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, cwd=ROOT)
    assert proc.stderr is not None
    seen = ""
    while "personalising the sample card" not in seen:
        line = proc.stderr.readline()
        assert line, (seen, proc.wait())
        seen += line
    # in the middle of personalisation, which takes about a second on a quiet machine (its
    # three on-card RSA key generations alone take more than 0.2 s): interrupting later
    # could find `emulator up` done, and a finished `up` rightly leaves its card running
    time.sleep(0.2)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, seen + err
    assert "no card is running" in err and "Traceback" not in err
    status = mynacard(home, "emulator", "status", "--json")
    assert json.loads(status.stdout)["running"] is False, status.stdout
    deadline = time.monotonic() + 10
    while _cards_running(home) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert _cards_running(home) == []


def _pg(data: Path, *argv: str, user: str | None) -> subprocess.CompletedProcess[str]:
    cmd = [*(["runuser", "-u", user, "--"] if user else []), *argv]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)


@pytest.fixture
def private_pg() -> Iterator[tuple[str, Path, str | None]]:
    """A PostgreSQL cluster of this test alone, so it can be stopped: (url, data, user)."""
    import pwd
    import socket

    base = Path(tempfile.mkdtemp(prefix="mynacard-pgf-"))
    user = "postgres" if os.geteuid() == 0 else None
    if user:
        pw = pwd.getpwnam(user)
        os.chown(base, pw.pw_uid, pw.pw_gid)
    name = user or pwd.getpwuid(os.geteuid()).pw_name
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    data = base / "data"
    init = _pg(data, str(PG_BIN / "initdb"), "-D", str(data), "-U", name, "--auth=trust",
               "--no-sync", "-E", "UTF8", "--locale=C", user=user)
    assert init.returncode == 0, init.stderr
    opts = f"-c listen_addresses='' -c unix_socket_directories={base} -p {port} -c fsync=off"
    start = _pg(data, str(PG_BIN / "pg_ctl"), "-D", str(data), "-l", str(base / "log"),
                "-o", opts, "-w", "-t", "60", "start", user=user)
    assert start.returncode == 0, start.stderr
    try:
        yield f"postgresql://{name}@/postgres?host={base}&port={port}", data, user
    finally:
        _pg(data, str(PG_BIN / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop",
            user=user)
        shutil.rmtree(base, ignore_errors=True)


def test_postgresql_stopped(private_pg: tuple[str, Path, str | None], tmp_path: Path) -> None:
    url, data, user = private_pg
    home = tmp_path / "home"
    home.mkdir()
    assert mynacard(home, "audit", "show", MYNACARD_DB=url).returncode == 0
    stop = _pg(data, str(PG_BIN / "pg_ctl"), "-D", str(data), "-m", "fast", "-w", "stop",
               user=user)
    assert stop.returncode == 0, stop.stderr
    for argv in (["audit", "show"], ["registry", "show", "12345678901"],
                 ["registry", "generate", "--count", "1", "--out", str(tmp_path / "r.jsonl")]):
        res = mynacard(home, *argv, MYNACARD_DB=url)
        assert res.returncode == 3, (argv, res.stderr)
        line = one_line(res.stderr)
        assert "check the database at postgresql://" in line and "is the server running" in line
    assert not (tmp_path / "r.jsonl").exists()  # nothing done


def test_an_ocsp_responder_down(tmp_path: Path) -> None:
    """The responder not running: exit 4 (revocation not checked), one reason saying to
    check the server, and under --json the verdict document with no error added."""
    import socket

    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    home = tmp_path / "home"
    home.mkdir()
    pins = {"T_PIN": "246810", "T_SO": "13579135"}
    hsm = ["--token", "t", "--pin-source", "env:T_PIN"]
    made = mynacard(home, "ca", "init", *hsm, "--pin-source", "so=env:T_SO", "--shards", "1",
                    **pins)
    assert made.returncode == 0, made.stderr
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    (home / "h.pub").write_bytes(key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
    (home / "id.json").write_text(json.dumps({"name": "佐藤 花子", "sex": 2,
                                              "birth_date": "1985-07-07",
                                              "address": "大阪府大阪市北区1-2-3"}))
    issued = mynacard(home, "ca", "issue", *hsm, "--profile", "signing", "--public-key",
                      str(home / "h.pub"), "--identity", str(home / "id.json"),
                      "--holder-id", "R1", "--card-expiry", "2035-01-01",
                      "--out", str(home / "s.pem"), **pins)
    assert issued.returncode == 0, issued.stderr
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{s.getsockname()[1]}/ocsp"
    res = mynacard(home, "verify", "--cert", str(home / "s.pem"), "--ocsp", url)
    assert res.returncode == 4 and "Traceback" not in res.stderr
    assert f"cannot fetch {url}: Connection refused; check that the server is running" \
        in res.stdout
    res = mynacard(home, "verify", "--cert", str(home / "s.pem"), "--ocsp", url, "--json")
    assert res.returncode == 4 and res.stderr == ""
    assert json.loads(res.stdout)["revocation"]["status"] == "error"


def test_ctrl_c_in_issue_names_the_command_that_resumes(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    import argparse

    from issuance.cli import main as root

    build = root.build_parser

    def interrupted(args: argparse.Namespace) -> int:
        raise KeyboardInterrupt

    def patched() -> argparse.ArgumentParser:
        parser = build()
        root.command_tree(parser)["issue"].set_defaults(func=interrupted)
        return parser

    monkeypatch.setattr(root, "build_parser", patched)
    monkeypatch.delenv("MYNACARD_DB", raising=False)
    home = tmp_path / "home"
    home.mkdir()
    code = root.main(["--home", str(home), "issue", "APP-1", "--reader", "Virtual PCD 00 00",
                      "--operator", "clerk"])
    err = capsys.readouterr().err
    assert code == 130
    assert one_line(err) == (
        "mynacard issue: interrupted; application APP-1 may be left half-personalised; run "
        "`mynacard issue APP-1 --reader 'Virtual PCD 00 00'` again to resume it (no card or "
        "certificate is duplicated)")
