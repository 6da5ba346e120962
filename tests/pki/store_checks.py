"""Checks of the certificate store shared by the SQLite and the PostgreSQL tests."""

from __future__ import annotations

import datetime as dt

import pytest
from cryptography import x509

from pki.errors import UnknownCertificateError
from pki.store import CertStatus, Revocation


def three_certificates(issuing, holder_key, adult, clock):
    """R1: a signing and a user-authentication certificate (an hour apart); R2: one."""
    key = holder_key.public_key()
    a = issuing.issue_signing(public_key=key, identity=adult, holder_id="R1",
                              card_expiry=dt.date(2035, 1, 1))
    clock.advance(hours=1)
    b = issuing.issue_user_authentication(public_key=key, identity=adult, holder_id="R1",
                                          card_expiry=dt.date(2035, 1, 1))
    c = issuing.issue_signing(public_key=key, identity=adult, holder_id="R2",
                              card_expiry=dt.date(2035, 1, 1))
    return a, b, c


def check_revoke_many_is_revoke_in_order(store, a, b, c, clock) -> None:
    """`revoke_many` and `by_holders` behave as documented (run on SQLite and PostgreSQL)."""
    assert store.hold(c.serial, cause="phone", at=clock.now)
    clock.advance(hours=1)
    first = Revocation(a.serial, x509.ReasonFlags.affiliation_changed, "notice:1", clock.now)
    again = Revocation(a.serial, x509.ReasonFlags.cessation_of_operation, "notice:2",
                       clock.now)
    held = Revocation(c.serial, x509.ReasonFlags.cessation_of_operation, "notice:3",
                      clock.now)
    assert store.revoke_many([first, again, held]) == [True, False, True]
    rec = store.get(a.serial)
    assert (rec.status, rec.reason, rec.cause, rec.revoked_at, rec.status_version) == (
        CertStatus.REVOKED, x509.ReasonFlags.affiliation_changed, "notice:1", clock.now, 1)
    rec = store.get(c.serial)
    assert (rec.status, rec.cause, rec.status_version) == (CertStatus.REVOKED, "notice:3", 2)
    assert store.revoke_many([first]) == [False]  # already revoked: unchanged
    assert store.get(a.serial).status_version == 1
    assert store.revoke_many([]) == []
    # one unknown serial: an error, and nothing of the call is changed
    unknown = Revocation(12345678901234567890, x509.ReasonFlags.unspecified, None, clock.now)
    mine = Revocation(b.serial, x509.ReasonFlags.cessation_of_operation, "notice:4",
                      clock.now)
    with pytest.raises(UnknownCertificateError):
        store.revoke_many([mine, unknown])
    assert store.get(b.serial).status is CertStatus.GOOD
    with pytest.raises(ValueError):
        store.revoke_many([Revocation(b.serial, x509.ReasonFlags.certificate_hold, None,
                                      clock.now)])
    with pytest.raises(TypeError):
        store.revoke_many([(b.serial, x509.ReasonFlags.unspecified, None, clock.now)])
    # by_holders: every holder asked for, in issuance order, without DER
    held_by = store.by_holders(["R2", "R1", "nobody"])
    assert [h.serial for h in held_by["R1"]] == [a.serial, b.serial]
    assert [(h.status, h.cause, h.profile) for h in held_by["R1"]] == [
        (CertStatus.REVOKED, "notice:1", "signing"),
        (CertStatus.GOOD, None, "user-authentication")]
    assert held_by["R1"][0].issued_at == store.get(a.serial).issued_at
    assert [h.serial for h in held_by["R2"]] == [c.serial] and held_by["nobody"] == []

