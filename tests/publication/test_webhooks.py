"""Revocation pushes: a real receiver on 127.0.0.1 that fails the first attempts, real
certificates from the HSM-backed CA, a real change-of-facts notice through the CLI."""

from __future__ import annotations

import json
import time
from pathlib import Path

from publication_support import (
    OPERATOR,
    Receiver,
    issue,
    load_resident,
    new_resident,
    notice_file,
    run,
    run_rp,
    today_in_japan,
)

from pki.relying_parties.registry import RelyingPartyRegistry
from pki.relying_parties.webhooks import (
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    WebhookDispatcher,
    verify_signature,
)


def _push_until_quiet(db: Path, *, seconds: float = 5.0) -> WebhookDispatcher:
    dispatcher = WebhookDispatcher(db, backoff=0.05, max_attempts=4)
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        dispatcher.run_once()
        if dispatcher.next_due_in() is None:
            break
        time.sleep(0.05)
    return dispatcher


def test_change_of_facts_push_with_retries_signature_and_successor(
        pub_home: Path, receiver: Receiver, tmp_path: Path) -> None:
    person = new_resident()
    load_resident(pub_home, person)
    sign, _ = issue(pub_home, person.resident_code, "signing")
    auth, _ = issue(pub_home, person.resident_code, "user-authentication")
    db = pub_home / "store.sqlite"
    res = run_rp(pub_home, "add", "bank-a", "--kind", "signature-verifier", "--webhook",
              receiver.url, "--json", check=True)
    secret = json.loads(res.stdout)["webhook_secret"]
    assert secret.startswith("whsec_")
    run_rp(pub_home, "subscribe", "bank-a", "--serial", sign, auth, check=True)
    listed = json.loads(run_rp(pub_home, "list", "--json", check=True).stdout)
    assert {"name": "bank-a", "subscriptions": 2}.items() <= \
        next(p for p in listed if p["name"] == "bank-a").items()
    assert secret not in json.dumps(listed)

    # nothing revoked yet: nothing to push
    assert json.loads(run_rp(pub_home, "push", "--json", check=True).stdout)["enqueued"] == 0

    moved = {"id": f"move-{person.resident_code}", "source": "juki", "kind": "address_change",
             "resident_code": person.resident_code, "effective_date": today_in_japan(),
             "facts": {"address": "東京都千代田区千代田1-1"}}
    run(pub_home, "notices", "ingest", str(notice_file(tmp_path / "n.jsonl", moved)),
        *OPERATOR, check=True)

    _push_until_quiet(db).close()
    assert [c[0] for c in receiver.calls] == [500, 500, 204]
    bodies = {c[2] for c in receiver.calls}
    assert len(bodies) == 1  # the same event each time (a retry, not a new event)
    for _, headers, body in receiver.calls:
        assert verify_signature(secret, body, headers)
        assert not verify_signature(secret, body + b" ", headers)
        assert not verify_signature("whsec_wrong", body, headers)
        # any text in the header is a refusal, never an exception
        assert not verify_signature(secret, body, dict(headers, **{SIGNATURE_HEADER: "sha256=é"}))
        old = dict(headers, **{TIMESTAMP_HEADER: str(int(time.time()) - 3600)})
        assert not verify_signature(secret, body, old)  # a replay, an hour later
        assert headers[SIGNATURE_HEADER].startswith("sha256=")
    event = json.loads(receiver.calls[0][2])
    assert event["serial"] == sign and event["status"] == "revoked"
    assert event["reason"] == "affiliationChanged"
    assert event["cause"] == f"notice:juki:{moved['id']}"
    assert event["successor_serial"] is None and event["revoked_at"]
    assert len(event["event_id"]) == 32
    # the user-authentication certificate is kept after a change of facts: no push for it

    # the holder gets a new signing certificate: the new-old link is pushed
    new_sign, _ = issue(pub_home, person.resident_code, "signing", replaces=sign)
    _push_until_quiet(db).close()
    linked = json.loads(receiver.calls[-1][2])
    assert linked["serial"] == sign and linked["successor_serial"] == new_sign
    assert linked["event_id"] != event["event_id"]
    assert verify_signature(secret, receiver.calls[-1][2], receiver.calls[-1][1])

    # delivered state is durable: another run sends nothing again
    before = len(receiver.calls)
    out = json.loads(run_rp(pub_home, "push", "--json", check=True).stdout)
    assert out == {"enqueued": 0, "delivered": 0, "retried": 0, "failed": 0}
    assert len(receiver.calls) == before
    with WebhookDispatcher(db) as d:
        states = {(x["serial"], x["payload"]["successor_serial"]): x["state"]
                  for x in d.deliveries("bank-a")}
    assert states == {(sign, None): "delivered", (sign, new_sign): "delivered"}

    run_rp(pub_home, "unsubscribe", "bank-a", "--serial", sign, auth, check=True)
    run_rp(pub_home, "remove", "bank-a", check=True)


def test_bounded_attempts_then_failed(pub_home: Path, tmp_path: Path) -> None:
    down = Receiver(fail_first=10**6)
    try:
        person = new_resident()
        load_resident(pub_home, person)
        sign, _ = issue(pub_home, person.resident_code, "signing")
        db = pub_home / "store.sqlite"
        with RelyingPartyRegistry(db) as reg:
            reg.add("bank-down", kind="platform_operator", webhook_url=down.url)
            reg.subscribe("bank-down", [sign])
        death = {"id": f"death-{person.resident_code}", "source": "juki", "kind": "death",
                 "resident_code": person.resident_code, "effective_date": "2026-06-01"}
        run(pub_home, "notices", "ingest", str(notice_file(tmp_path / "d.jsonl", death)),
            *OPERATOR, check=True)
        _push_until_quiet(db).close()
        assert len(down.calls) == 4  # max_attempts
        with WebhookDispatcher(db) as d:
            [delivery] = d.deliveries("bank-down")
        assert delivery["state"] == "failed" and delivery["attempts"] == 4
        assert delivery["last_error"] == "HTTP 500"
        assert delivery["payload"]["reason"] == "cessationOfOperation"
        with RelyingPartyRegistry(db) as reg:
            reg.remove("bank-down")
    finally:
        down.close()
