"""Fixtures of the console tests: a real center (SoftHSM2 token, CA, issuer keys) in a home,
operators enrolled with passwords, residents in the registry, `mynacard console serve`
running in a subprocess against the emulator's pcscd, and headless Chromium (Debian's
`chromium` and `chromium-driver`, driven by Selenium; nothing is downloaded)."""

from __future__ import annotations

import dataclasses
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from issuance.operators import OperatorStore
from issuance.registry.dates import birthday_in, japan_date
from issuance.registry.generator import ResidentGenerator
from issuance.registry.model import Nationality, Resident, ResidentStatus
from issuance.registry.store import ResidentStore
from issuance.storage import Database, open_database
from issuance.workflow.center import init_center

PASSWORDS = {"alice": "alice-counter-1", "audra": "audra-reader-1",
             "carl": "carl-counter-22"}
ROLES = {"alice": ("clerk",), "audra": ("auditor",), "carl": ("clerk", "supervisor")}
CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"


def resident(age: int, gen: ResidentGenerator, *, months: int = 0) -> Resident:
    base = gen.resident()
    today = japan_date(datetime.now(UTC))
    if months:
        birth = today - timedelta(days=30 * months + 2)
    else:
        birth = birthday_in(today - timedelta(days=40), today.year - age) - timedelta(days=40)
    return dataclasses.replace(
        base, birth_date=birth, adult_ward=False, nationality=Nationality.JAPANESE,
        status=ResidentStatus.RESIDENT, status_date=None, fuhyo=None, residence_expiry=None)


@dataclasses.dataclass
class ConsoleServer:
    url: str
    home: Path
    db_url: str
    residents: dict[str, Resident]
    shots: Path

    def db(self) -> Database:
        return open_database(self.db_url)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="session")
def console_server(tmp_path_factory: pytest.TempPathFactory,
                   mynacard_emulator: Any) -> Iterator[ConsoleServer]:
    home = tmp_path_factory.mktemp("console-home")
    init_center(home, master_key="test", shards=4)
    db_url = f"sqlite:///{home / 'issuance.sqlite3'}"
    gen = ResidentGenerator(as_of=date.today(), seed=1313)
    people = {"adult": resident(40, gen), "child": resident(9, gen),
              "spare": resident(33, gen), "infant": resident(0, gen, months=3),
              "photo": resident(52, gen), "resume": resident(61, gen)}
    with open_database(db_url) as db:
        ResidentStore(db).put(*people.values())
        for name, password in PASSWORDS.items():
            OperatorStore(db).add(name, ROLES[name], password)
    port = _free_port()
    log = open(home / "console.log", "w")  # noqa: SIM115 - closed below
    proc = subprocess.Popen(
        [sys.executable, "-m", "issuance.cli.main", "--home", str(home), "console", "serve",
         "--listen", f"127.0.0.1:{port}", "--operator", "starter"],
        stdout=log, stderr=subprocess.STDOUT, env={**os.environ})
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            urllib.request.urlopen(url + "/login", timeout=2).read()
            break
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                log.close()
                pytest.fail("the console did not start:\n"
                            + (home / "console.log").read_text(), pytrace=False)
            time.sleep(0.3)
    shots = tmp_path_factory.mktemp("console-screenshots")
    try:
        yield ConsoleServer(url, home, db_url, people, shots)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


def _driver() -> Any:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    for path in (CHROMIUM, CHROMEDRIVER):
        if not shutil.which(path):
            pytest.fail(f"{path} is missing: install Debian's chromium and chromium-driver "
                        "(make setup)", pytrace=False)
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage",
                "--disable-gpu", "--window-size=1280,1000", "--lang=ja"):
        options.add_argument(arg)
    os.environ.setdefault("SE_OFFLINE", "true")  # Selenium Manager: never download
    driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)
    driver.implicitly_wait(0)
    return driver


@pytest.fixture
def browser() -> Iterator[Any]:
    driver = _driver()
    try:
        yield driver
    finally:
        driver.quit()


@pytest.fixture
def pad_browser() -> Iterator[Any]:
    """A second browser: the holder's PIN pad (a tablet), with no staff session."""
    driver = _driver()
    try:
        yield driver
    finally:
        driver.quit()
