"""Where the CLI keeps its state: one directory for HSM tokens, database, CA and emulator files."""

from __future__ import annotations

import os
from pathlib import Path

HOME_ENV = "MYNACARD_HOME"


def default_home() -> Path:
    """`$MYNACARD_HOME`, else `$XDG_DATA_HOME/mynacard`, else `~/.local/share/mynacard`."""
    env = os.environ.get(HOME_ENV)
    if env:
        return Path(env).expanduser()
    xdg = os.environ.get("XDG_DATA_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".local" / "share"
    return base / "mynacard"


def resolve_home(option: str | None) -> Path:
    """The state directory named by `--home`, or the default; created 0700 if missing."""
    home = Path(option).expanduser() if option else default_home()
    home.mkdir(mode=0o700, parents=True, exist_ok=True)
    return home.resolve()


PCSC_SOCKET_ENV = "PCSCLITE_CSOCK_NAME"


def load_emulator_env(home: Path) -> None:
    """Point PC/SC at the emulator's private pcscd when one runs under `home`.

    `mynacard emulator up` writes `emulator/pcscd.env` (`KEY=VALUE` lines). An explicit
    `PCSCLITE_CSOCK_NAME` in the environment wins, so a real reader stays reachable.
    """
    if PCSC_SOCKET_ENV in os.environ:
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
