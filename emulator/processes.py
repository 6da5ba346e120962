"""Processes the launcher starts and watches: spawned detached, identified by (pid, start time)
so a reused pid is never signalled, stopped TERM-then-KILL, and their listening sockets read
from /proc (the loopback check)."""

from __future__ import annotations

import errno
import ipaddress
import os
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path
from typing import IO

from emulator.errors import EmulatorError

_LOG_FLAGS = (os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK
              | getattr(os, "O_CLOEXEC", 0))


def start_time_of(pid: int) -> int | None:
    """The process's start time in clock ticks (guards against pid reuse), None if gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat[stat.rfind(")") + 2 :].split()
    if fields[0] == "Z":  # a zombie is as good as gone
        return None
    return int(fields[19])


def pid_alive(pid: int, start_time: int | None = None) -> bool:
    st = start_time_of(pid)
    return st is not None and (start_time is None or st == start_time)


def stop_pids(procs: list[tuple[int, int | None]], timeout: float = 3.0) -> None:
    """SIGTERM, then SIGKILL after `timeout`.

    Each (pid, start time) is signalled only while it is still the same process.
    """
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for pid, st in procs:
            if pid_alive(pid, st):
                try:
                    os.kill(pid, sig)
                except ProcessLookupError:
                    pass
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and any(pid_alive(p, s) for p, s in procs):
            reap()
            time.sleep(0.02)


def reap() -> None:
    """Collect exited children of this process (the launcher's own Popen objects)."""
    for proc in list(_CHILDREN):
        if proc.poll() is not None:
            _CHILDREN.remove(proc)


_CHILDREN: list[subprocess.Popen[bytes]] = []


def _die_with_parent() -> None:  # runs in the child between fork and exec
    import ctypes

    pr_set_pdeathsig = 1
    ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGTERM)


def spawn(
    argv: list[str], log: Path, env: dict[str, str] | None = None, *, linger: bool = True
) -> tuple[int, int | None]:
    """A detached process (own session, no stdin), output appended to `log`.

    With `linger` False it gets SIGTERM when this process dies (a killed test run leaves
    no pcscd behind).
    """
    with open_log(log) as out:
        proc = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
            close_fds=True,
            preexec_fn=None if linger else _die_with_parent,
        )
    _CHILDREN.append(proc)
    st = start_time_of(proc.pid)
    return proc.pid, st


def open_log(log: Path) -> IO[bytes]:
    """`log` opened for appending: created 0600, never through a symlink (EmulatorError),
    an existing log's mode fixed to 0600 (a log can name serials and keys' paths)."""
    try:
        fd = os.open(log, _LOG_FLAGS, 0o600)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise EmulatorError(f"{log} is a symlink: refusing to write the log through it "
                                "(remove it)") from None
        raise
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise EmulatorError(f"{log} is not a regular file: refusing to write the log there")
        if stat.S_IMODE(st.st_mode) & 0o077:
            os.fchmod(fd, 0o600)
        os.set_blocking(fd, True)
        return os.fdopen(fd, "ab")
    except BaseException:
        os.close(fd)
        raise


def listening_sockets(pid: int) -> list[tuple[str, int]]:
    """(address, port) of every TCP socket process `pid` listens on (from /proc).

    OSError when the process's descriptors cannot be read.
    """
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:  # closed meanwhile
            continue
        if target.startswith("socket:["):
            inodes.add(target[len("socket:[") : -1])
    found = []
    for table in ("tcp", "tcp6"):
        try:
            rows = Path(f"/proc/{pid}/net/{table}").read_text().splitlines()[1:]
        except FileNotFoundError:  # no IPv6
            continue
        for row in rows:
            fields = row.split()
            local, state, inode = fields[1], fields[3], fields[9]
            if state != "0A" or inode not in inodes:  # 0A: TCP_LISTEN
                continue
            address, port = local.split(":")
            found.append((proc_address(address), int(port, 16)))
    return found


def proc_address(hexdigits: str) -> str:
    """An address as /proc/net/tcp prints it: 32-bit words, each in host byte order."""
    raw = bytes.fromhex(hexdigits)
    if sys.byteorder == "little":
        raw = b"".join(raw[i : i + 4][::-1] for i in range(0, len(raw), 4))
    return str(ipaddress.ip_address(raw))





def log_tail(path: Path, lines: int = 5) -> str:
    try:
        text = path.read_text(errors="replace").strip().splitlines()
    except OSError:
        return f"(no log at {path})"
    return " | ".join(text[-lines:]) or f"(empty log {path})"
