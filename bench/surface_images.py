"""What the card surface images cost in personalisation, beside a text-only baseline.

    python -m bench.surface_images [--rounds N] [--json]

One run: a private emulator with one card, personalised with the `sample` personaliser
(timed, images included; target ≤ 2 s). Then, in the same run: rendering the name,
address, security-code and My Number PNGs and the JP2 portrait (cold, then warm), and
writing surface EF 0002 and 0005 over PC/SC with the images, beside writing the
text-only card face the emulation used before (name and address as UTF-8).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

from card import contract, formats, images, tlv
from card.issuer import HostIssuerAuthenticator, IssuerClient
from card.sample import sample_ca, sample_identity
from card.surface import SurfaceClient
from card.transport import PcscTransport
from emulator.components import SOCKET_ENV
from emulator.errors import EmulatorError
from emulator.launcher import Emulator
from emulator.state import socket_path


def _render(profile: formats.CardIdentity) -> dict[str, bytes]:
    return {
        "name": images.name_image(profile.facts.name),
        "address": images.address_image(profile.facts.address),
        "photo": images.generated_portrait(profile.resident_code),
        "security_code": images.security_code_image(profile.security_code),
        "my_number": images.my_number_image(profile.my_number),
    }


def _text_face(profile: formats.CardIdentity) -> bytes:
    facts = profile.facts
    return tlv.encode(formats.TAG_FACE, tlv.encode_all([
        (formats.TAG_FACE_BIRTH, formats.yyyymmdd(facts.birth_date)),
        (formats.TAG_FACE_SEX, facts.sex.encode("ascii")),
        (formats.TAG_FACE_NAME, facts.name.encode("utf-8")),
        (formats.TAG_FACE_ADDRESS, facts.address.encode("utf-8")),
        (formats.TAG_FACE_EXPIRY, formats.yyyymmdd(profile.expiry)),
    ]))


def _ms(seconds: list[float]) -> float:
    return statistics.median(seconds) * 1000


def run(rounds: int = 5) -> dict[str, Any]:
    found = [ep for ep in entry_points(group="mynacard.personalisers") if ep.name == "sample"]
    if not found:
        raise EmulatorError("no `sample` personaliser installed — run `make setup`")
    personalise = found[0].load()
    profile = sample_identity()
    t0 = time.perf_counter()
    rendered = _render(profile)
    render_cold = time.perf_counter() - t0
    render_warm = []
    for _ in range(rounds):
        t0 = time.perf_counter()
        _render(profile)
        render_warm.append(time.perf_counter() - t0)
    signer = sample_ca().integrity_key
    face = formats.card_face_file(
        profile.facts, profile.expiry, name_image=rendered["name"],
        address_image=rendered["address"], photo=rendered["photo"],
        security_code_image=rendered["security_code"], card_public_key=None, signer=signer)
    mn = formats.my_number_image_file(rendered["my_number"], None, signer)
    text_face = _text_face(profile)
    rt = Path(tempfile.mkdtemp(prefix="mynacard-bench-"))
    os.environ[SOCKET_ENV] = str(socket_path(rt))  # before any PC/SC call in this process
    try:
        with Emulator(rt, 1) as emulator:
            reader = emulator.readers[0]
            t0 = time.perf_counter()
            personalise(reader)
            personalise_s = time.perf_counter() - t0
            with PcscTransport(reader) as transport:
                client = IssuerClient(transport)
                client.authenticate(HostIssuerAuthenticator(contract.TEST_ISSUER_MASTER_KEY))
                # an issued card's surface files are written with code A verified too
                SurfaceClient(transport).verify_code_a(profile.code_a)
                write_images, write_text = [], []
                for _ in range(rounds):
                    t0 = time.perf_counter()
                    client.write_file(contract.SURFACE, contract.SURFACE_FACE, face)
                    client.write_file(contract.SURFACE, contract.SURFACE_MY_NUMBER_IMAGE, mn)
                    write_images.append(time.perf_counter() - t0)
                    t0 = time.perf_counter()
                    client.write_file(contract.SURFACE, contract.SURFACE_FACE, text_face)
                    write_text.append(time.perf_counter() - t0)
    finally:
        shutil.rmtree(rt, ignore_errors=True)
    return {
        "sizes": {"face_with_images": len(face), "face_text_only": len(text_face),
                  "my_number_image_file": len(mn),
                  **{f"{k}_bytes": len(v) for k, v in rendered.items()}},
        "render_cold_ms": render_cold * 1000,
        "render_warm_ms": _ms(render_warm),
        "write_face_and_my_number_image_ms": _ms(write_images),
        "write_text_only_face_ms (baseline)": _ms(write_text),
        "sample_personalisation_s": personalise_s,
        "target_personalisation_s": 2.0,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.surface_images", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    try:
        r = run(max(1, args.rounds))
    except EmulatorError as exc:
        print(f"bench: {exc}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(r, indent=2))
        return 0
    for key, value in r.items():
        print(f"{key:<44}{value if not isinstance(value, float) else round(value, 2)}")
    ok = r["sample_personalisation_s"] <= r["target_personalisation_s"]
    print(f"sample personalisation {'within' if ok else 'OVER'} the 2 s target")
    return 0


if __name__ == "__main__":
    sys.exit(main())
