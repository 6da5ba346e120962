"""RFC 7512 pkcs11: URIs: parsing, formatting, round trips, refusals."""

from __future__ import annotations

import pytest

from hsm import HsmError, Pkcs11Uri, UriError, parse_uri


def test_round_trip_full() -> None:
    text = (
        "pkcs11:token=mynacard-dev;object=jpki-sign-root;id=%8a%01%ff;type=private"
        "?module-path=/usr/lib/softhsm/libsofthsm2.so&pin-source=env:MYNACARD_HSM_PIN"
    )
    uri = parse_uri(text)
    assert uri.token == "mynacard-dev"
    assert uri.object == "jpki-sign-root"
    assert uri.id == b"\x8a\x01\xff"
    assert uri.type == "private"
    assert uri.module_path == "/usr/lib/softhsm/libsofthsm2.so"
    assert uri.pin_source == "env:MYNACARD_HSM_PIN"
    assert uri.format() == text
    assert Pkcs11Uri.parse(str(uri)) == uri


@pytest.mark.parametrize(
    "uri",
    [
        Pkcs11Uri(token="a b;c", object="x/y?z&w=%", id=bytes(range(256))),
        Pkcs11Uri(token="日本語トークン", object="署名用", type="secret-key"),
        Pkcs11Uri(object="k", pin_source="file:/tmp/pin file", module_path="/opt/x?y.so"),
        Pkcs11Uri(id=b""),
        Pkcs11Uri(),
        Pkcs11Uri(token="t", extra_path=(("slot-id", "3"),), extra_query=(("x-vendor", "v"),)),
    ],
)
def test_round_trip_escaping(uri: Pkcs11Uri) -> None:
    text = uri.format()
    assert text.startswith("pkcs11:")
    assert Pkcs11Uri.parse(text) == uri


def test_id_is_percent_encoded_byte_by_byte() -> None:
    assert Pkcs11Uri(id=b"AB\x00").format() == "pkcs11:id=%41%42%00"
    # a literal id is accepted too
    assert parse_uri("pkcs11:id=AB%00").id == b"AB\x00"


def test_scheme_is_case_insensitive_and_empty_path_ok() -> None:
    assert parse_uri("PKCS11:token=x").token == "x"
    assert parse_uri("pkcs11:") == Pkcs11Uri()
    assert parse_uri("pkcs11:?module-path=/m.so").module_path == "/m.so"


@pytest.mark.parametrize(
    "text",
    [
        "pkcs12:token=x",
        "token=x",
        "pkcs11:token=x;token=y",
        "pkcs11:token",
        "pkcs11:=x",
        "pkcs11:type=weird",
        "pkcs11:token=x#frag",
        "pkcs11:token=x?pin-source=a&pin-source=b",
    ],
)
def test_malformed(text: str) -> None:
    with pytest.raises(UriError):
        parse_uri(text)


def test_inline_pin_refused_and_not_echoed() -> None:
    with pytest.raises(UriError) as info:
        parse_uri("pkcs11:token=x?pin-value=S3cretPin")
    assert "S3cretPin" not in str(info.value)
    assert isinstance(info.value, HsmError) and isinstance(info.value, ValueError)


def test_type_errors() -> None:
    with pytest.raises(TypeError):
        parse_uri(b"pkcs11:token=x")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        Pkcs11Uri(id="abc")  # type: ignore[arg-type]


def test_replace() -> None:
    uri = Pkcs11Uri(token="t", object="o")
    assert uri.replace(object=None).format() == "pkcs11:token=t"
    assert uri.replace(pin_source="env:P").format() == "pkcs11:token=t;object=o?pin-source=env:P"
