"""pytest plugin `mynacard`: emulated cards for tests, or a real card in a real reader.

Fixtures:
  mynacard_emulator  (session) the running `Emulator` (N readers, `--mynacard-cards`,
                     default 2) under a private runtime directory
  mynacard_reader    a reader name with a card in it (`--reader NAME`: that real reader)
  blank_card         a reader whose card was just replaced by a fresh blank card
  sample_card        a reader whose fresh card was personalised by the `sample`
                     personaliser (entry point group `mynacard.personalisers`)
`blank_card` and `sample_card` are `CardReader`s: reader-name strings that also carry
`.serial` and (sample) `.summary`. Within one test they are always distinct readers.

With `--reader NAME` tests run against a real card: the tests that need the emulator,
or that are marked `personalises` or `blocks_pins`, are skipped, since a real card must
not be personalised or have its PINs blocked. A missing emulator part (pcscd, vpcd,
java, the bridge jar) fails the tests, it never skips them.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

import pytest

from emulator.launcher import SOCKET_ENV, Emulator, EmulatorError, socket_path

REAL_CARD_REASON = (
    "running against a real card (--reader {reader!r}): a real card must not be "
    "personalised or have its PINs blocked"
)
EMULATOR_ONLY_REASON = (
    "running against a real card (--reader {reader!r}): this test exercises the emulator "
    "itself (or personalises a card, which a real card must not be)"
)
_RUNTIME_KEY = pytest.StashKey[Path]()


class CardReader(str):
    """A reader name (a str) that knows the serial of the card in it and, for sample
    cards, the personaliser's summary."""

    serial: str
    summary: dict[str, Any] | None

    def __new__(cls, name: str, serial: str, summary: dict[str, Any] | None = None) -> CardReader:
        obj = super().__new__(cls, name)
        obj.serial = serial
        obj.summary = summary
        return obj


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("mynacard", "mynacard emulated cards")
    group.addoption("--mynacard-cards", type=int, default=2, metavar="N",
                    help="number of emulated readers for the session (default 2)")
    group.addoption("--reader", default=None, metavar="NAME",
                    help="run against the real card in this PC/SC reader instead of the "
                         "emulator (tests that personalise or block PINs are skipped)")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "personalises: needs a blank card it may personalise")
    config.addinivalue_line("markers", "blocks_pins: uses up PIN tries")
    if config.getoption("--reader"):
        return
    if config.getoption("--mynacard-cards") < 1:
        raise pytest.UsageError("--mynacard-cards must be at least 1")
    # libpcsclite reads PCSCLITE_CSOCK_NAME once per process: point this process (and the
    # tools tests run) at the session's private pcscd before anything talks PC/SC.
    rt = Path(tempfile.mkdtemp(prefix="mynacard-emu-"))
    config.stash[_RUNTIME_KEY] = rt
    os.environ[SOCKET_ENV] = str(socket_path(rt))


def pytest_unconfigure(config: pytest.Config) -> None:
    rt = config.stash.get(_RUNTIME_KEY, None)
    if rt is None:
        return
    failed = getattr(config, "_mynacard_failed", False)
    if not failed and not os.environ.get("MYNACARD_KEEP_EMULATOR"):
        shutil.rmtree(rt, ignore_errors=True)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    session.config._mynacard_failed = bool(session.testsfailed)  # type: ignore[attr-defined]


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    rt = config.stash.get(_RUNTIME_KEY, None)
    if rt is not None and rt.exists() and getattr(config, "_mynacard_failed", False):
        terminalreporter.write_line(f"mynacard emulator logs kept in {rt}")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    reader = config.getoption("--reader")
    if not reader:
        return
    skip = pytest.mark.skip(reason=REAL_CARD_REASON.format(reader=reader))
    skip_emulator = pytest.mark.skip(reason=EMULATOR_ONLY_REASON.format(reader=reader))
    for item in items:
        fixtures = set(getattr(item, "fixturenames", ()))
        marked = item.get_closest_marker("personalises") or item.get_closest_marker("blocks_pins")
        if marked or {"blank_card", "sample_card"} & fixtures:
            item.add_marker(skip)
        elif "mynacard_emulator" in fixtures:
            item.add_marker(skip_emulator)


@pytest.fixture(scope="session")
def mynacard_emulator(request: pytest.FixtureRequest) -> Iterator[Emulator]:
    config = request.config
    reader = config.getoption("--reader")
    if reader:  # deselected at collection; reached only through indirect use
        pytest.skip(EMULATOR_ONLY_REASON.format(reader=reader))
    rt = config.stash[_RUNTIME_KEY]
    emulator = Emulator(rt, config.getoption("--mynacard-cards"), linger=False)
    try:
        emulator.start()
    except EmulatorError as exc:
        pytest.fail(f"mynacard emulator could not start: {exc}", pytrace=False)
    try:
        yield emulator
    finally:
        emulator.stop()


class _Allocator:
    """Hands out readers round-robin over the session, never twice in one test."""

    def __init__(self) -> None:
        self.next = 0


_ALLOCATOR = _Allocator()


@pytest.fixture
def _mynacard_readers(mynacard_emulator: Emulator) -> Iterator[list[str]]:
    yield []  # readers taken by this test


def _take(emulator: Emulator, taken: list[str]) -> str:
    readers = emulator.readers
    # Prefer readers other than readers[0], which mynacard_reader hands out.
    order = readers[1:] + readers[:1] if len(readers) > 1 else readers
    for _ in range(len(order)):
        name = order[_ALLOCATOR.next % len(order)]
        _ALLOCATOR.next += 1
        if name not in taken:
            taken.append(name)
            return name
    pytest.fail(f"this test needs more readers than --mynacard-cards={len(readers)}",
                pytrace=False)


@pytest.fixture
def mynacard_reader(request: pytest.FixtureRequest) -> str:
    reader = request.config.getoption("--reader")
    if reader:
        return str(reader)
    emulator: Emulator = request.getfixturevalue("mynacard_emulator")
    return emulator.readers[0]


@pytest.fixture
def blank_card(mynacard_emulator: Emulator, _mynacard_readers: list[str]) -> CardReader:
    name = _take(mynacard_emulator, _mynacard_readers)
    try:
        card = mynacard_emulator.replace_card(name)
    except EmulatorError as exc:
        pytest.fail(f"could not insert a blank card: {exc}", pytrace=False)
    return CardReader(name, card.serial)


@pytest.fixture
def sample_card(mynacard_emulator: Emulator, _mynacard_readers: list[str]) -> CardReader:
    found = [ep for ep in entry_points(group="mynacard.personalisers") if ep.name == "sample"]
    if not found:
        pytest.fail("no `sample` personaliser (entry point group mynacard.personalisers); "
                    "run `make setup`", pytrace=False)
    personalise = found[0].load()
    name = _take(mynacard_emulator, _mynacard_readers)
    try:
        card = mynacard_emulator.replace_card(name)
    except EmulatorError as exc:
        pytest.fail(f"could not insert a blank card: {exc}", pytrace=False)
    summary = personalise(name)
    return CardReader(name, card.serial, summary)
