"""Logging in to the counter console with an operator IC card: the card in one of the
console server's readers, its PIN typed in the page, the same challenge-response as
`mynacard login --card`. The session is bound to the card: revoking it (`mynacard
operator revoke-card`) sends the browser back to the login page. A wrong PIN says the
tries left, a blocked PIN says a supervisor must issue a new card, an empty reader says
to insert the card; every refusal is in the audit log, and the PIN is nowhere."""

from __future__ import annotations

import http.cookiejar
import os
import re
import subprocess
import sys
import urllib.error
import urllib.parse
import urllib.request
from datetime import date
from typing import Any

import pytest
from conftest import ConsoleServer, resident
from leaks import shows
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select
from test_console_browser import text_of, wait_for

from card import contract
from card.errors import PinBlocked
from card.jpki import JpkiClient, Key
from card.transport import PcscTransport
from issuance.audit.log import AuditLog
from issuance.operators import OperatorStore
from issuance.operators.cards import CARD_LOGIN, issue_operator_card
from issuance.registry.generator import ResidentGenerator
from issuance.registry.store import ResidentStore
from issuance.workflow.center import Center

CARD_PIN = "5802"
WRONG_PIN = "9137"


def issue_card(server: ConsoleServer, reader: str, name: str) -> str:
    """`name` enrolled as a clerk (with a password nobody uses here) and given the
    operator card in `reader` by the console's own center; the card's serial."""
    with server.db() as db, Center.open(server.home) as center:
        OperatorStore(db).add(name, ("clerk",), f"{name}-password-unused-1")
        with PcscTransport(reader) as transport:
            issued = issue_operator_card(db, center, name, transport, CARD_PIN,
                                         issued_by="pytest")
    return issued.card_serial


def card_login(driver: Any, server: ConsoleServer, reader: str, pin: str) -> None:
    driver.get(f"{server.url}/login?lang=en")
    Select(driver.find_element(By.ID, "card-reader")).select_by_visible_text(reader)
    pin_field = driver.find_element(By.ID, "card-pin")
    assert pin_field.get_attribute("type") == "password"
    pin_field.send_keys(pin)
    driver.find_element(By.ID, "card-login").click()


def no_pin_anywhere(server: ConsoleServer) -> None:
    with server.db() as db:
        entries = AuditLog(db).entries()
    for pin in (CARD_PIN, WRONG_PIN):
        assert not any(shows(repr(e.detail), pin) for e in entries)
        assert not shows((server.home / "console.log").read_text(), pin)


def test_a_clerk_logs_in_with_the_operator_card_and_revoking_it_ends_the_session(
        console_server: ConsoleServer, blank_card: Any, browser: Any) -> None:
    server = console_server
    reader = str(blank_card)
    serial = issue_card(server, reader, "olga")
    person = resident(44, ResidentGenerator(as_of=date.today(), seed=2613))
    with server.db() as db:
        ResidentStore(db).put(person)

    # a wrong PIN: refused, with the tries left (the card counts them)
    card_login(browser, server, reader, WRONG_PIN)
    tries = contract.JPKI.pin(contract.JPKI_AUTH_PIN).tries
    assert wait_for(lambda: text_of(browser, "login-error"), 20, "the refusal") \
        == f"Wrong card PIN: {tries - 1} tries left"
    assert not shows(browser.page_source, WRONG_PIN)
    assert not browser.find_elements(By.ID, "who")

    # the right PIN: the dashboard, as the card's operator in their roles
    card_login(browser, server, reader, CARD_PIN)
    assert wait_for(lambda: text_of(browser, "who"), 20, "the dashboard") == "olga (clerk)"

    # an action of a clerk: take an application
    browser.get(server.url + "/apply")
    browser.find_element(By.ID, "resident_code").send_keys(person.resident_code)
    browser.find_element(By.ID, "apply-submit").click()
    assert wait_for(lambda: text_of(browser, "new-application"), 15,
                    "the application").startswith("APP-")

    # a supervisor revokes the card (the CLI): the next page load is the login form
    env = {k: v for k, v in os.environ.items() if k != "MYNACARD_DB"}
    done = subprocess.run(
        [sys.executable, "-m", "issuance.cli.main", "--home", str(server.home), "operator",
         "revoke-card", "olga", "--why", "lost at the counter", "--operator", "starter"],
        capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 0, done.stderr
    browser.get(server.url + "/")
    assert browser.current_url.endswith("/login")
    assert not browser.find_elements(By.ID, "who")
    browser.get(server.url + "/apply")
    assert browser.current_url.endswith("/login")

    with server.db() as db:
        logins = [e for e in AuditLog(db).entries() if e.action == "console.login"]
    ok = [e for e in logins if e.operator == "olga"]
    assert [e.outcome for e in ok] == ["done"]
    assert ok[0].detail["method"] == "card" and ok[0].detail["card_serial"] == serial
    wrong = [e for e in logins if e.operator == CARD_LOGIN and e.detail["reader"] == reader]
    assert [e.outcome for e in wrong] == ["refused"]
    assert f"{tries - 1} tries left" in wrong[0].detail["error"]
    no_pin_anywhere(server)


def _card_post(url: str, reader: str, pin: str) -> tuple[int, str]:
    """The card form posted in Japanese: the status and the page's error line."""
    jar = http.cookiejar.CookieJar()
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
    page = opener.open(url + "/login?lang=ja").read().decode()
    token = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert token is not None
    try:
        with opener.open(url + "/login?lang=ja", urllib.parse.urlencode({
                "csrf_token": token.group(1), "method": "card", "reader": reader,
                "pin": pin}).encode()) as answer:
            status, body = int(answer.status), answer.read().decode()
    except urllib.error.HTTPError as exc:
        status, body = int(exc.code), exc.read().decode()
    error = re.search(r'id="login-error">([^<]*)<', body)
    return status, error.group(1) if error else ""


def test_a_blocked_pin_and_an_empty_reader_are_refused_in_japanese_and_audited(
        console_server: ConsoleServer, blank_card: Any, mynacard_emulator: Any) -> None:
    server = console_server
    reader = str(blank_card)
    issue_card(server, reader, "oscar")
    tries = contract.JPKI.pin(contract.JPKI_AUTH_PIN).tries
    for left in range(tries - 1, 0, -1):
        assert _card_post(server.url, reader, WRONG_PIN) == (
            401, f"暗証番号が違います。残り{left}回")
    # the last try is never spent from the login page (anyone reaching it could block the
    # card in the reader): refused before the PIN is checked, whatever was typed
    for pin in (WRONG_PIN, CARD_PIN):
        status, error = _card_post(server.url, reader, pin)
        assert status == 401 and "残り回数が1回" in error, error
    with PcscTransport(reader) as transport:
        jpki = JpkiClient(transport)
        assert jpki.tries_left_for(Key.AUTH) == 1  # still there for the operator's own use
        with pytest.raises(PinBlocked):  # the last try, spent at the reader itself
            jpki.verify_pin(Key.AUTH, WRONG_PIN)
    for pin in (WRONG_PIN, CARD_PIN):  # blocked: even the right PIN fails
        status, error = _card_post(server.url, reader, pin)
        assert status == 401 and "監督者にカードの再発行を依頼してください" in error, error
    assert _card_post(server.url, reader, "12ab") == (401, "暗証番号は数字4桁です")
    assert _card_post(server.url, "no such reader", CARD_PIN)[0] == 401
    mynacard_emulator.eject(reader)
    status, error = _card_post(server.url, reader, CARD_PIN)
    assert status == 401
    assert error == f"カードリーダー「{reader}」に操作者用ICカードを挿入してください"

    with server.db() as db:
        entries = AuditLog(db).entries()
    mine = [e for e in entries if e.action == "console.login" and e.operator == CARD_LOGIN
            and e.detail["reader"] == reader]
    assert [e.outcome for e in mine] == ["refused"] * (tries + 4) + ["failed"]
    assert all(e.role == "claimed" for e in mine)
    assert "one card PIN try is left" in mine[tries - 1].detail["error"]
    assert "blocked" in mine[tries + 1].detail["error"]
    assert "insert the operator card" in mine[-1].detail["error"]
    assert not [e for e in entries if e.operator == "oscar" and e.action == "console.login"]
    no_pin_anywhere(server)
