"""Where the CLI keeps its state: one directory for HSM tokens, database, CA and emulator files.

The home holds personal data (databases, PIN files, tokens), so it is 0700 and the
databases in it 0600 on every start, whatever they were before. A home named by
`--home` or `$MYNACARD_HOME` that does not exist is refused (a typo must not silently
start an empty center), except by the commands that create one (`center init`, `hsm
init`, `emulator up`, which set `creates_home` on their parser).
"""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path

from hsm.files import private_dir, tighten
from issuance.errors import IssuanceError

HOME_ENV = "MYNACARD_HOME"
# files in the home that hold personal data or secrets (databases and their WAL files,
# PIN files, configuration, residents, rejects and exports): fixed to 0600 on every start
PRIVATE_FILES = re.compile(r".*\.((sqlite3?|db)(-wal|-shm|-journal)?|pin|json|jsonl|csv)")
PRIVATE_SUBDIRS = ("hsm",)  # PIN files of `hsm init` / `center init`


class HomeError(IssuanceError):
    """The home cannot be used (missing, or not a directory)."""


def default_home() -> Path:
    """`$MYNACARD_HOME`, else `$XDG_DATA_HOME/mynacard`, else `~/.local/share/mynacard`."""
    env = os.environ.get(HOME_ENV)
    if env:
        return Path(env).expanduser()
    xdg = os.environ.get("XDG_DATA_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".local" / "share"
    return base / "mynacard"


def resolve_home(option: str | None, *, create: bool = False) -> Path:
    """The state directory named by `--home`, or the default, made 0700.

    A home named by `--home` or `$MYNACARD_HOME` that does not exist is created only
    with `create` (the commands that set a home up), otherwise `HomeError`; the default
    home is created when missing. The personal-data files in it get mode 0600."""
    home = Path(option).expanduser() if option else default_home()
    named = "--home" if option else (f"${HOME_ENV}" if os.environ.get(HOME_ENV) else None)
    if named and not create and not os.path.lexists(home):
        raise HomeError(f"{named} {home} does not exist (create it with `mynacard center "
                        "init`, `hsm init` or `emulator up`, or mkdir it)")
    try:
        private_dir(home)
    except NotADirectoryError:
        raise HomeError(f"home {home} is not a directory") from None
    for where in (home, *(home / d for d in PRIVATE_SUBDIRS)):
        try:
            entries = list(os.scandir(where))
        except (FileNotFoundError, NotADirectoryError):
            continue
        for entry in entries:
            if PRIVATE_FILES.fullmatch(entry.name):
                tighten(entry.path)
    return home.resolve()


PCSC_SOCKET_ENV = "PCSCLITE_CSOCK_NAME"


def _emulator_home_of(socket: str) -> Path | None:
    """The home whose `emulator up` made `socket` (HOME/emulator/run/pcscd/pcscd.comm,
    with HOME/emulator/pcscd.env beside it), or None for any other socket."""
    runtime = Path(socket).parent.parent.parent
    if runtime.name != "emulator" or not (runtime / "pcscd.env").is_file():
        return None
    return runtime.parent


def load_emulator_env(home: Path) -> None:
    """Point PC/SC at the emulator's private pcscd when one runs under `home`.

    `mynacard emulator up` writes `emulator/pcscd.env` (`KEY=VALUE` lines). An explicit
    `PCSCLITE_CSOCK_NAME` in the environment wins, so a real reader stays reachable; when
    it names the emulator of another home, a warning says so (the cards are not this
    home's).
    """
    if PCSC_SOCKET_ENV in os.environ:
        other = _emulator_home_of(os.environ[PCSC_SOCKET_ENV])
        if other is not None and other.resolve() != Path(home).resolve():
            print(f"mynacard: warning: {PCSC_SOCKET_ENV} points at the emulator of home "
                  f"{other}, not of {home}", file=sys.stderr)
        return
    env_file = home / "emulator" / "pcscd.env"
    try:
        lines = env_file.read_text().splitlines()
    except OSError:
        return
    for line in lines:
        line = line.strip()
        if line.startswith("export "):
            line = line[len("export "):]
        key, sep, value = line.partition("=")
        if sep and key.strip() == PCSC_SOCKET_ENV:
            socket = value.strip().strip("'\"")
            if Path(socket).exists():
                os.environ[PCSC_SOCKET_ENV] = socket
