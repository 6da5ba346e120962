"""pytest plugin `mynacard`: emulated cards for tests, or a real card in a real reader.

Installed with the `mynacard` distribution (entry point `pytest11`), so any project's
tests can use it. Fixtures:
  mynacard_emulator     (session) the running `Emulator` (N readers, `--mynacard-cards`,
                        default 2) under a private runtime directory
  mynacard_sample_card  (session, read-only) a reader of its own holding the sample card,
                        personalised once; with `--reader` the real card there. Tests
                        must not change it (no personalisation, no PIN changes).
  mynacard_pin_sources  {"auth": SPEC, "sign": SPEC}: pin sources (`env:NAME`) for the
                        sample card's JPKI PINs, or those given with
                        `--mynacard-pin-source auth=SPEC` for a real card
  mynacard_reader       a reader name with a card in it (`--reader NAME|INDEX`: that reader)
  blank_card            a reader whose card was just replaced by a fresh blank card
  sample_card           a reader whose fresh card was personalised by the `sample`
                        personaliser (entry point group `mynacard.personalisers`)
`blank_card` and `sample_card` are `CardReader`s: reader-name strings that also carry
`.serial` and (sample) `.summary`. Each fixture gets its own reader: within one test no
two share one, and the session sample card's reader is never handed to another fixture.

`PCSCLITE_CSOCK_NAME` is left alone unless the collected tests use an emulator fixture:
then it points this process at the session's private pcscd before any test runs
(libpcsclite reads it once per process), and is restored at the end.

With `--reader NAME` (or an index into PC/SC's reader list) tests run against a real
card: the tests that need the emulator, or that are marked `personalises` or
`blocks_pins`, are skipped, since a real card must not be personalised or have its PINs
blocked. A missing emulator part (pcscd, vpcd, java, the bridge jar) fails the tests,
it never skips them.
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

from emulator.components import SOCKET_ENV
from emulator.errors import EmulatorError
from emulator.launcher import Emulator
from emulator.state import socket_path

REAL_CARD_REASON = (
    "running against a real card (--reader {reader!r}): a real card must not be "
    "personalised or have its PINs blocked"
)
EMULATOR_ONLY_REASON = (
    "running against a real card (--reader {reader!r}): this test exercises the emulator "
    "itself (or personalises a card, which a real card must not be)"
)
# The fixtures that need the session's emulator (the read-only ones only without --reader).
EMULATOR_FIXTURES = frozenset({"mynacard_emulator", "blank_card", "sample_card",
                               "mynacard_sample_card", "mynacard_reader"})
# Pin sources of the sample card's JPKI PINs (published sample values, not secrets).
SAMPLE_PIN_ENV = {"auth": ("MYNACARD_SAMPLE_AUTH_PIN", "1234"),
                  "sign": ("MYNACARD_SAMPLE_SIGN_PIN", "ABC123")}
_RUNTIME_KEY = pytest.StashKey[Path]()
_SHARED_SAMPLE_KEY = pytest.StashKey[bool]()
_OLD_SOCKET_KEY = pytest.StashKey["str | None"]()


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
                    help="run against the real card in this PC/SC reader (a name, or an "
                         "index into PC/SC's reader list) instead of the emulator (tests "
                         "that personalise or block PINs are skipped)")
    group.addoption("--mynacard-pin-source", action="append", default=[],
                    metavar="KIND=SPEC",
                    help="with --reader: where the real card's PIN comes from, KIND auth or "
                         "sign, SPEC env:NAME or file:PATH (tests that need a PIN not given "
                         "are skipped)")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "personalises: needs a blank card it may personalise")
    config.addinivalue_line("markers", "blocks_pins: uses up PIN tries")
    if config.getoption("--reader"):
        return
    if config.getoption("--mynacard-cards") < 1:
        raise pytest.UsageError("--mynacard-cards must be at least 1")


def _use_emulator_socket(config: pytest.Config) -> Path:
    """The session's runtime directory; points this process at its pcscd (once)."""
    rt = config.stash.get(_RUNTIME_KEY, None)
    if rt is None:
        rt = Path(tempfile.mkdtemp(prefix="mynacard-emu-"))
        config.stash[_RUNTIME_KEY] = rt
        config.stash[_OLD_SOCKET_KEY] = os.environ.get(SOCKET_ENV)
        os.environ[SOCKET_ENV] = str(socket_path(rt))
    return rt


def pytest_unconfigure(config: pytest.Config) -> None:
    rt = config.stash.get(_RUNTIME_KEY, None)
    if rt is None:
        return
    old = config.stash.get(_OLD_SOCKET_KEY, None)
    if old is None:
        os.environ.pop(SOCKET_ENV, None)
    else:
        os.environ[SOCKET_ENV] = old
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
    used = [set(getattr(item, "fixturenames", ())) for item in items]
    if not reader:
        # Before any test talks PC/SC, and only when a test needs the emulator.
        if any(EMULATOR_FIXTURES & names for names in used):
            _use_emulator_socket(config)
        config.stash[_SHARED_SAMPLE_KEY] = any("mynacard_sample_card" in n for n in used)
        _ALLOCATOR.shared_sample = config.stash[_SHARED_SAMPLE_KEY]
        return
    skip = pytest.mark.skip(reason=REAL_CARD_REASON.format(reader=reader))
    skip_emulator = pytest.mark.skip(reason=EMULATOR_ONLY_REASON.format(reader=reader))
    for item, fixtures in zip(items, used, strict=True):
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
    rt = _use_emulator_socket(config)
    cards = config.getoption("--mynacard-cards")
    if config.stash.get(_SHARED_SAMPLE_KEY, False):
        cards += 1  # the last reader holds the session's read-only sample card
    emulator = Emulator(rt, cards, linger=False)
    try:
        emulator.start()
    except EmulatorError as exc:
        pytest.fail(f"mynacard emulator could not start: {exc}", pytrace=False)
    try:
        yield emulator
    finally:
        emulator.stop()


class _Allocator:
    """Hands out readers round-robin over the session, never twice in one test, never
    the session sample card's reader."""

    def __init__(self) -> None:
        self.next = 0
        self.reserved: set[str] = set()
        self.shared_sample = False  # the last reader is mynacard_sample_card's


_ALLOCATOR = _Allocator()


@pytest.fixture
def _mynacard_readers(mynacard_emulator: Emulator) -> Iterator[list[str]]:
    yield []  # readers taken by this test


def _pool(emulator: Emulator, request: pytest.FixtureRequest | None) -> list[str]:
    readers = list(emulator.readers)
    if _ALLOCATOR.shared_sample and len(readers) > 1:
        _ALLOCATOR.reserved.add(readers[-1])
    return [r for r in readers if r not in _ALLOCATOR.reserved]


def _take(emulator: Emulator, taken: list[str],
          request: pytest.FixtureRequest | None = None) -> str:
    """A reader for one fixture of a test (conftests that make more such fixtures call it
    with their `_mynacard_readers` list, and `request` when they have it)."""
    readers = _pool(emulator, request)
    if request is not None and "mynacard_reader" in request.fixturenames and len(readers) > 1:
        readers = readers[1:]  # mynacard_reader's, in this test
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
        return _real_reader(str(reader))
    emulator: Emulator = request.getfixturevalue("mynacard_emulator")
    return _pool(emulator, request)[0]  # blank_card/sample_card of this test avoid it


def _real_reader(spec: str) -> str:
    from card.errors import CardError
    from card.readers import resolve_reader

    try:
        return resolve_reader(spec)
    except CardError as exc:
        pytest.fail(f"--reader {spec!r}: {exc}", pytrace=False)


def _personaliser() -> Any:
    found = [ep for ep in entry_points(group="mynacard.personalisers") if ep.name == "sample"]
    if not found:
        pytest.fail("no `sample` personaliser (entry point group mynacard.personalisers); "
                    "install mynacard (`make setup`)", pytrace=False)
    return found[0].load()


@pytest.fixture
def blank_card(mynacard_emulator: Emulator, _mynacard_readers: list[str],
               request: pytest.FixtureRequest) -> CardReader:
    name = _take(mynacard_emulator, _mynacard_readers, request)
    try:
        card = mynacard_emulator.replace_card(name)
    except EmulatorError as exc:
        pytest.fail(f"could not insert a blank card: {exc}", pytrace=False)
    return CardReader(name, card.serial)


@pytest.fixture
def sample_card(mynacard_emulator: Emulator, _mynacard_readers: list[str],
                request: pytest.FixtureRequest) -> CardReader:
    personalise = _personaliser()
    name = _take(mynacard_emulator, _mynacard_readers, request)
    try:
        card = mynacard_emulator.replace_card(name)
    except EmulatorError as exc:
        pytest.fail(f"could not insert a blank card: {exc}", pytrace=False)
    summary = personalise(name)
    return CardReader(name, card.serial, summary)


@pytest.fixture(scope="session")
def mynacard_sample_card(request: pytest.FixtureRequest) -> CardReader:
    """The session's sample card in a reader of its own, personalised once; read-only."""
    reader = request.config.getoption("--reader")
    if reader:
        return CardReader(_real_reader(str(reader)), "")
    emulator: Emulator = request.getfixturevalue("mynacard_emulator")
    if len(emulator.readers) < 2 or not request.config.stash.get(_SHARED_SAMPLE_KEY, False):
        pytest.fail("mynacard_sample_card was not seen at collection; request it as a test "
                    "argument", pytrace=False)
    name = emulator.readers[-1]
    _ALLOCATOR.reserved.add(name)
    personalise = _personaliser()
    try:
        card = emulator.replace_card(name)
    except EmulatorError as exc:
        pytest.fail(f"could not insert a blank card: {exc}", pytrace=False)
    return CardReader(name, card.serial, personalise(name))


@pytest.fixture
def mynacard_pin_sources(request: pytest.FixtureRequest,
                         monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """Pin sources for the JPKI PINs of `mynacard_sample_card` (see the module doc)."""
    if not request.config.getoption("--reader"):
        for env, value in SAMPLE_PIN_ENV.values():
            monkeypatch.setenv(env, value)
        return {kind: f"env:{env}" for kind, (env, _) in SAMPLE_PIN_ENV.items()}
    sources: dict[str, str] = {}
    for item in request.config.getoption("--mynacard-pin-source"):
        kind, sep, spec = item.partition("=")
        if not sep or kind not in SAMPLE_PIN_ENV or not spec:
            raise pytest.UsageError("--mynacard-pin-source is auth=SPEC or sign=SPEC")
        sources[kind] = spec
    return sources
