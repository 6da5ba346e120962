"""A second PC/SC process for the session tests (run as `python session_worker.py MODE READER`).

Library modes go through card.transport (sessions); raw modes talk pyscard's scard API
directly, as a program that ignores our library would: no transaction, no reset.
Each prints one result line; `--hold S` prints `holding` and keeps the card S seconds;
`--die` SIGKILLs the process before it closes anything.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import time

from smartcard import scard

from card import contract
from card.issuer import HostIssuerAuthenticator, IssuerClient
from card.jpki import JpkiClient, Key, digest_info
from card.transport import PcscTransport

SIGN_PASSWORD = "ABC123"  # the sample card's published signing password
DIGEST_INFO = digest_info("sha256", bytes(32))
SELECT_JPKI = bytes.fromhex("00A4040C0A") + contract.AID_JPKI
SELECT_SIGN_KEY = bytes.fromhex("00A4020C02001A")
SELECT_SIGN_PIN = bytes.fromhex("00A4020C02001B")
SIGN = bytes.fromhex("802A0080") + bytes((len(DIGEST_INFO),)) + DIGEST_INFO + b"\x00"
VERIFY_SIGN = bytes.fromhex("00200080") + bytes((len(SIGN_PASSWORD),)) + SIGN_PASSWORD.encode()
SELECT_CARD_MANAGER = bytes.fromhex("00A4040C") + bytes((len(contract.AID_CARD_MANAGER),)) \
    + contract.AID_CARD_MANAGER
PUT_MUNICIPALITY = bytes.fromhex("00DA00F005") + b"13101"


def _finish(args: argparse.Namespace) -> None:
    if args.hold:
        print("holding", flush=True)
        time.sleep(args.hold)
    if args.die:
        os.kill(os.getpid(), signal.SIGKILL)


def library_sign(args: argparse.Namespace) -> None:
    with PcscTransport(args.reader) as t:
        jpki = JpkiClient(t)
        jpki.verify_pin(Key.SIGN, SIGN_PASSWORD)
        signature = jpki.sign(Key.SIGN, DIGEST_INFO)
        print(f"signed {len(signature)}", flush=True)
        _finish(args)


def library_issuer(args: argparse.Namespace) -> None:
    with PcscTransport(args.reader) as t:
        issuer = IssuerClient(t)
        issuer.authenticate(HostIssuerAuthenticator(contract.TEST_ISSUER_MASTER_KEY))
        issuer.put_data(contract.Tag.MUNICIPALITY_CODE, b"13101")
        print("authenticated", flush=True)
        _finish(args)


class Raw:
    def __init__(self, reader: str) -> None:
        rc, self.ctx = scard.SCardEstablishContext(scard.SCARD_SCOPE_USER)
        assert rc == scard.SCARD_S_SUCCESS
        rc, self.card, self.protocol = scard.SCardConnect(
            self.ctx, reader, scard.SCARD_SHARE_SHARED, scard.SCARD_PROTOCOL_T1)
        assert rc == scard.SCARD_S_SUCCESS, scard.SCardGetErrorMessage(rc)

    def send(self, apdu: bytes) -> str:
        """`SW NNNN DATA-LENGTH`, or `rc HEX` when PC/SC refused."""
        rc, r = scard.SCardTransmit(self.card, self.protocol, list(apdu))
        if rc == scard.SCARD_W_RESET_CARD:  # reset by the session's end: rejoin, resend
            rc, self.protocol = scard.SCardReconnect(
                self.card, scard.SCARD_SHARE_SHARED, scard.SCARD_PROTOCOL_T1,
                scard.SCARD_LEAVE_CARD)
            rc, r = scard.SCardTransmit(self.card, self.protocol, list(apdu))
        if rc != scard.SCARD_S_SUCCESS:
            return f"rc {rc & 0xFFFFFFFF:08X}"
        return f"SW {r[-2]:02X}{r[-1]:02X} {len(r) - 2}"

    def leave(self) -> None:
        scard.SCardDisconnect(self.card, scard.SCARD_LEAVE_CARD)


def raw_verify(args: argparse.Namespace) -> None:
    """VERIFY the signing password and leave the card as it is (no session, no reset)."""
    raw = Raw(args.reader)
    for apdu in (SELECT_JPKI, SELECT_SIGN_PIN, VERIFY_SIGN):
        result = raw.send(apdu)
        assert result.startswith("SW 9000"), result
    print("verified", flush=True)
    _finish(args)
    raw.leave()


def raw_idle(args: argparse.Namespace) -> None:
    """Keep a shared connection open and send nothing (as middleware on a desktop does):
    pcscd then never powers the card down for being unused."""
    raw = Raw(args.reader)
    print("connected", flush=True)
    _finish(args)
    raw.leave()


def raw_sign(args: argparse.Namespace) -> None:
    """Try `80 2A` without verifying anything, twice: first on whatever application the
    card has selected (as another program left it), then after selecting JPKI.
    Prints both answers, `first | second`."""
    raw = Raw(args.reader)
    raw.send(SELECT_SIGN_KEY)
    first = raw.send(SIGN)
    raw.send(SELECT_JPKI)
    raw.send(SELECT_SIGN_KEY)
    print(f"{first} | {raw.send(SIGN)}", flush=True)
    raw.leave()


def raw_issuer(args: argparse.Namespace) -> None:
    """PUT DATA on the card manager without issuer authentication, first as the card
    was left, then after selecting the card manager. Prints both answers."""
    raw = Raw(args.reader)
    first = raw.send(PUT_MUNICIPALITY)
    raw.send(SELECT_CARD_MANAGER)
    print(f"{first} | {raw.send(PUT_MUNICIPALITY)}", flush=True)
    raw.leave()


MODES = {"library-sign": library_sign, "library-issuer": library_issuer,
         "raw-verify": raw_verify, "raw-sign": raw_sign, "raw-issuer": raw_issuer,
         "raw-idle": raw_idle}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("mode", choices=sorted(MODES))
    parser.add_argument("reader")
    parser.add_argument("--hold", type=float, default=0.0)
    parser.add_argument("--die", action="store_true")
    args = parser.parse_args()
    MODES[args.mode](args)


if __name__ == "__main__":
    sys.exit(main())
