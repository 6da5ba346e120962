"""`mynacard operator add|list|disable|passwd|issue-card`, `mynacard login|logout|whoami`."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from typing import Any

from hsm import PinSource
from hsm.options import add_deprecated_alias, add_pin_source
from hsm.pin_source import PinSourceError
from issuance.audit.keyer import current_keyer
from issuance.audit.operator import Acting, become
from issuance.errors import IssuanceError
from issuance.operators.roles import ROLES, parse_roles
from issuance.operators.sessions import DEFAULT_HOURS, SessionStore
from issuance.operators.store import OperatorStore
from issuance.storage import open_database
from issuance.storage.config import resolve_db_url


def _command(name: str, fn: Callable[[argparse.Namespace], int]
             ) -> Callable[[argparse.Namespace], int]:
    from issuance.operators.cards import OperatorCardMissing

    def run(args: argparse.Namespace) -> int:
        try:
            return fn(args)
        except OperatorCardMissing as exc:  # a part is missing: exit 3
            print(f"mynacard {name}: {exc}", file=sys.stderr)
            return 3
        except (IssuanceError, PinSourceError) as exc:
            print(f"mynacard {name}: {exc}", file=sys.stderr)
            return 1
    return run


def _password(spec: str | None) -> str:
    if not spec:
        raise PinSourceError("a password source is needed: --pin-source env:NAME,"
                             " file:PATH, fd:N or prompt")
    return PinSource.from_spec(spec).read()


def _password_option(parser: argparse.ArgumentParser) -> None:
    add_pin_source(parser, {"password": "password_source"}, help="where the password is")
    add_deprecated_alias(parser, "--password-source", new="--pin-source",
                         dest="password_source")


def _store(args: argparse.Namespace) -> Any:
    return open_database(resolve_db_url(None, args.home))


def _add(args: argparse.Namespace) -> int:
    roles = parse_roles(",".join(args.role))
    password = _password(args.password_source)
    with _store(args) as db:
        op = OperatorStore(db).add(args.name, roles, password)
    print(f"operator {op.name!r} enrolled ({', '.join(op.roles)})")
    return 0


def _list(args: argparse.Namespace) -> int:
    with _store(args) as db:
        ops = OperatorStore(db).list()
    if args.json:
        print(json.dumps({"operators": [o.to_json() for o in ops]}))
        return 0
    for o in ops:
        state = "disabled" if o.disabled else "locked" if o.locked else "active"
        print(f"{o.name}\t{','.join(o.roles)}\t{state}\tfailures={o.failures}")
    return 0


def _disable(args: argparse.Namespace) -> int:
    from issuance.operators.card_cli import revoke_cards

    with _store(args) as db:
        OperatorStore(db).disable(args.name)
        revoked = revoke_cards(args, db, args.name, "operator disabled")
    print(f"operator {args.name!r} disabled"
          + (f"; operator card(s) {', '.join(revoked)} revoked" if revoked else ""))
    return 0


def _passwd(args: argparse.Namespace) -> int:
    password = _password(args.password_source)
    with _store(args) as db:
        OperatorStore(db).set_password(args.name, password)
    print(f"operator {args.name!r}: new password set (failures cleared, unlocked)")
    return 0


def _login(args: argparse.Namespace) -> int:
    if args.card:
        from issuance.operators.card_cli import login_card

        return login_card(args)
    args.credential = "password"
    password = _password(args.password_source)
    with _store(args) as db:
        op = OperatorStore(db).authenticate(args.operator, password)
    session = SessionStore(args.home, current_keyer()).open(
        op.name, op.roles, op.credential_id, hours=args.hours)
    become(Acting(op.name, ",".join(op.roles)))
    print(f"logged in as {op.name!r} ({', '.join(op.roles)}) until"
          f" {session.expires.isoformat(timespec='seconds')}")
    return 0


def _logout(args: argparse.Namespace) -> int:
    SessionStore(args.home, current_keyer()).close()
    print("logged out")
    return 0


def _whoami(args: argparse.Namespace) -> int:
    from issuance.audit.keyer import LazyCenterKeyer

    keyer = LazyCenterKeyer(args.home, create=False)
    try:
        with _store(args) as db:
            session = SessionStore(args.home, keyer).load(OperatorStore(db))
    finally:
        keyer.close()
    if args.json:
        print(json.dumps(session.to_json()))
    else:
        print(f"{session.operator} ({', '.join(session.roles)}) until"
              f" {session.expires.isoformat(timespec='seconds')}, by"
              f" {session.credential_kind}")
    return 0


def register(sub: Any) -> None:
    op = sub.add_parser("operator", help="enrolled operators: add, list, disable, passwd")
    osub = op.add_subparsers(title="operator commands", metavar="COMMAND")
    role_help = f"role ({', '.join(ROLES)}); repeat or comma-separate for several"

    add = osub.add_parser("add", help="enrol an operator (the first needs no login)")
    add.add_argument("name")
    add.add_argument("--role", action="append", required=True, help=role_help)
    _password_option(add)
    add.set_defaults(func=_command("operator add", _add), changes=True,
                     audit_action="operator.add", audit_subject="name", audit_detail=("role",),
                     roles=("supervisor",), bootstrap=True)

    lst = osub.add_parser("list", help="the enrolled operators")
    lst.add_argument("--json", action="store_true")
    lst.set_defaults(func=_command("operator list", _list), changes=False, roles="*")

    dis = osub.add_parser("disable", help="an operator may no longer log in or act")
    dis.add_argument("name")
    dis.set_defaults(func=_command("operator disable", _disable), changes=True,
                     audit_action="operator.disable", audit_subject="name",
                     roles=("supervisor",))

    pw = osub.add_parser("passwd", help="set an operator's password (clears a lockout)")
    pw.add_argument("name")
    _password_option(pw)
    pw.set_defaults(func=_command("operator passwd", _passwd), changes=True,
                    audit_action="operator.passwd", audit_subject="name",
                    roles=("supervisor",))

    from issuance.operators.card_cli import register_cards

    register_cards(osub, _command)

    login = sub.add_parser("login", help="open an operator session (default 8 h)")
    login.add_argument("--operator", metavar="NAME", help="who logs in")
    add_pin_source(login, {"password": "password_source", "card": "pin_source"},
                   help="where the password is or, with --card, the operator card's PIN "
                        "(else asked)")
    add_deprecated_alias(login, "--password-source", new="--pin-source",
                         dest="password_source")
    login.add_argument("--card", action="store_true",
                       help="log in with the operator IC card in --reader (its PIN)")
    login.add_argument("--reader", metavar="NAME", help="the reader of the operator card")
    login.add_argument("--hours", type=float, default=DEFAULT_HOURS,
                       help=f"session length (default {DEFAULT_HOURS:g}, at most 24)")
    login.set_defaults(func=_command("login", _login), changes=True,
                       audit_action="operator.login", audit_subject="operator",
                       audit_detail=("credential", "certificate"),
                       roles="*", authenticates=True)

    logout = sub.add_parser("logout", help="end the operator session")
    logout.set_defaults(func=_command("logout", _logout), changes=True,
                        audit_action="operator.logout", roles="*")

    who = sub.add_parser("whoami", help="the logged-in operator and their roles")
    who.add_argument("--json", action="store_true")
    who.set_defaults(func=_command("whoami", _whoami), changes=False, roles="*")
