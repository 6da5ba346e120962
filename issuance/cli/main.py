"""The `mynacard` command.

Sub-command groups register themselves through the `mynacard.commands` entry-point
group: each names a function `register(subparsers)` that adds its parser and sets
`func` (called with the parsed arguments, whose `home` is the resolved state
directory). The root command therefore imports no package it may not import.

Operators and the audit log are the root command's business, so that pki, hsm, card
and emulator need not import issuance. Every command (every parser with a `func`)
declares through `set_defaults` whether it changes anything:

    p.set_defaults(func=..., changes=False)                     # read-only
    p.set_defaults(func=..., changes=True, audit_action="ca.revoke",
                   audit_subject="serial", audit_detail=("reason", "hold"))
    p.set_defaults(func=..., changes=True, audit_action="registry.load",
                   audits_itself=True)

A command that changes anything needs an operator: the one logged in (a session keyed in
the HSM, see `issuance.operators`) whose roles meet the command's `roles=` declaration
(`authorise`); a bare `--operator NAME` (added to it here when it has none) or
`$MYNACARD_OPERATOR` only in development mode or before the first operator is enrolled.
Without one it exits 2 and does nothing; with the wrong role, 1.
After it ran, the root command appends one audit entry -- operator, action, subject
(the argument `audit_subject` names), outcome (done for exit 0, refused for 1 and 2,
failed otherwise) and the non-secret arguments `audit_detail` names. A command that
`audits_itself` writes richer entries of its own into the issuance database its `--db`
names; the root command adds an entry only when it wrote none (it stopped before).
A command that declares nothing is treated as changing things (and the parser-tree
test fails until it declares).

The audit log: one per center, in the issuance database -- `--db` of the issuance
commands, else `$MYNACARD_DB`, else HOME/issuance.sqlite3, created on demand. Commands
of other components (`ca`, `crl`, `rp`, `hsm`, `emulator`) write theirs there too
(their own `--db` names the certificate store, not the audit log). Entries are keyed
by the audit key in the center's HSM once `center init` has made it (see
`issuance.audit.keyer`).
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from importlib.metadata import entry_points
from typing import Any

from issuance.cli.home import HOME_ENV, HomeError, load_emulator_env, resolve_home

EPILOG = f"""\
State: everything the CLI keeps lives in one directory: --home DIR, else ${HOME_ENV},
else ~/.local/share/mynacard.

Operator: commands that change anything need a logged-in operator whose role the
command accepts (`mynacard login --operator NAME --pin-source env:VAR`; a bare
--operator NAME or $MYNACARD_OPERATOR only in development mode, $MYNACARD_DEVELOPMENT=1)
and are recorded in the audit log (`mynacard audit show`, `mynacard audit verify`).

Examples:
  mynacard login --operator alice --pin-source env:ALICE_PASSWORD
  mynacard emulator up --cards 1 --sample
  mynacard card info --reader "Virtual PCD 00 00"
  mynacard emulator down
"""

COMMAND_KEY = "mynacard_command"  # set on every command parser: its path, e.g. "ca issue"
SECRET_NAMES = re.compile(r"pin|password|passphrase|secret|key_file|token_source", re.I)

EXIT_REFUSED = 1
EXIT_USAGE = 2
EXIT_FAILURE = 3


@dataclass(frozen=True)
class Declaration:
    """What a command says about itself (its parser's own `set_defaults`)."""

    changes: bool
    action: str
    subject: str | None = None
    detail: tuple[str, ...] = ()
    audits_itself: bool = False
    declared: bool = True
    named: bool = False  # audit_action given explicitly
    roles: tuple[str, ...] | None = None  # who may run it (`roles=`; "*" any operator)
    bootstrap: bool = False  # may enrol the first operator of a center without a login
    authenticates: bool = False  # checks the operator's credential itself (login)
    dual_control: bool = False  # a second CA officer authenticates in the same command

    @classmethod
    def of(cls, path: str, defaults: Mapping[str, Any]) -> Declaration:
        from issuance.operators.roles import declared

        action = str(defaults.get("audit_action") or path.replace(" ", "."))
        roles = declared(defaults.get("roles"))
        if "changes" not in defaults:  # undeclared: assume the worst
            return cls(changes=True, action=action, declared=False, roles=roles)
        return cls(
            changes=bool(defaults["changes"]),
            action=action,
            subject=defaults.get("audit_subject"),
            detail=tuple(defaults.get("audit_detail") or ()),
            audits_itself=bool(defaults.get("audits_itself", False)),
            named="audit_action" in defaults,
            roles=roles,
            bootstrap=bool(defaults.get("bootstrap", False)),
            authenticates=bool(defaults.get("authenticates", False)),
            dual_control=bool(defaults.get("dual_control", False)),
        )

    def problems(self) -> list[str]:
        """Why this declaration is not usable (empty when it is)."""
        out = []
        if not self.declared:
            out.append("declares no `changes=` in set_defaults")
        if self.declared and self.changes and not self.named:
            out.append("changes things but names no audit_action")
        if self.roles is None:
            out.append("declares no usable `roles=` (clerk, supervisor, ca-officer, auditor"
                       " or \"*\") in set_defaults")
        if self.changes and not re.fullmatch(r"[a-z][a-z0-9-]*(\.[a-z][a-z0-9-]*)*",
                                             self.action):
            out.append(f"audit action {self.action!r} is not dotted lower case")
        out += [f"records {name!r}, which may hold a secret" for name in self.detail
                if SECRET_NAMES.search(name)]
        return out


def command_tree(parser: argparse.ArgumentParser, path: str = "") -> dict[str, Any]:
    """Every parser that runs something (has a `func`), by its command path."""
    out: dict[str, Any] = {}
    if "func" in parser._defaults:
        out[path] = parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                out.update(command_tree(sub, f"{path} {name}".strip()))
    return out


def declaration(parser: argparse.ArgumentParser, path: str) -> Declaration:
    return Declaration.of(path, parser._defaults)


def _has_option(parser: argparse.ArgumentParser, option: str) -> bool:
    return any(option in a.option_strings for a in parser._actions)


def _prepare(parser: argparse.ArgumentParser) -> None:
    """Mark every command with its path; give each that changes things `--operator`."""
    from issuance.cli.output import add_generic_json, has_json, reports

    for path, sub in command_tree(parser).items():
        sub.set_defaults(**{COMMAND_KEY: path})
        if reports(sub) and not has_json(sub):
            add_generic_json(sub)
        if reports(sub) and not _has_option(sub, "--quiet"):
            sub.add_argument("--quiet", action="store_true",
                             help="no progress on stderr (it shows only on a terminal)")
        if declaration(sub, path).changes and not _has_option(sub, "--operator"):
            sub.add_argument("--operator", metavar="NAME",
                             help="who is acting (required; default $MYNACARD_OPERATOR)")
        if declaration(sub, path).dual_control:
            _add_second_officer(sub)


def _add_second_officer(sub: argparse.ArgumentParser) -> None:
    """Dual control: `--second-officer NAME`, who proves themselves with a password (one
    more kind of the command's `--pin-source`: `second-officer=SPEC`) or with their
    operator card (`--second-card --second-reader R`, its PIN `second-card=SPEC`)."""
    from hsm.options import add_deprecated_alias, add_pin_source, pin_source_action

    sub.add_argument("--second-officer", metavar="NAME",
                     help="the second CA officer (dual control; required)")
    sub.add_argument("--second-card", action="store_true",
                     help="the second officer proves themselves with their operator card")
    sub.add_argument("--second-reader", metavar="NAME",
                     help="the reader of the second officer's card (with --second-card)")
    pins = pin_source_action(sub)
    if pins is None:
        add_pin_source(sub, {"second-officer": "second_password_source",
                             "second-card": "second_pin_source"},
                       help="the second officer's password, or their card's PIN")
    else:
        pins.add_kind("second-officer", "second_password_source")
        pins.add_kind("second-card", "second_pin_source")
        sub.set_defaults(second_password_source=None, second_pin_source=None)
    add_deprecated_alias(sub, "--second-password-source",
                         new="--pin-source second-officer=SPEC", dest="second_password_source")
    add_deprecated_alias(sub, "--second-pin-source",
                         new="--pin-source second-card=SPEC", dest="second_pin_source")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mynacard",
        description="My Number Card and JPKI: emulated cards, HSM-backed CA, issuance.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--home", metavar="DIR", help=f"state directory (default: ${HOME_ENV})")
    parser.add_argument("--version", action="version", version=f"mynacard {_version()}")
    sub = parser.add_subparsers(title="commands", metavar="COMMAND")
    for ep in sorted(entry_points(group="mynacard.commands"), key=lambda e: e.name):
        try:
            register = ep.load()
        except ImportError as exc:  # a broken group must not take the others down
            print(f"mynacard: command group {ep.name!r} unavailable: {exc}", file=sys.stderr)
            continue
        register(sub)
    _register_builtin(sub)
    _prepare(parser)
    return parser


def _register_builtin(sub: Any) -> None:
    """The root command's own commands: `config show`, `completion`, `commands`."""
    from issuance.cli import commands, completion, config

    config.register(sub)
    completion.register(sub)
    commands.register(sub)


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("mynacard")
    except PackageNotFoundError:  # pragma: no cover - run from a source tree
        return "unknown"


def outcome_of(code: int) -> str:
    return "done" if code == 0 else "refused" if code in (1, 2) else "failed"


def _plain(value: Any) -> Any:
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return str(value)


def _entry_fields(args: argparse.Namespace, decl: Declaration) -> tuple[str, dict[str, Any]]:
    subject: Any = getattr(args, decl.subject, None) if decl.subject else None
    if isinstance(subject, list | tuple):
        subject = ",".join(str(s) for s in subject)
    detail = {name: _plain(getattr(args, name)) for name in decl.detail
              if not SECRET_NAMES.search(name) and getattr(args, name, None) is not None}
    if decl.dual_control and getattr(args, "second_officer", None):
        detail["second_officer"] = str(args.second_officer).strip()
        detail["second_credential"] = "card" if getattr(args, "second_card", False) \
            else "password"
    return (str(subject) if subject not in (None, "") else "-"), detail


class _Audited:
    """Runs one command that changes things: operator first, its audit entry after."""

    def __init__(self, args: argparse.Namespace, decl: Declaration, path: str,
                 keyer: Any) -> None:
        self.args, self.decl, self.path, self.keyer = args, decl, path, keyer
        from issuance.storage.config import resolve_db_url

        own_db = getattr(args, "db", None) if decl.audits_itself else None
        self.db_url = resolve_db_url(own_db, args.home)

    def _open(self) -> Any:
        from issuance.storage import open_database

        return open_database(self.db_url)

    def run(self) -> int:
        from issuance.audit.operator import acting

        args = self.args
        who = authorise(args, self.decl, self.path, self.keyer, self.db_url)
        if isinstance(who, int):
            return who
        if isinstance(who, Refused):
            with acting(who.who):
                return self._refused(who)
        args.operator = operator = who.operator
        with acting(who):
            return self._run(operator)

    def _run(self, operator: str) -> int:
        from issuance.audit.log import AuditLog
        from issuance.errors import IssuanceError

        args = self.args
        try:
            with self._open() as db:  # created on demand; the log must be writable first
                before = AuditLog(db).last_seq()
            if not self.decl.audits_itself and hasattr(self.keyer, "resolve"):
                self.keyer.resolve()  # a center whose audit key cannot be used: stop now
        except IssuanceError as exc:
            print(f"mynacard {self.path}: audit log unavailable, nothing done: {exc}",
                  file=sys.stderr)
            return EXIT_FAILURE
        code = EXIT_FAILURE
        try:
            code = run_command(args, self.path)
        except KeyboardInterrupt:
            code = 130
            raise
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 1
            raise
        finally:
            if self.decl.authenticates:  # a card login learns who from the card
                operator = getattr(args, "operator", None) or operator
            code = self._record(operator, before, code)
        return code

    def _refused(self, refused: Refused) -> int:
        """Record a logged-in operator's refusal by role or dual control."""
        from issuance.audit.log import AuditLog
        from issuance.errors import IssuanceError

        subject, detail = _entry_fields(self.args, self.decl)
        try:
            with self._open() as db:
                AuditLog(db).append(operator=refused.who.operator, action=self.decl.action,
                                    subject=subject, outcome=outcome_of(refused.code),
                                    detail={"command": self.path, "exit": refused.code,
                                            "refused_by": "operator rules", **detail})
        except IssuanceError as exc:
            print(f"mynacard {self.path}: the audit entry could not be written: {exc}",
                  file=sys.stderr)
        return refused.code

    def _record(self, operator: str, before: int, code: int) -> int:
        from issuance.audit.log import AuditLog
        from issuance.errors import IssuanceError

        try:
            with self._open() as db:
                log = AuditLog(db)
                if self.decl.audits_itself:
                    with db.transaction() as tx:
                        own = tx.query_one("SELECT seq FROM audit_log WHERE seq > ?"
                                           " AND operator = ? LIMIT 1", (before, operator))
                    if own is not None:
                        return code  # it wrote its own, richer entries
                subject, detail = _entry_fields(self.args, self.decl)
                log.append(operator=operator, action=self.decl.action, subject=subject,
                           outcome=outcome_of(code),
                           detail={"command": self.path, "exit": code, **detail})
        except IssuanceError as exc:
            print(f"mynacard {self.path}: the audit entry could not be written: {exc}",
                  file=sys.stderr)
            return code or EXIT_FAILURE
        return code


@dataclass(frozen=True)
class Refused:
    """A logged-in operator refused by the command's roles or its dual control: the exit
    code, and who, so the refusal is recorded."""

    code: int
    who: Any


def authorise(args: argparse.Namespace, decl: Declaration, path: str, keyer: Any,
              db_url: str) -> Any:
    """Who runs a command that changes things, and may they: an `Acting`, else the exit
    code (after a one-line error). A logged-in operator (session file keyed in the HSM)
    acts in their roles; in development mode a claimed `--operator`/$MYNACARD_OPERATOR
    acts in every role, recorded as "development"; the first operator of a center is
    enrolled by a `bootstrap` command; `login` itself checks the credential it is given.
    """
    from issuance.audit.operator import (
        DEVELOPMENT_ROLE,
        Acting,
        OperatorError,
        development_mode,
        resolve_operator,
    )
    from issuance.errors import IssuanceError
    from issuance.operators import OperatorsError, OperatorStore, SessionStore, allowed
    from issuance.storage import open_database

    claimed = getattr(args, "operator", None)

    def stop(message: str, code: int) -> int:
        print(f"mynacard {path}: {message}", file=sys.stderr)
        return code

    if decl.roles is None:
        return stop("the command declares no roles; it cannot be run", EXIT_USAGE)
    if decl.authenticates and getattr(args, "card", False) and claimed is None:
        from issuance.operators.cards import CARD_LOGIN

        return Acting(CARD_LOGIN, "claimed")  # who it is, the card tells (login --card)
    try:
        sessions = SessionStore(args.home, keyer)
        if sessions.exists() and not decl.authenticates:
            with open_database(db_url) as db:
                session = sessions.load(OperatorStore(db))
            if claimed is not None and claimed.strip() != session.operator:
                return stop(f"logged in as {session.operator!r}, not {claimed.strip()!r}"
                            " (log out first)", EXIT_USAGE)
            who = Acting(session.operator, ",".join(session.roles))
            if not allowed(session.roles, decl.roles):
                return Refused(stop(f"operator {session.operator!r} ({who.role}) may not"
                                    f" run this: it needs {' or '.join(decl.roles)}", 1), who)
            if decl.dual_control:
                try:
                    with open_database(db_url) as db:
                        second_officer(args, session.operator, OperatorStore(db))
                except OperatorsError as exc:
                    from issuance.operators.cards import OperatorCardMissing

                    code = EXIT_FAILURE if isinstance(exc, OperatorCardMissing) else 1
                    return Refused(stop(str(exc), code), who)
            return who
        if development_mode():
            return Acting(resolve_operator(claimed), DEVELOPMENT_ROLE)
        if decl.authenticates:
            return Acting(resolve_operator(claimed), "claimed")
        if decl.bootstrap:
            with open_database(db_url) as db:
                if OperatorStore(db).count() == 0:
                    return Acting(resolve_operator(claimed), "bootstrap")
    except OperatorError as exc:
        return stop(str(exc), EXIT_USAGE)
    except IssuanceError as exc:
        return stop(str(exc), 1)
    return stop("no operator is logged in: run `mynacard login --operator NAME`"
                " (pass --operator NAME or set $MYNACARD_OPERATOR only in development"
                " mode, $MYNACARD_DEVELOPMENT=1)", EXIT_USAGE)


def second_officer(args: argparse.Namespace, first: str, store: Any) -> str:
    """Dual control: a second, different CA officer proves who they are in the same
    command -- their password (a wrong one counts towards their lockout like a failed
    login) or their operator card (`--second-card --second-reader R`, a card login)."""
    from hsm import PinSource
    from hsm.pin_source import PinSourceError
    from issuance.operators import OperatorsError

    name = (getattr(args, "second_officer", None) or "").strip()
    spec = getattr(args, "second_password_source", None)
    by_card = bool(getattr(args, "second_card", False))
    if not name or not (spec or by_card):
        raise OperatorsError("the key ceremony needs a second CA officer:"
                             " --second-officer NAME and --pin-source second-officer=SPEC"
                             " or --second-card --second-reader R")
    if name == first:
        raise OperatorsError("the second officer must be a different operator")
    if by_card:
        from issuance.operators.card_cli import authenticate_card

        officer, _card = authenticate_card(args.home, store.db,
                                           getattr(args, "second_reader", None),
                                           getattr(args, "second_pin_source", None),
                                           expect=name)
    else:
        try:
            password = PinSource.from_spec(str(spec)).read()
        except PinSourceError as exc:
            raise OperatorsError(f"second officer: {exc}") from None
        officer = store.authenticate(name, password)
    if "ca-officer" not in officer.roles:
        raise OperatorsError(f"the second officer {name!r} is not a CA officer")
    return str(officer.name)


def spelled_out(argv: Sequence[str]) -> list[str]:
    """`verify serve …` is `verify-serve …`: `verify` itself requires --cert, --cms or
    --login, so the service lives in its own parser and this spelling leads to it."""
    out = list(argv)
    for i, word in enumerate(out[:-1]):
        if word == "verify" and out[i + 1] == "serve" and \
                all(w.startswith("-") or out[j - 1] == "--home" for j, w in enumerate(out[:i])):
            return out[:i] + ["verify-serve"] + out[i + 2:]
    return out


def main(argv: Sequence[str] | None = None) -> int:
    try:
        return _main(argv)
    except KeyboardInterrupt:  # before a command started (or after it ended): no trace
        print("mynacard: interrupted; nothing was changed", file=sys.stderr)
        return 130


def _main(argv: Sequence[str] | None) -> int:
    parser = build_parser()
    args = parser.parse_args(spelled_out(sys.argv[1:] if argv is None else argv))
    func = getattr(args, "func", None)
    if func is None:
        parser.print_help(sys.stderr)
        return 2
    path = getattr(args, COMMAND_KEY, "")
    from hsm.terminal import set_quiet

    set_quiet(getattr(args, "quiet", False) is True)  # for every Progress of the command
    if getattr(args, "json", False) is True:
        from issuance.cli.output import run_json

        return run_json(args, path, lambda: _dispatch(parser, args, path))
    return _dispatch(parser, args, path)


def _dispatch(parser: argparse.ArgumentParser, args: argparse.Namespace, path: str) -> int:
    """Resolve the home and configuration, then run the command (audited if it changes
    anything)."""
    if not getattr(args, "needs_home", True):  # e.g. `completion`: prints, touches nothing
        return run_command(args, path)
    if _preflight(args, path):
        return EXIT_USAGE
    try:  # only the commands that set a home up (creates_home) may create a missing one
        args.home = resolve_home(args.home, create=getattr(args, "creates_home", False))
    except (HomeError, OSError) as exc:
        print(f"mynacard: error: {exc}", file=sys.stderr)
        return 2
    load_emulator_env(args.home)
    code = _apply_config(args, path)
    if code:
        return code
    from issuance.audit.keyer import LazyCenterKeyer, keyed_by

    tree = command_tree(parser)
    decl = declaration(tree[path], path) if path in tree else Declaration(True, "unknown",
                                                                           declared=False)
    keyer = LazyCenterKeyer(args.home, create=decl.changes)  # reading makes no key
    try:
        with keyed_by(keyer):
            if decl.changes:
                return _Audited(args, decl, path, keyer).run()
            return run_command(args, path)
    except KeyboardInterrupt:
        print(f"mynacard {path}: interrupted; {_interrupted_state(decl, args)}",
              file=sys.stderr)
        return 130
    finally:
        keyer.close()


def _preflight(args: argparse.Namespace, path: str) -> bool:
    """A command's `preflight(args, home)` may refuse before the home is created."""
    from pathlib import Path

    from issuance.cli.home import default_home

    check = getattr(args, "preflight", None)
    if check is None:
        return False
    problem = check(args, Path(args.home) if args.home else default_home())
    if problem:
        print(f"mynacard {path}: error: {problem}", file=sys.stderr)
    return bool(problem)


def _apply_config(args: argparse.Namespace, path: str) -> int:
    """Fill unset options from HOME/config.toml (what `center init` chose); 0 or exit 3."""
    from issuance.cli.config import ConfigError, apply_config, load_config

    try:
        apply_config(args, path, load_config(args.home))
    except ConfigError as exc:
        print(f"mynacard {path}: error: {exc}", file=sys.stderr)
        return EXIT_FAILURE
    return 0


def _interrupted_state(decl: Declaration, args: argparse.Namespace | None = None) -> str:
    """What a Ctrl-C left behind, in words an operator can act on: the command's own
    `on_interrupt` (formatted with its arguments) when it declares one and they are all
    given, else what holds for every command."""
    if not decl.changes:
        return "nothing was changed"
    told = getattr(args, "on_interrupt", None) if args is not None else None
    if told:
        try:
            import shlex

            values = {k: shlex.quote(v) if isinstance(v, str) else v
                      for k, v in vars(args).items() if v is not None}
            return str(told).format(**values)
        except (KeyError, IndexError, ValueError):
            pass  # e.g. a batch: no single application to name
    return ("what completed is kept and recorded in the audit log "
            "(`mynacard audit show`); run the command again to finish")


def exit_code_for(exc: BaseException) -> int:
    """The README's exit code for an exception no command group handled.

    1 refused by a rule or invalid input, 3 failure of a part (storage, HSM, card,
    network). The roots are looked up by name so that the root command does not tie
    itself to every package's error classes.
    """
    names = {cls.__name__ for cls in type(exc).__mro__}
    if "PkiError" in names:  # as the CA's commands map it: only a failed store is a part
        return EXIT_FAILURE if "StoreError" in names and "LookupError" not in names \
            else EXIT_REFUSED
    if names & {"Refused", "PinIncorrect", "PinBlocked", "ProfileError", "UriError",
                "PinSourceError", "ValueError", "OutputExists", "FileExistsError",
                "FileNotFoundError"}:
        return EXIT_REFUSED
    return EXIT_FAILURE


def one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def run_command(args: argparse.Namespace, path: str) -> int:
    """Run a command's function; whatever escapes it becomes one line and an exit code.

    Expected failures (the packages' error roots, files, end of input at a prompt) say
    what happened and what to do; anything else is a bug: one line, and the traceback
    goes to a 0600 log in the home for the report.
    """
    from card.errors import CardError
    from hsm.errors import HsmError
    from issuance.errors import IssuanceError
    from pki.errors import PkiError

    where = f"mynacard {path}".strip()
    try:
        return _call(args)
    except EOFError:
        print(f"{where}: end of input at a prompt; nothing was entered (give the value "
              "with --pin-source or on a terminal)", file=sys.stderr)
        return EXIT_REFUSED
    except CardError as exc:
        from card.errors import what_to_do

        print(f"{where}: error: {what_to_do(exc, getattr(args, 'reader', None))}",
              file=sys.stderr)
        return exit_code_for(exc)
    except (HsmError, PkiError, IssuanceError) as exc:
        print(f"{where}: error: {one_line(exc)}", file=sys.stderr)
        return exit_code_for(exc)
    except ConnectionError as exc:  # a server the command talks to (OCSP, HTTP)
        print(f"{where}: error: {exc.strerror or one_line(exc)}: check that the server is "
              "running and reachable, then run the command again", file=sys.stderr)
        return EXIT_FAILURE
    except FileNotFoundError as exc:  # a path the operator named: invalid input
        print(f"{where}: error: {exc.filename or one_line(exc)}: no such file or directory "
              "(check the path; create a missing output directory first)", file=sys.stderr)
        return EXIT_REFUSED
    except OSError as exc:
        print(f"{where}: error: {(exc.filename or '')} {exc.strerror or one_line(exc)}"
              .replace("error:  ", "error: "), file=sys.stderr)
        return exit_code_for(exc) if isinstance(exc, FileExistsError) else EXIT_FAILURE
    except (KeyboardInterrupt, SystemExit):
        raise
    except Exception as exc:  # noqa: BLE001 - the last resort: never a traceback
        log = _write_crash_log(args, path)
        print(f"{where}: internal error: {type(exc).__name__}: {one_line(exc)}"
              + (f" (details in {log})" if log else ""), file=sys.stderr)
        return EXIT_FAILURE


def _call(args: argparse.Namespace) -> int:
    """The command's function; a progress line it left open is ended before anything
    else is printed."""
    from hsm.terminal import finish_all

    try:
        return int(args.func(args) or 0)
    finally:
        finish_all()


def _write_crash_log(args: argparse.Namespace, path: str) -> str | None:
    """Save the traceback of an unexpected exception in HOME/logs (0600); its path."""
    import datetime as dt
    import traceback
    from pathlib import Path

    from hsm.files import private_dir, write_file

    home = getattr(args, "home", None)
    if home is None:
        return None
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S%fZ")
    target = Path(home) / "logs" / f"crash-{stamp}.log"
    try:
        private_dir(target.parent)
        write_file(target, f"mynacard {path}\n" + traceback.format_exc())
    except OSError:
        return None
    return str(target)

if __name__ == "__main__":
    sys.exit(main())
