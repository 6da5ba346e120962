"""Start and stop a private pcscd with N emulated cards (jCardSim behind vpcd).

Layout of a runtime directory (everything the emulator owns lives there):

    reader.conf.d/vpcd        one vpcd entry per two readers (each vpcd entry has two slots)
    drivers/libifdvpcd-E.so   a private copy of the vpcd driver per entry
    run/pcscd/pcscd.comm      the private pcscd's socket (PCSCLITE_CSOCK_NAME)
    pcscd.log                 pcscd's output
    card-I.properties         card I's configuration, mode 0600 (holds its keys)
    card-I.log                card I's bridge output
    card-I.ctl                card I's control socket: the launcher swaps blank cards in the
                              running bridge (one warm JVM per reader, not one per card)
    state.json                pids, ports, readers and serials of the running emulator

Readers and ports: card I sits in vpcd entry I // 2, slot I % 2, on TCP port BASE + I
(vpcd uses the entry's port + slot, so entries are spaced two ports apart). Entry 0 is
named "Virtual PCD" (readers "Virtual PCD 00 00", "Virtual PCD 00 01"), entry E > 0
"Virtual PCD E" (readers "Virtual PCD E 00 00", ...).

Card ports listen on loopback only. vpcd binds its card port to the wildcard address
(every interface), so any host on the network could attach a card to our readers. The
private pcscd therefore runs with emulator/native/libloopback_bind.so preloaded, which
turns a bind to the wildcard address into a bind to loopback, and after start-up the
launcher checks every TCP socket pcscd listens on (`exposed_listeners`) and refuses to
run when one is not on loopback. (vpcd's reverse mode, `DEVICENAME host:port`, would have
the driver connect to the card instead, but in vsmartcard-vpcd 3.3 a reverse-mode reader
aborts pcscd the first time it must reconnect, i.e. on the first card swap.)

A private pcscd: pcscd 1.9 ignores PCSCLITE_CSOCK_NAME and always creates
/run/pcscd/pcscd.comm, so it runs in its own mount namespace (`unshare`) in which the
runtime directory's `run/pcscd` is bind-mounted over /run/pcscd (and an empty directory
over the system driver directory, so it never grabs a real USB reader). The socket then
appears at `<runtime>/run/pcscd/pcscd.comm` for every client that sets
`PCSCLITE_CSOCK_NAME` to it; the system's pcscd is never touched.
"""
from __future__ import annotations

import ipaddress
import os
import secrets
import socket
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path
from types import TracebackType
from typing import Any

from card.contract import TEST_ISSUER_MASTER_KEY
from emulator.components import (
    JVM_OPTIONS,
    LOOPBACK,
    REPO_ROOT,
    SOCKET_ENV,
    SYSTEM_DRIVER_DIR,
    SYSTEM_SOCKET_DIR,
    Components,
    find_components,
)
from emulator.errors import EmulatorError, ReaderStateError
from emulator.factory_keys import (
    DEFAULT_DERIVATION,
    TEST_MUNICIPAL_MASTER_KEY,
    check_derivation,
    derive_card_key,
    random_serial,
    read_master_key,
)
from emulator.processes import listening_sockets, log_tail, pid_alive, reap, spawn, stop_pids
from emulator.state import (
    STATE_FILE,
    CardState,
    EmulatorState,
    friendly_name,
    load_state,
    reader_name,
    save_state,
    socket_path,
)
from hsm.files import private_dir, write_file

# A card inserted that pcscd has not shown after this long is pulled and inserted again.
INSERT_NOTICE_SECONDS = 10.0
INSERT_TRIES = 3


def _absolute(path: Path) -> Path:
    """`path` made absolute with its parent directories resolved, its last part kept."""
    path = Path(os.path.abspath(path))
    return path.parent.resolve() / path.name if path.name else path


def _private_dir(path: Path) -> None:
    """`path` as a 0700 directory; EmulatorError when it is a symlink or not a directory."""
    try:
        private_dir(path)
    except NotADirectoryError:
        raise EmulatorError(f"{path} is a symlink or not a directory: refusing to use it as "
                            "(part of) the emulator's runtime directory (remove it)") from None


def _port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind((LOOPBACK, port))
        except OSError:
            return False
    return True


def _pick_base_port(count: int) -> int:
    """A random even base port with `count` free ports above it."""
    for _ in range(200):
        base = 20000 + 2 * secrets.randbelow(15000)
        if all(_port_free(base + i) for i in range(count)):
            return base
    raise EmulatorError("no free TCP ports for the vpcd readers")


# --- the emulator ---------------------------------------------------------------------


class Emulator:
    """A private pcscd with `cards` emulated blank cards; a context manager.

    Keyword options: `issuer_master_key` / `municipal_master_key` (16 bytes; default the
    test keys 40..4F and 50..5F) or `issuer_master_key_file` / `municipal_master_key_file`;
    `derivation`, the card-key derivation of the center the cards are made for
    (emulator.factory_keys.DERIVATIONS);
    `timeout` for start-up; `bridge_jar` to use another jar; `linger` False to have pcscd
    and the cards terminated when this process dies (tests), True (default) to leave them
    running after it exits (`mynacard emulator up`).
    """

    def __init__(
        self,
        runtime_dir: Path,
        cards: int,
        *,
        issuer_master_key: bytes | None = None,
        municipal_master_key: bytes | None = None,
        issuer_master_key_file: Path | None = None,
        municipal_master_key_file: Path | None = None,
        timeout: float = 30.0,
        bridge_jar: Path | None = None,
        linger: bool = True,
        derivation: str = DEFAULT_DERIVATION,
    ) -> None:
        if not isinstance(cards, int) or isinstance(cards, bool):
            raise TypeError("cards must be an int")
        if not 1 <= cards <= 10:
            raise ValueError("cards must be 1..10 (pcscd serves at most 16 readers)")
        if issuer_master_key_file is not None:
            issuer_master_key = read_master_key(issuer_master_key_file)
        if municipal_master_key_file is not None:
            municipal_master_key = read_master_key(municipal_master_key_file)
        for name, key in (("issuer_master_key", issuer_master_key),
                          ("municipal_master_key", municipal_master_key)):
            if key is not None and (not isinstance(key, bytes) or len(key) != 16):
                raise ValueError(f"{name} must be 16 bytes")
        # absolute, its parents resolved, but never the directory itself: a symlink
        # planted there is refused by `start`, not followed
        self.runtime_dir = _absolute(Path(runtime_dir))
        self.count = cards
        self.timeout = timeout
        check_derivation(derivation)
        self.derivation = derivation
        self._issuer_master = issuer_master_key or TEST_ISSUER_MASTER_KEY
        self._municipal_master = municipal_master_key or TEST_MUNICIPAL_MASTER_KEY
        self._bridge_jar = bridge_jar
        self._linger = linger
        self._key_files = (str(Path(issuer_master_key_file).resolve()) if issuer_master_key_file
                           else "",
                           str(Path(municipal_master_key_file).resolve())
                           if municipal_master_key_file else "")
        self.components: Components | None = None
        self.state: EmulatorState | None = None

    @classmethod
    def attach(cls, runtime_dir: Path, *, timeout: float = 30.0) -> Emulator:
        """The emulator already running in `runtime_dir` (started by another process)."""
        state = load_state(runtime_dir)
        if state is None or not pid_alive(state.pcscd_pid, state.pcscd_start_time):
            raise EmulatorError(f"no emulator running in {runtime_dir}; "
                                "start one with `mynacard emulator up`")
        emulator = cls(
            runtime_dir, len(state.cards), timeout=timeout,
            issuer_master_key_file=Path(state.issuer_master_key_file)
            if state.issuer_master_key_file else None,
            municipal_master_key_file=Path(state.municipal_master_key_file)
            if state.municipal_master_key_file else None,
            derivation=state.derivation,
        )
        emulator.components = find_components()
        emulator.state = state
        return emulator

    # context manager
    def __enter__(self) -> Emulator:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def socket(self) -> Path:
        return socket_path(self.runtime_dir)

    @property
    def readers(self) -> list[str]:
        return self.state.readers if self.state else []

    def env(self) -> dict[str, str]:
        """An environment for PC/SC client processes that talk to this emulator."""
        return {**os.environ, SOCKET_ENV: str(self.socket)}

    def serial(self, reader: str) -> str:
        return self._card(reader).serial

    def _card(self, reader: str) -> CardState:
        assert self.state is not None, "emulator not started"
        for c in self.state.cards:
            if c.reader == reader:
                return c
        raise KeyError(f"no emulated card in {reader!r}")

    # start/stop
    def start(self) -> EmulatorState:
        if self.state is not None:
            raise EmulatorError("already started")
        self.components = find_components(self._bridge_jar)
        if len(os.fsencode(self.socket)) > 107:  # sockaddr_un.sun_path
            raise EmulatorError(
                f"runtime directory {self.runtime_dir} is too long for pcscd's UNIX socket "
                f"{self.socket}; use a shorter path"
            )
        _private_dir(self.runtime_dir)  # 0700 (card keys, logs); a symlink is refused
        existing = load_state(self.runtime_dir)
        if existing is not None and pid_alive(existing.pcscd_pid, existing.pcscd_start_time):
            raise EmulatorError(
                f"an emulator is already running in {self.runtime_dir} (pcscd pid "
                f"{existing.pcscd_pid}); stop it first"
            )
        try:
            self.state = self._start_pcscd()
            cards = [self._start_card(i) for i in range(self.count)]
            self.state = replace(self.state, cards=tuple(cards))
            save_state(self.runtime_dir, self.state)
            self._wait(self.readers, present=True, what="cards to appear")
            self._check_loopback()
        except BaseException:
            self.stop()
            raise
        return self.state

    def stop(self) -> None:
        """Cards first, then pcscd (SIGTERM, then SIGKILL); config files removed."""
        state = self.state or load_state(self.runtime_dir)
        if state is not None:
            stop_state(self.runtime_dir, state)
        self.state = None

    def _start_pcscd(self) -> EmulatorState:
        assert self.components is not None
        comp = self.components
        rt = self.runtime_dir
        conf_dir = rt / "reader.conf.d"
        drivers = rt / "drivers"
        empty = rt / "no-drivers"
        run_pcscd = rt / "run" / "pcscd"
        for d in (conf_dir, drivers, empty, rt / "run", run_pcscd):
            _private_dir(d)  # never through a symlink
        for stale in (run_pcscd / "pcscd.comm", run_pcscd / "pcscd.pid"):
            stale.unlink(missing_ok=True)
        entries = (self.count + 1) // 2
        base = _pick_base_port(2 * entries)
        lines = []
        for e in range(entries):
            lib = drivers / f"libifdvpcd-{e}.so"
            write_file(lib, comp.vpcd_driver.read_bytes(), force=True)  # replaces a symlink
            port = base + 2 * e
            lines += [
                f'FRIENDLYNAME "{friendly_name(e)}"',
                f"DEVICENAME   /dev/null:{port}",
                f"LIBPATH      {lib}",
                f"CHANNELID    {port}",
                "",
            ]
        write_file(conf_dir / "vpcd", "\n".join(lines), force=True)  # 0600, no symlink followed
        log = rt / "pcscd.log"
        argv = self._pcscd_argv(comp, conf_dir, empty)
        env = {k: v for k, v in os.environ.items() if not k.startswith("LISTEN_")}
        env[SOCKET_ENV] = str(self.socket)
        env["LD_PRELOAD"] = str(comp.loopback_shim)  # vpcd's card ports: loopback only
        pid, st = spawn(argv, log, env, linger=self._linger)
        state = EmulatorState(
            runtime_dir=str(rt), socket=str(self.socket), pcscd_pid=pid, pcscd_start_time=st,
            pcscd_log=str(log), base_port=base, issuer_master_key_file=self._key_files[0],
            municipal_master_key_file=self._key_files[1], derivation=self.derivation,
        )
        save_state(rt, state)
        deadline = time.monotonic() + self.timeout
        while not self.socket.exists():
            if not pid_alive(pid, st):
                hint = ""
                if "unshare" in log_tail(log) or "mount" in log_tail(log):
                    hint = (" (a private pcscd runs in its own mount namespace: run as root "
                            "or allow unprivileged user namespaces)")
                raise EmulatorError(f"pcscd exited at start-up: {log_tail(log)}{hint}")
            if time.monotonic() > deadline:
                raise EmulatorError(f"pcscd did not create {self.socket}: {log_tail(log)}")
            time.sleep(0.01)
        return state

    def _check_loopback(self) -> None:
        """EmulatorError unless every TCP port pcscd listens on is bound to loopback."""
        assert self.state is not None
        try:
            listening = listening_sockets(self.state.pcscd_pid)
        except OSError as exc:
            raise EmulatorError(f"cannot check where pcscd listens: {exc}") from None
        exposed = [f"{a}:{p}" for a, p in listening if not ipaddress.ip_address(a).is_loopback]
        if exposed:
            raise EmulatorError(
                f"pcscd listens beyond loopback on {', '.join(exposed)}: refusing to run "
                f"(the card ports must not be reachable from the network)"
            )

    def _pcscd_argv(self, comp: Components, conf_dir: Path, empty: Path) -> list[str]:
        if comp.unshare is None:
            raise EmulatorError("unshare (util-linux) not found; it is needed for a private pcscd")
        rt = self.runtime_dir
        if SYSTEM_SOCKET_DIR.is_dir():
            source, target = rt / "run" / "pcscd", SYSTEM_SOCKET_DIR
        else:  # no /run/pcscd on this machine: give pcscd a private /run
            source, target = rt / "run", SYSTEM_SOCKET_DIR.parent
        script = (
            'mount --bind "$1" "$2" && { [ ! -d "$3" ] || mount --bind "$4" "$3"; } '
            '&& exec "$5" --foreground --config "$6"'
        )
        ns = ["--mount", "--propagation", "private"]
        if os.geteuid() != 0:
            ns = ["--map-root-user", *ns]
        return [
            str(comp.unshare), *ns, "sh", "-c", script, "pcscd-private",
            str(source), str(target), str(SYSTEM_DRIVER_DIR), str(empty), str(comp.pcscd),
            str(conf_dir),
        ]

    def _card_key(self, serial: str, domain: int) -> bytes:
        return derive_card_key(self._issuer_master, serial, domain, self.derivation)

    def _write_config(self, index: int, serial: str) -> tuple[Path, Path]:
        """Card `index`'s configuration file (mode 0600: it holds the card's keys)."""
        assert self.state is not None
        port = self.state.base_port + index
        config = self.runtime_dir / f"card-{index}.properties"
        control = self.runtime_dir / f"card-{index}.ctl"
        body = (
            f"name=card-{index}\n"
            f"serial={serial}\n"
            f"card_key={self._card_key(serial, 0x80).hex()}\n"
            f"card_auth_key={self._card_key(serial, 0x81).hex()}\n"
            f"municipal_key={derive_card_key(self._municipal_master, serial).hex()}\n"
            f"host={LOOPBACK}\n"
            f"port={port}\n"
            f"connect_timeout_seconds={int(max(self.timeout, 5))}\n"
            f"control={control}\n"
        )
        write_file(config, body, force=True)  # 0600, atomic; a symlink there is replaced
        return config, control

    def _start_card(self, index: int, serial: str | None = None) -> CardState:
        assert self.components is not None and self.state is not None
        serial = serial or random_serial()
        port = self.state.base_port + index
        config, control = self._write_config(index, serial)
        control.unlink(missing_ok=True)
        log = self.runtime_dir / f"card-{index}.log"
        argv = [str(self.components.java), *JVM_OPTIONS, "-jar", str(self.components.bridge_jar),
                str(config)]
        pid, st = spawn(argv, log, linger=self._linger)
        return CardState(index, reader_name(index), port, serial, pid, st, str(config), str(log),
                         str(control))

    def replace_card(self, reader: str) -> CardState:
        """Pull the card out of `reader` and insert a fresh blank card (new serial).

        The new card is manufactured from scratch (new serial and factory keys, fresh
        applets, no state of the old card) in the reader's running bridge when it has a
        control socket, so the JVM (and its JIT-compiled code) is reused; otherwise, or
        if that fails, the old process is stopped and a new one started.
        """
        old = self._card(reader)
        assert self.state is not None
        new = self._swap_card(old)
        if new is None:
            stop_pids([(old.pid, old.start_time)])
            self._wait([reader], present=False, what="the old card to be removed")
            new = self._start_card(old.index)
        self._record(new)
        return self._wait_inserted(reader, new)

    def _wait_inserted(self, reader: str, card: CardState) -> CardState:
        """Wait for pcscd to show the card just inserted; the card shown.

        pcscd can miss an insertion that follows the removal at once while it is still
        cleaning up after a client that died holding the old card (seen under load: the
        new card is connected to vpcd and the reader stays empty). As a person would, the
        card is then pulled and inserted again, up to INSERT_TRIES times in all; each try
        is a new blank card, so the serial returned is the one to use."""
        for attempt in range(1, INSERT_TRIES + 1):
            wait = self.timeout if attempt == INSERT_TRIES else min(self.timeout,
                                                                    INSERT_NOTICE_SECONDS)
            left = wait_readers(self.socket, [reader], present=True, timeout=wait,
                                alive=self.check_alive)
            if not left:
                return card
            again = self._swap_card(card) if attempt < INSERT_TRIES else None
            if again is None:
                break
            print(f"mynacard emulator: pcscd did not show the card inserted in {reader!r} "
                  f"after {wait:.0f} s; inserting it again", file=sys.stderr)
            card = again
            self._record(card)
        raise EmulatorError(
            f"timed out waiting for the new card to appear: {reader} has no card "
            f"after {INSERT_TRIES} insertions (logs in {self.runtime_dir})")

    def eject(self, reader: str) -> CardState:
        """Pull the card out of `reader` (its state is gone); the reader stays, empty."""
        old = self._card(reader)
        if not old.present:
            raise ReaderStateError(f"{reader!r} holds no card")
        if not old.control or not pid_alive(old.pid, old.start_time):
            raise EmulatorError(f"the card process for {reader!r} is not running")
        try:
            answer = _control(old.control, "remove", self.timeout)
        except OSError as exc:
            raise EmulatorError(f"cannot reach the card in {reader!r}: {exc}") from None
        if answer != "ok removed":
            raise EmulatorError(f"the card in {reader!r} was not removed: {answer!r}")
        self._wait([reader], present=False, what="the card to be removed")
        Path(old.config).unlink(missing_ok=True)  # it holds the card's keys
        return self._record(replace(old, present=False))

    def insert(self, reader: str) -> CardState:
        """A fresh blank card (new serial) into the empty `reader`."""
        old = self._card(reader)
        if old.present:
            raise ReaderStateError(f"{reader!r} already holds a card (serial {old.serial}); "
                                "eject it first, or use replace")
        if not old.control or not pid_alive(old.pid, old.start_time):
            raise EmulatorError(f"the card process for {reader!r} is not running")
        serial = random_serial()
        config, _ = self._write_config(old.index, serial)
        try:
            answer = _control(old.control, f"insert {config}", self.timeout + 20)
        except OSError as exc:
            raise EmulatorError(f"cannot reach the reader {reader!r}: {exc}") from None
        if answer != f"ok inserted {serial}":
            raise EmulatorError(f"no card was inserted into {reader!r}: {answer!r}")
        new = self._record(replace(old, serial=serial, config=str(config), present=True))
        self._wait([reader], present=True, what="the new card to appear")
        return new

    def _record(self, card: CardState) -> CardState:
        assert self.state is not None
        cards = tuple(card if c.index == card.index else c for c in self.state.cards)
        self.state = replace(self.state, cards=cards)
        save_state(self.runtime_dir, self.state)
        return card

    def _swap_card(self, old: CardState) -> CardState | None:
        """A new blank card in the old card's running bridge, None when that is not possible."""
        if not old.control or not Path(old.control).exists() or \
                not pid_alive(old.pid, old.start_time):
            return None
        if old.present:
            try:
                if _control(old.control, "remove", self.timeout) != "ok removed":
                    return None
            except OSError:
                return None
            self._wait([old.reader], present=False, what="the old card to be removed")
        serial = random_serial()
        config, _ = self._write_config(old.index, serial)
        try:
            answer = _control(old.control, f"insert {config}", self.timeout + 20)
        except OSError:
            answer = ""
        if answer != f"ok inserted {serial}":
            return None
        return replace(old, serial=serial, config=str(config), present=True)

    def check_alive(self) -> None:
        """EmulatorError when pcscd or a card process has died."""
        assert self.state is not None
        if not pid_alive(self.state.pcscd_pid, self.state.pcscd_start_time):
            raise EmulatorError(f"pcscd exited: {log_tail(Path(self.state.pcscd_log))}")
        for c in self.state.cards:
            if not pid_alive(c.pid, c.start_time):
                raise EmulatorError(
                    f"the card process for {c.reader!r} exited: {log_tail(Path(c.log))}"
                )

    def _wait(self, readers: list[str], *, present: bool, what: str) -> None:
        alive = self.check_alive if present else None
        left = wait_readers(self.socket, readers, present=present, timeout=self.timeout,
                            alive=alive)
        if left:
            state = "have no card" if present else "still have a card"
            raise EmulatorError(
                f"timed out after {self.timeout:.0f} s waiting for {what}: "
                f"{', '.join(left)} {state} (logs in {self.runtime_dir})"
            )


def _control(path: str, command: str, timeout: float) -> str:
    """One command on a bridge's control socket; its one-line answer."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(timeout)
        s.connect(path)
        s.sendall(command.encode("ascii") + b"\n")
        answer = b""
        while not answer.endswith(b"\n"):
            chunk = s.recv(256)
            if not chunk:
                break
            answer += chunk
    return answer.decode("ascii", "replace").strip()


def stop_state(runtime_dir: Path, state: EmulatorState) -> None:
    """Stop what `state` records: cards first, then pcscd. Removes config files and state."""
    stop_pids([(c.pid, c.start_time) for c in state.cards])
    stop_pids([(state.pcscd_pid, state.pcscd_start_time)])
    for c in state.cards:
        Path(c.config).unlink(missing_ok=True)
    for p in Path(runtime_dir).glob("card-*.properties"):
        p.unlink(missing_ok=True)
    for p in Path(runtime_dir).glob("card-*.ctl"):
        p.unlink(missing_ok=True)
    (Path(runtime_dir) / STATE_FILE).unlink(missing_ok=True)
    reap()


def wait_readers(
    sock: Path,
    readers: list[str],
    *,
    present: bool,
    timeout: float,
    alive: Any = None,
) -> list[str]:
    """Wait until each reader of the pcscd at `sock` shows (or lost) its card.

    In process (card.transport) when this process's PC/SC socket is `sock` — it is set
    here when the process has none yet; libpcsclite keeps the first one for the life of
    the process, so for any other pcscd the check runs in a child process.
    """
    current = os.environ.get(SOCKET_ENV)
    if current is None:  # (a process that already used the system pcscd cannot switch)
        os.environ[SOCKET_ENV] = str(sock)
        current = str(sock)
    if current == str(sock):
        from emulator.probe import wait

        return wait(readers, present=present, timeout=timeout, alive=alive)
    deadline = time.monotonic() + timeout
    env = {**os.environ, SOCKET_ENV: str(sock)}
    while True:
        slice_ = max(0.5, min(3.0, deadline - time.monotonic()))
        proc = subprocess.run(
            [sys.executable, "-m", "emulator.probe", "--present" if present else "--absent",
             "--timeout", str(slice_), *readers],
            env=env, capture_output=True, text=True, cwd=str(REPO_ROOT),
        )
        left = [line for line in proc.stdout.splitlines() if line]
        if proc.returncode not in (0, 1) or (proc.returncode == 1 and not left):
            raise EmulatorError(f"the PC/SC probe failed: {proc.stderr.strip()[-500:]}")
        if proc.returncode == 0:
            return []
        if time.monotonic() >= deadline:
            return left
        if alive is not None:
            alive()


def running_state(runtime_dir: Path) -> EmulatorState | None:
    """The recorded state when its pcscd is still running, else None."""
    state = load_state(runtime_dir)
    if state is None or not pid_alive(state.pcscd_pid, state.pcscd_start_time):
        return None
    return state


def start(runtime_dir: Path, cards: int, **options: Any) -> Emulator:
    """Start an emulator that outlives this call (stop it with `stop(runtime_dir)`)."""
    emulator = Emulator(runtime_dir, cards, **options)
    emulator.start()
    return emulator


def stop(runtime_dir: Path) -> bool:
    """Stop the emulator recorded in `runtime_dir`; False when none was recorded."""
    state = load_state(runtime_dir)
    if state is None:
        return False
    stop_state(runtime_dir, state)
    return True
