"""`mynacard card info` and `card readers` against emulated cards."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from argparse import Namespace

import pytest
from card_support import PROFILE, Personalised

from card import cli, contract
from card.info import card_info, format_info
from card.transport import PcscTransport


def _run(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "issuance.cli.main", *argv],
        capture_output=True, text=True, timeout=60, env=dict(os.environ),
    )


@pytest.mark.personalises
def test_info_json_of_an_active_card(card: Personalised,
                                     capsys: pytest.CaptureFixture[str]) -> None:
    card.transport.close()  # `card info` opens its own connection
    code = cli.cmd_info(Namespace(reader=card.reader, json=True, home=None))
    out, err = capsys.readouterr()
    assert code == 0, err
    info = json.loads(out)
    assert info["reader"] == card.reader
    assert info["serial"] == card.result.serial
    assert info["life_cycle"] == "active"
    assert info["municipality_code"] == PROFILE.municipality_code
    assert info["applications"] == {area.name: True for area in contract.AREAS}
    assert info["card_info_record"] == {  # 共通カードAP EF 0001 record 1, by READ RECORD
        "serial": card.result.serial, "municipality_code": PROFILE.municipality_code,
        "prefecture_code": PROFILE.municipality_code[:2], "expiry": PROFILE.expiry.isoformat()}
    assert f"card-info record (共通カードAP): serial {card.result.serial}" in format_info(info)
    pins = {(p["area"], p["fid"]): p for p in info["pins"]}
    assert len(pins) == sum(len(area.pins) for area in contract.AREAS)
    for area in contract.AREAS:
        for pin in area.pins:
            entry = pins[(area.name, f"{pin.fid:04X}")]
            assert (entry["tries_left"], entry["state"]) == (pin.tries, "ok"), entry
    certs = info["certificates"]
    assert certs["token_label"] == "JPKIAPICCTOKEN2"
    auth = card.result.auth_certificate
    assert auth is not None
    assert certs["auth"]["subject"] == auth.subject.rfc4514_string()
    assert certs["auth"]["not_after"] == auth.not_valid_after_utc.isoformat()
    assert certs["auth-ca"]["status"] == "present"
    assert certs["sign-ca"]["status"] == "present"
    assert certs["sign"]["status"].startswith("protected")


def test_info_of_a_blank_card(blank_card: str) -> None:
    with PcscTransport(blank_card) as transport:
        info = card_info(transport)
    assert info["life_cycle"] == "blank"
    assert info["serial"] == blank_card.serial  # type: ignore[attr-defined]
    holder = [p for p in info["pins"] if p["area"] != "municipal-library"]
    assert all(p["tries_left"] is None for p in holder)
    assert {p["state"] for p in holder} <= {"not set", "unavailable (card blank)"}
    text = format_info(info, blank_card)
    assert "blank" in text and blank_card in text


def test_info_json_through_the_mynacard_command(sample_card: str) -> None:
    result = _run("card", "info", "--reader", sample_card, "--json")
    assert result.returncode == 0, result.stderr
    info = json.loads(result.stdout)
    assert info["life_cycle"] == "active"
    assert info["serial"] == sample_card.serial  # type: ignore[attr-defined]
    assert info["certificates"]["auth"]["status"] == "present"


def test_info_text_through_the_mynacard_command(sample_card: str) -> None:
    result = _run("card", "info", "--reader", sample_card)
    assert result.returncode == 0, result.stderr
    assert "life cycle:    active" in result.stdout
    assert "user-authentication PIN" in result.stdout


def test_info_on_the_plugin_reader(mynacard_reader: str) -> None:
    """Works on whatever card is in the reader (also a real card): no PIN, no try used."""
    with PcscTransport(mynacard_reader) as transport:
        before = card_info(transport)
        after = card_info(transport)
    assert before["pins"] == after["pins"]
    assert before["applications"]["jpki"]


def test_unknown_reader_is_a_one_line_error(mynacard_reader: str) -> None:
    result = _run("card", "info", "--reader", "No Such Reader 99")
    assert result.returncode == 3  # a part (the reader) failed
    assert result.stderr.strip().count("\n") == 0
    assert "Traceback" not in result.stderr
    assert "No Such Reader 99" in result.stderr


def test_readers(blank_card: str) -> None:
    result = _run("card", "readers", "--json")
    assert result.returncode == 0, result.stderr
    rows = {row["reader"]: row["card"] for row in json.loads(result.stdout)}
    assert rows[blank_card] is True


def test_reader_choice_without_a_name(mynacard_reader: str) -> None:
    from card.errors import CardError
    from card.transport import list_readers, reader_has_card

    with_card = [name for name in list_readers() if reader_has_card(name)]
    if len(with_card) == 1:
        assert cli.choose_reader(None) == with_card[0]
    else:
        with pytest.raises(CardError, match="--reader"):
            cli.choose_reader(None)
    assert cli.choose_reader("Named") == "Named"
