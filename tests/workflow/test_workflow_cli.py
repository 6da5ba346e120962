"""The commands as operators run them: `mynacard center init`, `issue` (one and a batch
over two readers), `activate`, `pin reset`, `card report-loss` — real processes."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from workflow_support import OPERATOR, PINS, actions, app_state, apply, resident

from issuance.storage import Database
from issuance.workflow.center import Center

ROOT = Path(__file__).parents[2]
pytestmark = pytest.mark.personalises
PIN_ENV = {f"WF_PIN_{k.value.upper()}": v for k, v in PINS.items()}
PIN_ARGS = [a for k in PINS for a in ("--pin-source", f"{k.value}=env:WF_PIN_{k.value.upper()}")]


def mynacard(home: Path, *argv: str, operator: str | None = OPERATOR
             ) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, **PIN_ENV, "PYTHONPATH": str(ROOT)}
    env.pop("MYNACARD_OPERATOR", None)
    extra = ["--operator", operator] if operator else []
    return subprocess.run([sys.executable, "-m", "issuance.cli.main", "--home", str(home),
                           *argv, *extra], env=env, capture_output=True, text=True,
                          timeout=120, check=False)


def test_center_init_is_idempotent(center_home: Path, db_url: str) -> None:
    out = mynacard(center_home, "center", "init", "--db", db_url)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert all(" found " in line or " ready " in line for line in lines[1:-1]), out.stdout
    assert any("issuer master key" in line for line in lines)


def test_center_init_in_a_new_home_makes_everything(tmp_path: Path) -> None:
    home = tmp_path / "new-center"
    out = mynacard(home, "center", "init")  # the master key is never chosen silently
    assert out.returncode == 2 and "--master-key" in out.stderr  # usage: a choice is missing
    assert len(out.stderr.strip().splitlines()) == 1 and not home.exists()  # nothing made
    out = mynacard(home, "center", "init", "--master-key", "generate", "--json")
    assert out.returncode == 0, out.stderr
    made = {i["item"].split(" (")[0]: i["outcome"] for i in json.loads(out.stdout)["items"]}
    assert made["HSM token 'jpki'"] == "created"
    assert made["issuer master key 'issuer-master'"] == "created"
    assert (home / "ca" / "sign-root.pem").exists() and (home / "center.json").exists()
    # the card-key derivation is chosen from what the token offers, and recorded
    assert made["card-key derivation aes-ecb-encrypt-data"] == "ready"
    assert json.loads((home / "center.json").read_text())["derivation"] == \
        "aes-ecb-encrypt-data"
    pin = (home / "hsm" / "jpki.pin").read_text().strip()
    assert pin not in (home / "center.json").read_text() and pin not in out.stdout
    # the defaults it chose are in HOME/config.toml (0600, no PIN) ...
    config = home / "config.toml"
    assert config.stat().st_mode & 0o777 == 0o600 and pin not in config.read_text()
    shown = mynacard(home, "config", "show", "--json", operator=None)
    assert shown.returncode == 0, shown.stderr
    center = json.loads(shown.stdout)["center"]
    assert center["pin_source"] == f"file:{home / 'hsm' / 'jpki.pin'}"
    assert center["token"] == "jpki" and center["crl_dir"] == str(home / "crl")
    # ... so the CA's commands need no option: the token PIN center init generated is found
    out = mynacard(home, "crl", "publish", "--json")
    assert out.returncode == 0, out.stderr
    assert (home / "crl" / "sign").is_dir() and pin not in out.stdout + out.stderr


def test_issue_and_activate_from_the_command_line(
        center_home: Path, db_url: str, db: Database, blank_card: str) -> None:
    app = apply(db, resident(29))
    out = mynacard(center_home, "issue", app, "--reader", blank_card, "--db", db_url,
                   operator=None)
    assert out.returncode == 2 and "operator" in out.stderr
    out = mynacard(center_home, "issue", app, "--reader", blank_card, "--db", db_url, "--json")
    assert out.returncode == 0, out.stderr
    summary = json.loads(out.stdout)
    assert summary["application_state"] == "personalised" and summary["life_cycle"] == "issued"
    progress = [line for line in out.stderr.splitlines() if line.startswith("[")]
    assert len(progress) >= 5 and "bound to application" in out.stderr
    again = mynacard(center_home, "issue", app, "--reader", blank_card, "--db", db_url)
    assert again.returncode == 1 and "refused (rule W1)" in again.stderr

    bad = mynacard(center_home, "activate", "--reader", blank_card, "--db", db_url,
                   "--pin-source", "auth=env:WF_PIN_AUTH")
    assert bad.returncode == 1 and "no pin source" in bad.stderr  # and no terminal to ask on
    out = mynacard(center_home, "activate", "--reader", blank_card, "--db", db_url, "--json",
                   *PIN_ARGS)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["pins_set"] == ["auth", "sign", "text", "juki"]
    for value in PINS.values():  # a PIN printed is a token of its own; a random card
        # serial may contain the same digits inside its run of 15, which reveals nothing
        assert not re.search(rf"(?<![0-9A-Z]){re.escape(value)}(?![0-9A-Z])",
                             out.stdout + out.stderr), value
    assert app_state(db, app) == "activated"

    out = mynacard(center_home, "pin", "reset", "--reader", blank_card, "--pin", "juki",
                   "--keep-value", "--db", db_url)
    assert out.returncode == 1 and "C1" in out.stderr
    out = mynacard(center_home, "pin", "reset", "--reader", blank_card, "--pin", "juki",
                   "--keep-value", "--identity-checked", "licence 42", "--db", db_url)
    assert out.returncode == 0, out.stderr

    out = mynacard(center_home, "card", "report-loss", "--application", app, "--db", db_url,
                   "--json")
    assert out.returncode == 0, out.stderr
    assert app_state(db, app) == "lost"
    assert actions(db, app)[-2:] == [("pin.reset", "ok"), ("card.report_loss", "ok")]
    assert ("pin.reset", "refused") in actions(db, blank_card)  # before the card was read


def test_batch_over_two_readers(center_home: Path, center: Center, db_url: str, db: Database,
                                mynacard_emulator: object) -> None:
    readers = list(mynacard_emulator.readers[:2])  # type: ignore[attr-defined]
    for reader in readers:
        mynacard_emulator.replace_card(reader)  # type: ignore[attr-defined]
    apps = [apply(db, resident(20 + i)) for i in range(2)]
    out = mynacard(center_home, "issue", "--batch", ",".join(apps), "--readers",
                   ",".join(readers), "--db", db_url, "--json")
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout)
    assert sorted(r["application_id"] for r in report["issued"]) == sorted(apps)
    assert len({r["card_serial"] for r in report["issued"]}) == 2
    assert all(app_state(db, a) == "personalised" for a in apps)
    assert ("issue.batch", "ok") in actions(db)


def test_express_issuance_from_the_command_line(center_home: Path, db_url: str, db: Database,
                                                blank_card: str) -> None:
    from issuance.applications.express import ExpressReason

    normal = apply(db, resident(41))
    express_pins = [a for k in ("auth", "text", "juki")
                    for a in ("--pin-source", f"{k}=env:WF_PIN_{k.upper()}")]
    out = mynacard(center_home, "issue", normal, "--reader", blank_card, "--db", db_url,
                   *express_pins)
    assert out.returncode == 1 and "W6" in out.stderr
    baby = apply(db, resident(0, months=2), express=ExpressReason.UNDER_ONE)
    out = mynacard(center_home, "issue", baby, "--reader", blank_card, "--db", db_url,
                   "--json", *express_pins)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["life_cycle"] == "active"
    out = mynacard(center_home, "activate", "--reader", blank_card, "--db", db_url, "--json")
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["pins_set"] == [] and app_state(db, baby) == "activated"


def test_center_init_on_a_token_without_derive_mechanisms(tmp_path: Path) -> None:
    """opencryptoki's software token has no CKM_AES_*_ENCRYPT_DATA and no CKM_AES_CMAC: the
    center chooses the unwrap derivation, records it and prints it; a center recorded with
    a derivation the token lacks is refused with the mechanism named."""
    # reset in a child: this process may have initialised the module already (other
    # tests), and opencryptoki's slot daemon then shows the new label to no one
    proc = subprocess.run(
        [sys.executable, "-c", "from hsm.opencryptoki import reset_token; "
         "print(reset_token('mynacard-center', 'ock-5678'))"],
        env={**os.environ, "PYTHONPATH": str(Path(__file__).parents[2])},
        capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr
    uri = proc.stdout.strip()
    home = tmp_path / "ock-center"
    env_pin = {"WF_OCK_PIN": "ock-5678"}
    os.environ.update(env_pin)
    try:
        out = mynacard(home, "center", "init", "--pkcs11-uri", uri, "--pin-source",
                       "env:WF_OCK_PIN", "--master-key", "generate")
        assert out.returncode == 0, out.stderr
        assert "card-key derivation aes-ecb-unwrap (C_UnwrapKey with CKM_AES_ECB" in out.stdout
        assert "CMAC by CMAC from CKM_AES_ECB and CKM_AES_CBC blocks" in out.stdout
        config = json.loads((home / "center.json").read_text())
        assert config["derivation"] == "aes-ecb-unwrap"
        # cards made for another derivation cannot be served by this token: refused
        config["derivation"] = "aes-ecb-encrypt-data"
        (home / "center.json").write_text(json.dumps(config))
        again = mynacard(home, "center", "init", "--pkcs11-uri", uri, "--pin-source",
                         "env:WF_OCK_PIN")
    finally:
        os.environ.pop("WF_OCK_PIN")
    assert again.returncode == 3, again.stderr
    assert "CKM_AES_ECB_ENCRYPT_DATA" in again.stderr and "made for" in again.stderr
    for proc in (out, again):
        assert "Traceback" not in proc.stderr and "ock-5678" not in proc.stderr + proc.stdout
