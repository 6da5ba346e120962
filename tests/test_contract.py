"""The APDU contract is written once per language: Python and Java must agree.

`card/contract.py` is the source; `Contract.java` mirrors it with prefixed names
(`SW_X` for `SW.X`, `FID_JPKI_SIGN_CERT` for `JPKI_SIGN_CERT`, `SIZE_…`, `PIN_TRIES_…`).
"""

from __future__ import annotations

import re
from enum import IntEnum
from pathlib import Path

import pytest

from card import contract

JAVA = Path(__file__).resolve().parents[1] / (
    "card/applet/src/main/java/jp/mynacard/common/Contract.java"
)
AREA_PREFIX = {"jpki": "JPKI", "text": "TEXT", "surface": "SURFACE", "juki": "JUKI",
               "common": "COMMON", "municipal-library": "LIBRARY"}
CHARSET = {"digits": "PIN_CHARSET_DIGITS", "upper-alnum": "PIN_CHARSET_UPPER_ALNUM"}

_DECL = re.compile(
    r"static\s+final\s+(byte\[\]|byte|short|int)\s+(\w+)\s*=\s*(\{[^}]*\}|[^;]+);", re.S
)


def _value(expr: str, known: dict[str, int | bytes]) -> int | bytes | str:
    expr = expr.strip()
    if expr.startswith("{"):
        items = [i for i in re.split(r"\s*,\s*", expr.strip("{} \n")) if i]
        return bytes(int(re.sub(r"\(byte\)\s*", "", i), 0) & 0xFF for i in items)
    expr = re.sub(r"\((byte|short)\)\s*", "", expr)
    if re.fullmatch(r"\w+", expr) and expr in known:
        return known[expr]
    try:
        return int(expr, 0)
    except ValueError:
        return expr  # an expression this parser does not evaluate


@pytest.fixture(scope="module")
def java() -> dict[str, int | bytes | str]:
    assert JAVA.is_file(), f"{JAVA} is missing"
    known: dict[str, int | bytes | str] = {}
    for _type, name, expr in _DECL.findall(JAVA.read_text()):
        known[name] = _value(expr, known)  # type: ignore[arg-type]
    return known


def _expect(java: dict[str, int | bytes | str], name: str, value: int | bytes) -> None:
    assert name in java, f"Contract.java lacks {name}"
    got = java[name]
    if isinstance(value, int) and isinstance(got, bytes):  # Java Card has no int: big-endian bytes
        got = int.from_bytes(got, "big")
    if isinstance(value, int) and isinstance(got, int):
        # Java bytes and shorts are signed; compare the bit patterns.
        width = 0xFF if value <= 0xFF and got <= 0xFF else 0xFFFF if value <= 0xFFFF else -1
        assert got & width == value & width if width != -1 else got == value, name
    else:
        assert got == value, name


@pytest.mark.parametrize(
    "enum, prefix",
    [(contract.Ins, "INS_"), (contract.SW, "SW_"), (contract.LifeCycle, "LIFE_CYCLE_"),
     (contract.Tag, "TAG_"), (contract.PinBit, "PIN_BIT_")],
)
def test_enums_agree(java: dict[str, int | bytes | str], enum: type[IntEnum], prefix: str) -> None:
    for member in enum:
        _expect(java, prefix + member.name, int(member))
    java_names = {n[len(prefix):] for n in java if n.startswith(prefix)}
    assert java_names == {m.name for m in enum}, "a constant exists on one side only"


def test_aids_and_atr_agree(java: dict[str, int | bytes | str]) -> None:
    for name in dir(contract):
        if name.startswith("AID_") or name == "ATR":
            _expect(java, name, getattr(contract, name))


def test_scalars_agree(java: dict[str, int | bytes | str]) -> None:
    for name in ("CLA_ISO", "CLA_PROPRIETARY", "GENERATE_P1_GENERATE", "GENERATE_P1_READ_PUBLIC",
                 "RSA_PUBLIC_EXPONENT", "RSA_MODULUS_BYTES", "RESET_P1_NEW_VALUE",
                 "RESET_P1_COUNTER_ONLY", "SELECT_P1_BY_FID", "SELECT_P1_BY_NAME",
                 "SELECT_P2_NO_RESPONSE", "P2_CURRENT_KEY", "SIGN_P1_PKCS1_V15",
                 "SIGN_MAX_INPUT", "PIN_MAX_LENGTH", "ISSUER_CHALLENGE_LENGTH",
                 "ISSUER_AUTH_TRIES", "SERIAL_LENGTH", "KEY_ATTESTATION_LABEL",
                 "KEY_ATTESTATION_P1", "KEY_ATTESTATION_CHALLENGE_LENGTH",
                 "KEY_ATTESTATION_MAC_LENGTH", "ISSUER_KEY_DOMAIN", "CARD_AUTH_KEY_DOMAIN",
                 "RECORD_P2_BY_NUMBER", "KEY_ID_LENGTH", "CV_CERT_LENGTH",
                 "CARD_RECOGNITION_DATA", "COMMON_CARD_INFO_RECORD_LENGTH"):
        _expect(java, name, getattr(contract, name))
    for access in contract.Access:
        _expect(java, "ACCESS_" + access.name, int(access))


def _fid_names(area: contract.AreaSpec) -> dict[int, str]:
    """FID → the Python constant naming it in this area (e.g. 0x0001 → JPKI_SIGN_CERT)."""
    prefix = AREA_PREFIX[area.name] + "_"
    fids = {f.fid for f in area.files} | {p.fid for p in area.pins} | {k.fid for k in area.keys}
    names: dict[int, str] = {}
    for name in dir(contract):
        value = getattr(contract, name)
        if name.startswith(prefix) and type(value) is int and value in fids:
            names[value] = name
    assert set(names) == fids, f"{area.name}: a FID has no constant"
    return names


@pytest.mark.parametrize("area", contract.AREAS, ids=lambda a: a.name)
def test_files_and_pins_agree(java: dict[str, int | bytes | str], area: contract.AreaSpec) -> None:
    names = _fid_names(area)
    for fid, name in names.items():
        _expect(java, "FID_" + name, fid)
    for f in area.files:
        _expect(java, "SIZE_" + names[f.fid], f.size)
    for p in area.pins:
        n = names[p.fid]
        _expect(java, "PIN_MIN_" + n, p.min_length)
        _expect(java, "PIN_MAX_" + n, p.max_length)
        _expect(java, "PIN_TRIES_" + n, p.tries)
        assert java["PIN_CHARSET_" + n] == java[CHARSET[p.charset]], n


def test_the_card_factory_knows_every_derivation_the_hsm_offers(tmp_path: Path) -> None:
    """emulator.factory_keys (which may not import hsm) and hsm.mechanisms name the same
    card-key derivations, and the factory computes what the HSM method computes."""
    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

    from emulator.errors import EmulatorError
    from emulator.factory_keys import DERIVATIONS, center_derivation, derive_card_key
    from hsm.mechanisms import DerivationMethod

    assert set(DERIVATIONS) == {m.value for m in DerivationMethod}
    for method in DerivationMethod:
        assert DERIVATIONS[method.value] == method.card_function
    master, serial = bytes(range(16)), "123456789012345"
    block = serial.encode() + b"\x81"
    dec = Cipher(algorithms.AES(master), modes.ECB()).decryptor()
    assert derive_card_key(master, serial, 0x81, "aes-ecb-unwrap") == \
        dec.update(block) + dec.finalize()
    assert derive_card_key(master, serial, 0x81, "aes-cbc-encrypt-data") == \
        derive_card_key(master, serial, 0x81)
    with pytest.raises(EmulatorError, match="unknown card-key derivation"):
        derive_card_key(master, serial, 0x81, "sp800-108")
    assert center_derivation(tmp_path) is None
    (tmp_path / "center.json").write_text('{"derivation": "aes-ecb-unwrap"}')
    assert center_derivation(tmp_path) == "aes-ecb-unwrap"
