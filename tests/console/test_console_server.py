"""The console server without a browser: TLS (Secure cookies, HSTS), the serve command's
refusals, the PIN pad hand-off, labels, the statistics CSV."""

from __future__ import annotations

import http.cookiejar
import os
import re
import socket
import ssl
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from conftest import PASSWORDS, ConsoleServer
from tls_certs import TestCa

from issuance.cli.main import main
from issuance.console.i18n import LABELS, translator
from issuance.console.jobs import Pad, PadTimeout
from issuance.console.queries import statistics_csv
from issuance.personalisation.pins import PinKind


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_over_tls_the_cookies_are_secure_and_plain_http_is_not_served(
        console_server: ConsoleServer, tmp_path: Path) -> None:
    ca = TestCa(tmp_path / "ca", "console test CA")
    server_cert = ca.issue("127.0.0.1", server=True)
    port = _port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "issuance.cli.main", "--home", str(console_server.home),
         "console", "serve", "--listen", f"127.0.0.1:{port}", "--operator", "starter",
         "--tls-cert", str(server_cert.cert), "--tls-key", str(server_cert.key)],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env={**os.environ})
    try:
        context = ca.client_context()
        deadline = time.monotonic() + 60
        while True:
            try:
                answer = urllib.request.urlopen(f"https://127.0.0.1:{port}/login",
                                                context=context, timeout=2)
                break
            except (OSError, ssl.SSLError):
                assert proc.poll() is None and time.monotonic() < deadline, \
                    proc.stderr.read() if proc.stderr else ""
                time.sleep(0.3)
        cookie = answer.headers["set-cookie"]
        assert "console_pre=" in cookie
        for flag in ("Secure", "HttpOnly", "SameSite=strict"):
            assert flag.lower() in cookie.lower(), (flag, cookie)
        assert answer.headers["strict-transport-security"]
        assert "frame-ancestors 'none'" in answer.headers["content-security-policy"]
        with pytest.raises((urllib.error.URLError, ConnectionError, OSError)):
            urllib.request.urlopen(f"http://127.0.0.1:{port}/login", timeout=5).read()
    finally:
        proc.terminate()
        proc.wait(timeout=15)


@pytest.mark.parametrize("argv, message", [
    (["--listen", "localhost"], "HOST:PORT"),
    (["--tls-cert", "/nonexistent.pem"], "go together"),
])
def test_serve_refuses_unusable_options_with_exit_2(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], argv: list[str],
        message: str) -> None:
    home = tmp_path / "home"
    home.mkdir()
    assert main(["--home", str(home), "console", "serve", "--operator", "o", *argv]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def _asking_for_auth() -> tuple[Pad, threading.Thread, list[str]]:
    """A pad the action's thread has asked for the user-authentication PIN; what the
    action gets is appended to the list."""
    pad = Pad("t")
    got: list[str] = []
    worker = threading.Thread(target=lambda: got.append(pad.supply(PinKind.AUTH, "set")))
    worker.start()
    while pad.asking is None:
        time.sleep(0.01)
    return pad, worker, got


def test_the_pad_takes_a_new_pin_only_twice_alike_and_well_formed() -> None:
    pad, worker, got = _asking_for_auth()
    assert pad.deliver(PinKind.SIGN, "ABC123", "ABC123") == "not asked"
    assert pad.deliver(PinKind.AUTH, "1234", "1235") == "mismatch"
    assert pad.deliver(PinKind.AUTH, "12a4", "12a4") is not None  # rule 3.1's format
    assert pad.deliver(PinKind.AUTH, "1234", "1234") is None
    worker.join(5)
    assert got == ["1234"] and pad.asking is None


def test_a_pin_taken_is_no_longer_asked_for_before_the_action_wakes() -> None:
    # The pad's page is fetched again straight after the POST. Were the PIN still asked
    # for until the action's thread woke, the page would show the same PIN's form again,
    # which does not poll, and the holder would be stuck on it (the console browser test
    # timed out so, "the pad to take auth"). The condition's lock, held here, keeps the
    # action's thread from waking.
    pad, worker, got = _asking_for_auth()
    with pad._cond:
        assert pad.deliver(PinKind.AUTH, "1234", "1234") is None
        assert pad.asking is None
        assert pad.deliver(PinKind.AUTH, "5678", "5678") == "not asked"  # a second POST
    worker.join(5)
    assert got == ["1234"]


def test_a_pad_nobody_answers_refuses_with_rule_3_7() -> None:
    with pytest.raises(PadTimeout) as err:
        Pad("t").supply(PinKind.JUKI, wait=0.05)
    assert err.value.rule == "3.7"


def test_every_label_has_both_languages() -> None:
    assert all(ja and en for ja, en in LABELS.values())
    assert translator("en")["login"] == "Log in"
    assert translator("xx")["login"] == "ログイン"  # Japanese by default


def test_statistics_csv_has_a_column_per_revocation_reason() -> None:
    stats = {"revoked_by_reason": {"key_compromise": 2},
             "days": [{"day": "2026-12-03", "issued": 1, "express": 0, "revoked": 2,
                       "express_lead_days": None,
                       "revoked_by_reason": {"key_compromise": 2}}]}
    assert statistics_csv(stats).splitlines() == [
        "day,issued,express,revoked,express_lead_days,revoked_key_compromise",
        "2026-12-03,1,0,2,,2"]


def _login(url: str, name: str, password: str) -> tuple[Any, int]:
    """An HTTP client logged in (or not) through the login form; the login's status."""
    jar = http.cookiejar.CookieJar()
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
    page = opener.open(url + "/login").read().decode()
    token = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert token is not None
    try:
        with opener.open(url + "/login", urllib.parse.urlencode({
                "csrf_token": token.group(1), "operator": name,
                "password": password}).encode()) as answer:
            return opener, int(answer.status)
    except urllib.error.HTTPError as exc:
        return opener, int(exc.code)


def test_a_wrong_password_is_refused_and_a_disabled_operator_loses_the_session(
        console_server: ConsoleServer) -> None:
    from issuance.audit.log import AuditLog
    from issuance.operators import OperatorStore

    server = console_server
    _, status = _login(server.url, "carl", "not his password")
    assert status == 401
    opener, status = _login(server.url, "carl", PASSWORDS["carl"])
    assert status == 200
    assert "carl (clerk,supervisor)" in opener.open(server.url + "/").read().decode()
    with server.db() as db:
        assert [e.outcome for e in AuditLog(db).entries()
                if e.operator == "carl" and e.action == "operator.login-failed"] == ["refused"]
        OperatorStore(db).disable("carl")
    with opener.open(server.url + "/") as answer:  # redirected to the login form
        assert answer.url.endswith("/login") and "carl (" not in answer.read().decode()


def test_a_card_session_ends_when_its_card_is_revoked_or_the_operator_disabled(
        tmp_path: Path) -> None:
    """The console's session table checks a card-bound session as `SessionStore.load`
    checks the CLI's: the card still enrolled and active, the operator still able."""
    from issuance.console.auth import Proof, SessionTable
    from issuance.operators import OperatorStore
    from issuance.operators.cards import card_credential
    from issuance.storage import open_database

    with open_database(f"sqlite:///{tmp_path / 'c.sqlite3'}") as db:
        ops = OperatorStore(db)
        for name in ("olive", "owen"):
            ops.add(name, ("clerk",), f"{name}-password-1")
            with db.transaction() as tx:
                tx.execute("INSERT INTO operator_cards (card_serial, operator, cert_serial,"
                           " fingerprint, not_after, state, issued_at, issued_by) VALUES"
                           " (?, ?, ?, ?, '2099-01-01', 'active', '2026-01-01', 't')",
                           (f"S-{name}", name, f"c-{name}", f"fp-{name}"))
        table, first, second = SessionTable(), ops.get("olive"), ops.get("owen")
        assert first is not None and second is not None
        olive = table.open(Proof(first, card_credential("fp-olive")), "card")
        owen = table.open(Proof(second, card_credential("fp-owen")), "card")
        forged = table.open(Proof(first, card_credential("fp-owen")), "card")
        assert table.get(olive.id, db) is not None and table.get(owen.id, db) is not None
        assert table.get(forged.id, db) is None  # another operator's card: never theirs
        ops.set_password("olive", "a-new-password-1")  # a new password leaves the card session
        assert table.get(olive.id, db) is not None
        with db.transaction() as tx:
            tx.execute("UPDATE operator_cards SET state = 'revoked' WHERE operator = 'olive'")
        assert table.get(olive.id, db) is None
        ops.disable("owen")
        assert table.get(owen.id, db) is None


def test_a_form_token_of_any_text_is_refused_not_an_error() -> None:
    """A CSRF or device token comes from the request: any text compares as bytes, so a
    non-ASCII one is refused instead of raising (a 500 on the login page)."""
    from issuance.console.auth import same_token

    assert not same_token("é", "a" * 32)
    assert not same_token("\udcff", "a" * 32)
    assert not same_token(None, "a" * 32)
    assert same_token("a" * 32, "a" * 32)


def test_wrong_passwords_lock_password_logins_only_and_say_nothing_of_who_exists(
        console_server: ConsoleServer) -> None:
    """Anyone reaching the login page can type five wrong passwords: the password is
    locked, but the operator's open session goes on; and the page answers an unknown
    name, a wrong password and a locked operator alike."""
    import time as time_

    from issuance.operators import OperatorStore
    from issuance.operators.store import MAX_FAILURES

    server = console_server
    with server.db() as db:  # an operator of this test's own: the server is shared
        OperatorStore(db).add("kubo", ("clerk",), "kubo-counter-33")
        OperatorStore(db).add("kudo", ("clerk",), "kudo-counter-44")
    kubo, status = _login(server.url, "kubo", "kubo-counter-33")
    assert status == 200

    def refusal(name: str, password: str) -> tuple[int, str]:
        opener = urllib.request.build_opener(
            urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()))
        page = opener.open(server.url + "/login").read().decode()
        token = re.search(r'name="csrf_token" value="([^"]+)"', page)
        assert token is not None
        try:
            opener.open(server.url + "/login", urllib.parse.urlencode({
                "csrf_token": token.group(1), "operator": name,
                "password": password}).encode())
        except urllib.error.HTTPError as exc:
            text = exc.read().decode()
            return exc.code, text[text.index("login refused"):][:80]
        raise AssertionError("the login was not refused")

    answers = {refusal("nobody-such", "some password") for _ in range(2)}
    for _ in range(MAX_FAILURES):
        answers.add(refusal("kubo", "not his password"))
    answers.add(refusal("kubo", "kubo-counter-33"))  # locked now: the right one is refused
    assert len(answers) == 1 and next(iter(answers))[0] == 401
    assert "kubo (clerk)" in kubo.open(server.url + "/").read().decode()
    # an unknown name costs an argon2 verification like a known one
    started = time_.monotonic()
    refusal("nobody-such", "x")
    unknown = time_.monotonic() - started
    started = time_.monotonic()
    refusal("kudo", "x")  # a wrong password of an operator who is not locked
    known = time_.monotonic() - started
    assert unknown > known / 3
