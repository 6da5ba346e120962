"""Crash and resume at every step: a real process personalising a real emulated card with
real SoftHSM2 is killed with SIGKILL right after each step; running the job again
finishes it with one card and one certificate of each kind, every other certificate the
crashed run issued revoked (unspecified: destroyed before delivery)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography import x509
from workflow_support import (
    OPERATOR,
    actions,
    app_state,
    apply,
    fresh_schema,
    life_cycle,
    resident,
)

from card import contract
from card.apdu import Response
from card.contract import LifeCycle
from card.issuer import IssuerClient
from card.transport import PcscTransport
from issuance.storage import Database
from issuance.workflow import records
from issuance.workflow.center import Center
from issuance.workflow.issue import STEPS, Issuer
from issuance.workflow.machine import Refused

WORKER = Path(__file__).with_name("workflow_crash_worker.py")
ROOT = Path(__file__).parents[2]
pytestmark = [pytest.mark.personalises, pytest.mark.slow]


def run_worker(home: Path, db_url: str, app: str, reader: str,
               step: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    return subprocess.run([sys.executable, str(WORKER), str(home), db_url, app, reader, step],
                          env=env, capture_output=True, text=True, timeout=120, check=False)


def crash(home: Path, db_url: str, app: str, reader: str, step: str) -> None:
    proc = run_worker(home, db_url, app, reader, step)
    assert proc.returncode == -signal.SIGKILL, (proc.returncode, proc.stderr)


def check_complete(db: Database, center: Center, app: str, reader: str, holder: str) -> None:
    """One issued card, one good certificate of each kind (on the card), the rest revoked."""
    assert app_state(db, app) == "personalised"
    assert life_cycle(reader) == LifeCycle.ISSUED
    with PcscTransport(reader) as t:
        client = IssuerClient(t)
        serial = client.serial()
        keys = {"signing": client.read_public_key(contract.JPKI_SIGN_KEY),
                "user_authentication": client.read_public_key(contract.JPKI_AUTH_KEY)}
    with db.transaction() as tx:
        live = records.live_card_of(tx, app)
        current = records.certificates_of(tx, app, "current")
        job = records.get_job(tx, app)
    assert live is not None and live.serial == serial and live.state == "issued"
    assert job is not None and job.step == "done"
    good = [r for r in center.store.by_holder(holder) if r.status.value == "good"]
    assert sorted(r.serial for r in good) == sorted(c.serial for c in current)
    assert sorted(c.kind for c in current) == ["signing", "user_authentication"]
    for cert in current:
        assert center.store.get(cert.serial).certificate().public_key() == keys[cert.kind]
    for rec in center.store.by_holder(holder):
        if rec.status.value != "good":
            assert rec.status.value == "revoked"
            assert rec.reason == x509.ReasonFlags.unspecified
            assert rec.cause and rec.cause.startswith("spoiled before delivery")


@pytest.mark.parametrize("step", STEPS)
def test_kill_at_each_step_then_resume(step: str, center_home: Path, db_url: str,
                                       db: Database, center: Center, blank_card: str) -> None:
    person = resident(35)
    app = apply(db, person)
    crash(center_home, db_url, app, blank_card, step)

    if step == "done":  # the job had finished: running it again is refused, nothing changes
        with pytest.raises(Refused) as err:
            Issuer(db, center, operator=OPERATOR).issue(app, blank_card)
        assert err.value.rule == "W1"
    else:
        # the state is either the old one or the new one, never in between
        assert app_state(db, app) in ("applied", "registered")
        proc = run_worker(center_home, db_url, app, blank_card, "none")
        assert proc.returncode == 0, proc.stderr
        result = json.loads(proc.stdout)
        assert result["resumed"] is True
        assert result["reused_finished_card"] is (step == "card_locked")
    check_complete(db, center, app, blank_card, person.resident_code)
    issued = [a for a, o in actions(db, app) if a == "issue" and o == "ok"]
    assert len(issued) == 1


def test_crash_twice_then_finish(center_home: Path, db_url: str, db: Database, center: Center,
                                 blank_card: str) -> None:
    person = resident(52)
    app = apply(db, person)
    crash(center_home, db_url, app, blank_card, "certificates_issued")
    crash(center_home, db_url, app, blank_card, "card_written")
    Issuer(db, center, operator=OPERATOR).issue(app, blank_card)
    check_complete(db, center, app, blank_card, person.resident_code)
    revoked = [r for r in center.store.by_holder(person.resident_code)
               if r.status.value == "revoked"]
    assert len(revoked) == 4  # two crashed runs, two certificates each
    assert ("issue.revoke_orphans", "ok") in actions(db, app)
    assert ("issue.revoke_spoiled", "ok") in actions(db, app)


def test_resume_on_another_card_spoils_the_first(
        center_home: Path, db_url: str, db: Database, center: Center, blank_card: str,
        mynacard_emulator: object) -> None:
    person = resident(44)
    app = apply(db, person)
    first = blank_card.serial  # type: ignore[attr-defined]
    crash(center_home, db_url, app, blank_card, "card_written")
    mynacard_emulator.replace_card(blank_card)  # type: ignore[attr-defined]
    result = Issuer(db, center, operator=OPERATOR).issue(app, blank_card)
    assert result.card_serial != first and result.resumed
    with db.transaction() as tx:
        spoiled = records.get_card(tx, first)
    assert spoiled is not None and spoiled.state == "spoiled"
    check_complete(db, center, app, blank_card, person.resident_code)
    assert ("issue.spoil", "ok") in actions(db, app)


@pytest.mark.parametrize("step", ["certificates_issued", "card_locked"])
def test_kill_and_resume_on_postgresql(step: str, pg_cluster: object, center_home: Path,
                                       center: Center, blank_card: str) -> None:
    from issuance.storage import open_database

    url = fresh_schema(pg_cluster)
    with open_database(url) as db:
        person = resident(36)
        app = apply(db, person)
        crash(center_home, url, app, blank_card, step)
        assert app_state(db, app) == "registered"
        proc = run_worker(center_home, url, app, blank_card, "none")
        assert proc.returncode == 0, proc.stderr
        check_complete(db, center, app, blank_card, person.resident_code)


def test_a_card_that_cannot_be_personalised_again_is_spoiled(
        center_home: Path, db_url: str, db: Database, center: Center, blank_card: str,
        mynacard_emulator: object) -> None:
    """The card was locked by the crashed run, but what it carries is not what the center
    recorded (here: the records were lost, as after restoring an older backup): it cannot
    be personalised again, so it is terminated and marked spoiled, and a new card is taken."""
    person = resident(58)
    app = apply(db, person)
    first = blank_card.serial  # type: ignore[attr-defined]
    crash(center_home, db_url, app, blank_card, "card_locked")
    with db.transaction() as tx:
        tx.execute("DELETE FROM issued_certificates WHERE application_id = ?", (app,))
        tx.execute("UPDATE workflow_jobs SET step = 'bound' WHERE application_id = ?", (app,))
    with pytest.raises(Refused) as err:
        Issuer(db, center, operator=OPERATOR).issue(app, blank_card)
    assert err.value.rule == "W4" and "spoiled" in err.value.message
    assert life_cycle(blank_card) == LifeCycle.TERMINATED
    with db.transaction() as tx:
        assert records.get_card(tx, first).state == "spoiled"  # type: ignore[union-attr]
    mynacard_emulator.replace_card(blank_card)  # type: ignore[attr-defined]
    result = Issuer(db, center, operator=OPERATOR).issue(app, blank_card)
    assert result.card_serial != first
    check_complete(db, center, app, blank_card, person.resident_code)


def test_a_job_still_running_elsewhere_is_not_taken_over(
        center_home: Path, db_url: str, db: Database, center: Center, blank_card: str) -> None:
    import socket

    person = resident(39)
    app = apply(db, person)
    crash(center_home, db_url, app, blank_card, "card_written")
    with db.transaction() as tx:  # as if another reader's process (alive: pid 1) owned it
        tx.execute("UPDATE workflow_jobs SET owner = ? WHERE application_id = ?",
                   (f"{socket.gethostname()}:1:1", app))
    with pytest.raises(Refused) as err:
        Issuer(db, center, operator=OPERATOR).issue(app, blank_card)
    assert err.value.rule == "W7"
    with db.transaction() as tx:  # that process has gone: the job is resumed
        tx.execute("UPDATE workflow_jobs SET owner = ? WHERE application_id = ?",
                   (f"{socket.gethostname()}:999999999:1", app))
    Issuer(db, center, operator=OPERATOR).issue(app, blank_card)
    check_complete(db, center, app, blank_card, person.resident_code)


class ResetAfterFirstAnswer:
    """A real PC/SC connection whose card another connection resets right after the
    first answer: what pcscd does for a process that died holding the card, a moment
    after the process is gone (the CI failure of `test_crash_twice_then_finish`)."""

    def __init__(self, inner: PcscTransport) -> None:
        self.inner = inner
        self.resets = 0

    @property
    def atr(self) -> bytes:
        return self.inner.atr

    @property
    def connection_count(self) -> int:
        return self.inner.connection_count

    def transmit(self, apdu: bytes) -> Response:
        response = self.inner.transmit(apdu)
        if self.resets == 0:
            other = PcscTransport(self.inner.reader)
            other.connect()
            other.close()  # SCardDisconnect(SCARD_RESET_CARD)
            self.resets += 1
        return response


def test_a_reset_while_the_card_is_identified_is_read_through(
        db: Database, center: Center, blank_card: str) -> None:
    person = resident(47)
    app = apply(db, person)
    said: list[str] = []
    with PcscTransport(blank_card) as pcsc:
        resetting = ResetAfterFirstAnswer(pcsc)
        result = Issuer(db, center, operator=OPERATOR, progress=said.append).issue(
            app, blank_card, transport=resetting)
    assert resetting.resets == 1
    assert "the card was reset by another connection; reading it again" in said
    assert result.resumed is False and result.life_cycle == "issued"
    check_complete(db, center, app, blank_card, person.resident_code)
