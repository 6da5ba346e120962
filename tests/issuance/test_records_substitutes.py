"""代替文字: characters JIS X 0208 cannot show are replaced on the signing certificate and
flagged in its subjectAltName (.5.5.2 name, .5.5.6 address); the holder's choice of a
replacement is recorded at the counter and used."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import ExtensionOID, NameOID
from issuance_factories import resident
from records_support import Cli, rows

from issuance.personalisation.profile import identity_of
from issuance.records.substitutions import substitutions_of
from issuance.registry.store import ResidentStore
from issuance.storage import open_database
from pki.identity import Identity
from pki.profiles import (
    OID_ADDRESS,
    OID_ADDRESS_SUBSTITUTE,
    OID_NAME,
    OID_NAME_SUBSTITUTE,
    SigningCertificateBuilder,
    identity_from_certificate,
)
from pki.substitutes import GETA, representable, substitute, substituted_identity

NOW = dt.datetime.now(dt.UTC)
YOSHI = "\U00020bb7"  # 𠮷 (tsuchi-yoshi), outside the BMP and JIS X 0208
TAKA = "髙"  # U+9AD9 (hashigo-daka), an IBM extension, not JIS X 0208


def test_jis_x_0208_and_what_is_not() -> None:
    for char in "高吉山田太郎あアー〓１－～ABC ":
        assert representable(char), char
    for char in (YOSHI, TAKA, "﨑", "ｱ", "①", "😀"):
        assert not representable(char), char


def test_replaced_one_for_one_and_flagged() -> None:
    name = f"{TAKA}橋　{YOSHI}男"
    result = substitute(name)
    assert result.text == "高橋　吉男" and result.flags == "10010"
    assert len(result.text) == len(name)
    assert substitute("山田　太郎").flags == ""  # nothing replaced: no flags at all
    unknown = substitute("鈴木😀")
    assert unknown.text == f"鈴木{GETA}" and unknown.flags == "001"
    assert substitute("ｱｲ").text == "アイ"  # half-width kana become full width
    chosen = substitute(name, {TAKA: GETA})
    assert chosen.text == f"{GETA}橋　吉男" and chosen.flags == "10010"


def test_substitution_is_idempotent_and_keeps_earlier_flags() -> None:
    identity = Identity(name=f"{TAKA}木", address=f"東京都{YOSHI}町", sex=1,
                        birth_date=dt.date(1980, 1, 1))
    once = substituted_identity(identity)
    assert (once.name, once.name_substitute) == ("高木", "10")
    assert (once.address, once.address_substitute) == ("東京都吉町", "00010")
    assert substituted_identity(once) == once


def _issuer() -> tuple[x509.Certificate, rsa.RSAPrivateKey]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COUNTRY_NAME, "JP"),
                      x509.NameAttribute(NameOID.ORGANIZATION_NAME, "JPKI test")])
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(NOW - dt.timedelta(days=1))
            .not_valid_after(NOW + dt.timedelta(days=3650))
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
            .sign(key, hashes.SHA256()))
    return cert, key


def _san(cert: x509.Certificate) -> dict[str, str]:
    san = cert.extensions.get_extension_for_oid(ExtensionOID.SUBJECT_ALTERNATIVE_NAME).value
    out = {}
    for other in san.get_values_for_type(x509.OtherName):
        raw = other.value  # DER UTF8String
        length = raw[1]
        out[other.type_id.dotted_string] = raw[2:2 + length].decode("utf-8") \
            if length < 0x80 else raw[3:].decode("utf-8")
    return out


@pytest.mark.parametrize("given_flags", [False, True])
def test_the_signing_certificate_carries_replacements_and_flags(given_flags: bool) -> None:
    issuer, key = _issuer()
    holder = rsa.generate_private_key(public_exponent=65537, key_size=2048).public_key()
    identity = Identity(name=f"{TAKA}橋　{YOSHI}男", address="東京都千代田区千代田１－１",
                        sex=1, birth_date=dt.date(1980, 5, 15))
    if given_flags:  # the issuance center substitutes first, with the holder's choices
        identity = substituted_identity(identity, {YOSHI: GETA})
    cert = (SigningCertificateBuilder().public_key(holder).identity(identity)
            .card_expiry(dt.date(2034, 1, 1)).serial_number((1 << 100) + 12345)
            .distribution(crl_url="http://crl.test/s.crl", ocsp_url="http://ocsp.test")
            .build(issuer=issuer, signer=key, now=NOW))
    san = _san(cert)
    expected = f"高橋　{GETA if given_flags else '吉'}男"
    assert san[OID_NAME.dotted_string] == expected
    assert san[OID_NAME_SUBSTITUTE.dotted_string] == "10010"
    assert san[OID_ADDRESS.dotted_string] == "東京都千代田区千代田１－１"
    assert san[OID_ADDRESS_SUBSTITUTE.dotted_string] == ""
    back = identity_from_certificate(cert)
    assert (back.name, back.name_substitute) == (expected, "10010")


def test_identity_of_uses_the_holders_choice() -> None:
    person = resident(name=f"{TAKA}田　{YOSHI}子", address=f"大阪府{TAKA}槻市")
    assert identity_of(person).name == "高田　吉子"
    assert identity_of(person).address_substitute == "000100"
    assert identity_of(person, {TAKA: GETA}).name == f"{GETA}田　吉子"


@pytest.fixture
def cli(tmp_path: Path, db_url: str, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> Cli:
    monkeypatch.delenv("MYNACARD_OPERATOR", raising=False)
    home = tmp_path / "home"
    home.mkdir()
    return Cli(home, db_url, capsys, dt.date(2026, 11, 20))


def test_the_holder_asks_for_another_replacement_at_the_counter(cli: Cli, db_url: str) -> None:
    person = resident(name=f"{TAKA}橋　{YOSHI}男")
    with open_database(db_url) as db:
        ResidentStore(db).put(person)
    code, out, err = cli("registry", "update", person.resident_code,
                         "--substitute", f"{TAKA}={GETA}", "--json")
    assert code == 0, err
    assert json.loads(out)["substitutes"] == [{"original": TAKA, "replacement": GETA}]
    for bad in (f"{TAKA}=𠀋", f"高={GETA}", f"{TAKA}", f"{TAKA}=ab"):
        code, _, err = cli("registry", "update", person.resident_code, "--substitute", bad)
        assert code == 1 and "rule 1.2" in err, (bad, err)
    with open_database(db_url) as db:
        with db.transaction() as tx:
            assert substitutions_of(tx, person.resident_code) == {TAKA: GETA}
        entries = rows(db, "SELECT outcome, detail FROM audit_log WHERE action ="
                           " 'registry.update' ORDER BY seq")
    assert [e["outcome"] for e in entries] == ["ok", "refused", "refused", "refused", "refused"]
    code, out, _ = cli("applications", "list", "--resident-code", person.resident_code,
                       "--json")
    assert code == 0 and json.loads(out) == []
