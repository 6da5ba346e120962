"""Personalising one sample card, per card, beside the bare APDU writes of the same bytes.

    python -m bench.personalise [--cards N] [--json]

One run: a private emulator with one reader. For each of N fresh blank cards the `sample`
personalisation (card/sample.py: images, keys generated on the card, certificates, every
file, the MF objects) is timed and recorded APDU by APDU; its parts are timed apart
(building the profile with the synthetic portrait, rendering the surface images, the
throwaway CA). Baseline, in the same run: on another fresh card, issuer authentication and
then only the writes the personalisation sent (SELECT, UPDATE BINARY / RECORD, PUT DATA,
PIN sets), byte for byte. The figures are a ratio to that baseline; the target is ≤ 2 s per
card.
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
from pathlib import Path
from typing import Any

from card import contract, images
from card.apdu import Response
from card.contract import Ins
from card.issuer import HostIssuerAuthenticator, IssuerClient
from card.sample import personalise_sample_on, sample_ca, sample_identity
from card.transport import PcscTransport
from emulator.launcher import SOCKET_ENV, Emulator, EmulatorError, socket_path

TARGET_S = 2.0
# what the baseline replays: the writes, not key generation, attestation or state changes
REPLAYED = {Ins.SELECT, Ins.UPDATE_BINARY, Ins.UPDATE_RECORD, Ins.PUT_DATA,
            Ins.RESET_RETRY_COUNTER}


class Recorder:
    """A transport that keeps every command it sends (to replay them as the baseline)."""

    def __init__(self, inner: PcscTransport) -> None:
        self.inner = inner
        self.sent: list[bytes] = []
        self.seconds: dict[str, float] = {}  # time on the card per instruction

    @property
    def atr(self) -> bytes:
        return self.inner.atr

    def transmit(self, apdu: bytes) -> Response:
        self.sent.append(bytes(apdu))
        t0 = time.perf_counter()
        try:
            return self.inner.transmit(apdu)
        finally:
            name = Ins(apdu[1]).name if apdu[1] in Ins._value2member_map_ else f"{apdu[1]:02X}"
            self.seconds[name] = self.seconds.get(name, 0.0) + time.perf_counter() - t0


def _median(values: list[float]) -> float:
    return statistics.median(values)


def _parts() -> dict[str, float]:
    """The host-side parts of a sample personalisation, each timed on its own (warm)."""
    t0 = time.perf_counter()
    profile = sample_identity()
    t1 = time.perf_counter()
    images.name_image(profile.facts.name)
    images.address_image(profile.facts.address)
    images.security_code_image(profile.security_code)
    images.my_number_image(profile.my_number)
    t2 = time.perf_counter()
    sample_ca()
    t3 = time.perf_counter()
    return {"profile_with_portrait_s": t1 - t0, "surface_pngs_s": t2 - t1,
            "throwaway_ca_s": t3 - t2}


def run(cards: int = 3) -> dict[str, Any]:
    rt = Path(tempfile.mkdtemp(prefix="mynacard-bench-"))
    os.environ[SOCKET_ENV] = str(socket_path(rt))  # before any PC/SC call in this process
    cold = _parts()  # first call: fonts loaded, portrait drawn
    warm = [_parts() for _ in range(max(1, cards))]
    per_card: list[float] = []
    on_card: list[dict[str, float]] = []
    replay: list[float] = []
    writes = 0
    written_bytes = 0
    try:
        with Emulator(rt, 1) as emulator:
            reader = emulator.readers[0]
            for _ in range(max(1, cards)):
                emulator.replace_card(reader)
                with PcscTransport(reader) as transport:
                    recorder = Recorder(transport)
                    t0 = time.perf_counter()
                    personalise_sample_on(recorder)  # type: ignore[arg-type]
                    per_card.append(time.perf_counter() - t0)
                on_card.append(recorder.seconds)
                commands = [c for c in recorder.sent if c[1] in REPLAYED]
                writes = len(commands)
                written_bytes = sum(len(c) for c in commands)
                emulator.replace_card(reader)
                with PcscTransport(reader) as transport:
                    client = IssuerClient(transport)
                    t0 = time.perf_counter()
                    client.authenticate(HostIssuerAuthenticator(contract.TEST_ISSUER_MASTER_KEY))
                    for command in commands:
                        transport.transmit(command)
                    replay.append(time.perf_counter() - t0)
    finally:
        shutil.rmtree(rt, ignore_errors=True)
    personalise_s = _median(per_card)
    baseline_s = _median(replay)
    return {
        "cards": len(per_card),
        "personalise_per_card_s": personalise_s,
        "personalise_each_s": per_card,
        "baseline_bare_writes_s": baseline_s,
        "ratio_to_baseline": personalise_s / baseline_s if baseline_s else None,
        "baseline_commands": writes,
        "baseline_bytes": written_bytes,
        "on_card_by_instruction_s": {k: _median([c.get(k, 0.0) for c in on_card])
                                     for k in sorted({k for c in on_card for k in c})},
        "host_parts_cold_s": cold,
        "host_parts_warm_s": {k: _median([w[k] for w in warm]) for k in cold},
        "target_s": TARGET_S,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.personalise", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cards", type=int, default=3)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    try:
        r = run(args.cards)
    except EmulatorError as exc:
        print(f"bench: {exc}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(r, indent=2))
        return 0
    print(f"personalise, per card (median of {r['cards']}): {r['personalise_per_card_s']:.2f} s"
          f"  [{', '.join(f'{s:.2f}' for s in r['personalise_each_s'])}]")
    print(f"baseline, the same {r['baseline_commands']} write APDUs ({r['baseline_bytes']} bytes)"
          f" replayed: {r['baseline_bare_writes_s']:.2f} s")
    print(f"ratio personalise / baseline: {r['ratio_to_baseline']:.1f}")
    for label in ("on_card_by_instruction_s", "host_parts_cold_s", "host_parts_warm_s"):
        parts = ", ".join(f"{k} {v:.3f}" for k, v in r[label].items())
        print(f"{label}: {parts}")
    ok = r["personalise_per_card_s"] <= r["target_s"]
    print(f"per-card personalisation {'within' if ok else 'OVER'} the {r['target_s']:.0f} s target")
    return 0


if __name__ == "__main__":
    sys.exit(main())
