"""`mynacard ca|crl|ocsp|verify`: the JPKI CA from the command line.

State lives under the state directory (``--home``): ``ca/`` (public certificates and
``ca.json``), ``store.sqlite`` (or ``--db postgresql://…``), the SoftHSM2 token under
``hsm/``. PINs come only from pin sources (``env:NAME`` or ``file:PATH``), never from
the command line, and are never printed.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from pki.errors import PkiError, StoreError, UnknownCertificateError

DEFAULT_TOKEN = "jpki"
PIN_ENV = "MYNACARD_HSM_PIN"
SO_PIN_ENV = "MYNACARD_HSM_SO_PIN"
REASONS = ["unspecified", "keyCompromise", "affiliationChanged", "superseded",
           "cessationOfOperation", "cACompromise", "privilegeWithdrawn"]

_RAW = argparse.RawDescriptionHelpFormatter


EXIT_REFUSED = 1  # refused by a rule, or invalid input
EXIT_FAILURE = 3  # a part failed: the store, the HSM, a file, the network
EXIT_UNCHECKED = 4  # verify: revocation could not be checked (not the same as INVALID)


def _err(msg: str, code: int = EXIT_REFUSED) -> int:
    print(f"mynacard: error: {msg}", file=sys.stderr)
    return code


def _guarded(fn: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    def run(args: argparse.Namespace) -> int:
        _hsm_defaults(args)
        try:
            from hsm import HsmError
        except ImportError:  # pragma: no cover - hsm always ships with pki
            HsmError = PkiError  # type: ignore[misc,assignment]  # noqa: N806
        try:
            return fn(args)
        except (PkiError, HsmError) as exc:
            return _err(str(exc).splitlines()[0] if str(exc) else type(exc).__name__,
                        _exit_code(exc))
        except (FileExistsError, FileNotFoundError) as exc:  # a path the operator named
            return _err(f"{exc.filename or ''}: {exc.strerror or exc}".lstrip(": "))
        except OSError as exc:
            return _err(f"{exc.filename or ''}: {exc.strerror or exc}".lstrip(": "),
                        EXIT_FAILURE)
        except ValueError as exc:  # bad input the parsers let through (e.g. a serial)
            return _err(str(exc).splitlines()[0])

    return run


def _hsm_defaults(args: argparse.Namespace) -> None:
    """Options the operator and HOME/config.toml left unset get the built-in defaults."""
    if hasattr(args, "token") and args.token is None:
        args.token = DEFAULT_TOKEN
    if hasattr(args, "pin_source") and args.pin_source is None:
        args.pin_source = f"env:{PIN_ENV}"


def _exit_code(exc: BaseException) -> int:
    """Refusals and invalid input exit 1; a store or HSM that failed exits 3."""
    from hsm.cli import exit_code as hsm_exit_code

    if isinstance(exc, StoreError) and not isinstance(exc, UnknownCertificateError):
        return EXIT_FAILURE
    if isinstance(exc, PkiError):
        return EXIT_REFUSED
    return hsm_exit_code(exc)


def _db(args: argparse.Namespace) -> str | Path:
    return args.db if args.db else Path(args.home) / "store.sqlite"


def _ca_dir(args: argparse.Namespace) -> Path:
    return Path(args.home) / "ca"


@contextmanager
def _key_manager(args: argparse.Namespace, *, create: bool = False) -> Iterator[Any]:
    from hsm import open_key_manager
    from hsm.pin_source import PinSource
    from hsm.softhsm import init_token, use_softhsm

    home = Path(args.home)
    pin = PinSource.from_spec(args.pin_source)
    use_softhsm(home)
    uri = f"pkcs11:token={args.token}"
    if create:
        from hsm.errors import TokenExists

        so_pin = PinSource.from_spec(args.so_pin_source)
        try:
            uri = init_token(home, args.token, so_pin.read(), pin.read())
        except TokenExists:
            pass
    with open_key_manager(uri, pin_source=pin) as km:
        yield km


def _add_hsm_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--token", metavar="LABEL",
                   help=f"HSM token label (default: HOME/config.toml, else {DEFAULT_TOKEN})")
    from hsm.options import add_pin_source

    add_pin_source(p, {"user": "pin_source"},
                   help=f"where the token user PIN is read (default: HOME/config.toml,"
                        f" else env:{PIN_ENV})")


def _add_db_option(p: argparse.ArgumentParser) -> None:
    from hsm.options import add_deprecated_alias

    p.add_argument("--store", dest="db", metavar="PATH|URL",
                   help="certificate store: SQLite file or postgresql:// URL "
                        "(default HOME/config.toml, else HOME/store.sqlite)")
    add_deprecated_alias(p, "--db", new="--store", dest="db")


def _print_json(obj: Any) -> None:
    print(json.dumps(obj, indent=2, ensure_ascii=False))


# -- ca ---------------------------------------------------------------------------------
def _ca_init(args: argparse.Namespace) -> int:
    from hsm.terminal import Progress
    from pki.ca import init_ca
    from pki.store import open_store

    steps = Progress("key ceremony", total=3)  # on a terminal: which step it is on
    steps.update(0, "opening the HSM token", force=True)
    with _key_manager(args, create=True) as km:
        steps.update(1, "root and OCSP keys and certificates of both hierarchies", force=True)
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

        progress = Progress("issued", total=len(requests))
        step = 250  # progress on a terminal per chunk; each chunk is its own call
        for start in range(0, len(requests), step):
            issued += ca.issue_many(requests[start:start + step], parallel=args.parallel)
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


# -- crl / ocsp -------------------------------------------------------------------------
def _crl_publish(args: argparse.Namespace) -> int:
    from pki.ca import load_ca
    from pki.crl import CrlPublisher
    from pki.store import open_store

    if args.out is None:
        raise PkiError("no CRL folder: pass --out DIR (or run `mynacard center init`)")
    ca = load_ca(_ca_dir(args))
    with _key_manager(args) as km, open_store(_db(args)) as store:
        from hsm.terminal import Progress

        pub = CrlPublisher(key_source=km, ca=ca, store=store,
                           validity=dt.timedelta(hours=args.validity_hours))
        progress = Progress("CRL shards signed", total=2 * ca.shards)
        shards = pub.publish(args.out, progress=progress.add)
        progress.done()
    if args.json:
        _print_json([{"hierarchy": s.hierarchy.value, "shard": s.shard, "path": str(s.path),
                      "crl_number": s.crl_number, "entries": s.entries} for s in shards])
    else:
        total = sum(s.entries for s in shards)
        print(f"published {len(shards)} CRL shards ({total} entries) to {args.out}")
    return 0


def _scheduled(fn: Callable[[argparse.Namespace], int], args: argparse.Namespace) -> int:
    from pki.relying_parties.schedule import scheduled

    return scheduled(fn, args)


_OCSP_ENV = "MYNACARD_OCSP_CONFIG"


def _ocsp_authorizer(db: str | Path | None, home: Path, open_access: bool) -> Any:
    """None (anyone) with --open, else the relying-party token check."""
    if open_access:
        return None
    from pki.relying_parties.registry import TokenAuthorizer

    return TokenAuthorizer(db or home / "store.sqlite")


def _ocsp_responder(home: Path, token: str, pin_source: str, db: str | None,
                    validity: int) -> tuple[Any, Any]:
    from hsm import PinSource, open_key_manager
    from hsm.softhsm import use_softhsm
    from pki.ca import load_ca
    from pki.ocsp import OcspResponder
    from pki.store import open_readonly_store

    ca = load_ca(home / "ca")
    use_softhsm(home)
    km = open_key_manager(f"pkcs11:token={token}", pin_source=PinSource.from_spec(pin_source))
    store = open_readonly_store(db or home / "store.sqlite")
    responder = OcspResponder.from_ca(key_source=km, ca=ca, store=store,
                                      validity=dt.timedelta(seconds=validity))
    return responder, (km, store)


def ocsp_app_from_env() -> Any:
    """uvicorn factory for `ocsp serve --workers N`: each worker process opens its own
    HSM session and read-only store from the (PIN-free) settings in $MYNACARD_OCSP_CONFIG."""
    import os

    from pki.ocsp.server import build_app
    from pki.serving import Guard, Limits

    cfg = json.loads(os.environ[_OCSP_ENV])
    responder, _resources = _ocsp_responder(Path(cfg["home"]), cfg["token"], cfg["pin_source"],
                                            cfg["db"], cfg["validity"])
    app = build_app(responder, authorizer=_ocsp_authorizer(cfg["db"], Path(cfg["home"]),
                                                           cfg.get("open", False)))
    app.state.resources = _resources  # keep the HSM session and store open
    return Guard(app, Limits(**cfg["limits"]))


def _ocsp_serve(args: argparse.Namespace) -> int:
    import os

    import uvicorn

    from pki.ocsp.server import MAX_REQUEST, serve
    from pki.serving import (
        LIMITS_ENV,
        ServingError,
        check_transport,
        limits_from_args,
        limits_to_env,
        tls_from_args,
    )

    tls = tls_from_args(args)
    limits = limits_from_args(args, max_body=MAX_REQUEST)
    try:
        check_transport(tls, tokens=not args.open, insecure_http=args.insecure_http)
    except ServingError as exc:
        print(f"mynacard: {exc}", file=sys.stderr)
        return 2
    # open everything once in this process first, so configuration errors surface here
    responder, (km, store) = _ocsp_responder(Path(args.home), args.token, args.pin_source,
                                             args.db, args.validity)
    scheme = "https" if tls.enabled else "http"
    print(f"OCSP responder on {scheme}://{args.host}:{args.port}/ ({args.workers} worker(s))",
          file=sys.stderr, flush=True)
    if args.workers <= 1:
        try:
            serve(responder, host=args.host, port=args.port,
                  authorizer=_ocsp_authorizer(args.db, Path(args.home), args.open),
                  tls=tls, limits=limits)
        finally:
            store.close()
            km.close()
        return 0
    store.close()
    km.close()
    os.environ[_OCSP_ENV] = json.dumps({
        "home": str(args.home), "token": args.token, "pin_source": args.pin_source,
        "db": str(args.db) if args.db else None, "validity": args.validity,
        "open": args.open, "limits": limits.__dict__})
    os.environ[LIMITS_ENV] = limits_to_env(limits)
    ssl_options: dict[str, Any] = {}
    if tls.enabled:
        ssl_options = {"ssl_certfile": str(tls.cert), "ssl_keyfile": str(tls.key)}
    uvicorn.run("pki.cli:ocsp_app_from_env", factory=True, host=args.host, port=args.port,
                workers=args.workers, log_level="warning", access_log=False,
                server_header=False, http="pki.serving:protocol_from_env",
                timeout_keep_alive=int(max(1, limits.keep_alive)), **ssl_options)
    return 0


# -- verify -----------------------------------------------------------------------------
OCSP_TOKEN_ENV = "MYNACARD_OCSP_TOKEN"


def _ocsp_token(spec: str | None) -> str | None:
    """This relying party's OCSP token: from --ocsp-token-source, else $MYNACARD_OCSP_TOKEN."""
    from hsm import PinSource, PinSourceError

    if spec is None:
        return os.environ.get(OCSP_TOKEN_ENV) or None
    try:
        return PinSource.from_spec(spec).read()
    except PinSourceError as exc:
        raise PkiError(f"--ocsp-token-source: {exc}") from None


def _verify(args: argparse.Namespace) -> int:
    from pki.verify import load_certificate, load_roots, verify_certificate, verify_cms

    roots_paths = args.root or [p for p in (_ca_dir(args) / "sign-root.pem",
                                            _ca_dir(args) / "auth-root.pem") if p.exists()]
    if not roots_paths:
        raise PkiError("no trusted roots: pass --root FILE (or run `mynacard ca init`)")
    roots = load_roots(roots_paths)
    at = None
    if args.at:
        try:
            at = dt.datetime.fromisoformat(args.at)
        except ValueError:
            raise PkiError("--at must be an ISO 8601 time") from None
        if at.tzinfo is None:
            at = at.replace(tzinfo=dt.UTC)
    crl = args.crl
    if args.cert and crl and Path(crl).is_dir():
        crl = str(crl_shard_in(Path(crl), load_certificate(Path(args.cert).read_bytes())))
    opts: dict[str, Any] = dict(roots=roots, at=at, ocsp_url=args.ocsp, crl=crl,
                                check_revocation=not args.no_revocation,
                                ocsp_token=_ocsp_token(args.ocsp_token_source))
    if args.login:
        return _verify_login(args, opts)
    if args.cert:
        result = verify_certificate(load_certificate(Path(args.cert).read_bytes()), **opts)
    else:
        if not args.data:
            raise PkiError("--cms needs --data FILE (the signed data)")
        if crl and Path(crl).is_dir():  # the shard is named by the signer's certificate
            opts["crl"] = str(_shard_for_cms(Path(crl), Path(args.cms).read_bytes()))
        result = verify_cms(Path(args.cms).read_bytes(), data=Path(args.data).read_bytes(),
                            **opts)
    if args.json:
        _print_json(result.to_json())
    else:
        c = result.certificate
        from hsm.terminal import paint

        word = "VALID" if result.valid else \
            "INVALID" if verify_exit_code(result) != EXIT_UNCHECKED else "UNCHECKED"
        print(paint(word) +
              f": {result.profile.value if result.profile else 'non-JPKI'} certificate "
              f"{c.serial_number:x}")
        for r in result.reasons:
            print(f"  - {r}")
        rv = result.revocation
        src = f" ({rv.source})" if rv.source else ""
        print(f"  revocation: {rv.status} by {rv.method}{src}")
        if result.identity:
            i = result.identity
            print(f"  name:       {i.name}")
            print(f"  birth date: {i.birth_date.isoformat()}")
            print(f"  sex:        {i.sex}")
            print(f"  address:    {i.address}")
    return verify_exit_code(result)


def verify_exit_code(result: Any) -> int:
    """0 valid; 4 when the only thing wrong is that revocation could not be checked
    (network down, 401 from the responder, a CRL shard that is not the certificate's or
    out of date) -- the relying party should retry, not refuse; 1 invalid."""
    if result.valid:
        return 0
    unchecked = result.revocation.status == "error"
    only_that = all(r.startswith("revocation status ") for r in result.reasons)
    return EXIT_UNCHECKED if unchecked and only_that else EXIT_REFUSED


def _shard_for_cms(folder: Path, raw: bytes) -> Path:
    """The shard for the end-entity certificate a CMS carries (JPKI sends only the signer's)."""
    import base64

    from asn1crypto import cms as acms
    from cryptography import x509

    if raw.lstrip().startswith(b"-----"):
        raw = base64.b64decode(b"".join(ln for ln in raw.strip().splitlines()
                                        if not ln.startswith(b"-----")))
    try:
        sd = acms.ContentInfo.load(raw)["content"]
        certs = [x509.load_der_x509_certificate(c.chosen.dump())
                 for c in (sd["certificates"] or []) if c.name == "certificate"]
    except Exception as exc:  # noqa: BLE001 - hostile input: one line
        raise PkiError(f"not a CMS SignedData: {exc}") from None
    for cert in certs:
        try:
            return crl_shard_in(folder, cert)
        except PkiError:
            continue
    raise PkiError(f"no CRL shard in {folder} for the certificates in the CMS")


def crl_shard_in(folder: Path, cert: Any) -> Path:
    """The CRL shard in `folder` that the certificate's CRL distribution point names
    (its last path segment), so a relying party may mirror a whole CRL folder."""
    from urllib.parse import urlparse

    from cryptography import x509

    try:
        dp = cert.extensions.get_extension_for_class(x509.CRLDistributionPoints).value
    except x509.ExtensionNotFound:
        raise PkiError("the certificate names no CRL distribution point; "
                       "pass the shard with --crl FILE") from None
    names = [urlparse(n.value).path.rsplit("/", 1)[-1] for point in dp
             for n in (point.full_name or []) if isinstance(n, x509.UniformResourceIdentifier)]
    for name in names:
        if name:
            for candidate in [folder / name, *sorted(folder.rglob(name))]:
                if candidate.is_file():
                    return candidate
    raise PkiError(f"no CRL shard {' or '.join(names) or '?'} in {folder} "
                   "(the certificate's CRL distribution point names it)")


# -- user-authentication login (利用者証明) ----------------------------------------------
def _login_state(args: argparse.Namespace) -> Path:
    return Path(args.state) if args.state else Path(args.home) / "rp-login"


def _login_challenge(args: argparse.Namespace) -> int:
    from pki.login import LoginVerifier

    if not 1 <= args.ttl <= 3600:
        print("mynacard login-challenge: error: --ttl is 1 to 3600 seconds", file=sys.stderr)
        return 2
    challenge = LoginVerifier(_login_state(args), rp=args.rp).challenge(
        ttl=dt.timedelta(seconds=args.ttl))
    text = json.dumps(challenge, ensure_ascii=False, indent=2) + "\n"
    if args.out:
        from hsm.files import write_file

        write_file(args.out, text, force=args.force)
        print(f"challenge for {args.rp!r}, expires {challenge['expires']}: {args.out}",
              file=sys.stderr)
    else:
        sys.stdout.write(text)
    return 0


def _verify_login(args: argparse.Namespace, opts: dict[str, Any]) -> int:
    from pki.login import LoginVerifier, load_response

    opts = dict(opts)
    at = opts.pop("at")
    result = LoginVerifier(_login_state(args), rp=args.rp).verify(
        load_response(args.login), now=at, at=at, **opts)
    if args.json:
        _print_json(result.to_json())
    else:
        print(("LOGIN OK" if result.valid else "LOGIN REFUSED") +
              f": user-authentication certificate {result.certificate.serial_number:x}")
        for r in result.reasons:
            print(f"  - {r}")
    return 0 if result.valid else 1


def _verify_serve(args: argparse.Namespace) -> int:
    from pki.relying_parties.registry import TokenAuthorizer
    from pki.serving import (
        ServingError,
        check_transport,
        limits_from_args,
        run,
        tls_from_args,
        uvicorn_config,
    )
    from pki.store import open_readonly_store
    from pki.verify import load_roots
    from pki.verify_service import MAX_BODY, OcspCache, VerifyService, build_app

    tls = tls_from_args(args)
    try:
        check_transport(tls, tokens=True, insecure_http=args.insecure_http)
    except ServingError as exc:
        print(f"mynacard: {exc}", file=sys.stderr)
        return 2
    roots_paths = args.root or [p for p in (_ca_dir(args) / "sign-root.pem",
                                            _ca_dir(args) / "auth-root.pem") if p.exists()]
    if not roots_paths:
        raise PkiError("no trusted roots: pass --root FILE (or run `mynacard ca init`)")
    roots = load_roots(roots_paths)
    ocsp = None if args.crl else OcspCache(url=args.ocsp,
                                           token=_ocsp_token(args.ocsp_token_source))
    store = open_readonly_store(_db(args))
    authorizer = TokenAuthorizer(_db(args))
    try:
        service = VerifyService(roots=roots, state_dir=args.state or
                                Path(args.home) / "verify-service", ocsp=ocsp, store=store,
                                crl=args.crl)
        limits = limits_from_args(args, max_body=MAX_BODY)
        scheme = "https" if tls.enabled else "http"
        print(f"verification service on {scheme}://{args.host}:{args.port}/",
              file=sys.stderr, flush=True)
        run(uvicorn_config(build_app(service, authorizer=authorizer), host=args.host,
                           port=args.port, tls=tls, limits=limits, access_log=False,
                           server_header=False))
    finally:
        authorizer.close()
        store.close()
    return 0


def _add_login_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--state", metavar="DIR",
                   help="the relying party's login state: sealing key and spent challenges "
                        "(default HOME/rp-login)")
    p.add_argument("--rp", metavar="NAME", default="relying-party",
                   help="this relying party's name, sealed into its challenges")


# -- registration -----------------------------------------------------------------------
def register(subparsers: Any) -> None:
    """Add the `ca`, `crl`, `ocsp` and `verify` commands to the root parser."""
    ca = subparsers.add_parser(
        "ca", help="JPKI CA: key ceremony, issuing, revoking", formatter_class=_RAW,
        description="The two JPKI CA hierarchies (signing, user authentication), keys in "
                    "the HSM token under HOME/hsm, certificates in HOME/ca.",
        epilog=f"PINs are read from --pin-source (default env:{PIN_ENV}); a new token's SO "
               f"PIN from --pin-source so=SPEC (default env:{SO_PIN_ENV}).\n\nExamples:\n"
               "  mynacard ca init --shards 16\n"
               "  mynacard ca issue --profile signing --public-key holder.pem \\\n"
               "      --identity id.json --holder-id R123 --card-expiry 2035-01-01 --out s.pem\n"
               "  mynacard ca revoke 1a2b... --reason keyCompromise")
    ca_sub = ca.add_subparsers(title="commands", metavar="COMMAND", required=True)

    p = ca_sub.add_parser("init", help="key ceremony: create both hierarchies",
                          formatter_class=_RAW,
                          description="Create the root and OCSP responder keys of both "
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
                   help="HSM signing threads (sessions); default 1")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=_guarded(_ca_issue_batch), changes=True, roles=("ca-officer",),
                   audit_action="ca.issue-batch", audit_subject="file",
                   audit_detail=("parallel", "out_dir"))

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

    crl = subparsers.add_parser("crl", help="CRL shards")
    crl_sub = crl.add_subparsers(title="commands", metavar="COMMAND", required=True)
    p = crl_sub.add_parser("publish", help="sign and write every CRL shard",
                           description="Write DIR/<sign|auth>/shard-NNNN.crl (DER), each with "
                                       "a new CRL number, signed by the root key in the HSM.")
    _add_hsm_options(p)
    _add_db_option(p)
    p.add_argument("--out", metavar="DIR",
                   help="the CRL folder (default: crl_dir of HOME/config.toml)")
    p.add_argument("--validity-hours", type=float, default=24.0,
                   help="nextUpdate - thisUpdate in hours (default 24)")
    p.add_argument("--every", metavar="DURATION",
                   help="publish now and then every DURATION (e.g. 15m, 1h) until Ctrl-C")
    p.add_argument("--count", type=int, metavar="N", help="with --every: stop after N runs")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=lambda a: _scheduled(_guarded(_crl_publish), a), changes=True,
                   roles=("ca-officer",),
                   audit_action="crl.publish", audit_subject="out",
                   audit_detail=("validity_hours", "every", "count"))

    ocsp = subparsers.add_parser("ocsp", help="OCSP responder")
    ocsp_sub = ocsp.add_subparsers(title="commands", metavar="COMMAND", required=True)
    p = ocsp_sub.add_parser("serve", help="run the OCSP responder over HTTP",
                            description="Answer RFC 6960 GET and POST requests for both "
                                        "hierarchies from the read-only store, signing with "
                                        "the delegated responder keys in the HSM.")
    _add_hsm_options(p)
    _add_db_option(p)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8080)
    p.add_argument("--validity", type=int, default=3600, metavar="SECONDS",
                   help="response validity (nextUpdate - thisUpdate), default 3600")
    p.add_argument("--workers", type=int, default=1,
                   help="worker processes (one per core; each opens its own HSM session)")
    p.add_argument("--open", action="store_true",
                   help="answer anyone (tests, development); by default only registered "
                        "relying parties (Authorization: Bearer TOKEN, see `mynacard rp add`)")
    from pki.serving import add_serving_options

    add_serving_options(p, client_ca=False)
    p.set_defaults(func=_guarded(_ocsp_serve), changes=False, roles="*", serves=True)

    p = subparsers.add_parser(
        "verify", help="verify a JPKI certificate or CMS signature", formatter_class=_RAW,
        description="Check the path to a JPKI root, validity, key usage, policy and "
                    "revocation (OCSP at the certificate's responder unless --ocsp or --crl). "
                    "Exit status 0 valid, 1 invalid, 4 revocation could not be checked "
                    "(network, 401, wrong or stale CRL shard: retry); prints the signer's "
                    "basic four facts for signing certificates.",
        epilog="Examples:\n  mynacard verify --cert s.pem --crl crl/sign/shard-0003.crl\n"
               "  mynacard verify --cms doc.p7s --data doc.pdf --root sign-root.pem --json")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--cert", metavar="FILE", help="certificate (PEM or DER)")
    src.add_argument("--cms", metavar="FILE", help="CMS SignedData (DER or PEM)")
    src.add_argument("--login", metavar="FILE",
                     help="a login response (`mynacard card authenticate`) to a challenge "
                          "of this relying party (`mynacard login-challenge`)")
    p.add_argument("--data", metavar="FILE", help="the signed data for a detached --cms")
    p.add_argument("--root", action="append", metavar="FILE",
                   help="trusted root certificate (repeatable; default HOME/ca/*-root.pem)")
    rev = p.add_mutually_exclusive_group()
    rev.add_argument("--ocsp", metavar="URL", help="ask this OCSP responder")
    rev.add_argument("--crl", metavar="FILE|DIR|URL",
                     help="check this CRL shard; a folder: the shard the certificate's CRL "
                          "distribution point names")
    rev.add_argument("--no-revocation", action="store_true", help="skip the revocation check")
    p.add_argument("--ocsp-token-source", metavar="SPEC",
                   help="env:NAME or file:PATH holding this relying party's OCSP token "
                        f"(`mynacard rp add`; default ${OCSP_TOKEN_ENV})")
    p.add_argument("--at", metavar="TIME", help="check validity at this ISO 8601 time")
    p.add_argument("--json", action="store_true", help="print JSON")
    _add_login_options(p)
    p.set_defaults(func=_guarded(_verify), changes=False, roles="*", exits=(4,))

    p = subparsers.add_parser(
        "verify-serve", formatter_class=_RAW,
        help="serve verification over HTTP/JSON to registered relying parties",
        description="Check CMS signatures, certificates and login responses for relying "
                    "parties with a token (`mynacard rp add`), each kind about its own "
                    "certificates only; OCSP answers are cached until their nextUpdate. "
                    "OpenAPI description at /openapi.json.",
        epilog="Example:\n  mynacard verify-serve --tls-cert srv.pem --tls-key srv.key "
               "--ocsp https://ocsp.example/ --ocsp-token-source env:TOKEN")
    p.add_argument("--root", action="append", metavar="FILE",
                   help="trusted root certificate (repeatable; default HOME/ca/*-root.pem)")
    rev = p.add_mutually_exclusive_group()
    rev.add_argument("--ocsp", metavar="URL", help="ask this OCSP responder (default: AIA)")
    rev.add_argument("--crl", metavar="FILE|URL", help="check this CRL instead of OCSP")
    p.add_argument("--ocsp-token-source", metavar="SPEC",
                   help="env:NAME or file:PATH holding the service's own OCSP token")
    p.add_argument("--state", metavar="DIR",
                   help="pseudonym key and login state (default HOME/verify-service)")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8443)
    _add_db_option(p)
    from pki.serving import add_serving_options

    add_serving_options(p, client_ca=False)
    p.set_defaults(func=_guarded(_verify_serve), changes=False, roles="*", serves=True)

    p = subparsers.add_parser(
        "login-challenge", formatter_class=_RAW,
        help="make a user-authentication login challenge (relying party)",
        description="A fresh random challenge with an expiry, sealed with this relying "
                    "party's key. The holder signs it with `mynacard card authenticate`; "
                    "check the answer with `mynacard verify --login RESPONSE` (once only). "
                    "Changes nothing of the center: the seal key and the spent-challenge "
                    "ledger are the relying party's own (--state).",
        epilog="Example:\n  mynacard login-challenge --rp shop --out ch.json\n"
               "  mynacard card authenticate --challenge ch.json --pin-source env:PIN "
               "--out resp.json\n  mynacard verify --login resp.json --rp shop")
    _add_login_options(p)
    p.add_argument("--ttl", type=int, default=300, metavar="SECONDS",
                   help="how long the challenge may be answered (1-3600, default 300)")
    p.add_argument("--out", metavar="FILE", help="write the challenge here (default stdout)")
    p.add_argument("--force", action="store_true", help="overwrite --out")
    p.set_defaults(func=_guarded(_login_challenge), changes=False, roles="*")
