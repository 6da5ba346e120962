"""`mynacard emulator up|down|status|insert|eject|replace`: emulated cards behind a
private pcscd.

State lives in `<home>/emulator/` (emulator.launcher: the layout; emulator.state: its
record). `up` also writes `<home>/emulator/pcscd.env`, one line
`PCSCLITE_CSOCK_NAME=<absolute socket path>` (no quoting; the path has no newline), so
other commands can find the private pcscd.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

from emulator.components import SOCKET_ENV
from emulator.errors import EmulatorError, ReaderStateError
from emulator.factory_keys import DEFAULT_DERIVATION, DERIVATIONS, center_derivation
from emulator.launcher import Emulator, running_state, stop_state
from emulator.processes import pid_alive
from emulator.state import load_state, socket_path
from hsm.files import write_file

ENV_FILE = "pcscd.env"
SAMPLE_PINS = {
    "user-authentication PIN (JPKI)": "1234",
    "card-info input support PIN": "2345",
    "resident-registry PIN": "3456",
    "signing password (JPKI)": "ABC123",
}
EXIT_REFUSED = 1  # refused or invalid input (already running, --cards out of range)
EXIT_ERROR = 3  # a part failed (pcscd, the bridge, the state files)


def runtime_dir(home: Path) -> Path:
    return Path(home) / "emulator"


def env_file(home: Path) -> Path:
    return runtime_dir(home) / ENV_FILE


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "emulator",
        help="emulated My Number Cards (jCardSim) behind a private pcscd",
        description="Run emulated cards in virtual readers of a private pcscd. PC/SC "
        f"programs find it through {SOCKET_ENV} (printed by `up`).",
    )
    sub = parser.add_subparsers(title="actions", metavar="ACTION")

    up = sub.add_parser("up", help="start N blank (or sample) cards; prints one reader per line")
    up.add_argument("--cards", type=int, default=1, metavar="N", help="number of cards (1-10)")
    up.add_argument("--sample", action="store_true",
                    help="personalise and activate every card as the sample card")
    up.add_argument("--json", action="store_true", help="print a JSON document instead")
    up.add_argument("--issuer-master-key-file", type=Path, metavar="FILE",
                    help="issuer master key (16 bytes or 32 hex digits); default the test key")
    up.add_argument("--municipal-master-key-file", type=Path, metavar="FILE",
                    help="municipal master key; default the test key")
    up.add_argument("--derivation", choices=sorted(DERIVATIONS), metavar="METHOD",
                    help="the card-key derivation of the center the cards are made for "
                         "(default: what the center in --home recorded, else "
                         f"{DEFAULT_DERIVATION}); one of {', '.join(sorted(DERIVATIONS))}")
    up.add_argument("--timeout", type=float, default=30.0, metavar="S",
                    help="start-up timeout in seconds")
    up.set_defaults(func=cmd_up, changes=True, roles=("clerk", "supervisor", "ca-officer"),
                    audit_action="emulator.up",
                    audit_subject="cards", audit_detail=("sample",), creates_home=True)

    down = sub.add_parser("down", help="stop the cards and the private pcscd")
    down.set_defaults(func=cmd_down, changes=True, roles=("clerk", "supervisor", "ca-officer"),
                      audit_action="emulator.down")

    for action, text in (
        ("insert", "insert a fresh blank (or sample) card into an empty reader"),
        ("eject", "pull the card out of a reader (its state is discarded)"),
        ("replace", "eject the card of a reader and insert a fresh one"),
    ):
        cmd = sub.add_parser(action, help=text, description=text[0].upper() + text[1:] + ".")
        cmd.add_argument("--reader", required=True, metavar="NAME",
                         help="reader name, or its index in `emulator status` (0, 1, …)")
        if action != "eject":
            kind = cmd.add_mutually_exclusive_group()
            kind.add_argument("--sample", action="store_true",
                              help="personalise and activate the new card as the sample card")
            kind.add_argument("--blank", action="store_true", help="a blank card (the default)")
        cmd.add_argument("--json", action="store_true", help="print a JSON document instead")
        cmd.add_argument("--timeout", type=float, default=30.0, metavar="S",
                         help="how long to wait for the reader, in seconds")
        cmd.set_defaults(func=cmd_card, action=action, changes=True,
                         roles=("clerk", "supervisor", "ca-officer"),
                         audit_action=f"emulator.{action}", audit_subject="reader",
                         audit_detail=("sample",) if action != "eject" else ())

    status = sub.add_parser("status", help="readers, cards and processes")
    status.add_argument("--json", action="store_true")
    status.set_defaults(func=cmd_status, changes=False, roles="*")

    def usage(args: argparse.Namespace) -> int:
        parser.print_help(sys.stderr)
        return EXIT_ERROR

    parser.set_defaults(func=usage, changes=False, roles="*")


def _fail(message: str, code: int = EXIT_ERROR) -> int:
    print(f"mynacard emulator: {message}", file=sys.stderr)
    return code


def _err(message: str = "") -> None:
    print(message, file=sys.stderr)


def cmd_up(args: argparse.Namespace) -> int:
    rt = runtime_dir(args.home)
    try:
        if running_state(rt) is not None:
            return _fail(f"already running in {rt}; run `mynacard emulator down` first",
                         EXIT_REFUSED)
        if not 1 <= args.cards <= 10:
            return _fail("--cards must be 1..10", EXIT_REFUSED)
        personalise = _load_personaliser() if args.sample else None
        # This process must talk to the private pcscd (libpcsclite reads this once).
        os.environ[SOCKET_ENV] = str(socket_path(rt))
        emulator = Emulator(
            rt, args.cards,
            issuer_master_key_file=args.issuer_master_key_file,
            municipal_master_key_file=args.municipal_master_key_file,
            timeout=args.timeout,
            derivation=(args.derivation or center_derivation(args.home)
                        or DEFAULT_DERIVATION),
        )
        try:
            emulator.start()
        except KeyboardInterrupt:  # Ctrl-C while the cards start: stop what started
            emulator.stop()
            _err("mynacard emulator: interrupted while starting; the emulator was stopped"
                 " (no card is running); run `mynacard emulator up` again")
            return 130
    except (EmulatorError, OSError, ValueError) as exc:
        return _fail(str(exc))
    sock = str(emulator.socket)
    path = env_file(args.home)
    try:  # 0600, atomic; a symlink planted there is replaced, its target never written
        write_file(path, f"{SOCKET_ENV}={sock}\n", force=True)
    except OSError as exc:
        emulator.stop()
        return _fail(f"cannot write {path}: {exc.strerror or exc}; the emulator was stopped")
    summaries: dict[str, Any] = {}
    if personalise is not None:
        try:
            for reader in emulator.readers:
                _err(f"personalising the sample card in {reader} ...")
                summaries[reader] = personalise(reader)
        except KeyboardInterrupt:  # no half-personalised card may stay up
            emulator.stop()
            path.unlink(missing_ok=True)
            _err("mynacard emulator: interrupted while personalising; the emulator was "
                 "stopped (no card is running); run `mynacard emulator up` again")
            return 130
        except Exception as exc:  # the personaliser's own errors: report, leave running
            return _fail(f"personalising the sample card failed: {exc} "
                         "(cards still running; `mynacard emulator down` stops them)")
    assert emulator.state is not None
    if args.json:
        doc = {
            "runtime_dir": str(rt),
            "env_file": str(path),
            "env": {SOCKET_ENV: sock},
            "pcscd_pid": emulator.state.pcscd_pid,
            "readers": [
                {"reader": c.reader, "serial": c.serial, "port": c.port, "pid": c.pid,
                 **({"sample": summaries[c.reader]} if c.reader in summaries else {})}
                for c in emulator.state.cards
            ],
        }
        if args.sample:
            doc["sample_pins"] = SAMPLE_PINS
        print(json.dumps(doc, indent=2, default=str))
    else:
        for reader in emulator.readers:
            print(reader)
    _err(f"{len(emulator.readers)} card(s) running in a private pcscd ({rt}).")
    _err("Point PC/SC programs (pcsc_scan, pkcs15-tool, pyscard) at it with:")
    _err(f"  export {SOCKET_ENV}={sock}")
    _err(f"(also in {path}); stop with `mynacard emulator down`.")
    if args.sample:
        _err("Sample PINs (the same on every sample card):")
        for name, value in SAMPLE_PINS.items():
            _err(f"  {name}: {value}")
    sys.stdout.flush()
    return 0


def _load_personaliser() -> Any:
    found = [ep for ep in entry_points(group="mynacard.personalisers") if ep.name == "sample"]
    if not found:
        raise EmulatorError("no `sample` personaliser installed (entry point group "
                            "mynacard.personalisers); run `make setup`")
    try:
        return found[0].load()
    except ImportError as exc:
        raise EmulatorError(f"the sample personaliser cannot be loaded: {exc}") from None


def cmd_down(args: argparse.Namespace) -> int:
    rt = runtime_dir(args.home)
    try:
        state = load_state(rt)
    except EmulatorError as exc:
        return _fail(str(exc))
    env_file(args.home).unlink(missing_ok=True)
    if state is None:
        _err(f"no emulator running in {rt}")
        return 0
    discarded = sum(1 for c in state.cards if c.present)
    stop_state(rt, state)
    _err(f"discarded {discarded} card(s) (their state is gone), stopped "
         f"{len(state.cards)} reader(s) and pcscd ({rt})")
    return 0


def _reader_of(emulator: Emulator, spec: str) -> str:
    """A reader of this emulator by name or by index (as `emulator status` lists them)."""
    readers = emulator.readers
    if spec in readers:
        return spec
    if spec.isdigit() and spec.isascii() and int(spec) < len(readers):
        return readers[int(spec)]
    raise ReaderStateError(f"no emulated reader {spec!r}; the readers are "
                        + ", ".join(f"{i} {r!r}" for i, r in enumerate(readers)))


def cmd_card(args: argparse.Namespace) -> int:
    """insert, eject or replace the card of one reader of the running emulator."""
    rt = runtime_dir(args.home)
    try:
        personalise = _load_personaliser() if getattr(args, "sample", False) else None
        emulator = Emulator.attach(rt, timeout=args.timeout)
        reader = _reader_of(emulator, args.reader)
        args.reader = reader  # the audit records the name, not the index
        os.environ[SOCKET_ENV] = str(emulator.socket)
        if args.action == "eject":
            old = emulator.eject(reader)
            card = None
        else:
            old = emulator._card(reader)
            card = emulator.insert(reader) if args.action == "insert" \
                else emulator.replace_card(reader)
    except ReaderStateError as exc:
        return _fail(str(exc), EXIT_REFUSED)
    except (EmulatorError, OSError, ValueError) as exc:
        return _fail(str(exc))
    summary = None
    if personalise is not None and card is not None:
        try:
            _err(f"personalising the sample card in {reader} ...")
            summary = personalise(reader)
        except Exception as exc:  # the personaliser's own errors: report, leave the card
            return _fail(f"personalising the sample card failed: {exc}")
    doc: dict[str, Any] = {"reader": reader, "action": args.action,
                           "ejected": old.serial if args.action != "insert" else None,
                           "serial": card.serial if card else None}
    if summary is not None:
        doc["sample"] = summary
    if args.json:
        print(json.dumps(doc, indent=2, default=str))
    elif card is None:
        print(f"{reader}: card {old.serial} ejected (reader empty)")
    else:
        print(f"{reader}: {'sample' if summary is not None else 'blank'} card {card.serial} "
              "inserted")
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    rt = runtime_dir(args.home)
    try:
        state = load_state(rt)
    except EmulatorError as exc:
        return _fail(str(exc))
    if state is None:
        if args.json:
            print(json.dumps({"running": False, "runtime_dir": str(rt), "readers": []}))
        else:
            _err(f"no emulator running in {rt}")
        return 0
    pcscd_alive = pid_alive(state.pcscd_pid, state.pcscd_start_time)
    present = _cards_present(state.socket, state.readers) if pcscd_alive else {}
    readers = [
        {
            "reader": c.reader,
            "serial": c.serial,
            "port": c.port,
            "pid": c.pid,
            "alive": pid_alive(c.pid, c.start_time),
            "card_present": present.get(c.reader, False),
        }
        for c in state.cards
    ]
    doc = {
        "running": pcscd_alive,
        "runtime_dir": str(rt),
        "env": {SOCKET_ENV: state.socket},
        "pcscd": {"pid": state.pcscd_pid, "alive": pcscd_alive},
        "readers": readers,
    }
    if args.json:
        print(json.dumps(doc, indent=2))
    else:
        print(f"pcscd pid {state.pcscd_pid}: {'running' if pcscd_alive else 'NOT running'}")
        for r in readers:
            card = "card present" if r["card_present"] else "NO card"
            proc = "alive" if r["alive"] else "DEAD"
            print(f"{r['reader']}: {card}, serial {r['serial']}, pid {r['pid']} {proc}")
        print(f"export {SOCKET_ENV}={state.socket}")
    return 0


def _cards_present(sock: str, readers: list[str]) -> dict[str, bool]:
    """Which readers show a card, asked of the private pcscd in a child process."""
    from emulator.launcher import wait_readers

    missing = set(wait_readers(Path(sock), readers, present=True, timeout=0.5))
    return {r: r not in missing for r in readers}
