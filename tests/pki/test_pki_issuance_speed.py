"""The issuance fast paths: the DER-assembled certificate equals cryptography's, issuing
from several threads, the serial-collision retry, insert-if-absent in the store."""

from __future__ import annotations

import datetime as dt
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import NameOID

from pki.identity import Identity
from pki.profiles import SigningCertificateBuilder, UserAuthenticationCertificateBuilder
from pki.store import CertStatus

BUILDERS = [SigningCertificateBuilder, UserAuthenticationCertificateBuilder]


def _software_root(key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey) -> x509.Certificate:
    name = x509.Name([x509.NameAttribute(NameOID.COUNTRY_NAME, "JP"),
                      x509.NameAttribute(NameOID.ORGANIZATION_NAME, "テスト"),
                      x509.NameAttribute(NameOID.COMMON_NAME, "Test Root")])
    t = dt.datetime(2020, 1, 1, tzinfo=dt.UTC)
    return (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(1 << 70)
            .not_valid_before(t).not_valid_after(t + dt.timedelta(days=40 * 365))
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()),
                           critical=False)
            .sign(key, hashes.SHA256()))


@pytest.mark.parametrize("builder_cls", BUILDERS)
@pytest.mark.parametrize(("serial", "now", "expiry"), [
    ((1 << 63) + 5, dt.datetime(2026, 11, 22, 3, tzinfo=dt.UTC), dt.date(2035, 1, 1)),
    ((1 << 159) - 1, dt.datetime(2026, 11, 22, 3, tzinfo=dt.UTC), dt.date(2035, 1, 1)),
    # notAfter in 2052: GeneralizedTime
    ((1 << 100) + 1, dt.datetime(2047, 6, 1, 3, tzinfo=dt.UTC), dt.date(2060, 1, 1)),
])
def test_assembled_certificate_is_what_cryptography_builds(builder_cls, serial, now,
                                                           expiry) -> None:
    ca_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    root = _software_root(ca_key)
    holder = rsa.generate_private_key(public_exponent=65537, key_size=3072).public_key()
    ident = Identity(name="試験 花子" * 20, birth_date=dt.date(1980, 2, 29), sex=2,
                     address="東京都千代田区" * 28)  # long (DER lengths > 255), still
    # within what the card's certificate EF holds (pki.profiles.MAX_ADDRESS_CHARS)
    b = (builder_cls().public_key(holder).identity(ident).card_expiry(expiry)
         .serial_number(serial)
         .distribution(crl_url="http://crl.test/jpki/sign/shard-0003.crl",
                       ocsp_url="http://ocsp.test/jpki"))
    # PKCS#1 v1.5 signatures are deterministic: the same key signs the same TBS alike
    cert, der = b.build_der(issuer=root, signer=ca_key, now=now)
    reference = b._build_with_cryptography(issuer=root, signer=ca_key, now=now)
    assert der == reference.public_bytes(Encoding.DER)
    assert cert.public_bytes(Encoding.DER) == der
    assert b.build(issuer=root, signer=ca_key, now=now) == reference
    ski = cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    assert ski == x509.SubjectKeyIdentifier.from_public_key(holder)
    cert.verify_directly_issued_by(root)


def test_non_rsa_signer_goes_through_cryptography(holder_key, adult) -> None:
    ca_key = ec.generate_private_key(ec.SECP256R1())
    root = _software_root(ca_key)
    b = (UserAuthenticationCertificateBuilder().public_key(holder_key.public_key())
         .identity(adult).card_expiry(dt.date(2035, 1, 1)).serial_number((1 << 80) + 3)
         .distribution(crl_url="http://crl.test/a.crl", ocsp_url="http://ocsp.test"))
    cert, der = b.build_der(issuer=root, signer=ca_key,
                            now=dt.datetime(2026, 11, 22, tzinfo=dt.UTC))
    assert cert.public_bytes(Encoding.DER) == der
    cert.verify_directly_issued_by(root)


def test_issuing_from_several_threads(issuing, store, holder_key, adult, session_ca) -> None:
    def one(i: int):
        profile = issuing.issue_signing if i % 2 else issuing.issue_user_authentication
        return profile(public_key=holder_key.public_key(), identity=adult,
                       holder_id=f"T{i}", card_expiry=dt.date(2035, 1, 1))

    with ThreadPoolExecutor(max_workers=4) as pool:
        issued = list(pool.map(one, range(24)))
    assert len({c.serial for c in issued}) == 24 and store.count() == 24
    for i, c in enumerate(issued):
        rec = store.get(c.serial)
        assert rec.holder_id == f"T{i}" and rec.der == c.certificate.public_bytes(Encoding.DER)
        root = session_ca.hierarchies[c.hierarchy].root_cert
        c.certificate.verify_directly_issued_by(root)
        pub = root.public_key()
        assert isinstance(pub, rsa.RSAPublicKey)
        pub.verify(c.certificate.signature, c.certificate.tbs_certificate_bytes,
                   padding.PKCS1v15(), hashes.SHA256())


def test_taken_serial_is_signed_again_under_a_new_one(issuing, store, holder_key, adult,
                                                      monkeypatch) -> None:
    import pki.ca

    first = issuing.issue_user_authentication(public_key=holder_key.public_key(),
                                              identity=adult, holder_id="R1",
                                              card_expiry=dt.date(2035, 1, 1))
    fresh = (1 << 90) + 12345
    serials = iter([first.serial, fresh])
    monkeypatch.setattr(pki.ca, "_serial", lambda: next(serials))
    again = issuing.issue_user_authentication(public_key=holder_key.public_key(),
                                              identity=adult, holder_id="R2",
                                              card_expiry=dt.date(2035, 1, 1))
    assert again.serial == fresh and again.certificate.serial_number == fresh
    assert store.get(first.serial).holder_id == "R1"  # the taken row is untouched
    assert store.get(fresh).holder_id == "R2" and store.count() == 2


def test_replacement_with_a_taken_serial_stays_atomic(issuing, store, holder_key, adult,
                                                      monkeypatch) -> None:
    import pki.ca

    old = issuing.issue_signing(public_key=holder_key.public_key(), identity=adult,
                                holder_id="R1", card_expiry=dt.date(2035, 1, 1))
    fresh = (1 << 90) + 777
    serials = iter([old.serial, fresh])
    monkeypatch.setattr(pki.ca, "_serial", lambda: next(serials))
    new = issuing.issue_signing(public_key=holder_key.public_key(), identity=adult,
                                holder_id="R1", card_expiry=dt.date(2035, 1, 1),
                                replaces=old.serial)
    assert new.serial == fresh
    rec = store.get(old.serial)
    assert rec.status is CertStatus.REVOKED and rec.successor == fresh


def test_add_if_absent(issuing, store, holder_key, adult, clock) -> None:
    a = issuing.issue_user_authentication(public_key=holder_key.public_key(), identity=adult,
                                          holder_id="R1", card_expiry=dt.date(2035, 1, 1))
    kw = dict(hierarchy="auth", profile="user-authentication", holder_id="other",
              shard=a.shard, issued_at=clock.now)
    with store.transaction():
        assert store.add_if_absent(a.certificate, **kw) is False
        # the transaction is still usable after the refused insert
        assert store.next_crl_number("auth", 0) == 1
    assert store.get(a.serial).holder_id == "R1" and store.count() == 1
    with pytest.raises(TypeError):
        store.add_if_absent(a.certificate, **kw, der="not bytes")  # type: ignore[arg-type]


def test_signers_are_resolved_once(km, session_ca, store, clock) -> None:
    from pki.ca import IssuingCA

    calls: list[str] = []

    class CountingSource:
        def public_key(self, label: str):
            return km.public_key(label)

        def signer(self, label: str):
            calls.append(label)
            return km.signer(label)

    ca = IssuingCA(key_source=CountingSource(), ca=session_ca, store=store, clock=clock)
    n = len(calls)
    barrier = threading.Barrier(2)

    def issue() -> None:
        barrier.wait()
        ca.issue_user_authentication(
            public_key=rsa.generate_private_key(public_exponent=65537,
                                                key_size=2048).public_key(),
            identity=Identity(name="甲", birth_date=dt.date(1990, 1, 1), sex=1, address="東京都"),
            holder_id="X", card_expiry=dt.date(2035, 1, 1))

    threads = [threading.Thread(target=issue) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(calls) == n == 3 and store.count() == 2  # one signer per hierarchy


def _requests(holder_key, adult, n: int):
    from pki.ca import CertificateRequest
    from pki.profiles import Profile

    return [CertificateRequest(
        profile=Profile.SIGNING if i % 3 == 0 else Profile.USER_AUTHENTICATION,
        public_key=holder_key.public_key(), identity=adult, holder_id=f"B{i}",
        card_expiry=dt.date(2035, 1, 1)) for i in range(n)]


@pytest.mark.parametrize(("parallel", "commit_every"), [(1, 1), (2, 3), (3, 64)])
def test_issue_many_is_pipelined_in_order_and_recorded(issuing, store, holder_key, adult,
                                                       session_ca, parallel,
                                                       commit_every) -> None:
    requests = _requests(holder_key, adult, 8)
    issued = issuing.issue_many(requests, parallel=parallel, commit_every=commit_every)
    assert [c.profile for c in issued] == [r.profile for r in requests]
    assert len({c.serial for c in issued}) == 8 and store.count() == 8
    single = issuing.issue_user_authentication(public_key=holder_key.public_key(),
                                               identity=adult, holder_id="S",
                                               card_expiry=dt.date(2035, 1, 1))
    for i, c in enumerate(issued):
        rec = store.get(c.serial)
        assert (rec.holder_id, rec.profile, rec.shard) == (f"B{i}", c.profile.value, c.shard)
        assert rec.der == c.certificate.public_bytes(Encoding.DER)
        assert c.certificate.serial_number == c.serial
        c.certificate.verify_directly_issued_by(session_ca.hierarchies[c.hierarchy].root_cert)
    # the same profile as one issued on its own: extensions and validity
    auth = issued[1].certificate
    assert [e.oid for e in auth.extensions] == [e.oid for e in single.certificate.extensions]
    for oid in (x509.KeyUsage.oid, x509.CertificatePolicies.oid,
                x509.SubjectKeyIdentifier.oid):
        assert auth.extensions.get_extension_for_oid(oid) == \
            single.certificate.extensions.get_extension_for_oid(oid)
    assert auth.not_valid_after_utc == single.certificate.not_valid_after_utc


def test_issue_many_checks_every_request_before_signing(issuing, store, holder_key,
                                                        adult) -> None:
    from pki.ca import CertificateRequest
    from pki.errors import ProfileError
    from pki.profiles import Profile

    child = Identity(name="子", birth_date=dt.date(2020, 1, 1), sex=1, address="東京都")
    bad = CertificateRequest(profile=Profile.SIGNING, public_key=holder_key.public_key(),
                             identity=child, holder_id="C", card_expiry=dt.date(2030, 1, 1))
    with pytest.raises(ProfileError):
        issuing.issue_many([*_requests(holder_key, adult, 4), bad], parallel=2)
    assert store.count() == 0
    assert issuing.issue_many([]) == []
    with pytest.raises(ValueError):
        issuing.issue_many(_requests(holder_key, adult, 1), parallel=0)
    with pytest.raises(TypeError):
        issuing.issue_many(["not a request"])  # type: ignore[list-item]


def test_issue_many_signs_a_taken_serial_again(issuing, store, holder_key, adult,
                                               monkeypatch) -> None:
    import pki.ca

    first = issuing.issue_user_authentication(public_key=holder_key.public_key(),
                                              identity=adult, holder_id="R1",
                                              card_expiry=dt.date(2035, 1, 1))
    fresh = [(1 << 90) + k for k in range(1, 4)]
    serials = iter([fresh[0], first.serial, fresh[1], fresh[2]])
    monkeypatch.setattr(pki.ca, "_serial", lambda: next(serials))
    issued = issuing.issue_many(_requests(holder_key, adult, 3), parallel=2, commit_every=3)
    assert [c.serial for c in issued] == [fresh[0], fresh[2], fresh[1]]
    assert store.get(first.serial).holder_id == "R1"  # the taken row is untouched
    assert [store.get(s).holder_id for s in fresh] == ["B0", "B2", "B1"]
    assert all(c.certificate.serial_number == c.serial for c in issued)
