"""The operator hierarchy of the CA: the operator certificate profile, the CA's own
attestation check, and the certificate store taking operator certificates -- also a
store made before the operator hierarchy existed, migrated (SQLite and PostgreSQL)."""

from __future__ import annotations

import datetime as dt
import itertools
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import rsa

import pki.store.db as store_db
from pki.attestation import AttestationPolicy, AttestationRefused
from pki.ca import CAConfig, IssuingCA, init_ca, load_ca
from pki.errors import ProfileError, StoreError
from pki.identity import Identity
from pki.operator_profile import operator_name_of
from pki.profiles import JPKI_HIERARCHIES, Hierarchy, Profile, certificate_profile
from pki.store import open_store
from pki.verify import verify_certificate

_prefixes = itertools.count()


@pytest.fixture(scope="module")
def operator_ca(mynacard_key_manager: Any, tmp_path_factory: pytest.TempPathFactory) -> CAConfig:
    return init_ca(mynacard_key_manager, tmp_path_factory.mktemp("opca") / "ca", shards=2,
                   key_prefix=f"opca{next(_prefixes)}")


@pytest.fixture
def store_url(db_url: str, tmp_path: Path) -> str:
    """The certificate store on SQLite or in a fresh PostgreSQL schema."""
    if db_url.startswith("sqlite"):
        return str(tmp_path / "store.sqlite")
    return db_url


def _card_key() -> rsa.RSAPublicKey:
    return rsa.generate_private_key(65537, 2048).public_key()


def test_the_operator_profile(operator_ca: CAConfig, mynacard_key_manager: Any,
                              tmp_path: Path) -> None:
    assert set(operator_ca.hierarchies) == set(Hierarchy)
    assert set(load_ca(operator_ca.directory).hierarchies) == set(Hierarchy)
    with open_store(tmp_path / "s.sqlite") as store:
        ca = IssuingCA(key_source=mynacard_key_manager, ca=operator_ca, store=store)
        issued = ca.issue_operator(public_key=_card_key(), operator="suzuki")
        cert = issued.certificate
        assert issued.hierarchy is Hierarchy.OPERATOR and issued.profile is Profile.OPERATOR
        assert certificate_profile(cert) is Profile.OPERATOR and operator_name_of(cert) == \
            "suzuki"
        assert cert.issuer == operator_ca.hierarchies[Hierarchy.OPERATOR].root_cert.subject
        assert (cert.not_valid_after_utc - cert.not_valid_before_utc) == dt.timedelta(days=730)
        ku = cert.extensions.get_extension_for_class(x509.KeyUsage).value
        assert ku.digital_signature and not ku.content_commitment
        record = store.get(issued.serial)
        assert (record.hierarchy, record.profile, record.holder_id) == (
            "operator", "operator", "operator:suzuki")
        roots = [hc.root_cert for hc in operator_ca.hierarchies.values()]
        result = verify_certificate(cert, roots=roots, check_revocation=False)
        assert result.valid and result.profile is Profile.OPERATOR
        # a relying party of the JPKI hierarchies never takes it for a resident's
        jpki_roots = [operator_ca.hierarchies[h].root_cert for h in JPKI_HIERARCHIES]
        assert not verify_certificate(cert, roots=jpki_roots, check_revocation=False,
                                      expected_profile=Profile.USER_AUTHENTICATION).valid
        for bad in ("", "x" * 65):
            with pytest.raises(ProfileError):
                ca.issue_operator(public_key=_card_key(), operator=bad)
        with pytest.raises(ProfileError):  # not a key a card makes
            ca.issue_operator(public_key=rsa.generate_private_key(65537, 3072).public_key(),
                              operator="suzuki")


def test_the_ca_wants_the_cards_proof(operator_ca: CAConfig, mynacard_key_manager: Any,
                                      tmp_path: Path) -> None:
    class Never:
        def verify(self, serial: str, message: bytes, mac: bytes) -> bool:
            return False

    with open_store(tmp_path / "s.sqlite") as store:
        ca = IssuingCA(key_source=mynacard_key_manager, ca=operator_ca, store=store,
                       attestation=AttestationPolicy(Never()))
        with pytest.raises(AttestationRefused, match="attestation"):
            ca.issue_operator(public_key=_card_key(), operator="suzuki")
        assert store.count() == 0


def test_a_ca_without_the_operator_hierarchy(mynacard_key_manager: Any, tmp_path: Path) -> None:
    old = init_ca(mynacard_key_manager, tmp_path / "ca", shards=1,
                  key_prefix=f"old{next(_prefixes)}", hierarchies=JPKI_HIERARCHIES)
    assert set(load_ca(old.directory).hierarchies) == set(JPKI_HIERARCHIES)
    with open_store(tmp_path / "s.sqlite") as store:
        ca = IssuingCA(key_source=mynacard_key_manager, ca=old, store=store)
        with pytest.raises(Exception, match="no operator hierarchy"):
            ca.issue_operator(public_key=_card_key(), operator="suzuki")
    with pytest.raises(ValueError, match="both JPKI"):
        init_ca(mynacard_key_manager, tmp_path / "ca2", hierarchies=[Hierarchy.OPERATOR])


def test_an_old_store_takes_operator_certificates_after_migrating(
        operator_ca: CAConfig, mynacard_key_manager: Any, store_url: str,
        monkeypatch: pytest.MonkeyPatch) -> None:
    real = store_db.migrations
    monkeypatch.setattr(store_db, "migrations", lambda: real()[:2])
    with open_store(store_url) as store:
        assert store.schema_version() == 2
        ca = IssuingCA(key_source=mynacard_key_manager, ca=operator_ca, store=store)
        resident = ca.issue_user_authentication(
            public_key=_card_key(), holder_id="R1", card_expiry=dt.date(2035, 1, 1),
            identity=Identity(name="甲", birth_date=dt.date(1990, 1, 1), sex=1, address="東京"))
        with pytest.raises(StoreError):  # version 2 knows two hierarchies only
            ca.issue_operator(public_key=_card_key(), operator="suzuki")
    monkeypatch.setattr(store_db, "migrations", real)
    with open_store(store_url) as store:
        assert store.schema_version() == len(real()) >= 3
        kept = store.get(resident.serial)
        assert kept.hierarchy == "auth" and kept.holder_id == "R1"
        key = resident.certificate.public_key()
        assert store.certified_keys([store_db.key_digest(key)]) == {
            store_db.key_digest(key): resident.serial}
        ca = IssuingCA(key_source=mynacard_key_manager, ca=operator_ca, store=store)
        op = ca.issue_operator(public_key=_card_key(), operator="suzuki")
        assert store.get(op.serial).hierarchy == "operator"
        assert store.revoke(op.serial, reason=x509.ReasonFlags.cessation_of_operation,
                            at=dt.datetime.now(dt.UTC).replace(microsecond=0))
        assert [e.serial for e in store.revoked_in_shard("operator", op.shard)] == [op.serial]
        with pytest.raises(StoreError):  # the CHECK still holds for anything else
            store.add(op.certificate, hierarchy="other", profile="x", holder_id="y",
                      shard=0, issued_at=dt.datetime.now(dt.UTC))
