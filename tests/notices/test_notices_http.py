"""`notices serve`: a real uvicorn server on a free port, real databases."""

from __future__ import annotations

import json
import logging
import socket
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from notices_support import NOW, clock, issue_pair, line, notice, resident

from issuance.audit.log import AuditLog
from issuance.notices import cli
from issuance.notices.http import create_app
from issuance.notices.queries import notice_counts, notice_state
from issuance.notices.senders import SenderError, add_sender, list_senders
from issuance.registry.store import ResidentStore
from issuance.storage import Database
from pki.store import CertificateStore


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def server(db: Database, store_url: str) -> Iterator[str]:
    import uvicorn

    port = _free_port()
    app = create_app(db, store_url, clock=clock(NOW), max_body=64 * 1024)
    srv = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not srv.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        srv.should_exit = True
        thread.join(timeout=20)


def post(url: str, body: bytes, token: str | None) -> tuple[int, Any]:
    req = urllib.request.Request(url + "/notices", data=body, method="POST",
                                 headers={"Content-Type": "application/x-ndjson"})
    if token is not None:
        req.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def test_authenticated_sender_posts_notices(db: Database, store: CertificateStore,
                                            server: str,
                                            caplog: pytest.LogCaptureFixture) -> None:
    token = add_sender(db, "juki-gateway")
    assert list_senders(db)[0]["name"] == "juki-gateway"
    assert token not in json.dumps(list_senders(db))
    person = resident()
    ResidentStore(db).put(person)
    sign, auth = issue_pair(store, person.resident_code)
    body = "\n".join([line(notice("death", person.resident_code, nid="H-1")), "{bad"]).encode()

    with caplog.at_level(logging.WARNING, logger="mynacard.notices.http"):
        assert post(server, body, None)[0] == 401
        assert post(server, body, "mnn_not-a-real-token")[0] == 401
        assert post(server, body, "Basic abc")[0] == 401
        assert post(server, b"x" * (65 * 1024), token)[0] == 413
    assert notice_counts(db)["arrived"] == 0
    assert len([r for r in caplog.records if "refused" in r.getMessage()]) == 4
    assert all("mnn_" not in r.getMessage() for r in caplog.records)

    status, answer = post(server, body, token)
    assert status == 200
    assert (answer["sender"], answer["accepted"], answer["rejected"]) == ("juki-gateway", 1, 1)
    # accepted means stored: the row is there as soon as the 200 arrived
    assert notice_state(db, "juki", "H-1") in ("accepted", "applied")
    deadline = time.monotonic() + 20
    while notice_state(db, "juki", "H-1") != "applied":
        assert time.monotonic() < deadline, "the background processor never applied it"
        time.sleep(0.05)
    assert store.get(sign).status.value == store.get(auth).status.value == "revoked"
    assert post(server, body, token)[1]["duplicate"] == 1

    entries = AuditLog(db).entries()
    refused = [e for e in entries if e.outcome == "refused"]
    assert len(refused) == 4 and all(token not in json.dumps(e.to_json()) for e in entries)


def test_sender_names_and_cli(db_url: str, tmp_path: Path,
                              capsys: pytest.CaptureFixture[str], db: Database) -> None:
    with pytest.raises(SenderError):
        add_sender(db, "bad name")
    add_sender(db, "fuhyo-gw")
    with pytest.raises(SenderError):
        add_sender(db, "fuhyo-gw")
    import argparse

    parser = argparse.ArgumentParser()
    cli.register(parser.add_subparsers(), clock=clock(NOW))
    args = parser.parse_args(["notices", "sender", "add", "juki-gw", "--operator", "admin",
                              "--db", db_url])
    args.home = tmp_path
    assert args.func(args) == 0
    token = capsys.readouterr().out.strip()
    assert token.startswith("mnn_")
    args = parser.parse_args(["notices", "sender", "list", "--json", "--operator", "admin",
                              "--db", db_url])
    args.home = tmp_path
    assert args.func(args) == 0
    listed = capsys.readouterr().out
    assert "juki-gw" in listed and token not in listed
