"""Relying-party verification: certificates and CMS signatures, OCSP and CRL."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.serialization import Encoding, pkcs7

from pki.crl import CrlPublisher
from pki.errors import VerificationError
from pki.profiles import Hierarchy, Profile
from pki.verify import load_roots, verify_certificate, verify_cms


@pytest.fixture
def roots(session_ca):
    return [hc.root_cert for hc in session_ca.hierarchies.values()]


@pytest.fixture
def signing(issuing, holder_key, adult):
    return issuing.issue_signing(public_key=holder_key.public_key(), identity=adult,
                                 holder_id="R1", card_expiry=dt.date(2035, 1, 1))


@pytest.fixture
def user(issuing, holder_key, adult):
    return issuing.issue_user_authentication(public_key=holder_key.public_key(), identity=adult,
                                             holder_id="R1", card_expiry=dt.date(2035, 1, 1))


def _at(clock):
    return clock.now + dt.timedelta(minutes=1)


def test_good_by_ocsp_with_identity(signing, roots, http_url, clock, adult) -> None:
    r = verify_certificate(signing.certificate, roots=roots, at=_at(clock), ocsp_url=http_url)
    assert r.valid, r.reasons
    assert r.profile is Profile.SIGNING and r.identity == adult
    assert r.revocation.method == "ocsp" and r.revocation.status == "good"
    assert r.to_json()["identity"]["name"] == adult.name


def test_revoked_by_ocsp(signing, roots, http_url, store, clock) -> None:
    store.revoke(signing.serial, reason=x509.ReasonFlags.key_compromise, at=clock.now)
    r = verify_certificate(signing.certificate, roots=roots, at=_at(clock), ocsp_url=http_url)
    assert not r.valid
    assert r.revocation.status == "revoked" and r.revocation.reason == "keyCompromise"
    assert any("revoked" in reason for reason in r.reasons)


def test_ocsp_unreachable_is_not_valid(user, roots, clock, free_port) -> None:
    r = verify_certificate(user.certificate, roots=roots, at=_at(clock),
                           ocsp_url=f"http://127.0.0.1:{free_port}", timeout=2)
    assert not r.valid and r.revocation.status == "error"


def test_by_crl(km, session_ca, signing, user, roots, store, clock, tmp_path: Path) -> None:
    pub = CrlPublisher(key_source=km, ca=session_ca, store=store, clock=clock)
    pub.publish(tmp_path)
    shard = tmp_path / "sign" / f"shard-{signing.shard:04d}.crl"
    assert verify_certificate(signing.certificate, roots=roots, at=_at(clock), crl=shard).valid
    store.revoke(signing.serial, reason=x509.ReasonFlags.affiliation_changed, at=clock.now)
    pub.publish(tmp_path)
    r = verify_certificate(signing.certificate, roots=roots, at=_at(clock), crl=shard)
    assert not r.valid and r.revocation.reason == "affiliationChanged"
    # a shard that does not cover the certificate is not accepted as proof
    wrong = tmp_path / "sign" / f"shard-{(signing.shard + 1) % session_ca.shards:04d}.crl"
    r = verify_certificate(signing.certificate, roots=roots, at=_at(clock), crl=wrong)
    assert not r.valid and "does not cover" in r.revocation.detail
    # a CRL of the other hierarchy is not signed by this root
    other = tmp_path / "auth" / f"shard-{signing.shard:04d}.crl"
    r = verify_certificate(signing.certificate, roots=roots, at=_at(clock), crl=other)
    assert not r.valid and r.revocation.status == "error"


def test_wrong_root(signing, other_ca, clock) -> None:
    foreign = [hc.root_cert for hc in other_ca.hierarchies.values()]
    r = verify_certificate(signing.certificate, roots=foreign, at=_at(clock),
                           check_revocation=False)
    assert not r.valid and any("trusted JPKI roots" in x for x in r.reasons)


def test_user_certificate_root_is_not_the_signing_root(user, session_ca, clock) -> None:
    sign_root = [session_ca.hierarchies[Hierarchy.SIGN].root_cert]
    r = verify_certificate(user.certificate, roots=sign_root, at=_at(clock),
                           check_revocation=False)
    assert not r.valid


def test_wrong_usage(user, roots, clock) -> None:
    r = verify_certificate(user.certificate, roots=roots, at=_at(clock),
                           expected_profile=Profile.SIGNING, check_revocation=False)
    assert not r.valid
    assert any("nonRepudiation" in x for x in r.reasons)
    assert any("not a signing certificate" in x for x in r.reasons)
    ok = verify_certificate(user.certificate, roots=roots, at=_at(clock),
                            check_revocation=False)
    assert ok.valid and ok.identity is None


def test_expired_and_not_yet_valid(signing, roots, clock) -> None:
    late = signing.certificate.not_valid_after_utc + dt.timedelta(seconds=1)
    r = verify_certificate(signing.certificate, roots=roots, at=late, check_revocation=False)
    assert not r.valid and any("not valid at" in x for x in r.reasons)
    early = clock.now - dt.timedelta(days=1)
    assert not verify_certificate(signing.certificate, roots=roots, at=early,
                                  check_revocation=False).valid


def _cms(cert, key, data: bytes, *, detached: bool) -> bytes:
    opts = [pkcs7.PKCS7Options.DetachedSignature] if detached else []
    return (pkcs7.PKCS7SignatureBuilder().set_data(data)
            .add_signer(cert, key, hashes.SHA256()).sign(Encoding.DER, opts))


def test_cms_detached_and_attached(signing, holder_key, roots, http_url, clock, adult) -> None:
    data = "契約書 version 1".encode()
    sig = _cms(signing.certificate, holder_key, data, detached=True)
    r = verify_cms(sig, data=data, roots=roots, at=_at(clock), ocsp_url=http_url)
    assert r.valid, r.reasons
    assert r.identity == adult
    bad = verify_cms(sig, data=data + b"!", roots=roots, at=_at(clock), ocsp_url=http_url)
    assert not bad.valid and any("does not match" in x for x in bad.reasons)
    attached = _cms(signing.certificate, holder_key, data, detached=False)
    assert verify_cms(attached, roots=roots, at=_at(clock), check_revocation=False).valid
    with pytest.raises(VerificationError, match="detached"):
        verify_cms(sig, roots=roots, at=_at(clock))
    with pytest.raises(VerificationError):
        verify_cms(b"not cms", data=data, roots=roots)


def test_cms_signed_with_user_certificate_is_refused(user, holder_key, roots, clock) -> None:
    data = b"login"
    sig = _cms(user.certificate, holder_key, data, detached=True)
    r = verify_cms(sig, data=data, roots=roots, at=_at(clock), check_revocation=False)
    assert not r.valid and any("not a signing certificate" in x for x in r.reasons)


def test_load_roots(session_ca, tmp_path: Path) -> None:
    bundle = tmp_path / "roots.pem"
    bundle.write_bytes(b"".join(hc.root_cert.public_bytes(Encoding.PEM)
                                for hc in session_ca.hierarchies.values()))
    der = session_ca.directory / "sign-root.der"
    assert len(load_roots([bundle, der])) == 4  # three hierarchies' roots and one again
    with pytest.raises(VerificationError):
        load_roots([tmp_path / "missing.pem"])
