"""`mynacard rp add|list|remove|subscribe|unsubscribe` against a real store database."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest

from pki.relying_parties.cli import register
from pki.relying_parties.registry import RelyingPartyRegistry, hash_token
from pki.store import open_readonly_store


def rp(home: Path, *argv: str) -> int:
    parser = argparse.ArgumentParser(prog="mynacard")
    parser.add_argument("--home")
    register(parser.add_subparsers())
    args = parser.parse_args(["--home", str(home), "rp", *argv])
    return int(args.func(args))


def test_registry_lifecycle(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert rp(tmp_path, "add", "city-hall", "--kind", "利用者証明検証者", "--json") == 0
    added = json.loads(capsys.readouterr().out)
    assert added["kind"] == "user_verifier" and added["token"].startswith("rp_")
    assert added["webhook_secret"] is None  # no webhook, no secret
    assert rp(tmp_path, "add", "city-hall", "--kind", "platform-operator") == 1
    assert "exists" in capsys.readouterr().err
    assert rp(tmp_path, "add", "x", "--kind", "nobody") == 1
    assert rp(tmp_path, "add", "y", "--kind", "platform", "--webhook", "ftp://h/") == 1
    capsys.readouterr()

    assert rp(tmp_path, "subscribe", "city-hall", "--serial", "0A:BC", "abc", "1f") == 0
    assert "2 new" in capsys.readouterr().out
    assert rp(tmp_path, "subscribe", "nobody", "--serial", "1") == 1
    assert rp(tmp_path, "subscribe", "city-hall", "--serial", "xyz") == 1
    capsys.readouterr()
    assert rp(tmp_path, "list", "--json") == 0
    [party] = json.loads(capsys.readouterr().out)
    assert party["name"] == "city-hall" and party["subscriptions"] == 2
    assert rp(tmp_path, "unsubscribe", "city-hall", "--serial", "abc") == 0

    # only the token's hash is stored; the read-only store still opens (own tables)
    with RelyingPartyRegistry(tmp_path / "store.sqlite") as reg:
        assert reg.subscriptions("city-hall") == ["1f"]
        row = reg.db.query_one("SELECT token_hash FROM relying_parties")
    assert row[0] == hash_token(added["token"])
    raw = (tmp_path / "store.sqlite").read_bytes()
    assert added["token"].encode() not in raw
    open_readonly_store(tmp_path / "store.sqlite").close()

    assert rp(tmp_path, "remove", "city-hall") == 0
    assert rp(tmp_path, "remove", "city-hall") == 1
    capsys.readouterr()
    assert rp(tmp_path, "list", "--json") == 0
    assert json.loads(capsys.readouterr().out) == []
