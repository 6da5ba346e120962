"""The CA certifies no key a card did not prove was generated on it (key attestation).

The attacks: a program posing as a card (issuer cryptogram ignored, 9000 to everything,
keys generated off the card) and a proxy in front of a genuine card over PC/SC that swaps
the public key the card generated for an off-card one. Both reach the issuing center
through the same Transport seam `Issuer.issue(..., transport=)` that PcscTransport fills;
everything behind it (issuer authentication, attestation checked in SoftHSM2, CA, store,
audit log) is the real one.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from workflow_support import OPERATOR, PINS, actions, apply, life_cycle, pins, resident

from card import contract
from card.apdu import Response
from card.attestation import AttestationFailed, KeyAttestation
from card.contract import SW, Ins, LifeCycle
from card.issuer import IssuerClient
from card.transport import PcscTransport, Transport
from emulator.launcher import Emulator
from emulator.pytest_plugin import CardReader, _take
from issuance.audit.log import AuditLog
from issuance.counter.operations import Counter
from issuance.personalisation.pins import PinKind
from issuance.registry.store import ResidentStore
from issuance.storage import Database
from issuance.workflow import records
from issuance.workflow.activate import Activator
from issuance.workflow.center import Center
from issuance.workflow.issue import Issuer
from issuance.workflow.machine import Refused

pytestmark = pytest.mark.personalises

OK = SW.OK.to_bytes(2, "big")


def _off_card_modulus() -> bytes:
    key = rsa.generate_private_key(65537, 2048).public_key()
    return key.public_numbers().n.to_bytes(256, "big")


class PosingCard:
    """A program posing as a blank card: it knows a serial, ignores the issuer cryptogram,
    answers 9000 to everything and hands out keys generated off the card."""

    def __init__(self, serial: str, *, attest: bytes | None = None) -> None:
        self.serial = serial
        self.life = LifeCycle.BLANK
        self.attest = attest  # what ATTEST KEY answers (None: 6D00, an old card)
        self.keys: dict[int, bytes] = {}
        self.ef = 0
        self.seen: list[int] = []

    def atr(self) -> bytes:
        return contract.ATR

    def transmit(self, apdu: bytes) -> Response:
        ins, p1, p2 = apdu[1], apdu[2], apdu[3]
        self.seen.append(ins)
        data = apdu[5:5 + apdu[4]] if len(apdu) > 5 else b""
        if ins == Ins.GET_DATA and (p1 << 8 | p2) == contract.Tag.CARD_SERIAL:
            return Response(self.serial.encode(), SW.OK)
        if ins == Ins.GET_DATA and (p1 << 8 | p2) == contract.Tag.LIFE_CYCLE:
            return Response(bytes([self.life]), SW.OK)
        if ins == Ins.GET_CHALLENGE:
            return Response(os.urandom(apdu[4] or 256), SW.OK)
        if ins == Ins.SELECT and p1 == contract.SELECT_P1_BY_FID:
            self.ef = int.from_bytes(data, "big")
        if ins == Ins.GENERATE_KEY:
            if p1 == contract.GENERATE_P1_GENERATE:
                self.keys[self.ef] = _off_card_modulus()
            return Response(self.keys[self.ef], SW.OK)
        if ins == Ins.SET_STATUS:
            self.life = LifeCycle(p2)
        if ins == Ins.ATTEST_KEY:
            if self.attest is None:
                return Response(b"", SW.INS_NOT_SUPPORTED)
            return Response(self.attest, SW.OK)
        return Response(b"", SW.OK)


class KeySwappingProxy:
    """A genuine card behind a proxy that replaces the public key the card generated
    with one generated off the card (whose private key the attacker keeps)."""

    def __init__(self, inner: Transport, swap: Callable[[int], bool]) -> None:
        self.inner = inner
        self.swap = swap
        self.fake: dict[int, bytes] = {}
        self.ef = 0

    def atr(self) -> bytes:
        return self.inner.atr()

    def transmit(self, apdu: bytes) -> Response:
        response = self.inner.transmit(apdu)
        if apdu[1] == Ins.SELECT and apdu[2] == contract.SELECT_P1_BY_FID:
            self.ef = int.from_bytes(apdu[5:7], "big")
        if apdu[1] == Ins.GENERATE_KEY and response.sw == SW.OK and self.swap(self.ef):
            if apdu[2] == contract.GENERATE_P1_GENERATE or self.ef not in self.fake:
                self.fake[self.ef] = _off_card_modulus()
            return Response(self.fake[self.ef], SW.OK)
        return response


def _refusals(db: Database, app: str) -> list[dict[str, Any]]:
    return [e.detail for e in AuditLog(db).entries()
            if e.subject == app and e.action == "issue.attestation" and e.outcome == "refused"]


def _card_state(db: Database, serial: str) -> str | None:
    with db.transaction() as tx:
        row = records.get_card(tx, serial)
    return row.state if row else None


def test_a_program_posing_as_a_card_gets_nothing_certified(db: Database, center: Center) -> None:
    for attest in (None, os.urandom(16)):  # no ATTEST KEY at all / a made-up MAC
        person = resident(40)
        app = apply(db, person)
        fake = PosingCard(f"4999{os.urandom(6).hex()[:11]}".translate(
            str.maketrans("abcdef", "123456")), attest=attest)
        with pytest.raises(Refused) as err:
            Issuer(db, center, operator=OPERATOR).issue(app, "fake reader", transport=fake)
        assert err.value.rule == "W8"
        assert Ins.ATTEST_KEY in fake.seen
        # nothing certified for the resident, nothing recorded
        assert center.store.by_holder(person.resident_code) == []
        with db.transaction() as tx:
            assert records.certificates_of(tx, app, "current") == []
        # the refusal is in the audit log with the card serial and the reason
        (refusal,) = _refusals(db, app)
        assert refusal["card_serial"] == fake.serial and "attest" in refusal["reason"]
        assert ("issue", "refused") in actions(db, app)
        assert _card_state(db, fake.serial) == "spoiled"
        # the fake was told to terminate (it answers 9000 to everything)
        assert fake.life == LifeCycle.TERMINATED


@pytest.mark.parametrize("swapped", [contract.JPKI_SIGN_KEY, contract.JPKI_AUTH_KEY])
def test_a_proxy_swapping_the_key_of_a_genuine_card_is_refused(
        db: Database, center: Center, blank_card: CardReader, swapped: int) -> None:
    person = resident(40)
    app = apply(db, person)
    with PcscTransport(blank_card) as pcsc:
        proxy = KeySwappingProxy(pcsc, lambda fid: fid == swapped)
        with pytest.raises(Refused) as err:
            Issuer(db, center, operator=OPERATOR).issue(app, blank_card, transport=proxy)
    assert err.value.rule == "W8" and "wrong attestation MAC" in err.value.message
    assert center.store.by_holder(person.resident_code) == []
    (refusal,) = _refusals(db, app)
    assert refusal["card_serial"] == blank_card.serial
    # the genuine card under the proxy is terminated and spoiled
    assert life_cycle(blank_card) == LifeCycle.TERMINATED
    assert _card_state(db, blank_card.serial) == "spoiled"
    assert ("issue.spoil", "ok") in actions(db, app)


def test_a_genuine_card_behind_an_honest_proxy_still_issues(
        db: Database, center: Center, blank_card: CardReader) -> None:
    person = resident(40)
    app = apply(db, person)
    with PcscTransport(blank_card) as pcsc:
        proxy = KeySwappingProxy(pcsc, lambda fid: False)
        result = Issuer(db, center, operator=OPERATOR).issue(app, blank_card, transport=proxy)
    assert result.sign_serial and result.auth_serial
    assert len(center.store.by_holder(person.resident_code)) == 2
    assert _refusals(db, app) == []


@pytest.fixture
def second_blank_card(mynacard_emulator: Emulator, _mynacard_readers: list[str]) -> CardReader:
    name = _take(mynacard_emulator, _mynacard_readers)
    return CardReader(name, mynacard_emulator.replace_card(name).serial)


def _generate(reader: str) -> tuple[IssuerClient, PcscTransport]:
    transport = PcscTransport(reader)
    transport.connect()
    client = IssuerClient(transport)
    client.authenticate(center_authenticator())
    client.generate_key(contract.JPKI_AUTH_KEY)
    client.generate_key(contract.JPKI_SIGN_KEY)
    return client, transport


def center_authenticator() -> Any:
    from card.issuer import HostIssuerAuthenticator

    return HostIssuerAuthenticator(contract.TEST_ISSUER_MASTER_KEY)


def test_evidence_only_proves_its_own_card_slot_and_challenge(
        center: Center, blank_card: CardReader, second_blank_card: CardReader) -> None:
    gate = center.attestation
    a, ta = _generate(blank_card)
    b, tb = _generate(second_blank_card)
    try:
        a_sign = a.read_public_key(contract.JPKI_SIGN_KEY)
        a_auth = a.read_public_key(contract.JPKI_AUTH_KEY)
        b_sign = b.read_public_key(contract.JPKI_SIGN_KEY)

        # a genuine card proves its own keys (checked in the HSM)
        gate.require(a.key_attestation, serial=blank_card.serial,
                     key_fid=contract.JPKI_SIGN_KEY, public_key=a_sign)

        # card A's key presented for card B: A's evidence names A; relabelled, the MAC fails
        evidence = a.key_attestation(contract.JPKI_SIGN_KEY, gate.challenge())
        with pytest.raises(AttestationFailed, match="not for card"):
            gate.check(evidence, serial=second_blank_card.serial,
                       key_fid=contract.JPKI_SIGN_KEY, public_key=a_sign)
        evidence = a.key_attestation(contract.JPKI_SIGN_KEY, gate.challenge())
        relabelled = dataclasses.replace(evidence, serial=second_blank_card.serial)
        with pytest.raises(AttestationFailed, match="wrong attestation MAC"):
            gate.check(relabelled, serial=second_blank_card.serial,
                       key_fid=contract.JPKI_SIGN_KEY, public_key=a_sign)
        # card B attesting its own slot does not vouch for A's key
        with pytest.raises(AttestationFailed, match="not the key to be certified"):
            gate.require(b.key_attestation, serial=second_blank_card.serial,
                         key_fid=contract.JPKI_SIGN_KEY, public_key=a_sign)
        with pytest.raises(AttestationFailed, match="wrong attestation MAC"):
            gate.require(lambda fid, ch: dataclasses.replace(
                b.key_attestation(fid, ch), public_key=a_sign),
                serial=second_blank_card.serial, key_fid=contract.JPKI_SIGN_KEY,
                public_key=a_sign)

        # the user-authentication key's attestation presented as the signing key
        evidence = a.key_attestation(contract.JPKI_AUTH_KEY, gate.challenge())
        with pytest.raises(AttestationFailed, match="not for key 001A"):
            gate.check(evidence, serial=blank_card.serial, key_fid=contract.JPKI_SIGN_KEY,
                       public_key=a_auth)
        evidence = a.key_attestation(contract.JPKI_AUTH_KEY, gate.challenge())
        with pytest.raises(AttestationFailed, match="wrong attestation MAC"):
            gate.check(dataclasses.replace(evidence, key_fid=contract.JPKI_SIGN_KEY),
                       serial=blank_card.serial, key_fid=contract.JPKI_SIGN_KEY,
                       public_key=a_auth)

        # a replayed answer: the same challenge is good once only
        evidence = a.key_attestation(contract.JPKI_SIGN_KEY, gate.challenge())
        gate.check(evidence, serial=blank_card.serial, key_fid=contract.JPKI_SIGN_KEY,
                   public_key=a_sign)
        with pytest.raises(AttestationFailed, match="replay"):
            gate.check(evidence, serial=blank_card.serial, key_fid=contract.JPKI_SIGN_KEY,
                       public_key=a_sign)
        # a challenge the center never issued
        own = a.key_attestation(contract.JPKI_SIGN_KEY, os.urandom(16))
        with pytest.raises(AttestationFailed, match="did not issue"):
            gate.check(own, serial=blank_card.serial, key_fid=contract.JPKI_SIGN_KEY,
                       public_key=a_sign)
        # an answer that is not for the challenge just sent
        with pytest.raises(AttestationFailed, match="challenge just sent"):
            gate.require(lambda fid, ch: KeyAttestation(
                own.serial, own.aid, own.key_fid, own.public_key, own.challenge, own.mac),
                serial=blank_card.serial, key_fid=contract.JPKI_SIGN_KEY, public_key=a_sign)
        assert b_sign != a_sign
    finally:
        ta.close()
        tb.close()


def test_a_card_update_certifies_no_swapped_signing_key(
        db: Database, center: Center, blank_card: CardReader) -> None:
    person = resident(40)
    app = apply(db, person)
    Issuer(db, center, operator=OPERATOR).issue(app, blank_card)
    Activator(db, operator=OPERATOR).activate(blank_card, pins)
    moved = dataclasses.replace(person, address="東京都千代田区霞が関２丁目１番２号")
    ResidentStore(db).put(moved)
    before = {r.serial for r in center.store.by_holder(person.resident_code)}
    with PcscTransport(blank_card) as pcsc:
        proxy = KeySwappingProxy(pcsc, lambda fid: fid == contract.JPKI_SIGN_KEY)
        with pytest.raises(Refused) as err:
            Counter(db, operator=OPERATOR, center=center).update_card(
                blank_card, identity_check="my number card", text_pin=PINS[PinKind.TEXT],
                sign_password=PINS[PinKind.SIGN], transport=proxy)
    assert err.value.rule == "C8"
    # no new certificate for the holder; the refusal audited with the card serial
    assert {r.serial for r in center.store.by_holder(person.resident_code)} == before
    refusals = [e.detail for e in AuditLog(db).entries()
                if e.action == "card.attestation" and e.outcome == "refused"]
    assert refusals and refusals[-1]["card_serial"] == blank_card.serial
    assert life_cycle(blank_card) == LifeCycle.TERMINATED
    assert _card_state(db, blank_card.serial) == "spoiled"


def test_the_centers_ca_itself_refuses_an_unattested_card_key(center: Center) -> None:
    from pki.attestation import AttestationRefused
    from pki.identity import Identity

    person = resident(40)
    key = rsa.generate_private_key(65537, 2048).public_key()
    with pytest.raises(AttestationRefused):
        center.ca.issue_user_authentication(
            public_key=key, identity=Identity(name=person.name, birth_date=person.birth_date,
                                              sex=1, address=person.address),
            holder_id=person.resident_code, card_expiry=person.birth_date.replace(year=2040))
    assert center.store.by_holder(person.resident_code) == []
