"""The emulator's card ports (vpcd inside pcscd) listen on loopback only.

Only addresses of this machine are ever connected to: its own non-loopback addresses
(or, when it has none, one made for the test on a dummy interface in TEST-NET-1).
"""

from __future__ import annotations

import dataclasses
import ipaddress
import json
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from card.transport import reader_has_card
from emulator import launcher
from emulator.components import Components
from emulator.errors import EmulatorError
from emulator.launcher import Emulator
from emulator.processes import listening_sockets
from emulator.state import STATE_FILE

DUMMY_LINK = "mynacard-t0"
DUMMY_ADDRESS = "192.0.2.77"  # TEST-NET-1, only ever on this machine's dummy link


def _own_addresses() -> list[str]:
    """This machine's non-loopback IPv4 addresses (`ip -j addr`)."""
    out = subprocess.run(["ip", "-j", "-4", "addr"], capture_output=True, text=True,
                         check=True).stdout
    found = []
    for link in json.loads(out):
        for info in link.get("addr_info", []):
            if info.get("family") == "inet" and \
                    not ipaddress.ip_address(info["local"]).is_loopback:
                found.append(info["local"])
    return found


@pytest.fixture(scope="module")
def own_addresses() -> Iterator[list[str]]:
    found = _own_addresses()
    if found:
        yield found
        return
    # None: give this machine one on a dummy link (never routed anywhere else).
    def ip(*args: str) -> None:
        subprocess.run(["ip", *args], check=True, capture_output=True)

    ip("link", "add", DUMMY_LINK, "type", "dummy")
    try:
        ip("addr", "add", f"{DUMMY_ADDRESS}/32", "dev", DUMMY_LINK)
        ip("link", "set", DUMMY_LINK, "up")
        yield [DUMMY_ADDRESS]
    finally:
        subprocess.run(["ip", "link", "del", DUMMY_LINK], capture_output=True)


def _ss_listeners() -> dict[int, str]:
    """Port -> local address of every listening TCP socket, as `ss -ltn` shows them."""
    out = subprocess.run(["ss", "-ltnH"], capture_output=True, text=True, check=True).stdout
    found = {}
    for line in out.splitlines():
        local = line.split()[3]
        address, _, port = local.rpartition(":")
        found[int(port)] = address
    return found


def _card_ports(emulator: Emulator) -> list[int]:
    state = emulator.state
    assert state is not None
    entries = (len(state.cards) + 1) // 2
    return [state.base_port + i for i in range(2 * entries)]  # both slots of every entry


def test_pcscd_listens_only_on_loopback(mynacard_emulator: Emulator) -> None:
    state = mynacard_emulator.state
    assert state is not None
    listening = listening_sockets(state.pcscd_pid)  # from /proc/<pid>/net/tcp{,6}
    ports = _card_ports(mynacard_emulator)
    assert sorted(p for _, p in listening) == ports, "vpcd's card ports are pcscd's listeners"
    assert {a for a, _ in listening} == {"127.0.0.1"}
    ss = _ss_listeners()
    for port in ports:
        assert ss.get(port) == "127.0.0.1", f"ss -ltn shows port {port} on {ss.get(port)}"


def test_card_ports_refuse_connections_to_other_addresses(
    mynacard_emulator: Emulator, own_addresses: list[str]
) -> None:
    for address in own_addresses:
        for port in _card_ports(mynacard_emulator):
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
                s.settimeout(5)
                with pytest.raises(ConnectionRefusedError):
                    s.connect((address, port))
    # the cards are still in their readers, served over loopback
    for reader in mynacard_emulator.readers:
        assert reader_has_card(reader)


@pytest.fixture
def short_dir() -> Iterator[Path]:
    d = Path(tempfile.mkdtemp(prefix="mynacard-t-"))
    yield d
    shutil.rmtree(d, ignore_errors=True)


def test_launcher_refuses_a_pcscd_that_listens_beyond_loopback(
    mynacard_emulator: Emulator, short_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Without the loopback bind library vpcd binds every interface: the launcher must
    # notice and stop everything instead of running exposed.
    real = launcher.find_components

    def without_shim(bridge_jar: Path | None = None) -> Components:
        return dataclasses.replace(real(bridge_jar), loopback_shim=short_dir / "none.so")

    monkeypatch.setattr(launcher, "find_components", without_shim)
    emulator = Emulator(short_dir, 1, linger=False)
    with pytest.raises(EmulatorError, match="listens beyond loopback on 0.0.0.0:"):
        emulator.start()
    assert emulator.state is None
    assert not (short_dir / STATE_FILE).exists()  # stopped and cleaned up
