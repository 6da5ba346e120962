"""RSA-SHA256 PKCS#1 v1.5 signatures made by a process of its own, pipelined.

Why a process: python-pkcs11 lets go of the GIL inside each PKCS#11 call and must take it
back after each. A signing thread beside a thread that runs Python (building and recording
certificates) waits for it every time: on SoftHSM2, 87 signatures/s beside such a thread
against 494/s alone (`bench/pki_ca.py`). A process has a GIL of its own, and requests
queued ahead keep it signing back to back, whatever this process is doing.

    with SigningProcess(km.uri, pin_source) as signing:
        signing.submit("jpki-auth-root", tbs)   # as many as `window` ahead
        signature = signing.result()            # in the order submitted

The PIN goes to the child over its private pipe, never in its command line or
environment. The child ends when told to, or when this process goes away (the pipe
closes).
"""

from __future__ import annotations

import multiprocessing
from multiprocessing.connection import Connection
from types import TracebackType
from typing import Any

from hsm.errors import HsmError
from hsm.pin_source import PinSource

START_SECONDS = 60.0  # the child's start: a new interpreter, imports, the token log-in


class SigningProcess:
    """One child process holding its own HSM session and signing what it is sent."""

    def __init__(self, uri: str, pin_source: PinSource) -> None:
        context = multiprocessing.get_context("spawn")  # no fork of this process's sessions
        self._conn, child = context.Pipe()
        self._process = context.Process(target=_serve, args=(child, uri), daemon=True,
                                        name="mynacard-hsm-signing")
        self._outstanding = 0
        self._process.start()
        child.close()
        try:
            self._conn.send(pin_source.read())
            if not self._conn.poll(START_SECONDS):
                raise HsmError("the signing process did not start in time")
            kind, detail = self._receive()
        except BaseException:
            self.close()
            raise
        if kind != "ready":
            self.close()
            raise HsmError(f"the signing process could not open the HSM: {detail}")

    def __enter__(self) -> SigningProcess:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    @property
    def pid(self) -> int | None:
        return self._process.pid

    @property
    def outstanding(self) -> int:
        """Requests submitted whose result has not been taken yet."""
        return self._outstanding

    def submit(self, label: str, data: bytes) -> None:
        """Queue `data` to be signed (SHA-256, PKCS#1 v1.5) with the key `label`."""
        if not self._process.is_alive():
            raise HsmError("the signing process has ended")
        try:
            self._conn.send((label, bytes(data)))
        except (OSError, ValueError) as exc:
            raise HsmError(f"the signing process has ended ({exc})") from None
        self._outstanding += 1

    def result(self) -> bytes:
        """The signature of the oldest request whose result is not taken yet."""
        if self._outstanding == 0:
            raise HsmError("no signature was asked for")
        self._outstanding -= 1
        kind, detail = self._receive()
        if kind != "signed" or not isinstance(detail, bytes):
            raise HsmError(f"the signing process could not sign: {detail}")
        return detail

    def drain(self) -> None:
        """Take and drop every result still owed (after a failure midway), so the next
        `result` answers the next `submit`."""
        while self._outstanding:  # a child that ended owes nothing (`_receive`)
            try:
                self.result()
            except HsmError:
                pass

    def close(self) -> None:
        """End the child (it closes its session) and wait for it."""
        if self._process.is_alive():
            try:
                self._conn.send(None)
            except (OSError, ValueError):
                pass
            self._process.join(5)
            if self._process.is_alive():
                self._process.kill()
                self._process.join()
        self._conn.close()
        self._outstanding = 0

    def _receive(self) -> tuple[str, Any]:
        try:
            message = self._conn.recv()
        except (EOFError, OSError):
            self._outstanding = 0
            raise HsmError("the signing process has ended") from None
        if not (isinstance(message, tuple) and len(message) == 2):
            raise HsmError("the signing process answered something else")
        return message[0], message[1]


def _serve(conn: Connection, uri: str) -> None:
    """The child: log in with the PIN sent first, then sign each request in order."""
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import padding, rsa

    from hsm.keys import open_key_manager

    try:
        pin = conn.recv()
        km = open_key_manager(uri, pin_source=PinSource.from_value(pin))
    except (EOFError, OSError):
        return
    except HsmError as exc:
        conn.send(("failed", str(exc)))
        return
    del pin
    signers: dict[str, Any] = {}
    with km:
        conn.send(("ready", None))
        while True:
            try:
                request = conn.recv()
            except (EOFError, OSError):
                return
            if request is None:
                return
            label, data = request
            try:
                signer = signers.get(label)
                if signer is None:
                    signer = signers[label] = km.signer(label)
                if not isinstance(signer, rsa.RSAPrivateKey):
                    raise HsmError(f"key {label!r} is not an RSA key")
                conn.send(("signed", signer.sign(data, padding.PKCS1v15(), hashes.SHA256())))
            except HsmError as exc:
                conn.send(("failed", str(exc)))
