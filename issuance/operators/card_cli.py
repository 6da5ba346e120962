"""The operator-card commands: `mynacard operator issue-card`, `login --card`, the card
path of dual control (`--second-card`) and the revocation `operator disable` does."""

from __future__ import annotations

import argparse
import getpass
import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from card.errors import NoCard, ReaderNotFound
from card.transport import PcscTransport
from hsm import PinSource
from hsm.pin_source import PinSourceError
from issuance.audit.keyer import current_keyer
from issuance.audit.operator import Acting, become
from issuance.operators.cards import (
    CARD_LOGIN,
    OperatorCardMissing,
    OperatorCardStore,
    issue_operator_card,
    login_with_card,
    revoke_operator_cards,
)
from issuance.operators.errors import OperatorsError
from issuance.operators.sessions import SessionStore
from issuance.operators.store import Operator
from issuance.storage import open_database
from issuance.storage.config import resolve_db_url
from issuance.storage.db import Database


def read_card_pin(spec: str | None, what: str = "operator card PIN") -> str:
    """The PIN from a pin source, else asked on a terminal (never echoed or logged)."""
    if spec:
        try:
            return PinSource.from_spec(spec).read()
        except PinSourceError as exc:
            raise OperatorsError(f"{what}: {exc}") from None
    if not sys.stdin.isatty():
        raise OperatorsError(f"the {what} is needed: --pin-source env:NAME or file:PATH")
    return getpass.getpass(f"{what}: ")


@contextmanager
def card_in(reader: str | None) -> Iterator[PcscTransport]:
    """The card in `reader`; exit 3 (OperatorCardMissing) when there is none."""
    if not reader:
        raise OperatorsError("name the reader of the operator card: --reader NAME")
    try:
        with PcscTransport(reader) as transport:
            yield transport
    except (NoCard, ReaderNotFound) as exc:
        raise OperatorCardMissing(f"insert the operator card into reader {reader!r} ({exc})") \
            from None


def _center_parts(home: Path) -> tuple[Any, Any]:
    """The CA configuration and the certificate store of the home's center (no HSM)."""
    from issuance.workflow.center import CenterConfig
    from pki.ca import load_ca
    from pki.store import open_store

    config = CenterConfig.load(home)
    return load_ca(config.ca_dir), open_store(config.store)


def authenticate_card(home: Path, db: Database, reader: str | None, pin_spec: str | None,
                      *, expect: str | None = None) -> tuple[Operator, Any]:
    """A card login at this home's center: the operator and their card."""
    return login_card_at(home, db, reader, read_card_pin(pin_spec), expect=expect)


def login_card_at(home: Path, db: Database, reader: str | None, pin: str,
                  *, expect: str | None = None, spend_last_try: bool = True
                  ) -> tuple[Operator, Any]:
    """`authenticate_card` with the PIN already in hand (the counter console's login
    page types it, with `spend_last_try` off): the same challenge-response, the same
    checks."""
    ca, store = _center_parts(home)
    try:
        with card_in(reader) as transport:
            return login_with_card(db, ca, store, transport, pin, expect=expect,
                                   spend_last_try=spend_last_try)
    finally:
        store.close()


def login_card(args: argparse.Namespace) -> int:
    """`mynacard login --card --reader R`: the session is bound to the card's
    certificate."""
    args.credential = "card"
    claimed = (args.operator or "").strip() or None
    if claimed == CARD_LOGIN:
        claimed = None
    with open_database(resolve_db_url(None, args.home)) as db:
        op, card = authenticate_card(args.home, db, args.reader,
                                     args.pin_source or args.password_source,
                                     expect=claimed)
    args.operator = op.name
    args.certificate = card.cert_serial
    session = SessionStore(args.home, current_keyer()).open(
        op.name, op.roles, card.credential_id, hours=args.hours)
    become(Acting(op.name, ",".join(op.roles)))
    print(f"logged in with operator card {card.card_serial} as {op.name!r}"
          f" ({', '.join(op.roles)}) until {session.expires.isoformat(timespec='seconds')}")
    return 0


def revoke_cards(args: argparse.Namespace, db: Database, name: str, why: str) -> list[str]:
    """Revoke `name`'s active operator cards (certificates in the store and the rows)."""
    if OperatorCardStore(db).active_for(name) is None:
        return []
    _ca, store = _center_parts(args.home)
    try:
        actor = getattr(args, "operator", None) or name
        cards = revoke_operator_cards(db, store, name, actor=actor, why=why)
    finally:
        store.close()
    return [c.card_serial for c in cards]


def _issue_card(args: argparse.Namespace) -> int:
    from issuance.workflow.center import Center

    pin = read_card_pin(args.pin_source, "the operator's new card PIN")
    with open_database(resolve_db_url(None, args.home)) as db, Center.open(args.home) as center:
        with card_in(args.reader) as transport:
            issued = issue_operator_card(db, center, args.name, transport, pin,
                                         issued_by=args.operator or "-")
    if args.json:
        print(json.dumps(issued.to_json()))
    else:
        print(f"operator card {issued.card_serial} issued to {issued.operator!r}: certificate"
              f" {issued.certificate.serial_number:x} until"
              f" {issued.certificate.not_valid_after_utc.date().isoformat()}"
              + (f"; earlier card(s) {', '.join(issued.replaced)} revoked"
                 if issued.replaced else ""))
    return 0


def _revoke_card(args: argparse.Namespace) -> int:
    with open_database(resolve_db_url(None, args.home)) as db:
        revoked = revoke_cards(args, db, args.name, args.why)
    if not revoked:
        raise OperatorsError(f"operator {args.name!r} has no active operator card")
    print(f"operator card(s) {', '.join(revoked)} of {args.name!r} revoked")
    return 0


def _cards(args: argparse.Namespace) -> int:
    with open_database(resolve_db_url(None, args.home)) as db:
        cards = OperatorCardStore(db).of(args.name)
    if args.json:
        print(json.dumps({"cards": [c.to_json() for c in cards]}))
        return 0
    for c in cards:
        print(f"{c.card_serial}\t{c.state}\tcertificate {c.cert_serial}\tuntil {c.not_after}")
    return 0


def register_cards(osub: Any, command: Callable[[str, Callable[[argparse.Namespace], int]],
                                                Callable[[argparse.Namespace], int]]) -> None:
    issue = osub.add_parser(
        "issue-card", help="personalise a blank card as an operator's IC card",
        description="Generate the operator key on the blank card in --reader (with key"
                    " attestation), certify it in the operator hierarchy, set the card PIN"
                    " the operator chose and record the card against the operator. An"
                    " earlier card of the operator is revoked.")
    issue.add_argument("name")
    issue.add_argument("--reader", required=True, metavar="NAME", help="the blank card's reader")
    issue.add_argument("--pin-source", metavar="SPEC",
                       help="the card PIN the operator chose (4 digits; env:NAME, file:PATH;"
                            " else asked)")
    issue.add_argument("--json", action="store_true")
    issue.set_defaults(func=command("operator issue-card", _issue_card), changes=True,
                       audit_action="operator.issue-card", audit_subject="name",
                       audit_detail=("reader",), audits_itself=True, roles=("supervisor",))

    revoke = osub.add_parser("revoke-card", help="revoke an operator's card (lost, broken)")
    revoke.add_argument("name")
    revoke.add_argument("--why", default="revoked by a supervisor",
                        help="recorded in the audit log and the certificate store")
    revoke.set_defaults(func=command("operator revoke-card", _revoke_card), changes=True,
                        audit_action="operator.revoke-card", audit_subject="name",
                        audit_detail=("why",), audits_itself=True, roles=("supervisor",))

    cards = osub.add_parser("cards", help="an operator's IC cards")
    cards.add_argument("name")
    cards.add_argument("--json", action="store_true")
    cards.set_defaults(func=command("operator cards", _cards), changes=False, roles="*")
