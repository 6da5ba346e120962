"""The Java bridge on its own, speaking the vpcd protocol to a fake reader (no pcscd)."""

from __future__ import annotations

import os
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from card import contract
from emulator.components import find_components
from emulator.factory_keys import TEST_MUNICIPAL_MASTER_KEY, derive_card_key, random_serial

POWER_OFF, POWER_ON, RESET, GET_ATR = b"\x00", b"\x01", b"\x02", b"\x04"


def _config(path: Path, serial: str, port: int, timeout: int = 15) -> Path:
    body = (
        f"serial={serial}\n"
        f"card_key={derive_card_key(contract.TEST_ISSUER_MASTER_KEY, serial).hex()}\n"
        f"card_auth_key={derive_card_key(contract.TEST_ISSUER_MASTER_KEY, serial, 0x81).hex()}\n"
        f"municipal_key={derive_card_key(TEST_MUNICIPAL_MASTER_KEY, serial).hex()}\n"
        f"host=127.0.0.1\nport={port}\nconnect_timeout_seconds={timeout}\n"
    )
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(body)
    return path


def _bridge(config: Path) -> subprocess.Popen[str]:
    comps = find_components()
    return subprocess.Popen([str(comps.java), "-jar", str(comps.bridge_jar), str(config)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


class FakeReader:
    """The vpcd side: listens, accepts the card, frames messages."""

    def __init__(self) -> None:
        self.server = socket.create_server(("127.0.0.1", 0))
        self.server.settimeout(20)
        self.port = self.server.getsockname()[1]
        self.conn: socket.socket | None = None

    def accept(self) -> None:
        self.conn, _ = self.server.accept()
        self.conn.settimeout(10)

    def send(self, payload: bytes, *, dribble: bool = False) -> None:
        assert self.conn is not None
        frame = len(payload).to_bytes(2, "big") + payload
        if not dribble:
            self.conn.sendall(frame)
            return
        for i in range(len(frame)):  # one byte at a time: the card must read fully
            self.conn.sendall(frame[i : i + 1])
            time.sleep(0.002)

    def recv(self) -> bytes:
        n = int.from_bytes(self._exactly(2), "big")
        return self._exactly(n)

    def _exactly(self, n: int) -> bytes:
        assert self.conn is not None
        buf = b""
        while len(buf) < n:
            chunk = self.conn.recv(n - len(buf))
            if not chunk:
                raise ConnectionError("card closed the connection")
            buf += chunk
        return buf

    def apdu(self, apdu: bytes, **kw: bool) -> tuple[bytes, int]:
        self.send(apdu, **kw)
        r = self.recv()
        assert len(r) >= 2
        return r[:-2], int.from_bytes(r[-2:], "big")

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
        self.server.close()


@pytest.fixture
def reader() -> Iterator[FakeReader]:
    r = FakeReader()
    yield r
    r.close()


def test_bridge_speaks_vpcd_and_exits_when_the_reader_closes(
    reader: FakeReader, tmp_path: Path
) -> None:
    serial = random_serial()
    proc = _bridge(_config(tmp_path / "card.properties", serial, reader.port))
    try:
        reader.accept()
        reader.send(GET_ATR)
        assert reader.recv() == contract.ATR
        reader.send(POWER_ON)
        data, sw = reader.apdu(bytes.fromhex("00CA004500"))
        assert (data, sw) == (serial.encode(), 0x9000)
        data, sw = reader.apdu(bytes.fromhex("00CA004500"), dribble=True)  # short reads
        assert (data, sw) == (serial.encode(), 0x9000)
        for malformed in ("00CA", "00CA00", "00A4040C05D392", "00B0000000FF"):
            assert reader.apdu(bytes.fromhex(malformed))[1] == 0x6700, malformed
        big = bytes.fromhex("00E0048CFF") + bytes(255) + b"\x00"  # 261 bytes
        assert reader.apdu(big)[1] not in (0x6F00,)
        # reset: card manager selected again
        assert reader.apdu(bytes.fromhex("00A4040C0AD392F000260100000001"))[1] == 0x9000
        reader.send(RESET)
        assert reader.apdu(bytes.fromhex("00CA004500"))[1] == 0x9000
        reader.send(POWER_OFF)
        reader.send(POWER_ON)
        assert reader.apdu(bytes.fromhex("00CA004500"))[1] == 0x9000
        reader.send(GET_ATR)
        assert reader.recv() == contract.ATR
        reader.conn.close()  # type: ignore[union-attr]
        assert proc.wait(timeout=10) == 0
        out = proc.stdout.read() if proc.stdout else ""
        assert "exiting" in out
        key = derive_card_key(contract.TEST_ISSUER_MASTER_KEY, serial).hex()
        assert key not in out.lower()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_bridge_gives_up_when_no_reader_listens(tmp_path: Path) -> None:
    with socket.create_server(("127.0.0.1", 0)) as s:
        port = s.getsockname()[1]  # closed again: nothing listens there
    proc = _bridge(_config(tmp_path / "card.properties", random_serial(), port, timeout=1))
    assert proc.wait(timeout=20) == 3
    assert "no vpcd reader" in (proc.stdout.read() if proc.stdout else "")


def test_bridge_refuses_a_bad_config(tmp_path: Path) -> None:
    path = tmp_path / "card.properties"
    path.write_text("serial=123\nport=1\ncard_key=zz\nmunicipal_key=00\n")
    proc = _bridge(path)
    assert proc.wait(timeout=20) == 2
    out = proc.stdout.read() if proc.stdout else ""
    assert "bad configuration" in out and "zz" not in out
