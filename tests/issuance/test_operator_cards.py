"""Operator IC cards: issued by the center (key generated and attested on the card, the
certificate from the operator hierarchy), logged in with (a fresh challenge signed by
the card after its PIN), refused when revoked, swapped, from another hierarchy or
replayed -- real emulated cards over PC/SC, SoftHSM2, SQLite and PostgreSQL."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509 import ocsp
from leaks import shows

from card import contract
from card.apdu import Response
from card.contract import SW, Ins, LifeCycle
from card.issuer import IssuerClient
from card.transport import PcscTransport, Transport
from hsm.module import SOFTHSM2_CONF_ENV
from issuance.audit.log import AuditLog
from issuance.cli.main import main
from issuance.operators import OperatorsError, OperatorStore
from issuance.operators.cards import (
    CardAnswer,
    CardLogin,
    OperatorCardStore,
    fingerprint_of,
    issue_operator_card,
    revoke_operator_cards,
    sign_on_card,
)
from issuance.operators.sessions import SESSION_FILE
from issuance.pytest_plugin import OperatorCardReader
from issuance.storage import Database, open_database
from issuance.storage.config import resolve_db_url
from issuance.workflow.center import Center, CenterConfig
from pki.ca import load_ca
from pki.crl import CrlPublisher
from pki.ocsp.responder import OcspResponder
from pki.operator_profile import operator_certificate_builder
from pki.profiles import Hierarchy, Profile, certificate_profile
from pki.store import open_readonly_store, open_store
from pki.store.records import CertStatus

pytestmark = pytest.mark.personalises

SUP_PW, ALICE_PW, SATO_PW = "super-password-1", "alice-password-1", "sato-password-1"
CARD_PIN, OTHER_PIN = "2468", "1357"


def _rows(home: Path) -> list[dict[str, Any]]:
    with open_database(resolve_db_url(None, home)) as db, db.transaction() as tx:
        return tx.query("SELECT * FROM audit_log ORDER BY seq")


@pytest.fixture
def center(tmp_path: Path, db_url: str, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A center set up by `center init` outside development mode, a supervisor and CA
    officer `sup` logged in with a password."""
    monkeypatch.delenv("MYNACARD_DEVELOPMENT", raising=False)
    monkeypatch.delenv("MYNACARD_OPERATOR", raising=False)
    monkeypatch.setenv(SOFTHSM2_CONF_ENV, str(tmp_path / "unused.conf"))
    for name, value in (("T_SUP_PW", SUP_PW), ("T_ALICE_PW", ALICE_PW),
                        ("T_SATO_PW", SATO_PW), ("T_CARD_PIN", CARD_PIN),
                        ("T_OTHER_PIN", OTHER_PIN), ("T_BAD_PIN", "12345")):
        monkeypatch.setenv(name, value)
    if db_url.startswith("sqlite"):
        monkeypatch.delenv("MYNACARD_DB", raising=False)
    else:
        monkeypatch.setenv("MYNACARD_DB", db_url)
    home = tmp_path / "center"
    home.mkdir()
    m = ["--home", str(home)]
    assert main([*m, "center", "init", "--master-key", "test", "--shards", "1",
                 "--operator", "sup"]) == 0
    assert main([*m, "operator", "add", "sup", "--role", "supervisor,ca-officer",
                 "--password-source", "env:T_SUP_PW", "--operator", "sup"]) == 0
    assert main([*m, "login", "--operator", "sup", "--password-source", "env:T_SUP_PW"]) == 0
    return home


def _store_status(home: Path, serial: int) -> CertStatus:
    store = open_store(CenterConfig.load(home).store)
    try:
        info = store.status(serial)
        assert info is not None
        return info.status
    finally:
        store.close()


def test_issue_login_act_disable(center: Path, blank_card: Any,
                                 capsys: pytest.CaptureFixture[str]) -> None:
    m = ["--home", str(center)]
    reader = str(blank_card)
    # `center init` made the operator hierarchy beside the two JPKI ones
    ca = load_ca(CenterConfig.load(center).ca_dir)
    assert set(ca.hierarchies) == set(Hierarchy)
    assert main([*m, "operator", "add", "alice", "--role", "clerk,supervisor",
                 "--password-source", "env:T_ALICE_PW"]) == 0
    # a PIN the card cannot take is refused before the card is touched
    assert main([*m, "operator", "issue-card", "alice", "--reader", reader,
                 "--pin-source", "env:T_BAD_PIN"]) == 1
    assert "4 characters" in capsys.readouterr().err
    capsys.readouterr()
    assert main([*m, "operator", "issue-card", "alice", "--reader", reader,
                 "--pin-source", "env:T_CARD_PIN", "--json"]) == 0
    out, err = capsys.readouterr()
    issued = json.loads(out)
    assert issued["card_serial"] == blank_card.serial and not shows(out + err, CARD_PIN)
    with PcscTransport(reader) as t:
        client = IssuerClient(t)
        assert client.life_cycle() == LifeCycle.ACTIVE
    with open_database(resolve_db_url(None, center)) as db:
        card = OperatorCardStore(db).active_for("alice")
    assert card is not None and card.card_serial == blank_card.serial
    assert card.cert_serial == issued["certificate"]
    # the certificate: operator profile, subject names the operator and the center only
    from card.jpki import CertKind, JpkiClient

    with PcscTransport(reader) as t:
        cert = JpkiClient(t).read_certificate(CertKind.AUTH)
    assert certificate_profile(cert) is Profile.OPERATOR
    assert cert.subject.rfc4514_string() == "CN=alice,OU=Operators,O=mynacard JPKI,C=JP"
    eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(eku) == [x509.oid.ExtendedKeyUsageOID.CLIENT_AUTH]
    days = (cert.not_valid_after_utc - cert.not_valid_before_utc).days
    assert 725 <= days <= 731
    with pytest.raises(x509.ExtensionNotFound):
        cert.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    entry = [r for r in _rows(center) if r["action"] == "operator.issue-card"][-1]
    assert entry["operator"] == "sup" and entry["outcome"] == "done"
    assert json.loads(entry["detail"])["card_serial"] == blank_card.serial

    # alice logs in with her card; a changing command runs as her
    assert main([*m, "logout"]) == 0
    capsys.readouterr()
    assert main([*m, "login", "--card", "--reader", reader, "--pin-source",
                 "env:T_CARD_PIN"]) == 0
    assert "'alice'" in capsys.readouterr().out
    session = json.loads((center / SESSION_FILE).read_text())
    assert session["operator"] == "alice"
    assert session["credential"] == "card:" + fingerprint_of(cert)
    login = [r for r in _rows(center) if r["action"] == "operator.login"][-1]
    assert login["operator"] == "alice" and login["outcome"] == "done"
    assert json.loads(login["detail"])["credential"] == "card"
    assert json.loads(login["detail"])["certificate"] == format(cert.serial_number, "x")
    assert not shows(json.dumps(login), CARD_PIN)
    assert main([*m, "operator", "add", "carol", "--role", "clerk",
                 "--password-source", "env:T_ALICE_PW"]) == 0
    added = [r for r in _rows(center) if r["action"] == "operator.add"][-1]
    assert added["operator"] == "alice" and added["role"] == "clerk,supervisor"
    # a password login of alice is still possible, and a card login for `bob` is refused
    capsys.readouterr()
    assert main([*m, "login", "--card", "--operator", "bob", "--reader", reader,
                 "--pin-source", "env:T_CARD_PIN"]) == 1
    assert "not 'bob'" in capsys.readouterr().err

    # the supervisor disables alice: her card is revoked, her login refused
    assert main([*m, "login", "--operator", "sup", "--password-source", "env:T_SUP_PW"]) == 0
    capsys.readouterr()
    assert main([*m, "operator", "disable", "alice"]) == 0
    assert blank_card.serial in capsys.readouterr().out
    assert _store_status(center, cert.serial_number) is CertStatus.REVOKED
    assert main([*m, "logout"]) == 0
    capsys.readouterr()
    assert main([*m, "login", "--card", "--reader", reader, "--pin-source",
                 "env:T_CARD_PIN"]) == 1
    err = capsys.readouterr().err
    assert "revoked" in err and len(err.strip().splitlines()) == 1
    assert not (center / SESSION_FILE).exists()
    # and the operator CRL lists it
    config = CenterConfig.load(center)
    with Center.open(center) as opened:
        crl = CrlPublisher(key_source=opened.km, ca=load_ca(config.ca_dir),
                           store=opened.store).build_shard(Hierarchy.OPERATOR, 0)
    assert crl.get_revoked_certificate_by_serial_number(cert.serial_number) is not None


def test_revoking_the_card_ends_its_session(operator_card: OperatorCardReader,
                                            monkeypatch: pytest.MonkeyPatch,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    home = operator_card.home
    m = ["--home", str(home)]
    monkeypatch.delenv("MYNACARD_DEVELOPMENT", raising=False)
    monkeypatch.delenv("MYNACARD_OPERATOR", raising=False)
    monkeypatch.delenv("MYNACARD_DB", raising=False)
    monkeypatch.setenv("T_OP_PIN", operator_card.pin)
    try:
        assert main([*m, "login", "--card", "--reader", operator_card.reader,
                     "--operator", operator_card.operator, "--pin-source", "env:T_OP_PIN"]) == 0
        capsys.readouterr()
        assert main([*m, "whoami", "--json"]) == 0
        who = json.loads(capsys.readouterr().out)
        assert who["operator"] == operator_card.operator and who["credential"] == "card"
        with open_database(operator_card.db_url) as db, Center.open(home) as center:
            revoke_operator_cards(db, center.store, operator_card.operator, actor="pytest",
                                  why="lost")
        capsys.readouterr()
        assert main([*m, "operator", "revoke-card", operator_card.operator]) == 1
        assert "revoked" in capsys.readouterr().err
    finally:
        (home / SESSION_FILE).unlink(missing_ok=True)


def test_wrong_and_blocked_pin_and_no_card(operator_card: OperatorCardReader,
                                           mynacard_emulator: Any,
                                           monkeypatch: pytest.MonkeyPatch,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    m = ["--home", str(operator_card.home)]
    monkeypatch.delenv("MYNACARD_DB", raising=False)
    monkeypatch.setenv("T_WRONG_PIN", "0000" if operator_card.pin != "0000" else "1111")
    login = [*m, "login", "--card", "--reader", operator_card.reader,
             "--pin-source", "env:T_WRONG_PIN"]
    tries = contract.JPKI.pin(contract.JPKI_AUTH_PIN).tries
    for left in range(tries - 1, 0, -1):
        assert main(login) == 1
        err = capsys.readouterr().err
        assert f"wrong card PIN, {left} tries left" in err, err
    assert main(login) == 1
    capsys.readouterr()
    assert main(login) == 1  # blocked now: even a right PIN would not help
    err = capsys.readouterr().err
    assert "blocked" in err and "supervisor must reissue" in err
    assert not (operator_card.home / SESSION_FILE).exists()
    mynacard_emulator.eject(operator_card.reader)
    assert main(login) == 3
    err = capsys.readouterr().err
    assert "insert the operator card" in err and len(err.strip().splitlines()) == 1


def _login(home: Path, url: str) -> tuple[Database, CardLogin, Any]:
    config = CenterConfig.load(home)
    db = open_database(url)
    store = open_store(config.store)
    return db, CardLogin(db, load_ca(config.ca_dir), store), store


def test_replayed_signature_is_refused(operator_card: OperatorCardReader) -> None:
    db, login, store = _login(operator_card.home, operator_card.db_url)
    try:
        challenge = login.challenge()
        with PcscTransport(operator_card.reader) as t:
            answer = sign_on_card(t, operator_card.pin, login.message(challenge))
        op, card = login.verify(challenge, answer)
        assert op.name == operator_card.operator and card.card_serial == operator_card.card_serial
        with pytest.raises(OperatorsError, match="replay"):
            login.verify(challenge, answer)  # the same challenge again
        fresh = login.challenge()
        with pytest.raises(OperatorsError, match="does not verify"):
            login.verify(fresh, answer)  # an old signature for a new challenge
        with pytest.raises(OperatorsError, match="replay"):
            login.verify(os.urandom(32), answer)  # a challenge this center never made
    finally:
        store.close()
        db.close()


class SigningSwapProxy:
    """A posing card: it hands out the enrolled operator certificate (public, copied from
    the genuine card) but signs with a key of its own."""

    def __init__(self, inner: Transport) -> None:
        self.inner = inner
        self.key = rsa.generate_private_key(65537, 2048)

    def atr(self) -> bytes:
        return self.inner.atr()

    def transmit(self, apdu: bytes) -> Response:
        response = self.inner.transmit(apdu)
        if apdu[1] == Ins.SIGN and response.sw == SW.OK:
            digest_info = apdu[5:5 + apdu[4]]
            from cryptography.hazmat.primitives.asymmetric.utils import Prehashed

            assert digest_info[:19] == bytes.fromhex("3031300d060960864801650304020105000420")
            sig = self.key.sign(digest_info[19:], padding.PKCS1v15(), Prehashed(hashes.SHA256()))
            return Response(sig, SW.OK)
        return response


def test_posing_card_and_other_hierarchies_cannot_log_in(
        operator_card: OperatorCardReader, sample_card: Any) -> None:
    db, login, store = _login(operator_card.home, operator_card.db_url)
    try:
        # a card posing with the enrolled certificate but a key of its own
        challenge = login.challenge()
        with PcscTransport(operator_card.reader) as t:
            answer = sign_on_card(SigningSwapProxy(t), operator_card.pin,
                                  login.message(challenge))
        assert answer.certificate == operator_card.certificate.public_bytes(Encoding.DER)
        with pytest.raises(OperatorsError, match="does not verify"):
            login.verify(challenge, answer)
        # a resident's card: its JPKI user-authentication certificate, properly signed
        challenge = login.challenge()
        with PcscTransport(str(sample_card)) as t:
            answer = sign_on_card(t, "1234", login.message(challenge))
        resident_cert = x509.load_der_x509_certificate(answer.certificate)
        assert certificate_profile(resident_cert) is Profile.USER_AUTHENTICATION
        with pytest.raises(OperatorsError, match="not an operator certificate"):
            login.verify(challenge, answer)
        # an operator certificate that the center's user-authentication root signed
        with Center.open(operator_card.home) as center:
            auth = center.ca.config.hierarchies[Hierarchy.AUTH]
            key = rsa.generate_private_key(65537, 2048)
            forged = operator_certificate_builder(
                public_key=key.public_key(), operator=operator_card.operator, center="x",
                issuer=auth.root_cert, serial=x509.random_serial_number(),
                now=operator_card.certificate.not_valid_before_utc,
                crl_url="http://crl.test/x", ocsp_url="http://ocsp.test/x",
            ).sign(center.km.signer(auth.root_key), hashes.SHA256())
        challenge = login.challenge()
        signature = key.sign(login.message(challenge), padding.PKCS1v15(), hashes.SHA256())
        with pytest.raises(OperatorsError, match="not issued by any of the trusted"):
            login.verify(challenge, CardAnswer(forged.public_bytes(Encoding.DER), signature))
    finally:
        store.close()
        db.close()


class KeySwappingProxy:
    """A genuine blank card behind a proxy that replaces the public key the card
    generated with one generated off the card."""

    def __init__(self, inner: Transport) -> None:
        self.inner = inner
        self.fake = rsa.generate_private_key(65537, 2048).public_key().public_numbers() \
            .n.to_bytes(256, "big")

    def atr(self) -> bytes:
        return self.inner.atr()

    def transmit(self, apdu: bytes) -> Response:
        response = self.inner.transmit(apdu)
        if apdu[1] == Ins.GENERATE_KEY and response.sw == SW.OK:
            return Response(self.fake, SW.OK)
        return response


def _issue(db: Database, home: Path, name: str, transport: Transport,
           wrap: Callable[[Transport], Transport] = lambda t: t) -> Any:
    with Center.open(home) as center:
        return issue_operator_card(db, center, name, wrap(transport), CARD_PIN,
                                   issued_by="pytest")


def test_swapped_key_is_not_certified(db: Database, mynacard_operator_center: Path,
                                      blank_card: Any) -> None:
    """On SQLite and PostgreSQL: the card's key attestation is required; a key swapped
    on the way is refused, the card terminated, nothing certified or recorded."""
    home = mynacard_operator_center
    name = f"swap-{blank_card.serial[-6:]}"
    OperatorStore(db).add(name, ("clerk",), ALICE_PW)
    with PcscTransport(str(blank_card)) as t:
        with pytest.raises(OperatorsError, match="did not prove"):
            _issue(db, home, name, t, KeySwappingProxy)
    with PcscTransport(str(blank_card)) as t:
        assert IssuerClient(t).life_cycle() == LifeCycle.TERMINATED
    assert OperatorCardStore(db).of(name) == []
    store = open_store(CenterConfig.load(home).store)
    try:
        assert store.by_holder(f"operator:{name}") == []
    finally:
        store.close()
    refused = [e for e in AuditLog(db).entries() if e.action == "operator.issue-card"]
    assert [e.outcome for e in refused] == ["refused"]
    assert refused[0].detail["card_serial"] == blank_card.serial


def test_a_new_card_replaces_the_old_one(db: Database, mynacard_operator_center: Path,
                                         blank_card: Any, mynacard_emulator: Any) -> None:
    """On SQLite and PostgreSQL: one active card per operator; the earlier one is
    revoked (superseded) when the next is recorded; a non-blank card is refused."""
    home = mynacard_operator_center
    name = f"twice-{blank_card.serial[-6:]}"
    OperatorStore(db).add(name, ("clerk",), ALICE_PW)
    with PcscTransport(str(blank_card)) as t:
        first = _issue(db, home, name, t)
    with PcscTransport(str(blank_card)) as t, pytest.raises(OperatorsError, match="not blank"):
        _issue(db, home, name, t)
    second_serial = mynacard_emulator.replace_card(str(blank_card)).serial
    with PcscTransport(str(blank_card)) as t:
        second = _issue(db, home, name, t)
    assert second.replaced == (first.card_serial,)
    cards = {c.card_serial: c.state for c in OperatorCardStore(db).of(name)}
    assert cards == {first.card_serial: "revoked", second_serial: "active"}
    assert _store_status(home, first.certificate.serial_number) is CertStatus.REVOKED
    assert _store_status(home, second.certificate.serial_number) is CertStatus.GOOD
    assert certificate_profile(second.certificate) is Profile.OPERATOR
    # the OCSP responder answers for operator certificates, signed by the operator
    # hierarchy's responder
    config = CenterConfig.load(home)
    ca = load_ca(config.ca_dir)
    root = ca.hierarchies[Hierarchy.OPERATOR]
    ro = open_readonly_store(config.store)
    try:
        with Center.open(home) as center:
            responder = OcspResponder.from_ca(key_source=center.km, ca=ca, store=ro)
            for cert, status in ((first.certificate, ocsp.OCSPCertStatus.REVOKED),
                                 (second.certificate, ocsp.OCSPCertStatus.GOOD)):
                request = ocsp.OCSPRequestBuilder().add_certificate(
                    cert, root.root_cert, hashes.SHA1()).build()
                answer = ocsp.load_der_ocsp_response(
                    responder.respond(request.public_bytes(Encoding.DER)).der)
                assert answer.certificate_status is status
                assert answer.certificates == [root.ocsp_cert]
    finally:
        ro.close()


def test_cards_that_are_no_operator_cards(mynacard_operator_center: Path, blank_card: Any,
                                          sample_card: Any, monkeypatch: pytest.MonkeyPatch,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    """Through the command: a blank card, and a resident's card whose JPKI
    user-authentication certificate signs the challenge properly, log in nobody."""
    monkeypatch.delenv("MYNACARD_DB", raising=False)
    monkeypatch.setenv("T_SAMPLE_PIN", "1234")
    m = ["--home", str(mynacard_operator_center)]
    for reader, says in ((blank_card, "not a usable operator card"),
                         (sample_card, "not an operator certificate")):
        capsys.readouterr()
        assert main([*m, "login", "--card", "--reader", str(reader),
                     "--pin-source", "env:T_SAMPLE_PIN"]) == 1
        err = capsys.readouterr().err
        assert says in err and len(err.strip().splitlines()) == 1, err
    assert not (mynacard_operator_center / SESSION_FILE).exists()


def test_dual_control_with_a_second_card(center: Path, blank_card: Any,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    m = ["--home", str(center)]
    assert main([*m, "operator", "add", "sato", "--role", "ca-officer",
                 "--password-source", "env:T_SATO_PW"]) == 0
    assert main([*m, "operator", "issue-card", "sato", "--reader", str(blank_card),
                 "--pin-source", "env:T_CARD_PIN"]) == 0
    key = [*m, "hsm", "create-key", "--token", "none", "--label", "ceremony",
           "--second-officer", "sato", "--second-card", "--second-reader", str(blank_card)]
    capsys.readouterr()
    assert main([*key, "--second-pin-source", "env:T_OTHER_PIN"]) == 1
    assert "wrong card PIN" in capsys.readouterr().err
    refused = _rows(center)[-1]
    assert refused["action"] == "hsm.create-key" and refused["outcome"] == "refused"
    code = main([*key, "--second-pin-source", "env:T_CARD_PIN"])
    entry = _rows(center)[-1]
    assert entry["action"] == "hsm.create-key" and entry["operator"] == "sup"
    detail = json.loads(entry["detail"])
    assert detail["second_officer"] == "sato" and detail["second_credential"] == "card"
    assert detail["exit"] == code and "refused_by" not in detail
    # in no field the command recorded; the log's own digests (hex) and timestamp may hold
    # any four digits by chance (a MAC "822468a9…" failed this once)
    recorded = {k: v for k, v in entry.items() if k not in ("prev_hash", "hash", "mac", "at")}
    assert set(recorded) >= {"operator", "action", "subject", "outcome", "detail"}
    assert CARD_PIN not in json.dumps(recorded)
