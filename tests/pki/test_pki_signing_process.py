"""Batch issuance signed by a process of its own (`hsm.SigningProcess`), on real SoftHSM2:
the same certificates as the signing threads give, answers kept in order through
failures, the PIN kept off the child's command line, a key from another token refused."""

from __future__ import annotations

import datetime as dt
import os
import signal
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.serialization import Encoding
from leaks import shows

from hsm import HsmError, KeyKind, PinSource, open_key_manager
from hsm.signing_process import SigningProcess
from pki.ca import CertificateRequest
from pki.errors import CAError
from pki.profiles import Hierarchy, Profile

PIN_SOURCE = "env:MYNACARD_TEST_PKI_PIN"


def _requests(holder_key: rsa.RSAPrivateKey, adult: object, n: int) -> list[CertificateRequest]:
    return [CertificateRequest(
        profile=Profile.SIGNING if i % 3 == 0 else Profile.USER_AUTHENTICATION,
        public_key=holder_key.public_key(), identity=adult,  # type: ignore[arg-type]
        holder_id=f"P{i}", card_expiry=dt.date(2035, 1, 1)) for i in range(n)]


@pytest.fixture
def signing(km) -> SigningProcess:
    with SigningProcess(km.uri, PinSource.from_spec(PIN_SOURCE)) as process:
        yield process
    assert process.outstanding == 0


@pytest.mark.parametrize("commit_every", [1, 3, 64])
def test_issue_many_signed_by_a_process_is_in_order_and_recorded(
        issuing, store, holder_key, adult, session_ca, signing, commit_every) -> None:
    requests = _requests(holder_key, adult, 9)
    issued = issuing.issue_many(requests, commit_every=commit_every, signing=signing)
    assert [c.profile for c in issued] == [r.profile for r in requests]
    assert len({c.serial for c in issued}) == 9 and store.count() == 9
    for i, c in enumerate(issued):
        rec = store.get(c.serial)
        assert (rec.holder_id, rec.profile) == (f"P{i}", c.profile.value)
        assert rec.der == c.certificate.public_bytes(Encoding.DER)
        c.certificate.verify_directly_issued_by(session_ca.hierarchies[c.hierarchy].root_cert)
    # the process serves the next batch as well
    again = issuing.issue_many(_requests(holder_key, adult, 2), signing=signing)
    assert store.count() == 11 and len(again) == 2


def test_a_failed_request_keeps_the_answers_in_order(km, session_ca, signing) -> None:
    label = session_ca.hierarchies[Hierarchy.AUTH].root_key
    signing.submit(label, b"first")
    signing.submit("no-such-key", b"second")
    signing.submit(label, b"third")
    public = session_ca.hierarchies[Hierarchy.AUTH].root_cert.public_key()
    public.verify(signing.result(), b"first", padding.PKCS1v15(), hashes.SHA256())
    with pytest.raises(HsmError, match="no-such-key"):
        signing.result()
    public.verify(signing.result(), b"third", padding.PKCS1v15(), hashes.SHA256())
    with pytest.raises(HsmError, match="no signature was asked for"):
        signing.result()


def test_the_pin_goes_over_the_pipe_not_the_command_line(km, signing) -> None:
    cmdline = Path(f"/proc/{signing.pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    assert "python" in cmdline  # the child's own command line was read
    assert not shows(cmdline, PinSource.from_spec(PIN_SOURCE).read())


def test_a_wrong_pin_is_refused_without_showing_it(km) -> None:
    with pytest.raises(HsmError) as err:
        SigningProcess(km.uri, PinSource.from_value("999999"))
    assert "could not open the HSM" in str(err.value) and not shows(str(err.value), "999999")


def test_a_key_from_another_token_under_the_same_label_is_refused(
        issuing, store, holder_key, adult, session_ca, hsm_home) -> None:
    from hsm.softhsm import init_token

    label = session_ca.hierarchies[Hierarchy.AUTH].root_key
    init_token(hsm_home, "pki-impostor", "87654321", "5678")
    with open_key_manager("pkcs11:token=pki-impostor",
                          pin_source=PinSource.from_value("5678")) as impostor:
        impostor.create_key(label, kind=KeyKind.RSA_2048)
        with SigningProcess(impostor.uri, PinSource.from_value("5678")) as wrong:
            request = [r for r in _requests(holder_key, adult, 2)
                       if r.profile is Profile.USER_AUTHENTICATION]
            with pytest.raises(CAError, match="does not verify with the auth root"):
                issuing.issue_many(request, signing=wrong)
            assert wrong.outstanding == 0
    assert store.count() == 0


def test_a_signing_process_that_dies_fails_the_batch_and_records_nothing(
        issuing, store, holder_key, adult, km) -> None:
    process = SigningProcess(km.uri, PinSource.from_spec(PIN_SOURCE))
    try:
        assert process.pid is not None
        os.kill(process.pid, signal.SIGKILL)
        with pytest.raises(HsmError, match="signing process has ended"):
            issuing.issue_many(_requests(holder_key, adult, 3), signing=process)
        assert store.count() == 0
    finally:
        process.close()
    with pytest.raises(HsmError, match="has ended"):
        process.submit("any", b"data")
