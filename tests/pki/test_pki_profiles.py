"""Certificate profiles: contents, validity rules, refusals; issued through SoftHSM2."""

from __future__ import annotations

import datetime as dt
import subprocess
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import Encoding

from pki.errors import PkiError, ProfileError
from pki.identity import Identity, age_on, birthday_in_year, nth_birthday_after
from pki.profiles import (
    JST,
    OID_SIGNING_POLICY,
    OID_USER_AUTH_POLICY,
    Profile,
    SigningCertificateBuilder,
    certificate_profile,
    identity_from_certificate,
    validity_period,
)

JST_NOON = dt.time(12, 0, tzinfo=JST)


def at_jst(day: dt.date) -> dt.datetime:
    return dt.datetime.combine(day, JST_NOON).astimezone(dt.UTC)


def end_jst(day: dt.date) -> dt.datetime:
    return dt.datetime(day.year, day.month, day.day, 23, 59, 59, tzinfo=JST).astimezone(dt.UTC)


# -- identity and dates -------------------------------------------------------------------
def test_identity_validation() -> None:
    with pytest.raises(ValueError):
        Identity(name="A", birth_date=dt.date(2000, 1, 1), sex=3, address="x")
    with pytest.raises(TypeError):
        Identity(name="A", birth_date="2000-01-01", sex=1, address="x")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        Identity(name="AB", birth_date=dt.date(2000, 1, 1), sex=1, address="x",
                 name_substitute="1")
    ident = Identity(name="AB", birth_date=dt.date(2000, 1, 1), sex=9, address="x",
                     name_substitute="01")
    assert Identity.from_json(ident.to_json()) == ident


def test_leap_day_birthdays() -> None:
    born = dt.date(2004, 2, 29)
    assert birthday_in_year(born, 2025) == dt.date(2025, 3, 1)
    assert birthday_in_year(born, 2028) == dt.date(2028, 2, 29)
    assert age_on(born, dt.date(2019, 2, 28)) == 14
    assert age_on(born, dt.date(2019, 3, 1)) == 15
    assert nth_birthday_after(born, dt.date(2026, 3, 1), 1) == dt.date(2027, 3, 1)


def test_validity_fifth_birthday_after_issuance() -> None:
    nb, na = validity_period(issued_at=at_jst(dt.date(2026, 6, 10)),
                             birth_date=dt.date(1990, 5, 1), card_expiry=dt.date(2040, 1, 1))
    assert na == end_jst(dt.date(2031, 5, 1))
    assert nb == at_jst(dt.date(2026, 6, 10))
    # issued on the birthday itself: that birthday does not count
    _, na = validity_period(issued_at=at_jst(dt.date(2026, 5, 1)),
                            birth_date=dt.date(1990, 5, 1), card_expiry=dt.date(2040, 1, 1))
    assert na == end_jst(dt.date(2031, 5, 1))
    # the day before the birthday: the birthday the next day is the first
    _, na = validity_period(issued_at=at_jst(dt.date(2026, 4, 30)),
                            birth_date=dt.date(1990, 5, 1), card_expiry=dt.date(2040, 1, 1))
    assert na == end_jst(dt.date(2030, 5, 1))


def test_validity_issuance_date_is_jst() -> None:
    # 2026-04-30 16:00 UTC is already 2026-05-01 in Japan (the birthday)
    issued = dt.datetime(2026, 4, 30, 16, 0, tzinfo=dt.UTC)
    _, na = validity_period(issued_at=issued, birth_date=dt.date(1990, 5, 1),
                            card_expiry=dt.date(2040, 1, 1))
    assert na == end_jst(dt.date(2031, 5, 1))


def test_validity_renewal_in_last_three_months_gets_sixth_birthday() -> None:
    prev = end_jst(dt.date(2026, 5, 1))
    _, na = validity_period(issued_at=at_jst(dt.date(2026, 3, 1)),
                            birth_date=dt.date(1990, 5, 1), card_expiry=dt.date(2040, 1, 1),
                            previous_not_after=prev)
    assert na == end_jst(dt.date(2031, 5, 1))  # 6th birthday after 2026-03-01
    # more than 3 months before expiry: the ordinary 5th birthday
    _, na = validity_period(issued_at=at_jst(dt.date(2026, 1, 31)),
                            birth_date=dt.date(1990, 5, 1), card_expiry=dt.date(2040, 1, 1),
                            previous_not_after=prev)
    assert na == end_jst(dt.date(2030, 5, 1))


def test_validity_capped_by_card_and_user_certificate() -> None:
    _, na = validity_period(issued_at=at_jst(dt.date(2026, 6, 10)),
                            birth_date=dt.date(1990, 5, 1), card_expiry=dt.date(2029, 8, 31))
    assert na == end_jst(dt.date(2029, 8, 31))
    user_end = end_jst(dt.date(2028, 1, 1))
    _, na = validity_period(issued_at=at_jst(dt.date(2026, 6, 10)),
                            birth_date=dt.date(1990, 5, 1), card_expiry=dt.date(2029, 8, 31),
                            user_certificate_not_after=user_end)
    assert na == user_end
    with pytest.raises(ProfileError):
        validity_period(issued_at=at_jst(dt.date(2026, 6, 10)), birth_date=dt.date(1990, 5, 1),
                        card_expiry=dt.date(2026, 6, 9))


def test_validity_leap_day_holder() -> None:
    _, na = validity_period(issued_at=at_jst(dt.date(2026, 6, 1)),
                            birth_date=dt.date(2000, 2, 29), card_expiry=dt.date(2040, 1, 1))
    assert na == end_jst(dt.date(2031, 3, 1))  # 2031 is a common year
    _, na = validity_period(issued_at=at_jst(dt.date(2023, 6, 1)),
                            birth_date=dt.date(2000, 2, 29), card_expiry=dt.date(2040, 1, 1))
    assert na == end_jst(dt.date(2028, 2, 29))


# -- builders -----------------------------------------------------------------------------
def test_builder_is_immutable_and_checks_types(holder_key: rsa.RSAPrivateKey) -> None:
    b = SigningCertificateBuilder()
    b2 = b.public_key(holder_key.public_key())
    assert b2 is not b and b._o.public_key is None
    with pytest.raises(ValueError):
        b2.public_key(holder_key.public_key())
    with pytest.raises(TypeError):
        b.public_key("not a key")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        b.card_expiry(dt.datetime.now())
    with pytest.raises(ValueError):
        b.serial_number(12345)  # fewer than 64 bits
    small = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    with pytest.raises(ProfileError):
        b.public_key(small.public_key())
    with pytest.raises(ValueError, match="missing"):
        b2._check_complete()


def test_signing_certificate_contents(issuing, holder_key, adult, clock, session_ca) -> None:
    issued = issuing.issue_signing(public_key=holder_key.public_key(), identity=adult,
                                   holder_id="R-1", card_expiry=dt.date(2035, 1, 1))
    cert = issued.certificate
    assert issued.profile is Profile.SIGNING
    assert cert.serial_number.bit_length() >= 64
    ku = cert.extensions.get_extension_for_class(x509.KeyUsage)
    assert ku.critical and ku.value.digital_signature and ku.value.content_commitment
    assert not ku.value.key_encipherment
    pol = cert.extensions.get_extension_for_class(x509.CertificatePolicies).value
    assert [p.policy_identifier for p in pol] == [OID_SIGNING_POLICY]
    assert identity_from_certificate(cert) == adult
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert {n.type_id.dotted_string for n in san} == {
        f"1.2.392.200149.8.5.5.{i}" for i in range(1, 7)}
    assert all(n.value[0] == 0x0C for n in san)  # UTF8String
    dp = cert.extensions.get_extension_for_class(x509.CRLDistributionPoints).value
    assert dp[0].full_name[0].value == session_ca.crl_url(issued.hierarchy, issued.shard)
    assert dp[0].full_name[0].value.endswith(f"/sign/shard-{issued.shard:04d}.crl")
    assert issued.shard == cert.serial_number % session_ca.shards
    aia = cert.extensions.get_extension_for_class(x509.AuthorityInformationAccess).value
    assert aia[0].access_location.value == session_ca.ocsp_url
    root = session_ca.hierarchies[issued.hierarchy].root_cert
    aki = cert.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value
    assert aki.key_identifier == root.extensions.get_extension_for_class(
        x509.SubjectKeyIdentifier).value.digest
    cert.verify_directly_issued_by(root)
    assert cert.not_valid_before_utc == clock.now
    assert cert.not_valid_after_utc == end_jst(dt.date(2031, 5, 1))
    assert certificate_profile(cert) is Profile.SIGNING


def test_user_authentication_certificate_has_no_personal_data(issuing, holder_key, adult,
                                                              session_ca) -> None:
    issued = issuing.issue_user_authentication(public_key=holder_key.public_key(),
                                               identity=adult, holder_id="R-1",
                                               card_expiry=dt.date(2035, 1, 1))
    cert = issued.certificate
    with pytest.raises(x509.ExtensionNotFound):
        cert.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    ku = cert.extensions.get_extension_for_class(x509.KeyUsage)
    assert ku.critical and ku.value.digital_signature and not ku.value.content_commitment
    pol = cert.extensions.get_extension_for_class(x509.CertificatePolicies).value
    assert [p.policy_identifier for p in pol] == [OID_USER_AUTH_POLICY]
    der = cert.public_bytes(Encoding.DER)
    for fact in (adult.name, adult.address, "19900501"):
        assert fact.encode() not in der
    assert [a.oid for a in cert.subject] == [x509.NameOID.COUNTRY_NAME, x509.NameOID.COMMON_NAME]
    cert.verify_directly_issued_by(session_ca.hierarchies[issued.hierarchy].root_cert)


def test_signing_refused_under_15_user_cert_allowed(issuing, holder_key, clock) -> None:
    child = Identity(name="山田 花子", birth_date=dt.date(2012, 1, 1), sex=2, address="東京都")
    with pytest.raises(ProfileError, match="under 15") as info:
        issuing.issue_signing(public_key=holder_key.public_key(), identity=child,
                              holder_id="R-2", card_expiry=dt.date(2030, 1, 1))
    assert isinstance(info.value, PkiError) and isinstance(info.value, ValueError)
    assert issuing._store.by_holder("R-2") == []
    issued = issuing.issue_user_authentication(public_key=holder_key.public_key(),
                                               identity=child, holder_id="R-2",
                                               card_expiry=dt.date(2030, 1, 1))
    assert issued.profile is Profile.USER_AUTHENTICATION
    # the day the child turns 15 (JST) the signing certificate may be issued
    turns_15 = Identity(name="X", birth_date=dt.date(2011, 11, 22), sex=2, address="東京都")
    issuing.issue_signing(public_key=holder_key.public_key(), identity=turns_15,
                          holder_id="R-3", card_expiry=dt.date(2030, 1, 1))


def test_signing_refused_for_adult_wards(issuing, holder_key, adult) -> None:
    with pytest.raises(ProfileError, match="adult ward"):
        issuing.issue_signing(public_key=holder_key.public_key(), identity=adult,
                              holder_id="R-4", card_expiry=dt.date(2030, 1, 1), adult_ward=True)
    with pytest.raises(TypeError):
        SigningCertificateBuilder().adult_ward("yes")  # type: ignore[arg-type]


def test_signing_capped_by_user_certificate(issuing, holder_key, adult) -> None:
    user = issuing.issue_user_authentication(public_key=holder_key.public_key(),
                                             identity=adult, holder_id="R-1",
                                             card_expiry=dt.date(2035, 1, 1))
    cap = user.certificate.not_valid_after_utc - dt.timedelta(days=30)
    sign = issuing.issue_signing(public_key=holder_key.public_key(), identity=adult,
                                 holder_id="R-1", card_expiry=dt.date(2035, 1, 1),
                                 user_certificate_not_after=cap)
    assert sign.certificate.not_valid_after_utc == cap


def test_openssl_parses_and_verifies(issuing, holder_key, adult, session_ca, clock,
                                     tmp_path: Path) -> None:
    for issue in (issuing.issue_signing, issuing.issue_user_authentication):
        issued = issue(public_key=holder_key.public_key(), identity=adult, holder_id="R-1",
                       card_expiry=dt.date(2035, 1, 1))
        pem = tmp_path / "cert.pem"
        pem.write_bytes(issued.certificate.public_bytes(Encoding.PEM))
        text = subprocess.run(["openssl", "x509", "-in", pem, "-text", "-noout"], check=True,
                              capture_output=True, text=True).stdout
        assert "sha256WithRSAEncryption" in text
        assert "X509v3 Key Usage: critical" in text
        assert "OCSP - URI:" + session_ca.ocsp_url in text
        root = session_ca.hierarchies[issued.hierarchy].root_cert
        root_pem = tmp_path / "root.pem"
        root_pem.write_bytes(root.public_bytes(Encoding.PEM))
        res = subprocess.run(["openssl", "verify", "-attime", str(int(clock.now.timestamp()) + 60),
                              "-CAfile", root_pem, pem],
                             capture_output=True, text=True)
        assert res.returncode == 0, res.stderr
        assert f"{pem}: OK" in res.stdout
        if issued.profile is Profile.SIGNING:
            assert "1.2.392.200149.8.5.5.1::山田 太郎" in text or "8.5.5.1" in text
            assert "Non Repudiation" in text
        else:
            assert "Subject Alternative Name" not in text


def test_serials_unique_and_recorded(issuing, holder_key, adult, store) -> None:
    serials = set()
    for _ in range(20):
        issued = issuing.issue_user_authentication(public_key=holder_key.public_key(),
                                                   identity=adult, holder_id="R-9",
                                                   card_expiry=dt.date(2035, 1, 1))
        serials.add(issued.serial)
        rec = store.get(issued.serial)
        assert rec.der == issued.certificate.public_bytes(Encoding.DER)
        assert rec.shard == issued.shard and rec.holder_id == "R-9"
    assert len(serials) == 20
    assert len(store.by_holder("R-9")) == 20
