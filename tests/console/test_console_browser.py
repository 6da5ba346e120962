"""The counter console in a real browser (headless Chromium through Selenium) against a
running `mynacard console serve`, an emulated card over PC/SC and a SoftHSM2 center:
a clerk logs in, takes an application, issues the card, hands it over while the holder
sets the PINs on the PIN pad (a second browser), the card signs with the holder's
signing password, the loss is reported; an auditor is refused; CSRF is refused."""

from __future__ import annotations

import dataclasses
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from typing import Any

from conftest import PASSWORDS, ConsoleServer
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from leaks import shows
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select

from card.jpki import CertKind, JpkiClient, Key
from card.transport import PcscTransport
from issuance.audit.keyer import center_keyer
from issuance.audit.log import AuditLog
from issuance.registry.store import update_residents

PINS = {"auth": "1470", "sign": "TEST2026", "text": "2581", "juki": "3692"}


def wait_for(check: Callable[[], Any], timeout: float = 60.0, what: str = "") -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.2)


def text_of(driver: Any, element_id: str) -> str:
    found = driver.find_elements(By.ID, element_id)
    return str(found[0].text) if found else ""


def login(driver: Any, server: ConsoleServer, name: str, *, lang: str = "en") -> None:
    driver.get(f"{server.url}/login?lang={lang}")
    driver.find_element(By.ID, "operator").send_keys(name)
    driver.find_element(By.ID, "password").send_keys(PASSWORDS[name])
    driver.find_element(By.ID, "login").click()
    wait_for(lambda: text_of(driver, "who").startswith(name), 15, "the dashboard")


def wait_job(driver: Any, timeout: float = 90.0) -> str:
    return str(wait_for(lambda: text_of(driver, "job-state") not in ("", "running")
                        and text_of(driver, "job-state"), timeout, "the job to end"))


def enter_pins(pad: Any, url: str, server: ConsoleServer, done: Callable[[], bool],
               pins: dict[str, str] = PINS) -> list[str]:
    """The holder at the PIN pad: every PIN asked for, each twice (one mismatch first)."""
    pad.get(url + "?lang=en")
    asked: list[str] = []
    mismatched = False
    while not done():
        kinds = pad.find_elements(By.CSS_SELECTOR, "input[name=kind]")
        if not kinds:
            time.sleep(0.2)
            if pad.find_elements(By.ID, "pad-done"):
                break
            continue
        kind = str(kinds[0].get_attribute("value"))
        pad.find_element(By.ID, "pin").send_keys(pins[kind])
        second = pins[kind] if mismatched else ("0000" if kind != "sign" else "WRONG99")
        if not mismatched and kind != "sign":
            pad.save_screenshot(str(server.shots / "pinpad.png"))
        pad.find_element(By.ID, "pin2").send_keys(second)
        pad.find_element(By.ID, "pad-submit").click()
        if not mismatched:
            mismatched = True
            # the click starts the POST; the answer is a new page, read once it is there
            assert "differ" in wait_for(lambda: text_of(pad, "pad-error"), 15,
                                        "the pad to refuse the differing entries")
            continue
        asked.append(kind)
        wait_for(lambda k=kind: not pad.find_elements(By.CSS_SELECTOR,
                                                      f"input[name=kind][value={k}]")
                 or pad.find_elements(By.ID, "pad-error"), 20, f"the pad to take {kind}")
    return asked


def test_clerk_applies_issues_hands_over_with_the_pin_pad_and_reports_loss(
        console_server: ConsoleServer, blank_card: Any, browser: Any, pad_browser: Any
        ) -> None:
    server = console_server
    person = server.residents["adult"]
    login(browser, server, "alice", lang="ja")
    assert "本日の業務" in browser.page_source  # Japanese by default (lang cookie: ja)
    browser.get(server.url + "/?lang=en")
    browser.save_screenshot(str(server.shots / "dashboard-empty.png"))

    # take an application
    browser.get(server.url + "/apply")
    browser.find_element(By.ID, "resident_code").send_keys(person.resident_code)
    browser.find_element(By.ID, "apply-submit").click()
    app_id = wait_for(lambda: text_of(browser, "new-application"), 15, "the application")
    assert app_id.startswith("APP-")
    # the same person again: the intake rule's refusal, with its number
    browser.get(server.url + "/apply")
    browser.find_element(By.ID, "resident_code").send_keys(person.resident_code)
    browser.find_element(By.ID, "apply-submit").click()
    assert wait_for(lambda: text_of(browser, "refusal-rule"), 15, "the refusal") == "I4"

    browser.get(server.url + "/")
    assert app_id in text_of(browser, "waiting")
    browser.save_screenshot(str(server.shots / "dashboard.png"))

    # issue onto the blank card, with live progress
    browser.find_element(By.CSS_SELECTOR, f"a[href='/issue?application={app_id}']").click()
    Select(browser.find_element(By.ID, "reader")).select_by_visible_text(blank_card)
    browser.find_element(By.ID, "issue-submit").click()
    assert wait_job(browser) == "done", text_of(browser, "job-message")
    steps = browser.find_elements(By.CSS_SELECTOR, "#job-steps li")
    assert len(steps) >= 3
    browser.save_screenshot(str(server.shots / "issue-progress.png"))
    browser.get(server.url + "/")
    assert app_id in text_of(browser, "ready")

    # hand-over: identity check, then the holder sets the PINs on the PIN pad
    browser.get(server.url + "/handover")
    Select(browser.find_element(By.ID, "handover-reader")).select_by_visible_text(blank_card)
    browser.find_element(By.ID, "identity_check").send_keys("driving licence 123456")
    browser.find_element(By.ID, "handover-submit").click()
    pad_url = wait_for(lambda: browser.find_elements(By.ID, "pad-link")
                       and browser.find_element(By.ID, "pad-link").get_attribute("href"),
                       15, "the PIN pad link")
    clerk_page_before = browser.page_source
    asked = enter_pins(pad_browser, pad_url, server,
                       lambda: text_of(browser, "job-state") not in ("", "running"))
    assert wait_job(browser) == "done", text_of(browser, "job-message")
    assert sorted(asked) == ["auth", "juki", "sign", "text"]
    # the clerk's page never received a PIN
    for page in (clerk_page_before, browser.page_source):
        assert not any(shows(page, pin) for pin in PINS.values())
    pad_browser.get(pad_url)
    assert pad_browser.find_elements(By.ID, "pad-done")
    # the token is bound to the pad's browser: another browser is refused
    browser.get(pad_url)
    assert "another screen" in browser.page_source

    # the holder signs with the card and the signing password set on the pad
    with PcscTransport(blank_card) as t:
        jpki = JpkiClient(t)
        jpki.verify_pin(Key.SIGN, PINS["sign"])
        signature = jpki.sign_sha256(Key.SIGN, b"signed after a console hand-over")
        cert = jpki.read_certificate(CertKind.SIGN)
    public = cert.public_key()
    assert isinstance(public, rsa.RSAPublicKey)
    public.verify(signature, b"signed after a console hand-over", padding.PKCS1v15(),
                  hashes.SHA256())

    # PIN reset after the identity check: the holder sets the new password on the PIN pad
    browser.get(server.url + "/counter")
    Select(browser.find_element(By.ID, "reset-reader")).select_by_visible_text(blank_card)
    Select(browser.find_element(By.ID, "reset-pin")).select_by_value("sign")
    browser.find_element(By.ID, "reset-identity").send_keys("passport TK1234567")
    browser.find_element(By.ID, "reset-submit").click()
    reset_url = wait_for(lambda: browser.find_elements(By.ID, "pad-link")
                         and browser.find_element(By.ID, "pad-link").get_attribute("href"),
                         15, "the PIN pad link of the reset")
    assert reset_url != pad_url
    asked = enter_pins(pad_browser, reset_url, server,
                       lambda: text_of(browser, "job-state") not in ("", "running"),
                       {"sign": "NEWPW77"})
    assert wait_job(browser) == "done", text_of(browser, "job-message")
    assert asked == ["sign"] and "NEWPW77" not in browser.page_source
    with PcscTransport(blank_card) as t:
        JpkiClient(t).verify_pin(Key.SIGN, "NEWPW77")

    # the holder moved: the card is updated, the holder entering the PINs on the pad
    moved = dataclasses.replace(person, address="東京都千代田区霞が関一丁目1番1号")
    with server.db() as db, db.transaction() as tx:
        update_residents(tx, [(person, moved)])
    browser.get(server.url + "/counter")
    Select(browser.find_element(By.ID, "update-reader")).select_by_visible_text(blank_card)
    browser.find_element(By.ID, "update-identity").send_keys("residence card 7777")
    browser.find_element(By.ID, "update-submit").click()
    update_url = wait_for(lambda: browser.find_elements(By.ID, "pad-link")
                          and browser.find_element(By.ID, "pad-link").get_attribute("href"),
                          15, "the PIN pad link of the update")
    pad_browser.get(update_url)
    entered = []
    for _ in range(2):  # the card-info PIN, then the signing password (current values)
        kind = wait_for(lambda: [str(e.get_attribute("value")) for e in pad_browser.find_elements(
            By.CSS_SELECTOR, "input[name=kind]")][:1] or None, 30, "the pad to ask")[0]
        assert not pad_browser.find_elements(By.ID, "pin2")  # verified, not set: once
        pad_browser.find_element(By.ID, "pin").send_keys({"text": PINS["text"],
                                                          "sign": "NEWPW77"}[kind])
        pad_browser.find_element(By.ID, "pad-submit").click()
        entered.append(kind)
        wait_for(lambda k=kind: not pad_browser.find_elements(
            By.CSS_SELECTOR, f"input[name=kind][value={k}]"), 20, f"the pad to take {kind}")
    assert entered == ["text", "sign"]
    assert wait_job(browser, 120) == "done", text_of(browser, "job-message")
    assert "address" in text_of(browser, "job-result")

    # report the loss
    browser.get(server.url + "/counter")
    browser.find_element(By.ID, "loss-application").send_keys(app_id)
    browser.find_element(By.ID, "loss-identity").send_keys("passport TK1234567")
    browser.find_element(By.ID, "loss-submit").click()
    assert wait_for(lambda: text_of(browser, "counter-done"), 30, "the loss report")

    # search by card serial and by application id
    browser.get(server.url + "/search?q=" + blank_card.serial)
    assert browser.find_elements(By.CSS_SELECTOR, f"a[href='/record/card/{blank_card.serial}']")
    browser.get(server.url + "/search?q=" + app_id.lower())
    assert browser.find_elements(By.CSS_SELECTOR, f"a[href='/record/application/{app_id}']")

    # search by kana, open the record: its whole history from the audit log
    browser.get(server.url + "/search?q=" + urllib.parse.quote(person.name_kana or ""))
    browser.find_element(By.CSS_SELECTOR,
                         f"a[href='/record/resident/{person.resident_code}']").click()
    history = wait_for(lambda: text_of(browser, "history"), 15, "the resident's record")
    for action in ("application.apply", "issue", "handover", "activate",
                   "handover.identity-check", "pin.reset", "card.update", "card.report_loss"):
        assert action in history.split(), action
    assert "lost" in text_of(browser, "record-applications")
    assert "revoked" in text_of(browser, "record-certificates")

    # statistics: today's issued card, and the revocation (keyCompromise)
    browser.get(server.url + "/stats?days=3")
    assert browser.find_elements(By.CSS_SELECTOR, "#charts svg")
    browser.save_screenshot(str(server.shots / "stats.png"))
    csv = browser.execute_script(
        "return fetch('/stats.csv?days=3').then(function (r) { return r.text(); });")
    last = csv.strip().splitlines()[-1].split(",")
    header = csv.splitlines()[0].split(",")
    assert last[header.index("issued")] == "1"
    assert last[header.index("revoked_key_compromise")] == "2"  # the loss: both current
    assert last[header.index("revoked_affiliation_changed")] == "1"  # the move

    # every console action was audited as the logged-in operator, in her role
    with server.db() as db:
        entries = [e for e in AuditLog(db).entries() if e.operator == "alice"]
        assert {"console.login", "application.apply", "issue", "activate",
                "card.report_loss"} <= {e.action for e in entries}
        assert {e.role for e in entries} == {"clerk"}
        keyer = center_keyer(server.home, create=False)
        assert keyer is not None
        try:
            assert AuditLog(db, keyer=keyer).verify().ok  # keyed by the center's HSM key
        finally:
            keyer.close()


def _session_cookie(driver: Any) -> str:
    cookie = driver.get_cookie("console_session")
    assert cookie is not None and cookie["httpOnly"] and cookie["sameSite"] == "Strict"
    return str(cookie["value"])


def _post(url: str, fields: dict[str, str], cookie: str) -> int:
    data = urllib.parse.urlencode(fields).encode()
    request = urllib.request.Request(url, data=data, method="POST", headers={
        "Cookie": f"console_session={cookie}",
        "Content-Type": "application/x-www-form-urlencoded"})
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            return int(answer.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)


def test_a_clerk_without_the_role_is_refused_and_audited(console_server: ConsoleServer,
                                                         browser: Any) -> None:
    server = console_server
    login(browser, server, "audra")
    browser.get(server.url + "/apply")
    browser.find_element(By.ID, "resident_code").send_keys(
        server.residents["spare"].resident_code)
    browser.find_element(By.ID, "apply-submit").click()
    assert wait_for(lambda: text_of(browser, "error-title"), 15, "the refusal") \
        == "You may not do this"
    with server.db() as db:
        refused = [e for e in AuditLog(db).entries()
                   if e.operator == "audra" and e.action == "console.apply"]
        assert [e.outcome for e in refused] == ["refused"]
        assert refused[0].detail["needs"] == ["clerk", "supervisor"]
        with db.transaction() as tx:
            assert tx.query_one("SELECT id FROM applications WHERE resident_code = ?",
                                [server.residents["spare"].resident_code]) is None


def test_a_post_without_or_with_a_wrong_csrf_token_is_refused(console_server: ConsoleServer,
                                                              browser: Any) -> None:
    server = console_server
    login(browser, server, "alice")
    cookie = _session_cookie(browser)
    code = server.residents["spare"].resident_code
    assert _post(server.url + "/apply", {"resident_code": code}, cookie) == 403
    assert _post(server.url + "/apply", {"resident_code": code, "csrf_token": "forged"},
                 cookie) == 403
    assert _post(server.url + "/login", {"operator": "alice",
                                         "password": PASSWORDS["alice"]}, "") == 403
    with server.db() as db, db.transaction() as tx:
        assert tx.query_one("SELECT id FROM applications WHERE resident_code = ?",
                            [code]) is None
    # the same form with the session's token is taken (the refusals were the token's)
    browser.get(server.url + "/apply")
    token = browser.find_element(By.NAME, "csrf_token").get_attribute("value")
    assert _post(server.url + "/apply", {"resident_code": code, "csrf_token": str(token)},
                 cookie) == 200
    # a child's application needs the legal representative (rule 4.3), recorded with it
    child = server.residents["child"].resident_code
    assert _post(server.url + "/apply", {"resident_code": child, "csrf_token": str(token)},
                 cookie) == 422
    assert _post(server.url + "/apply", {"resident_code": child, "csrf_token": str(token),
                                         "representative": "山田 花子",
                                         "representative_proof": "戸籍謄本"}, cookie) == 200
    with server.db() as db:
        rep = [e for e in AuditLog(db).entries() if e.action == "application.representative"]
        assert rep and rep[-1].detail["representative"] == "山田 花子"


def test_express_for_an_infant_without_photo_and_an_adult_with_a_photo_upload(
        console_server: ConsoleServer, browser: Any, tmp_path: Any) -> None:
    from PIL import Image

    from issuance.applications.photos import photo_of

    server = console_server
    picture = tmp_path / "face.png"
    Image.new("RGB", (300, 400), (200, 180, 160)).save(picture)
    login(browser, server, "alice")

    def apply(code: str, **fields: str) -> str:
        browser.get(server.url + "/apply")
        browser.find_element(By.ID, "resident_code").send_keys(code)
        if "express" in fields:
            Select(browser.find_element(By.ID, "express")).select_by_value(fields["express"])
        for name in ("representative", "representative_proof"):
            if name in fields:
                browser.find_element(By.ID, name).send_keys(fields[name])
        browser.find_element(By.ID, "photo").send_keys(str(picture))
        browser.find_element(By.ID, "apply-submit").click()
        return str(wait_for(lambda: text_of(browser, "apply-accepted")
                            or text_of(browser, "apply-refused"), 15, "the intake"))

    infant = server.residents["infant"]
    # the express reason is looked up (auto: under one, 4.8(1)); the representative is needed
    refused = apply(infant.resident_code, express="auto")
    assert "4.3" in refused
    accepted = apply(infant.resident_code, express="auto", representative="田中 一郎",
                     representative_proof="出生届 受理証明")
    assert "Express issuance" in accepted and "Deadline" in accepted
    infant_app = text_of(browser, "new-application")
    adult = server.residents["photo"]
    apply(adult.resident_code)
    adult_app = text_of(browser, "new-application")
    with server.db() as db:
        assert photo_of(db, infant_app) is None  # under 1: no photo is kept (rule 4.5)
        assert photo_of(db, adult_app) is not None
    browser.get(f"{server.url}/record/application/{infant_app}")
    assert "under_one" in text_of(browser, "record-applications")
    browser.get(server.url + "/")
    assert infant_app in text_of(browser, "express")


def test_an_interrupted_issue_is_listed_and_resumed_from_the_dashboard(
        console_server: ConsoleServer, blank_card: Any, browser: Any) -> None:
    import subprocess
    import sys
    from pathlib import Path

    from issuance.applications.intake import take_application
    from issuance.applications.rules import ApplicationRequest

    server = console_server
    with server.db() as db:
        app_id = take_application(db, ApplicationRequest(
            resident_code=server.residents["resume"].resident_code),
            operator="alice").application.id  # type: ignore[union-attr]
    worker = Path(__file__).parents[1] / "workflow" / "workflow_crash_worker.py"
    killed = subprocess.run([sys.executable, str(worker), str(server.home), server.db_url,
                             app_id, blank_card, "certificates_issued"],
                            capture_output=True, text=True, timeout=120)
    assert killed.returncode == -9, killed.stderr  # SIGKILL right after the step
    login(browser, server, "alice")
    assert app_id in text_of(browser, "interrupted")
    browser.find_element(By.CSS_SELECTOR,
                         f"#interrupted a[href='/issue?application={app_id}']").click()
    Select(browser.find_element(By.ID, "reader")).select_by_visible_text(blank_card)
    browser.find_element(By.ID, "issue-submit").click()
    assert wait_job(browser) == "done", text_of(browser, "job-message")
    result = text_of(browser, "job-result")
    assert '"resumed": true' in result and '"application_state": "personalised"' in result
    browser.get(server.url + "/")
    assert app_id not in text_of(browser, "interrupted")
    assert app_id in text_of(browser, "ready")
