"""Raw HTTP exchanges the standard clients cannot make on purpose."""

from __future__ import annotations

import socket
import time


def answer_to_a_body_sent_late(port: int, head: bytes, body: bytes) -> tuple[bool, bytes]:
    """Send `head`, wait until the server has answered and (without a lingering close)
    closed, then send `body` in two halves a moment apart, as a client that writes its
    whole request before reading does, and read the answer to its end. Returns whether
    the whole body could be sent, and the answer.

    A server that closes while input is unread makes the kernel answer the late body with
    a TCP reset: the client's next write fails (EPIPE/ECONNRESET) and a client such as
    http.client gives up before reading the answer. One that lingers reads and drops it."""
    sent = True
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(head)
        time.sleep(0.5)
        half = len(body) // 2
        for part in (body[:half], body[half:]):
            try:
                s.sendall(part)
            except OSError:
                sent = False
                break
            time.sleep(0.3)
        data = b""
        try:
            while chunk := s.recv(65536):
                data += chunk
        except ConnectionResetError:
            pass
        return sent, data
