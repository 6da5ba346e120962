"""`mynacard verify`, `verify-serve` and `login-challenge`: the relying party's side."""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import sys
from pathlib import Path
from typing import Any

from pki.cli.common import (
    _RAW,
    EXIT_REFUSED,
    EXIT_UNCHECKED,
    _add_db_option,
    _ca_dir,
    _db,
    _guarded,
    _print_json,
)
from pki.errors import PkiError

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
    from pki.serving import ServingError, run, serving_from_args, uvicorn_config
    from pki.store import open_readonly_store
    from pki.verify import load_roots
    from pki.verify_service import MAX_BODY, OcspCache, VerifyService, build_app

    try:
        tls, limits = serving_from_args(args, tokens=True, max_body=MAX_BODY)
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


def register(subparsers: Any) -> None:
    """Add `verify`, `verify-serve` and `login-challenge`."""
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
