"""User-authentication login (利用者証明) end to end: a card personalised with certificates
from the HSM-backed CA answers a relying party's challenge (`mynacard login-challenge`,
`mynacard card authenticate`, `mynacard verify --login`) with the OCSP responder for
revocation. A replayed, expired or foreign challenge is refused; after a death notice the
login is refused as revoked."""

from __future__ import annotations

import datetime as dt
import json
import os
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from leaks import shows
from publication_support import OPERATOR, load_resident, new_resident, notice_file, run
from test_e2e_death import _personalise

from card.sample import SAMPLE_PIN_VALUES, sample_identity

pytestmark = [pytest.mark.personalises, pytest.mark.slow]
AUTH_PIN_ENV = "LOGIN_T_AUTH_PIN"


def _answer(home: Path, reader: str, challenge: Path, out: Path) -> None:
    os.environ[AUTH_PIN_ENV] = SAMPLE_PIN_VALUES["jpki_auth"]
    try:
        res = run(home, "card", "authenticate", "--challenge", str(challenge), "--reader",
                  reader, "--pin-source", f"env:{AUTH_PIN_ENV}", "--out", str(out))
    finally:
        del os.environ[AUTH_PIN_ENV]
    assert res.returncode == 0, res.stderr
    assert not shows(res.stdout + res.stderr, SAMPLE_PIN_VALUES["jpki_auth"])


def _login(home: Path, response: Path, ocsp: str, *extra: str) -> tuple[int, dict[str, Any]]:
    res = run(home, "verify", "--login", str(response), "--ocsp", ocsp, "--json", *extra)
    assert res.returncode in (0, 1), res.stderr
    return res.returncode, json.loads(res.stdout)


def _challenge(home: Path, out: Path, *extra: str) -> Path:
    run(home, "login-challenge", "--rp", "shop", "--out", str(out), *extra, check=True)
    assert out.stat().st_mode & 0o077 == 0
    return out


def test_login_replay_expiry_foreign_and_death(blank_card: str, pub_home: Path, cli_ocsp: str,
                                               tmp_path: Path) -> None:
    profile = sample_identity()
    person = new_resident(name=profile.facts.name, address=profile.facts.address,
                          birth_date=profile.facts.birth_date)
    load_resident(pub_home, person)
    _, auth_serial = _personalise(blank_card, pub_home, person)

    ch = _challenge(pub_home, tmp_path / "ch.json")
    resp = tmp_path / "resp.json"
    _answer(pub_home, blank_card, ch, resp)
    rc, ok = _login(pub_home, resp, cli_ocsp, "--rp", "shop")
    assert rc == 0, ok
    assert ok["valid"] is True and ok["serial"] == format(auth_serial, "x")
    assert ok["profile"] == "user-authentication"
    assert ok["revocation"]["method"] == "ocsp" and ok["revocation"]["status"] == "good"

    # the same response again: the challenge is spent
    rc, replay = _login(pub_home, resp, cli_ocsp, "--rp", "shop")
    assert rc == 1 and replay["reasons"] == ["the challenge was already used"]

    # another relying party (its own key) does not take this party's challenge
    ch2 = _challenge(pub_home, tmp_path / "ch2.json")
    resp2 = tmp_path / "resp2.json"
    _answer(pub_home, blank_card, ch2, resp2)
    rc, foreign = _login(pub_home, resp2, cli_ocsp, "--rp", "shop",
                         "--state", str(tmp_path / "other-rp"))
    assert rc == 1
    assert foreign["reasons"] == ["the challenge is not one this relying party made"]
    # nor does the same key under another name
    rc, renamed = _login(pub_home, resp2, cli_ocsp, "--rp", "bank")
    assert rc == 1 and renamed["reasons"] == foreign["reasons"]

    # a response whose challenge was edited (a later expiry) loses its seal
    edited = json.loads(resp2.read_text())
    edited["challenge"]["expires"] = "2099-01-01T00:00:00+00:00"
    (tmp_path / "edited.json").write_text(json.dumps(edited))
    rc, forged = _login(pub_home, tmp_path / "edited.json", cli_ocsp, "--rp", "shop")
    assert rc == 1 and forged["reasons"] == foreign["reasons"]

    # expired: answered in time, checked too late
    ch3 = _challenge(pub_home, tmp_path / "ch3.json", "--ttl", "60")
    resp3 = tmp_path / "resp3.json"
    _answer(pub_home, blank_card, ch3, resp3)
    later = (dt.datetime.now(dt.UTC) + dt.timedelta(minutes=2)).isoformat()
    rc, expired = _login(pub_home, resp3, cli_ocsp, "--rp", "shop", "--at", later)
    assert rc == 1 and expired["reasons"][0].startswith("the challenge expired at")

    # the second challenge is still this party's and unspent: it logs in
    rc, second = _login(pub_home, resp2, cli_ocsp, "--rp", "shop")
    assert rc == 0, second

    death = {"id": f"death-login-{person.resident_code}", "source": "juki", "kind": "death",
             "resident_code": person.resident_code, "effective_date": date.today().isoformat()}
    run(pub_home, "notices", "ingest", str(notice_file(tmp_path / "death.jsonl", death)),
        *OPERATOR, "--json", check=True)
    ch4 = _challenge(pub_home, tmp_path / "ch4.json")
    resp4 = tmp_path / "resp4.json"
    _answer(pub_home, blank_card, ch4, resp4)
    rc, dead = _login(pub_home, resp4, cli_ocsp, "--rp", "shop")
    assert rc == 1
    assert dead["valid"] is False and dead["revocation"]["status"] == "revoked"
    assert any(r.startswith("revoked") for r in dead["reasons"])


def test_a_seal_of_any_text_is_refused_not_an_error(tmp_path: Path) -> None:
    """The seal comes from the response: a non-ASCII one is a refusal (constant-time
    comparison of bytes; `compare_digest` raises on such a str)."""
    import base64

    from cryptography import x509 as x509_
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.hazmat.primitives.serialization import Encoding
    from cryptography.x509.oid import NameOID

    from pki.login import LoginVerifier

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509_.Name([x509_.NameAttribute(NameOID.COMMON_NAME, "anyone")])
    now = dt.datetime.now(dt.UTC)
    cert = (x509_.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(1).not_valid_before(now)
            .not_valid_after(now + dt.timedelta(days=1)).sign(key, hashes.SHA256()))
    verifier = LoginVerifier(tmp_path / "rp")
    challenge = dict(verifier.challenge(), seal="é")
    result = verifier.verify({"challenge": challenge,
                              "certificate": base64.b64encode(cert.public_bytes(Encoding.DER)
                                                              ).decode(),
                              "signature": base64.b64encode(b"x" * 256).decode()}, roots=[])
    assert not result.valid
    assert result.reasons == ("the challenge is not one this relying party made",)
