"""Operator IC cards: issuing one (`issue_operator_card`) and logging in with it
(`CardLogin`, `sign_on_card`).

An operator card is a blank card personalised by the center like a resident's card, but
only in its JPKI application: the user-authentication key pair is generated on the card,
the card proves the key is its own (key attestation, checked in the HSM), the CA's
operator hierarchy certifies it (subject: operator and center, EKU clientAuth, no data
of any resident), and the operator sets the card's PIN. The card serial and the
certificate are recorded against the operator (`operator_cards`, core migration 4).

A card login: the center makes a fresh random challenge, the card signs
`OPERATOR_LOGIN_CONTEXT || operator-root fingerprint || challenge` with the operator key
after its PIN, and the center checks the signature against the certificate, the
certificate against the enrolled card, its chain to the operator root and its status in
the certificate store, and the operator's own state. A challenge is spent on its first
answer, so an old signature is never accepted again. The session is then bound to the
certificate (credential id `card:<fingerprint>`): revoking the card ends it.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import os
import secrets
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.serialization import Encoding

from card import contract
from card.attestation import AttestationFailed, KeyAttestor
from card.contract import LifeCycle, Tag
from card.errors import (
    CardError,
    NoCard,
    PinBlocked,
    PinIncorrect,
    ReaderNotFound,
    StatusError,
)
from card.formats import validate_pin, yyyymmdd
from card.issuer import IssuerClient
from card.jpki import CertKind, JpkiClient, Key, digest_info
from card.session import FileEmpty
from card.transport import Transport
from issuance.audit.log import append_entry
from issuance.operators.errors import OperatorsError
from issuance.operators.store import Operator, OperatorStore
from issuance.storage.db import Database
from pki.ca import CAConfig, IssuingCA
from pki.operator_profile import operator_name_of
from pki.profiles import Hierarchy, Profile, certificate_profile
from pki.store import CertificateStore
from pki.verify import RevocationCheck, verify_certificate

OPERATOR_LOGIN_CONTEXT = b"mynacard-operator-login-v1\x00"
CHALLENGE_BYTES = 32
CARD_PREFIX = "card:"
CARD_LOGIN = "(operator card)"  # who a card login claims to be until the card is checked
Clock = Callable[[], dt.datetime]


class OperatorCardMissing(OperatorsError):
    """No card (or no such reader): a part is missing, not a rule refusing (exit 3)."""


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def fingerprint_of(cert: x509.Certificate) -> str:
    """SHA-256 of the certificate's DER, lower-case hex."""
    return hashlib.sha256(cert.public_bytes(Encoding.DER)).hexdigest()


def card_credential(fingerprint: str) -> str:
    """The credential id a card login's session is bound to."""
    return CARD_PREFIX + fingerprint


@dataclass(frozen=True)
class OperatorCard:
    card_serial: str
    operator: str
    cert_serial: str  # hex
    fingerprint: str
    not_after: str
    state: str
    issued_at: str

    @property
    def credential_id(self) -> str:
        return card_credential(self.fingerprint)

    def to_json(self) -> dict[str, Any]:
        return {"card_serial": self.card_serial, "operator": self.operator,
                "certificate": self.cert_serial, "fingerprint": self.fingerprint,
                "not_after": self.not_after, "state": self.state, "issued_at": self.issued_at}


def _card(row: dict[str, Any]) -> OperatorCard:
    return OperatorCard(str(row["card_serial"]), str(row["operator"]), str(row["cert_serial"]),
                        str(row["fingerprint"]), str(row["not_after"]), str(row["state"]),
                        str(row["issued_at"]))


class OperatorCardStore:
    """The `operator_cards` table."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def active_for(self, operator: str) -> OperatorCard | None:
        with self.db.transaction() as tx:
            row = tx.query_one("SELECT * FROM operator_cards WHERE operator = ? AND"
                               " state = 'active'", (operator,))
        return _card(row) if row else None

    def by_fingerprint(self, fingerprint: str) -> OperatorCard | None:
        with self.db.transaction() as tx:
            row = tx.query_one("SELECT * FROM operator_cards WHERE fingerprint = ?",
                               (fingerprint,))
        return _card(row) if row else None

    def get(self, card_serial: str) -> OperatorCard | None:
        with self.db.transaction() as tx:
            row = tx.query_one("SELECT * FROM operator_cards WHERE card_serial = ?",
                               (card_serial,))
        return _card(row) if row else None

    def of(self, operator: str) -> list[OperatorCard]:
        with self.db.transaction() as tx:
            rows = tx.query("SELECT * FROM operator_cards WHERE operator = ?"
                            " ORDER BY issued_at", (operator,))
        return [_card(r) for r in rows]

    def mark_revoked(self, tx: Any, operator: str, at: dt.datetime) -> list[OperatorCard]:
        """Every active card of `operator` revoked (in the caller's transaction)."""
        rows = [_card(r) for r in tx.query("SELECT * FROM operator_cards WHERE operator = ?"
                                           " AND state = 'active'", (operator,))]
        tx.execute("UPDATE operator_cards SET state = 'revoked', revoked_at = ? WHERE"
                   " operator = ? AND state = 'active'", (at.isoformat(), operator))
        return rows


def revoke_operator_cards(db: Database, store: CertificateStore, operator: str, *,
                          actor: str, why: str, clock: Clock = _now) -> list[OperatorCard]:
    """Revoke every active card of `operator`: its certificate in the store (CRL, OCSP)
    and its row (which ends a session bound to it), with an audit entry."""
    now = clock().replace(microsecond=0)
    with db.transaction() as tx:
        tx.lock("mynacard.operators")
        cards = OperatorCardStore(db).mark_revoked(tx, operator, now)
        for card in cards:
            store.revoke(int(card.cert_serial, 16), reason=x509.ReasonFlags.cessation_of_operation,
                         cause=f"operator card of {operator}: {why}", at=now)
        if cards:
            append_entry(tx, operator=actor, action="operator.revoke-card", subject=operator,
                         outcome="done", detail={"why": why, "cards": [
                             {"card_serial": c.card_serial, "certificate": c.cert_serial}
                             for c in cards]}, at=now)
    return cards


# -- issuing ---------------------------------------------------------------------------
@dataclass(frozen=True)
class IssuedOperatorCard:
    operator: str
    card_serial: str
    certificate: x509.Certificate
    replaced: tuple[str, ...]  # serials of the operator's earlier cards, now revoked

    def to_json(self) -> dict[str, Any]:
        return {"operator": self.operator, "card_serial": self.card_serial,
                "certificate": format(self.certificate.serial_number, "x"),
                "fingerprint": fingerprint_of(self.certificate),
                "not_after": self.certificate.not_valid_after_utc.isoformat(),
                "replaced_cards": list(self.replaced)}


def check_card_pin(pin: str) -> str:
    """The operator's card PIN in the format of the JPKI user-authentication PIN."""
    try:
        return validate_pin(contract.JPKI.pin(contract.JPKI_AUTH_PIN), pin).decode("ascii")
    except ValueError as exc:
        raise OperatorsError(f"the card PIN: {exc}") from None


def _throwaway_pin(area: contract.AreaSpec, fid: int) -> str:
    """A random PIN nobody knows, for an area an operator card holds nothing in (the card
    needs every PIN set to become active)."""
    spec = area.pin(fid)
    return "".join(secrets.choice("0123456789") for _ in range(spec.min_length))


def issue_operator_card(db: Database, center: Any, operator: str, transport: Transport,
                        pin: str, *, issued_by: str, clock: Clock = _now) -> IssuedOperatorCard:
    """Personalise the blank card behind `transport` as `operator`'s card (see the module
    docstring); `center` is an opened `issuance.workflow.center.Center`. An earlier
    card of the operator is revoked once the new one is recorded. A card that does not
    prove its key is terminated and nothing is certified."""
    from issuance.workflow.center import ca_evidence

    check_card_pin(pin)
    op = OperatorStore(db).get(operator)
    if op is None:
        raise OperatorsError(f"no operator {operator!r} is enrolled")
    if op.disabled:
        raise OperatorsError(f"operator {operator!r} is disabled")
    client = IssuerClient(transport)
    serial = client.serial()
    life = client.life_cycle()
    if life != LifeCycle.BLANK:
        raise OperatorsError(f"card {serial} is not blank (life cycle {life.name.lower()}):"
                             " an operator card is made from a blank card")
    if OperatorCardStore(db).get(serial) is not None:
        raise OperatorsError(f"card {serial} was an operator card before; use a new blank card")
    ca: IssuingCA = center.ca
    root = ca.config.hierarchies.get(Hierarchy.OPERATOR)
    if root is None:
        raise OperatorsError("this center's CA has no operator hierarchy (it was made before"
                             " operator cards existed)")
    client.authenticate(center.authenticator)
    issued: list[x509.Certificate] = []

    def certify(auth_pub: rsa.RSAPublicKey | None, sign_pub: rsa.RSAPublicKey | None,
                attest: KeyAttestor) -> tuple[None, x509.Certificate, None, x509.Certificate]:
        assert auth_pub is not None and sign_pub is None
        evidence = center.attestation.require(attest, serial=serial,
                                              key_fid=contract.JPKI_AUTH_KEY,
                                              public_key=auth_pub)
        cert = ca.issue_operator(public_key=auth_pub, operator=op.name,
                                 evidence=ca_evidence(evidence)).certificate
        issued.append(cert)
        return None, cert, None, root.root_cert

    try:
        client.personalise_jpki(serial, auth=True, sign=False, issue_certificates=certify)
        cert = issued[0]
        expiry = cert.not_valid_after_utc.astimezone(dt.timezone(dt.timedelta(hours=9))).date()
        client.put_data(Tag.EXPIRY, yyyymmdd(expiry))
        client.set_reference_data(contract.JPKI, contract.JPKI_AUTH_PIN, pin)
        for area, fid in ((contract.TEXT, contract.TEXT_PIN), (contract.JUKI, contract.JUKI_PIN),
                          (contract.COMMON, contract.COMMON_PIN)):
            client.set_reference_data(area, fid, _throwaway_pin(area, fid))
        client.set_state(LifeCycle.PERSONALISED)
        client.set_state(LifeCycle.ISSUED)
        if client.life_cycle() != LifeCycle.ACTIVE:
            raise OperatorsError(f"card {serial} did not become active after issue")
    except AttestationFailed as exc:
        _refuse(db, client, serial, operator, issued_by, str(exc), clock)
        raise OperatorsError(f"card {serial} did not prove that its key was generated on it"
                             f" ({exc}); nothing was certified and the card is terminated:"
                             " use a new blank card") from None
    except BaseException:
        for cert in issued:  # certified but never delivered: revoke
            center.store.revoke(cert.serial_number, reason=x509.ReasonFlags.unspecified,
                                cause=f"operator card {serial} of {operator} not completed",
                                at=clock().replace(microsecond=0))
        raise
    return _record(db, center.store, op, serial, cert, issued_by, clock)


def _refuse(db: Database, client: IssuerClient, serial: str, operator: str, actor: str,
            reason: str, clock: Clock) -> None:
    with db.transaction() as tx:
        append_entry(tx, operator=actor, action="operator.issue-card", subject=operator,
                     outcome="refused", detail={"card_serial": serial,
                                                "reason": reason[:500]}, at=clock())
    try:
        client.terminate()
    except CardError:
        pass


def _record(db: Database, store: CertificateStore, op: Operator, serial: str,
            cert: x509.Certificate, actor: str, clock: Clock) -> IssuedOperatorCard:
    now = clock().replace(microsecond=0)
    fp = fingerprint_of(cert)
    with db.transaction() as tx:
        tx.lock("mynacard.operators")
        old = OperatorCardStore(db).mark_revoked(tx, op.name, now)
        tx.execute("INSERT INTO operator_cards (card_serial, operator, cert_serial,"
                   " fingerprint, not_after, state, issued_at, issued_by) VALUES"
                   " (?, ?, ?, ?, ?, 'active', ?, ?)",
                   (serial, op.name, format(cert.serial_number, "x"), fp,
                    cert.not_valid_after_utc.isoformat(), now.isoformat(), actor))
        append_entry(tx, operator=actor, action="operator.issue-card", subject=op.name,
                     outcome="done", detail={
                         "card_serial": serial, "certificate": format(cert.serial_number, "x"),
                         "replaced_cards": [c.card_serial for c in old]}, at=now)
    for card in old:
        store.revoke(int(card.cert_serial, 16), reason=x509.ReasonFlags.superseded,
                     cause=f"operator {op.name} has a new card {serial}", at=now)
    return IssuedOperatorCard(op.name, serial, cert, tuple(c.card_serial for c in old))


# -- logging in ------------------------------------------------------------------------
def login_message(root: x509.Certificate, challenge: bytes) -> bytes:
    """What the card signs: context, the operator root's fingerprint (this center), the
    challenge."""
    return OPERATOR_LOGIN_CONTEXT + root.fingerprint(hashes.SHA256()) + challenge


@dataclass(frozen=True)
class CardAnswer:
    certificate: bytes  # DER, as read from the card
    signature: bytes


LAST_TRY = ("one card PIN try is left: a login from the console never spends it (anyone"
            " who reaches the login page could block the card); log in at the reader with"
            " `mynacard login --card`, or ask a supervisor for a new card")


def sign_on_card(transport: Transport, pin: str, message: bytes, *,
                 spend_last_try: bool = True) -> CardAnswer:
    """The card's side: read the operator certificate, VERIFY the PIN, sign `message`
    with the user-authentication key. A wrong PIN says the tries left; a blocked PIN
    says a supervisor must reissue the card. Without `spend_last_try` (the console, whose
    login page anyone on the network may reach), a card with one try left is refused
    before its PIN is checked, so typing there can never block a card in the reader."""
    client = JpkiClient(transport)
    try:
        cert = client.read_certificate_der(CertKind.AUTH)
        if not spend_last_try and client.tries_left_for(Key.AUTH) == 1:
            raise OperatorsError(LAST_TRY)  # (none left: VERIFY says blocked, spends nothing)
        client.verify_pin(Key.AUTH, pin)
        signature = client.sign(Key.AUTH, digest_info("sha256", hashlib.sha256(message).digest()))
    except PinIncorrect as exc:
        raise OperatorsError(f"wrong card PIN, {exc.tries_left} tries left") from None
    except PinBlocked:
        raise OperatorsError("the card PIN is blocked: a supervisor must reissue the operator"
                             " card (`mynacard operator issue-card`)") from None
    except (NoCard, ReaderNotFound) as exc:
        raise OperatorCardMissing(f"insert the operator card ({exc})") from None
    except (StatusError, FileEmpty) as exc:  # answered, but not as an operator card does
        raise OperatorsError(f"the card in the reader is not a usable operator card ({exc})") \
            from None
    return CardAnswer(cert, signature)


class CardLogin:
    """The center's side of card logins: fresh single-use challenges, and the checks."""

    def __init__(self, db: Database, ca: CAConfig, store: CertificateStore, *,
                 clock: Clock = _now, random: Callable[[int], bytes] = os.urandom) -> None:
        root = ca.hierarchies.get(Hierarchy.OPERATOR)
        if root is None:
            raise OperatorsError("this center's CA has no operator hierarchy: no card logins")
        self.db, self.store, self.clock, self.random = db, store, clock, random
        self.root = root.root_cert
        self._outstanding: set[bytes] = set()
        self._lock = threading.Lock()

    def challenge(self) -> bytes:
        value = bytes(self.random(CHALLENGE_BYTES))
        if len(value) != CHALLENGE_BYTES:
            raise OperatorsError("the random source gave a short challenge")
        with self._lock:
            self._outstanding.add(value)
        return value

    def message(self, challenge: bytes) -> bytes:
        return login_message(self.root, challenge)

    def _status(self, cert: x509.Certificate, root: x509.Certificate) -> RevocationCheck:
        info = self.store.status(cert.serial_number)
        if info is None:
            return RevocationCheck("store", "unknown", detail="not issued by this center")
        if info.status.value == "good":
            return RevocationCheck("store", "good")
        return RevocationCheck("store", "revoked", revoked_at=info.revoked_at,
                               reason=info.reason.name if info.reason else info.status.value)

    def verify(self, challenge: bytes, answer: CardAnswer, *,
               expect: str | None = None) -> tuple[Operator, OperatorCard]:
        """The operator and card a signed challenge proves; OperatorsError otherwise."""
        with self._lock:
            fresh = challenge in self._outstanding
            self._outstanding.discard(challenge)
        if not fresh:
            raise OperatorsError("the card answered a challenge this center did not make or"
                                 " has seen answered already (replay)")
        try:
            cert = x509.load_der_x509_certificate(answer.certificate)
        except ValueError:
            raise OperatorsError("the card holds no readable certificate") from None
        if certificate_profile(cert) is not Profile.OPERATOR:
            raise OperatorsError("the card's certificate is not an operator certificate"
                                 " (another hierarchy's certificates cannot log in)")
        result = verify_certificate(cert, roots=[self.root], at=self.clock(),
                                    expected_profile=Profile.OPERATOR,
                                    ocsp_checker=self._status)
        if not result.valid:
            raise OperatorsError("the operator certificate is refused: "
                                 + "; ".join(result.reasons))
        public = cert.public_key()
        if not isinstance(public, rsa.RSAPublicKey):
            raise OperatorsError("the operator certificate holds no RSA key")
        try:
            public.verify(answer.signature, self.message(challenge), padding.PKCS1v15(),
                          hashes.SHA256())
        except InvalidSignature:
            raise OperatorsError("the card's signature does not verify with its certificate"
                                 " (not the card the certificate was issued to)") from None
        card = OperatorCardStore(self.db).by_fingerprint(fingerprint_of(cert))
        if card is None or card.state != "active":
            raise OperatorsError("this operator card is not enrolled or was revoked")
        if not hmac.compare_digest(card.operator.encode("utf-8", "surrogatepass"),
                                   operator_name_of(cert).encode("utf-8", "surrogatepass")):
            raise OperatorsError("the certificate names another operator than its card")
        if expect is not None and expect.strip() != card.operator:
            raise OperatorsError(f"the card is {card.operator!r}'s, not {expect.strip()!r}'s")
        op = OperatorStore(self.db).get(card.operator)
        if op is None:
            raise OperatorsError(f"no operator {card.operator!r} is enrolled")
        if op.disabled:
            raise OperatorsError(f"operator {op.name!r} is disabled")
        # a password locked by wrong guesses does not stop the card: it proves the operator
        # with its own key and PIN (which has its own retry limit), and a supervisor locked
        # out by someone typing at the login page can still log in with it
        return op, card


def login_with_card(db: Database, ca: CAConfig, store: CertificateStore,
                    transport: Transport, pin: str, *, expect: str | None = None,
                    clock: Clock = _now, spend_last_try: bool = True
                    ) -> tuple[Operator, OperatorCard]:
    """One card login: challenge, the card signs, the center checks."""
    login = CardLogin(db, ca, store, clock=clock)
    challenge = login.challenge()
    answer = sign_on_card(transport, pin, login.message(challenge),
                          spend_last_try=spend_last_try)
    return login.verify(challenge, answer, expect=expect)
