"""Reading a `ca issue-batch` file: every line is hostile and judged on its own.

A line becomes a `CertificateRequest` only when it can be read (UTF-8, at most
`MAX_LINE` bytes, a JSON object of the documented fields) and breaks no rule: the key is
what a card makes (RSA-2048, e = 65537, `pki.profiles.check_card_key`), it is not given
on an earlier line nor already certified in the store, the facts are text that fits the
card's certificate EF, and the profile's rules hold (no signing certificate under 15).
Any other line is refused with its number and the reason; the rest are issued.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from dataclasses import dataclass, field
from pathlib import Path

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from pki.attestation import CardKeyEvidence
from pki.ca import CertificateRequest
from pki.errors import PkiError
from pki.identity import Identity
from pki.profiles import Profile, builder_for, check_card_key
from pki.store.db import ReadOnlyStore, key_digest

MAX_LINE = 64 * 1024  # bytes of one line; a line with a PEM RSA-2048 key is about 1 KiB
MAX_REASON = 300
_HOLDER_ID = re.compile(r"[^\x00-\x1f\x7f-\x9f\ud800-\udfff]{1,128}")
_FIELDS = frozenset({"profile", "public_key", "identity", "holder_id", "card_expiry"})
_OPTIONAL = frozenset({"attestation"})
_EVIDENCE_FIELDS = frozenset({"card_serial", "key_fid", "challenge", "mac"})


class LineError(PkiError, ValueError):
    """One line of a batch is refused; the message says why."""


def printable(text: str) -> str:
    """`text` shortened, with lone surrogates and NULs as escapes (always printable)."""
    text = text.encode("utf-8", "backslashreplace").decode("utf-8").replace("\x00", "\\x00")
    return text if len(text) <= MAX_REASON else text[:MAX_REASON] + "…"


def card_key(pem: bytes, where: str) -> rsa.RSAPublicKey:
    """The PEM public key, if it is a key the card makes; else PkiError naming `where`."""
    try:
        key = serialization.load_pem_public_key(pem)
    except (ValueError, TypeError, UnsupportedAlgorithm):
        raise PkiError(f"{where}: not a PEM public key") from None
    try:
        return check_card_key(key)
    except PkiError as exc:
        raise PkiError(f"{where}: {exc}") from None


def check_request(profile: Profile, key: rsa.RSAPublicKey, identity: Identity,
                  card_expiry: dt.date, *, now: dt.datetime | None = None) -> None:
    """The profile's rules for these options (the facts fit the card, no signing
    certificate under 15, a validity that is not empty), without signing anything."""
    builder_for(profile).public_key(key).identity(identity).card_expiry(card_expiry) \
        .check(now or dt.datetime.now(dt.UTC))


def evidence_from_json(raw: object) -> CardKeyEvidence | None:
    """A card's key attestation from JSON: card_serial (15 digits), key_fid (hex),
    challenge (hex, 16 bytes), mac (hex, 16 bytes); None when absent. ValueError or
    TypeError says what is wrong."""
    if raw is None:
        return None
    if not isinstance(raw, dict):
        raise TypeError("must be an object")
    missing = sorted(_EVIDENCE_FIELDS - raw.keys())
    if missing:
        raise ValueError(f"missing {', '.join(missing)}")
    unknown = sorted(raw.keys() - _EVIDENCE_FIELDS)
    if unknown:
        raise ValueError(f"unknown field {printable(str(unknown[0]))}")
    if not all(isinstance(raw[k], str) for k in _EVIDENCE_FIELDS):
        raise TypeError("card_serial, key_fid, challenge and mac are strings")
    serial = raw["card_serial"]
    if len(serial) != 15 or not serial.isascii() or not serial.isdigit():
        raise ValueError("card_serial must be 15 digits")
    fid = raw["key_fid"]
    if not 1 <= len(fid) <= 4 or not fid.isascii():
        raise ValueError("key_fid must be 1 to 4 hex digits")
    challenge = bytes.fromhex(raw["challenge"])
    mac = bytes.fromhex(raw["mac"])
    if len(challenge) != 16 or len(mac) != 16:
        raise ValueError("challenge and mac must be 16 bytes each")
    return CardKeyEvidence(card_serial=serial, key_fid=int(fid, 16), challenge=challenge,
                           mac=mac)


@dataclass
class Batch:
    requests: list[tuple[int, CertificateRequest]] = field(default_factory=list)
    rejected: list[tuple[int, str]] = field(default_factory=list)
    digests: dict[int, str] = field(default_factory=dict)  # line -> key digest


def _request(text: str, now: dt.datetime) -> CertificateRequest:
    try:
        item = json.loads(text)
    except json.JSONDecodeError as exc:
        raise LineError(f"not JSON: {exc.msg} at column {exc.colno}") from None
    except RecursionError:
        raise LineError("not JSON: nested too deeply") from None
    except ValueError as exc:
        raise LineError(f"not JSON: {str(exc).splitlines()[0]}") from None
    if not isinstance(item, dict):
        raise LineError(f"not a JSON object but {type(item).__name__}")
    missing = sorted(_FIELDS - item.keys())
    if missing:
        raise LineError(f"missing {', '.join(missing)}")
    unknown = sorted(item.keys() - _FIELDS - _OPTIONAL)
    if unknown:
        raise LineError(f"unknown field {unknown[0]}")
    try:
        profile = Profile(item["profile"])
    except (ValueError, TypeError):
        raise LineError("profile must be signing or user-authentication") from None
    if not isinstance(item["public_key"], str) or not item["public_key"].isascii():
        raise LineError("public_key must be a PEM text")
    key = card_key(item["public_key"].encode("ascii"), "public_key")
    holder = item["holder_id"]
    if not isinstance(holder, str) or not _HOLDER_ID.fullmatch(holder):
        raise LineError("holder_id must be 1 to 128 characters of text without control "
                        "characters")
    if not isinstance(item["card_expiry"], str):
        raise LineError("card_expiry must be a date YYYY-MM-DD")
    try:
        expiry = dt.date.fromisoformat(item["card_expiry"])
    except ValueError:
        raise LineError("card_expiry must be a date YYYY-MM-DD") from None
    try:
        identity = Identity.from_json(item["identity"])
    except (TypeError, ValueError) as exc:
        raise LineError(f"identity: {exc}") from None
    try:
        check_request(profile, key, identity, expiry, now=now)
    except ValueError as exc:  # ProfileError (a broken rule) included
        raise LineError(str(exc)) from None
    try:
        evidence = evidence_from_json(item.get("attestation"))
    except (TypeError, ValueError) as exc:
        raise LineError(f"attestation: {exc}") from None
    return CertificateRequest(profile=profile, public_key=key, identity=identity,
                              holder_id=holder, card_expiry=expiry, evidence=evidence)


def read_batch(path: Path, *, now: dt.datetime | None = None) -> Batch:
    """Every line of `path` as a request or a refusal (line numbers from 1); a key given
    on an earlier line is refused. OSError if the file cannot be read at all."""
    now = now or dt.datetime.now(dt.UTC)
    batch = Batch()
    first_line: dict[str, int] = {}
    with path.open("rb") as fh:
        number = 0
        while True:
            raw = fh.readline(MAX_LINE + 2)
            if not raw:
                break
            number += 1
            if number == 1:  # a byte-order mark some editors put first is not a request's
                raw = raw.removeprefix(b"\xef\xbb\xbf")
            if len(raw) > MAX_LINE + 1 and not raw.endswith(b"\n"):
                while True:  # skip the rest of the line, a bounded piece at a time
                    rest = fh.readline(MAX_LINE + 2)
                    if not rest or rest.endswith(b"\n"):
                        break
                batch.rejected.append((number, f"longer than {MAX_LINE} bytes"))
                continue
            if not raw.strip():
                continue
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                batch.rejected.append((number, f"not UTF-8 (byte {exc.start + 1})"))
                continue
            try:
                request = _request(text, now)
                digest = key_digest(request.public_key)
                if digest in first_line:
                    raise LineError(f"public_key: the same key is on line {first_line[digest]}")
            except PkiError as exc:
                batch.rejected.append((number, printable(str(exc))))
                continue
            except Exception as exc:  # noqa: BLE001 - every line is hostile: refuse, go on
                batch.rejected.append((number, f"cannot be read: {type(exc).__name__}"))
                continue
            first_line[digest] = number
            batch.requests.append((number, request))
            batch.digests[number] = digest
    batch.rejected.sort()
    return batch


def refuse_certified(batch: Batch, store: ReadOnlyStore) -> None:
    """Move the requests whose key the store has already certified to the refusals."""
    known = store.certified_keys(list(batch.digests.values()))
    if not known:
        return
    keep = []
    for number, request in batch.requests:
        serial = known.get(batch.digests[number])
        if serial is None:
            keep.append((number, request))
        else:
            batch.rejected.append((number, f"public_key: already certified (serial {serial:x})"))
    batch.requests = keep
    batch.rejected.sort()
