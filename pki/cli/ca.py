"""`mynacard ca`: key ceremony, issuing, revoking, a certificate's status."""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import sys
from pathlib import Path
from typing import Any

from pki.cli.common import (
    _RAW,
    PIN_ENV,
    REASONS,
    SO_PIN_ENV,
    _add_db_option,
    _add_hsm_options,
    _ca_dir,
    _db,
    _guarded,
    _key_manager,
    _print_json,
)
from pki.errors import PkiError

# `ca issue-batch --signer auto` signs in a process of its own from this many certificates
# on: the process starts in about 0.4 s and saves about 0.2 ms per certificate (SoftHSM2,
# bench/pki_ca.py), so below this its start costs more than it saves.
PROCESS_FROM = 2000


# -- ca ---------------------------------------------------------------------------------
def _ca_init(args: argparse.Namespace) -> int:
    from hsm.terminal import Progress
    from pki.ca import init_ca
    from pki.store import open_store

    steps = Progress("key ceremony", total=3)  # on a terminal: which step it is on
    steps.update(0, "opening the HSM token", force=True)
    with _key_manager(args, create=True) as km:
        steps.update(1, "root and OCSP keys and certificates of every hierarchy", force=True)
        config = init_ca(km, _ca_dir(args), shards=args.shards, crl_base_url=args.crl_base_url,
                         ocsp_url=args.ocsp_url, attestation_master=args.card_key_attestation)
    steps.update(2, "the certificate store", force=True)
    open_store(_db(args)).close()
    steps.update(3, "done")
    steps.done()
    fps = config.fingerprints()
    if args.json:
        _print_json({"ca_dir": str(config.directory), "shards": config.shards,
                     "fingerprints": fps})
    else:
        print(f"CA created in {config.directory} ({config.shards} CRL shards per hierarchy)")
        for name, fp in fps.items():
            print(f"  {name:9} SHA-256 {fp}")
    return 0


def _load_identity(path: str) -> Any:
    from pki.identity import Identity

    try:
        return Identity.from_json(json.loads(Path(path).read_text(encoding="utf-8")))
    except RecursionError:
        raise PkiError(f"bad identity file {path}: JSON nested too deeply") from None
    except (ValueError, TypeError) as exc:
        reason = str(exc).encode("utf-8", "backslashreplace").decode("utf-8")[:300]
        raise PkiError(f"bad identity file {path}: {reason}") from None


def _evidence(raw: Any) -> Any:
    """A card's key attestation from JSON (see `pki.issue_batch.evidence_from_json`)."""
    from pki.issue_batch import evidence_from_json

    return evidence_from_json(raw)


def _ca_issue(args: argparse.Namespace) -> int:
    from cryptography.hazmat.primitives import serialization

    from hsm.files import OutputExists, write_file
    from pki.ca import IssuingCA
    from pki.issue_batch import card_key, check_request
    from pki.profiles import Profile
    from pki.store import open_store
    from pki.store.db import key_digest

    if args.out and not args.force and os.path.lexists(args.out):
        raise PkiError(str(OutputExists(Path(args.out))))  # before anything is signed
    pub = card_key(Path(args.public_key).read_bytes(), args.public_key)
    identity = _load_identity(args.identity)
    try:
        expiry = dt.date.fromisoformat(args.card_expiry)
    except ValueError:
        raise PkiError("--card-expiry must be a date YYYY-MM-DD") from None
    evidence = None
    if args.attestation:
        try:
            evidence = _evidence(json.loads(Path(args.attestation).read_text(encoding="utf-8")))
        except RecursionError:
            raise PkiError(f"bad attestation file {args.attestation}: nested too deeply") from None
        except (OSError, ValueError, TypeError, KeyError) as exc:
            raise PkiError(f"bad attestation file {args.attestation}: {exc}") from None
    check_request(Profile(args.profile), pub, identity, expiry)
    with _key_manager(args) as km, open_store(_db(args)) as store:
        known = store.certified_keys([key_digest(pub)])
        if known:
            raise PkiError(f"{args.public_key}: this public key is already certified "
                           f"(serial {next(iter(known.values())):x}); a card makes a new "
                           "key for every certificate")
        ca = IssuingCA(key_source=km, ca=_ca_dir(args), store=store)
        kw: dict[str, Any] = dict(public_key=pub, identity=identity, holder_id=args.holder_id,
                                  card_expiry=expiry, evidence=evidence)
        if args.replaces:
            kw["replaces"] = _parse_serial(args.replaces)
        if args.profile == "signing":
            issued = ca.issue_signing(**kw)
        else:
            issued = ca.issue_user_authentication(**kw)
    pem = issued.certificate.public_bytes(serialization.Encoding.PEM)
    if args.out:
        write_file(args.out, pem, force=args.force)
    if args.json:
        _print_json({"serial": format(issued.serial, "x"), "profile": issued.profile.value,
                     "shard": issued.shard, "out": args.out,
                     "not_after": issued.certificate.not_valid_after_utc.isoformat()})
    elif args.out:
        print(f"issued {issued.profile.value} certificate {issued.serial:x} -> {args.out}")
    else:
        sys.stdout.write(pem.decode())
    return 0


def _ca_issue_batch(args: argparse.Namespace) -> int:
    from cryptography.hazmat.primitives import serialization

    from hsm.files import write_file
    from pki.ca import IssuingCA
    from pki.issue_batch import read_batch, refuse_certified
    from pki.store import open_store

    if args.parallel < 1:
        raise PkiError("--parallel must be at least 1")
    try:
        batch = read_batch(Path(args.file))
    except OSError as exc:
        raise PkiError(f"cannot read {args.file}: {exc.strerror or exc}") from exc
    out_dir = Path(args.out_dir) if args.out_dir else None
    if out_dir is not None:
        out_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    issued = []
    with _key_manager(args) as km, open_store(_db(args)) as store:
        refuse_certified(batch, store)
        requests = [r for _line, r in batch.requests]
        if requests:
            ca = IssuingCA(key_source=km, ca=_ca_dir(args), store=store)
        from hsm.terminal import Progress

        in_process = bool(requests) and (args.signer == "process" or (
            args.signer == "auto" and args.parallel == 1 and len(requests) >= PROCESS_FROM))
        progress = Progress("issued", total=len(requests))
        with contextlib.ExitStack() as stack:
            signing = stack.enter_context(km.signing_process()) if in_process else None
            step = 250  # progress on a terminal per chunk; each chunk is its own call
            for start in range(0, len(requests), step):
                issued += ca.issue_many(requests[start:start + step], parallel=args.parallel,
                                        signing=signing)
                progress.update(len(issued))
        progress.done()
    rows = []
    for (line, r), c in zip(batch.requests, issued, strict=True):
        path = None
        if out_dir is not None:
            path = out_dir / f"{c.serial:x}.pem"
            write_file(path, c.certificate.public_bytes(serialization.Encoding.PEM))
        rows.append({"line": line, "serial": format(c.serial, "x"), "profile": c.profile.value,
                     "holder_id": r.holder_id, "shard": c.shard,
                     "not_after": c.certificate.not_valid_after_utc.isoformat(),
                     "out": str(path) if path else None})
    rejected = [{"line": line, "reason": reason} for line, reason in batch.rejected]
    if args.json:
        _print_json({"issued": rows, "rejected": rejected})
    else:
        for row in rows:
            print(f"{row['serial']}  {row['profile']:<20} {row['holder_id']}"
                  + (f"  -> {row['out']}" if row["out"] else ""))
        print(f"issued {len(rows)} certificates", file=sys.stderr)
    for item in rejected:
        print(f"mynacard: error: {args.file} line {item['line']}: {item['reason']}",
              file=sys.stderr)
    if rejected:
        print(f"refused {len(rejected)} line(s); the other {len(rows)} were issued",
              file=sys.stderr)
    return 1 if rejected else 0


def _parse_serial(text: str) -> int:
    try:
        return int(text.replace(":", ""), 16)
    except ValueError:
        raise PkiError(f"not a hex serial number: {text!r}") from None


def _reason_flag(name: str) -> Any:
    from cryptography import x509

    for flag in x509.ReasonFlags:
        if flag.name.replace("_", "").lower() == name.replace("_", "").lower() \
                or flag.value == name:
            return flag
    raise PkiError(f"unknown reason {name!r}")


def _ca_revoke(args: argparse.Namespace) -> int:
    from pki.keys import utc_now
    from pki.store import open_store

    serial = _parse_serial(args.serial)
    with open_store(_db(args)) as store:
        if args.hold:
            changed = store.hold(serial, cause=args.cause, at=utc_now())
        else:
            changed = store.revoke(serial, reason=_reason_flag(args.reason), cause=args.cause,
                                   at=utc_now())
    state = "on hold" if args.hold else "revoked"
    print(f"{args.serial}: {state}" if changed else f"{args.serial}: already {state} or revoked")
    return 0


def _ca_status(args: argparse.Namespace) -> int:
    from pki.store import open_readonly_store

    with open_readonly_store(_db(args)) as store:
        rec = store.get(_parse_serial(args.serial))
    out = {"serial": args.serial.lower(), "hierarchy": rec.hierarchy, "profile": rec.profile,
           "holder_id": rec.holder_id, "shard": rec.shard, "status": rec.status.value,
           "reason": rec.reason.value if rec.reason else None,
           "revoked_at": rec.revoked_at.isoformat() if rec.revoked_at else None,
           "cause": rec.cause, "successor": format(rec.successor, "x") if rec.successor else None,
           "not_after": rec.not_after.isoformat()}
    if args.json:
        _print_json(out)
    else:
        for k, v in out.items():
            print(f"{k:10} {v}")
    return 0


def register(subparsers: Any) -> None:
    """Add `ca` and its commands."""
    ca = subparsers.add_parser(
        "ca", help="JPKI CA: key ceremony, issuing, revoking", formatter_class=_RAW,
        description="The two JPKI CA hierarchies (signing, user authentication) and the "
                    "center's operator hierarchy (operator IC cards), keys in the HSM token "
                    "under HOME/hsm, certificates in HOME/ca.",
        epilog=f"PINs are read from --pin-source (default env:{PIN_ENV}); a new token's SO "
               f"PIN from --pin-source so=SPEC (default env:{SO_PIN_ENV}).\n\nExamples:\n"
               "  mynacard ca init --shards 16\n"
               "  mynacard ca issue --profile signing --public-key holder.pem \\\n"
               "      --identity id.json --holder-id R123 --card-expiry 2035-01-01 --out s.pem\n"
               "  mynacard ca revoke 1a2b... --reason keyCompromise")
    ca_sub = ca.add_subparsers(title="commands", metavar="COMMAND", required=True)

    p = ca_sub.add_parser("init", help="key ceremony: create the three hierarchies",
                          formatter_class=_RAW,
                          description="Create the root and OCSP responder keys of the "
                                      "signing, user-authentication and operator "
                                      "hierarchies in the HSM (creating the SoftHSM2 token if "
                                      "needed), write their certificates to HOME/ca and print "
                                      "their SHA-256 fingerprints. Refuses to overwrite a CA.")
    _add_hsm_options(p)
    _add_db_option(p)
    from hsm.options import add_deprecated_alias, pin_source_action

    pin_source_action(p).add_kind("so", "so_pin_source")  # type: ignore[union-attr]
    add_deprecated_alias(p, "--so-pin-source", new="--pin-source so=SPEC",
                         dest="so_pin_source", default=f"env:{SO_PIN_ENV}")
    p.set_defaults(so_pin_source=f"env:{SO_PIN_ENV}")  # SO PIN of a token to be created
    p.add_argument("--shards", type=int, default=16, help="CRL shards per hierarchy (default 16)")
    p.add_argument("--crl-base-url", default="http://crl.mynacard.test/jpki", metavar="URL",
                   help="CRL base URL; shards are URL/<sign|auth>/shard-NNNN.crl")
    p.add_argument("--card-key-attestation", metavar="MASTER_LABEL",
                   help="certify only card keys the card attested (the label of the issuer "
                        "master key in the same token; see card/PROTOCOL.md)")
    p.add_argument("--ocsp-url", default="http://ocsp.mynacard.test/jpki", metavar="URL",
                   help="OCSP responder URL written in every certificate")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=_guarded(_ca_init), changes=True, roles=("ca-officer",),
                   dual_control=True,
                   audit_action="ca.init",
                   audit_subject="token", audit_detail=("shards", "crl_base_url", "ocsp_url"))

    p = ca_sub.add_parser("issue", help="issue a certificate for a public key (tests, demos)",
                          description="Issue a signing or user-authentication certificate for "
                                      "a holder's RSA public key (PEM) and basic four facts "
                                      "(JSON: name, name_substitute, sex, birth_date, address, "
                                      "address_substitute).")
    _add_hsm_options(p)
    _add_db_option(p)
    p.add_argument("--profile", choices=["signing", "user-authentication"], required=True)
    p.add_argument("--public-key", required=True, metavar="PEM")
    p.add_argument("--identity", required=True, metavar="JSON")
    p.add_argument("--holder-id", required=True, metavar="ID",
                   help="opaque holder id (e.g. resident code)")
    p.add_argument("--card-expiry", required=True, metavar="YYYY-MM-DD")
    p.add_argument("--replaces", metavar="SERIAL", help="hex serial this certificate supersedes")
    p.add_argument("--attestation", metavar="JSON",
                   help="the card's key attestation: {card_serial, key_fid (hex), challenge, "
                        "mac (hex)}; required by a CA made with --card-key-attestation")
    p.add_argument("--out", metavar="FILE", help="write the certificate (PEM) here, 0600")
    p.add_argument("--force", action="store_true", help="overwrite --out if it exists")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=_guarded(_ca_issue), changes=True, roles=("ca-officer",),
                   audit_action="ca.issue",
                   audit_subject="holder_id",
                   audit_detail=("profile", "card_expiry", "replaces", "out"))

    p = ca_sub.add_parser(
        "issue-batch", help="issue many certificates from a JSON Lines file, pipelined",
        description="Issue a certificate for each line of FILE, as a card factory does for a "
                    "batch of cards whose keys were generated on the cards. Each line: "
                    '{"profile": "signing" | "user-authentication", "public_key": "<PEM>", '
                    '"identity": {four facts, as for issue --identity}, "holder_id": "...", '
                    '"card_expiry": "YYYY-MM-DD", "attestation": {as for issue --attestation; '
                    "required by a CA made with --card-key-attestation}}. Every line is checked "
                    "first, on its own: "
                    "a line that cannot be read or breaks a rule (a key other than the card's "
                    "RSA-2048 with e = 65537, a key given twice or already certified, a name "
                    "or address with control characters or too long for the card, a signing "
                    "certificate for a holder under 15) is refused with its line number and "
                    "the reason, and every other line is issued (exit status 1 when a line "
                    "was refused). The HSM signs the next certificates while the last ones "
                    "are recorded.")
    _add_hsm_options(p)
    _add_db_option(p)
    p.add_argument("file", metavar="FILE", help="JSON Lines, one certificate per line")
    p.add_argument("--out-dir", metavar="DIR", help="write each certificate as DIR/<serial>.pem")
    p.add_argument("--parallel", type=int, default=1, metavar="N",
                   help="HSM signing threads (sessions) with --signer threads; default 1")
    p.add_argument("--signer", choices=("auto", "process", "threads"), default="auto",
                   help="where the HSM signs: 'process', a process of its own with its own "
                        "session, which never waits for this one's Python (faster for long "
                        "batches; about 0.4 s to start); 'threads', --parallel threads "
                        f"of this process; 'auto' (default): a process from "
                        f"{PROCESS_FROM} certificates on, with --parallel 1")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=_guarded(_ca_issue_batch), changes=True, roles=("ca-officer",),
                   audit_action="ca.issue-batch", audit_subject="file",
                   audit_detail=("parallel", "signer", "out_dir"))

    p = ca_sub.add_parser("revoke", help="revoke (or --hold) a certificate by serial")
    _add_db_option(p)
    p.add_argument("serial", metavar="SERIAL", help="hex serial number")
    p.add_argument("--reason", default="unspecified", choices=REASONS)
    p.add_argument("--hold", action="store_true", help="put on hold (certificateHold) instead")
    p.add_argument("--cause", help="free text or notice id recorded with the revocation")
    p.set_defaults(func=_guarded(_ca_revoke), changes=True, roles=("supervisor", "ca-officer"),
                   audit_action="ca.revoke",
                   audit_subject="serial", audit_detail=("reason", "hold", "cause"))

    p = ca_sub.add_parser("status", help="show a certificate's record in the store")
    _add_db_option(p)
    p.add_argument("serial", metavar="SERIAL", help="hex serial number")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=_guarded(_ca_status), changes=False, roles="*")
