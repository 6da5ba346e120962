"""The running emulator's record (`state.json` in its runtime directory): pids, ports, readers
and serials, read by every later `emulator` command and by the pytest plugin."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from emulator.errors import EmulatorError
from hsm.files import write_file

STATE_FILE = "state.json"


@dataclass(frozen=True)
class CardState:
    index: int
    reader: str
    port: int
    serial: str
    pid: int
    start_time: int | None
    config: str
    log: str
    control: str = ""  # the bridge's control socket ("" for a bridge without one)
    present: bool = True  # False after `eject` until the next `insert`


@dataclass(frozen=True)
class EmulatorState:
    runtime_dir: str
    socket: str
    pcscd_pid: int
    pcscd_start_time: int | None
    pcscd_log: str
    base_port: int
    cards: tuple[CardState, ...] = field(default_factory=tuple)
    # The master key files `up` was given ("" = the test keys): `insert` needs them.
    issuer_master_key_file: str = ""
    municipal_master_key_file: str = ""
    # the card-key derivation the cards are made for (a state file without it: the default)
    derivation: str = "aes-ecb-encrypt-data"

    @property
    def readers(self) -> list[str]:
        return [c.reader for c in self.cards]

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        d["cards"] = [asdict(c) for c in self.cards]
        return d

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> EmulatorState:
        cards = tuple(CardState(**c) for c in d.pop("cards"))
        return cls(**d, cards=cards)


def load_state(runtime_dir: Path) -> EmulatorState | None:
    path = Path(runtime_dir) / STATE_FILE
    try:
        return EmulatorState.from_json(json.loads(path.read_text()))
    except FileNotFoundError:
        return None
    except (ValueError, TypeError, KeyError) as exc:
        raise EmulatorError(f"{path} is damaged: {exc}") from None


def save_state(runtime_dir: Path, state: EmulatorState) -> None:
    """Write `state.json` atomically, mode 0600, through a new temporary file (created
    exclusively, never through a symlink); a symlink at `state.json` is replaced, its
    target is never written."""
    write_file(Path(runtime_dir) / STATE_FILE, json.dumps(state.to_json(), indent=2) + "\n",
               force=True)


def socket_path(runtime_dir: Path) -> Path:
    return Path(runtime_dir).resolve() / "run" / "pcscd" / "pcscd.comm"


def reader_name(index: int) -> str:
    entry, slot = divmod(index, 2)
    return f"{friendly_name(entry)} 00 {slot:02d}"


def friendly_name(entry: int) -> str:
    return "Virtual PCD" if entry == 0 else f"Virtual PCD {entry}"
