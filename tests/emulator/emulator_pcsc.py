"""Raw PC/SC access for the emulator tests: exact status words, resets, no GET RESPONSE."""

from __future__ import annotations

from types import TracebackType

from smartcard import scard

from card.apdu import command


class RawCard:
    """A shared T=1 connection through the low-level scard API (a context manager)."""

    def __init__(self, reader: str) -> None:
        self.reader = reader
        rc, self.ctx = scard.SCardEstablishContext(scard.SCARD_SCOPE_USER)
        assert rc == scard.SCARD_S_SUCCESS, scard.SCardGetErrorMessage(rc)
        rc, self.hcard, self.protocol = scard.SCardConnect(
            self.ctx, reader, scard.SCARD_SHARE_SHARED, scard.SCARD_PROTOCOL_T1
        )
        if rc != scard.SCARD_S_SUCCESS:
            scard.SCardReleaseContext(self.ctx)
            raise ConnectionError(f"{reader}: {scard.SCardGetErrorMessage(rc)}")

    def __enter__(self) -> RawCard:
        return self

    def __exit__(self, t: type[BaseException] | None, e: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def close(self) -> None:
        scard.SCardDisconnect(self.hcard, scard.SCARD_LEAVE_CARD)
        scard.SCardReleaseContext(self.ctx)

    def atr(self) -> bytes:
        rc, _reader, _state, _proto, atr = scard.SCardStatus(self.hcard)
        assert rc == scard.SCARD_S_SUCCESS, scard.SCardGetErrorMessage(rc)
        return bytes(atr)

    def send(self, apdu: bytes) -> tuple[bytes, int]:
        rc, resp = scard.SCardTransmit(self.hcard, self.protocol, list(apdu))
        if rc != scard.SCARD_S_SUCCESS:
            raise ConnectionError(f"{self.reader}: {scard.SCardGetErrorMessage(rc)}")
        assert len(resp) >= 2, f"response without a status word to {apdu.hex()}"
        return bytes(resp[:-2]), (resp[-2] << 8) | resp[-1]

    def sw(self, apdu: bytes) -> int:
        return self.send(apdu)[1]

    def reconnect(self, disposition: int) -> None:
        rc, self.protocol = scard.SCardReconnect(
            self.hcard, scard.SCARD_SHARE_SHARED, scard.SCARD_PROTOCOL_T1, disposition
        )
        assert rc == scard.SCARD_S_SUCCESS, scard.SCardGetErrorMessage(rc)


def select_aid(aid: bytes) -> bytes:
    return command(0x00, 0xA4, 0x04, 0x0C, aid)


def select_ef(fid: int) -> bytes:
    return command(0x00, 0xA4, 0x02, 0x0C, fid.to_bytes(2, "big"))


def get_data(tag: int) -> bytes:
    return command(0x00, 0xCA, tag >> 8, tag & 0xFF, le=256)
