"""What the CA certifies for a card: the card's key kind, facts that are text and fit the
card's certificate EF; and `ca issue-batch` lines judged one by one (fuzzed)."""

from __future__ import annotations

import datetime as dt
import json
import random
import secrets
import time
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from cryptography.x509.oid import NameOID
from hostile import HOSTILE_JSON, mixed, mutate_json

from card import contract
from pki.errors import ProfileError
from pki.identity import Identity
from pki.issue_batch import MAX_LINE, read_batch, refuse_certified
from pki.profiles import (
    CARD_CERTIFICATE_EF_BYTES,
    CARD_RSA_BITS,
    CARD_RSA_EXPONENT,
    MAX_ADDRESS_CHARS,
    MAX_NAME_CHARS,
    SigningCertificateBuilder,
    UserAuthenticationCertificateBuilder,
    check_card_key,
)
from pki.store import open_store
from pki.store.db import key_digest

NOW = dt.datetime.now(dt.UTC)


def fake_key(bits: int = 2048, e: int = 65537) -> rsa.RSAPublicKey:
    """A public key of the right shape, made in microseconds (no primes: parsing and
    the CA's checks never factor the modulus)."""
    n = secrets.randbits(bits) | (1 << (bits - 1)) | 1
    return rsa.RSAPublicNumbers(e, n).public_key()


def pem(key: object) -> str:
    return key.public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo).decode()  # type: ignore[attr-defined]


def test_the_card_numbers_match_the_card_contract() -> None:
    for fid in (contract.JPKI_SIGN_CERT, contract.JPKI_AUTH_CERT):
        assert contract.JPKI.file(fid).size == CARD_CERTIFICATE_EF_BYTES
    assert (CARD_RSA_BITS, CARD_RSA_EXPONENT) == (2048, 65537)


def _issuer() -> tuple[x509.Certificate, rsa.RSAPrivateKey]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([
        x509.NameAttribute(NameOID.COUNTRY_NAME, "JP"),
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, "JPKI"),
        x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, "JPKI for digital signature"),
        x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME,
                           "Japan Agency for Local Authority Information Systems")])
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(NOW - dt.timedelta(days=1))
            .not_valid_after(NOW + dt.timedelta(days=3650))
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
            .sign(key, hashes.SHA256()))
    return cert, key


def test_the_largest_facts_still_fit_the_cards_certificate_ef() -> None:
    issuer, key = _issuer()
    widest = "\U0002000b"  # 𠀋: 4 bytes of UTF-8, and a substitute flag for each
    identity = Identity(name=widest * MAX_NAME_CHARS, address=widest * MAX_ADDRESS_CHARS,
                        sex=1, birth_date=dt.date(1980, 1, 1),
                        name_substitute="1" * MAX_NAME_CHARS,
                        address_substitute="1" * MAX_ADDRESS_CHARS)
    for builder in (SigningCertificateBuilder(), UserAuthenticationCertificateBuilder()):
        cert = (builder.public_key(fake_key()).identity(identity)
                .card_expiry(dt.date(2034, 1, 1)).serial_number((1 << 158) + 1)
                .distribution(crl_url="https://crl.example.jp/jpki/sign/shard-0123.crl",
                              ocsp_url="https://ocsp.example.jp/jpki")
                .build(issuer=issuer, signer=key, now=NOW))
        assert len(cert.public_bytes(Encoding.DER)) <= CARD_CERTIFICATE_EF_BYTES
    longer = Identity(name="a" * (MAX_NAME_CHARS + 1), address="x", sex=1,
                      birth_date=dt.date(1980, 1, 1))
    with pytest.raises(ProfileError, match=f"at most {MAX_NAME_CHARS}"):
        SigningCertificateBuilder().identity(longer)
    longer = Identity(name="a", address="x" * (MAX_ADDRESS_CHARS + 1), sex=1,
                      birth_date=dt.date(1980, 1, 1))
    with pytest.raises(ProfileError, match=f"at most {MAX_ADDRESS_CHARS}"):
        UserAuthenticationCertificateBuilder().identity(longer)


@pytest.mark.parametrize(("key", "fragment"), [
    (fake_key(e=3), "exponent is 3, not 65537"),
    (fake_key(e=(1 << 100) + 1), "exponent is a 101-bit value"),
    (fake_key(bits=3072), "RSA-3072"),
    (fake_key(bits=4096), "RSA-4096"),
    (ec.generate_private_key(ec.SECP256R1()).public_key(), "not an RSA key"),
])
def test_keys_the_card_cannot_make_are_refused(key: object, fragment: str) -> None:
    with pytest.raises(ProfileError, match=fragment):
        check_card_key(key)


def test_card_key_is_accepted() -> None:
    key = fake_key()
    assert check_card_key(key) is key


@pytest.mark.parametrize("text", ["a\x00b", "a\x07", "a\x1bb", "del\x7f", "nel\x85",
                                  "csi\x9b", "\ud800", "x\udfff"])
@pytest.mark.parametrize("field", ["name", "address"])
def test_facts_with_control_characters_or_surrogates_are_refused(text: str,
                                                                 field: str) -> None:
    facts = {"name": "佐藤 花子", "address": "東京都", "sex": 2,
             "birth_date": dt.date(1985, 7, 7), field: text}
    with pytest.raises(ValueError, match="control character or lone surrogate"):
        Identity(**facts)  # type: ignore[arg-type]


IDENT = {"name": "佐藤 花子", "sex": 2, "birth_date": "1985-07-07", "address": "大阪府大阪市"}


def _line(key: rsa.RSAPublicKey, i: int, **changes: object) -> dict[str, object]:
    return {"profile": "signing" if i % 2 else "user-authentication", "public_key": pem(key),
            "identity": dict(IDENT), "holder_id": f"H{i}", "card_expiry": "2034-01-01",
            **changes}


def test_each_rule_refuses_its_line_with_a_reason(tmp_path: Path) -> None:
    ok = [fake_key() for _ in range(3)]
    child = dict(IDENT, birth_date=(NOW.date() - dt.timedelta(days=3650)).isoformat())
    lines = [
        _line(ok[0], 0),
        _line(fake_key(e=3), 1),
        _line(fake_key(bits=3072), 2),
        {**_line(ok[1], 3), "public_key": pem(ec.generate_private_key(ec.SECP256R1())
                                               .public_key())},
        _line(ok[0], 4),  # the key of line 1 again
        _line(fake_key(), 5, identity=dict(IDENT, name="佐藤\x07花子")),
        _line(fake_key(), 6, identity=dict(IDENT, address="a" * (MAX_ADDRESS_CHARS + 1))),
        _line(fake_key(), 7, identity=dict(IDENT, name="x" * (MAX_NAME_CHARS + 1))),
        _line(fake_key(), 8, identity=child, profile="signing"),
        _line(fake_key(), 9, holder_id="H\x00"),
        _line(ok[2], 10),
        {**_line(fake_key(), 11), "extra": 1},
    ]
    path = tmp_path / "batch.jsonl"
    path.write_text("\n".join(json.dumps(x) for x in lines) + "\n", encoding="utf-8")
    batch = read_batch(path, now=NOW)
    assert [n for n, _r in batch.requests] == [1, 11]
    reasons = dict(batch.rejected)
    assert "exponent is 3" in reasons[2]
    assert "RSA-3072" in reasons[3]
    assert "not an RSA key" in reasons[4]
    assert reasons[5] == "public_key: the same key is on line 1"
    assert "control character" in reasons[6]
    assert f"at most {MAX_ADDRESS_CHARS}" in reasons[7]
    assert f"at most {MAX_NAME_CHARS}" in reasons[8]
    assert "under 15" in reasons[9]
    assert "holder_id" in reasons[10]
    assert reasons[12] == "unknown field extra"


def test_keys_already_in_the_store_are_refused(tmp_path: Path) -> None:
    issuer, ca_key = _issuer()
    known = fake_key()
    cert = (UserAuthenticationCertificateBuilder().public_key(known)
            .identity(Identity.from_json(dict(IDENT))).card_expiry(dt.date(2034, 1, 1))
            .serial_number((1 << 100) + 7)
            .distribution(crl_url="http://crl.test/a.crl", ocsp_url="http://ocsp.test")
            .build(issuer=issuer, signer=ca_key, now=NOW))
    path = tmp_path / "batch.jsonl"
    path.write_text(json.dumps(_line(fake_key(), 0)) + "\n" + json.dumps(_line(known, 1))
                    + "\n", encoding="utf-8")
    with open_store(tmp_path / "store.sqlite") as store:
        store.add(cert, hierarchy="auth", profile="user-authentication", holder_id="H",
                  shard=0, issued_at=NOW)
        assert store.certified_keys([key_digest(known), "0" * 64]) == \
            {key_digest(known): (1 << 100) + 7}
        batch = read_batch(path, now=NOW)
        refuse_certified(batch, store)
    assert [n for n, _r in batch.requests] == [1]
    assert batch.rejected == [(2, f"public_key: already certified (serial {(1 << 100) + 7:x})")]


@pytest.mark.parametrize("seed", [21, 22])
def test_fuzz_issue_batch_lines(tmp_path: Path, seed: int) -> None:
    good = [json.dumps(_line(fake_key(), i)).encode() for i in range(400)]
    lines, good_at, bad_at = mixed(
        good, lambda ln, rng: mutate_json(ln, rng, fields=("holder_id", "public_key",
                                                           "card_expiry", "profile"),
                                          limit=MAX_LINE),
        seed=seed, bad=2000)
    path = tmp_path / "fuzz.jsonl"
    path.write_bytes(b"\n".join(lines) + b"\n")
    started = time.monotonic()
    batch = read_batch(path, now=NOW)
    assert time.monotonic() - started < 20
    assert [n for n, _r in batch.requests] == sorted(good_at)
    assert [n for n, _r in batch.rejected] == sorted(bad_at)
    assert all(reason for _n, reason in batch.rejected)
    json.dumps(batch.rejected, ensure_ascii=False).encode("utf-8")  # always printable


@pytest.mark.parametrize("value", HOSTILE_JSON)
def test_each_hostile_value_as_holder_or_identity(tmp_path: Path, value: bytes) -> None:
    rng = random.Random(1)
    good = json.dumps(_line(fake_key(), 0)).encode()
    bad_holder = json.dumps(_line(fake_key(), 1, holder_id="@@")).encode() \
        .replace(b'"@@"', value)
    bad_identity = json.dumps(_line(fake_key(), 2, identity=dict(IDENT, name="@@"))) \
        .encode().replace(b'"@@"', value)
    lines = [bad_holder, good, bad_identity]
    rng.shuffle(lines)
    path = tmp_path / "h.jsonl"
    path.write_bytes(b"\n".join(lines))
    batch = read_batch(path, now=NOW)
    assert [n for n, _r in batch.requests] == [lines.index(good) + 1]
    assert len(batch.rejected) == 2


def test_a_store_of_before_the_key_column_is_filled_in_on_migration(tmp_path: Path) -> None:
    import sqlite3

    from pki.store.db import migrations

    issuer, ca_key = _issuer()
    known = fake_key()
    cert = (UserAuthenticationCertificateBuilder().public_key(known)
            .identity(Identity.from_json(dict(IDENT))).card_expiry(dt.date(2034, 1, 1))
            .serial_number((1 << 100) + 9)
            .distribution(crl_url="http://crl.test/a.crl", ocsp_url="http://ocsp.test")
            .build(issuer=issuer, signer=ca_key, now=NOW))
    path = tmp_path / "old.sqlite"
    conn = sqlite3.connect(path)
    conn.executescript(migrations()[0][2].replace("{blob}", "BLOB"))
    conn.execute("CREATE TABLE schema_version (version INTEGER PRIMARY KEY,"
                 " applied_at BIGINT NOT NULL)")
    conn.execute("INSERT INTO schema_version VALUES (1, 0)")
    conn.execute("INSERT INTO certificates (serial, hierarchy, profile, holder_id, shard,"
                 " issued_at, not_before, not_after, updated_at, der) VALUES"
                 " (?, 'auth', 'user-authentication', 'H', 0, 0, 0, 0, 0, ?)",
                 (format(cert.serial_number, "x"), cert.public_bytes(Encoding.DER)))
    conn.commit()
    conn.close()
    with open_store(path) as store:
        assert store.schema_version() == len(migrations())
        assert store.certified_keys([key_digest(known)]) == {key_digest(known): (1 << 100) + 9}


def test_a_byte_order_mark_before_the_first_request_costs_it_nothing(tmp_path: Path) -> None:
    path = tmp_path / "batch.jsonl"
    path.write_bytes(b"\xef\xbb\xbf" + json.dumps(_line(fake_key(), 0)).encode() + b"\n"
                     + json.dumps(_line(fake_key(), 1)).encode() + b"\n")
    batch = read_batch(path, now=NOW)
    assert [n for n, _r in batch.requests] == [1, 2]
    assert batch.rejected == []
