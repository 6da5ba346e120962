"""`mynacard verify-serve`: verification as an HTTP/JSON service for registered relying
parties (bearer token, `mynacard rp add`).

Routes (described in `OPENAPI`, served at ``/openapi.json``): ``POST /v1/certificate``,
``POST /v1/cms``, ``POST /v1/login/challenge``, ``POST /v1/login``. Each answer says
``valid``, ``invalid``, ``revoked`` or ``could-not-check`` with reasons. Access follows
the party's kind (jpki-rules 5.5-5.8): a user verifier is answered about
user-authentication certificates and logins only, a signature verifier about signing
certificates and CMS signatures only, a platform operator about both. The holder's four
facts are given only for a signing certificate, only to a signature verifier or platform
operator, and only when the request says the holder consented (5.6). Each answer carries
``user_id``: a pseudonym of the holder, the same for their signing and user
certificates and across renewals and re-issues (5.7), different for every party (so two
parties cannot join their users), and ``successor``: the certificate that replaced this
one, when there is one (証明書新旧紐付け).

Revocation is asked of the OCSP responder without a nonce and each answer is cached until
its nextUpdate (RFC 5019), so a certificate's status costs one OCSP request per validity
period however often it is verified.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import datetime as dt
import hashlib
import hmac
import json
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.serialization import Encoding
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from hsm.files import private_dir, write_file
from pki.errors import PkiError, VerificationError
from pki.login import LoginVerifier
from pki.profiles import Profile
from pki.relying_parties.registry import KIND_HIERARCHIES
from pki.verify import (
    RevocationCheck,
    VerificationResult,
    check_ocsp,
    verify_certificate,
    verify_cms,
)

MAX_BODY = 1024 * 1024
_PROFILE_HIERARCHY = {Profile.SIGNING: "sign", Profile.USER_AUTHENTICATION: "auth"}
_SHA256 = hashes.SHA256()
FACT_KINDS = frozenset({"signature_verifier", "platform_operator"})


class OcspCache:
    """OCSP answers by (root, serial), reused until their nextUpdate (RFC 5019)."""

    def __init__(self, *, url: str | None, token: str | None, timeout: float = 10.0,
                 max_entries: int = 100_000) -> None:
        self.url, self.token, self.timeout, self.max_entries = url, token, timeout, max_entries
        self._lock = threading.Lock()
        self._entries: dict[tuple[bytes, int], RevocationCheck] = {}
        self.requests = 0  # OCSP requests sent (tests and bench read it)

    def check(self, cert: x509.Certificate, root: x509.Certificate) -> RevocationCheck:
        key = (root.fingerprint(_SHA256), cert.serial_number)
        now = dt.datetime.now(dt.UTC)
        with self._lock:
            hit = self._entries.get(key)
        if hit is not None and hit.next_update is not None and now < hit.next_update:
            return hit
        self.requests += 1
        got = check_ocsp(cert, root, url=self.url, at=now, timeout=self.timeout,
                         token=self.token, nonce=False)
        if got.status in ("good", "revoked") and got.next_update is not None:
            with self._lock:
                if len(self._entries) >= self.max_entries:
                    self._entries.clear()
                self._entries[key] = got
        return got


@dataclasses.dataclass(frozen=True)
class Caller:
    name: str
    kind: str

    @property
    def hierarchies(self) -> frozenset[str]:
        return KIND_HIERARCHIES.get(self.kind, frozenset())


class VerifyService:
    """The checks behind the routes, independent of HTTP."""

    def __init__(self, *, roots: list[x509.Certificate], state_dir: str | Path,
                 ocsp: OcspCache | None, store: Any = None,
                 crl: str | None = None) -> None:
        self.roots, self.ocsp, self.store, self.crl = roots, ocsp, store, crl
        self.state = private_dir(state_dir)
        key_path = self.state / "pseudonym.key"
        if not key_path.exists():
            import os

            try:
                write_file(key_path, os.urandom(32))
            except FileExistsError:
                pass
        self._pseudonym_key = key_path.read_bytes()
        self._lock = threading.Lock()
        self._verifiers: dict[str, LoginVerifier] = {}

    def _options(self) -> dict[str, Any]:
        opts: dict[str, Any] = {"roots": self.roots}
        if self.crl is not None:
            opts["crl"] = self.crl
        elif self.ocsp is not None:
            opts["ocsp_checker"] = self.ocsp.check
        else:
            opts["check_revocation"] = False
        return opts

    def _record(self, serial: int) -> Any:
        if self.store is None:
            return None
        try:
            return self.store.get(serial)
        except PkiError:
            return None

    def _successor(self, record: Any) -> dict[str, Any] | None:
        seen = 0
        while record is not None and record.successor is not None and seen < 64:
            nxt = self._record(record.successor)
            if nxt is None:
                break
            record, seen = nxt, seen + 1
        if not seen:
            return None
        cert = record.certificate()
        return {"serial": format(record.serial, "x"),
                "certificate": cert.public_bytes(Encoding.PEM).decode()}

    def answer(self, caller: Caller, result: VerificationResult, *, consent: bool = False,
               what: str = "certificate") -> dict[str, Any]:
        """The JSON answer about `result` for `caller` (facts and links as allowed)."""
        j = result.to_json()
        identity = j.pop("identity")
        record = self._record(result.certificate.serial_number) \
            if result.root is not None else None
        out: dict[str, Any] = {
            "result": classify(result), "reasons": j.pop("reasons"), "checked": what,
            "certificate": {k: j[k] for k in ("serial", "profile", "subject", "issuer",
                                               "not_before", "not_after")},
            "revocation": {k: v for k, v in j["revocation"].items() if v is not None},
            "user_id": None, "successor": None,
        }
        if record is not None:
            out["user_id"] = hmac.new(self._pseudonym_key,
                                      f"{caller.name}\0{record.holder_id}".encode(),
                                      hashlib.sha256).hexdigest()
            out["successor"] = self._successor(record)
        if identity is not None and consent and caller.kind in FACT_KINDS \
                and result.profile is Profile.SIGNING:
            out["facts"] = identity
        return out

    def allowed(self, caller: Caller, profile: Profile | None) -> bool:
        return profile is not None and _PROFILE_HIERARCHY.get(profile) in caller.hierarchies

    def login_verifier(self, caller: Caller) -> LoginVerifier:
        with self._lock:
            verifier = self._verifiers.get(caller.name)
            if verifier is None:
                slot = hashlib.sha256(caller.name.encode()).hexdigest()[:32]
                verifier = LoginVerifier(self.state / "login" / slot, rp=caller.name)
                self._verifiers[caller.name] = verifier
            return verifier


def classify(result: VerificationResult) -> str:
    if result.valid:
        return "valid"
    rv = result.revocation
    if rv.status == "revoked" and any(r.startswith("revoked") for r in result.reasons):
        return "revoked"
    if all(r.startswith("revocation status") for r in result.reasons):
        return "could-not-check"
    return "invalid"


def _b64(value: Any, field: str) -> bytes:
    if not isinstance(value, str):
        raise VerificationError(f"{field} must be base64 text")
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise VerificationError(f"{field} is not base64") from None


def _refused(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status,
                        headers={"Cache-Control": "no-store"})


def build_app(service: VerifyService, *, authorizer: Any) -> Starlette:
    """The ASGI application; `authorizer` is a `TokenAuthorizer` (party and kind)."""

    async def caller_of(request: Request) -> Caller | Response:
        header = request.headers.get("authorization")
        found = authorizer.party_and_kind(header)
        if found is None:
            return _refused(401, "registered relying parties only: send "
                                 "Authorization: Bearer <token>")
        return Caller(*found)

    async def body_of(request: Request) -> dict[str, Any]:
        raw = await request.body()
        if len(raw) > MAX_BODY:
            raise VerificationError("the request body is over 1 MiB")
        try:
            body = json.loads(raw)
        except ValueError:
            raise VerificationError("the request body is not JSON") from None
        if not isinstance(body, dict):
            raise VerificationError("the request body is not a JSON object")
        return body

    def route(fn: Callable[[Caller, dict[str, Any]], tuple[int, dict[str, Any]]]) -> Any:
        async def handle(request: Request) -> Response:
            caller = await caller_of(request)
            if isinstance(caller, Response):
                return caller
            try:
                body = await body_of(request)
                status, answer = await run_in_threadpool(fn, caller, body)
            except VerificationError as exc:
                return _refused(400, str(exc).splitlines()[0])
            return JSONResponse(answer, status_code=status, headers={"Cache-Control": "no-store"})
        return handle

    def kind_refusal(caller: Caller, profile: Profile | None) -> tuple[int, dict[str, Any]]:
        return 403, {"error": f"a {caller.kind.replace('_', ' ')} is not answered about "
                              f"{profile.value if profile else 'non-JPKI'} certificates"}

    def certificate(caller: Caller, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        try:
            cert = x509.load_der_x509_certificate(_b64(body.get("certificate"), "certificate"))
        except ValueError:
            raise VerificationError("certificate is not a DER certificate") from None
        from pki.profiles import certificate_profile

        profile = certificate_profile(cert)
        if not service.allowed(caller, profile):
            return kind_refusal(caller, profile)
        result = verify_certificate(cert, **service._options())
        return 200, service.answer(caller, result, consent=body.get("consent") is True)

    def cms(caller: Caller, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        if Profile.SIGNING.hierarchy.value not in caller.hierarchies:
            return kind_refusal(caller, Profile.SIGNING)
        sig = _b64(body.get("signature"), "signature")
        data = _b64(body["data"], "data") if body.get("data") is not None else None
        result = verify_cms(sig, data=data, **service._options())
        return 200, service.answer(caller, result, consent=body.get("consent") is True,
                                   what="cms")

    def challenge(caller: Caller, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        if "auth" not in caller.hierarchies:
            return kind_refusal(caller, Profile.USER_AUTHENTICATION)
        ttl = body.get("ttl", 300)
        if not isinstance(ttl, int) or not 1 <= ttl <= 3600:
            raise VerificationError("ttl is 1 to 3600 seconds")
        return 200, service.login_verifier(caller).challenge(ttl=dt.timedelta(seconds=ttl))

    def login(caller: Caller, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        if "auth" not in caller.hierarchies:
            return kind_refusal(caller, Profile.USER_AUTHENTICATION)
        resp = body.get("response")
        if not isinstance(resp, dict):
            raise VerificationError("response must be the login response object")
        opts = service._options()
        opts.pop("roots")
        res = service.login_verifier(caller).verify(resp, roots=service.roots, **opts)
        if res.certificate_check is None:
            return 200, {"result": "invalid", "reasons": list(res.reasons), "checked": "login",
                         "certificate": {"serial": format(res.certificate.serial_number, "x")},
                         "user_id": None, "successor": None}
        answer = service.answer(caller, res.certificate_check, what="login")
        answer["reasons"] = list(res.reasons)
        return 200, answer

    async def openapi(request: Request) -> Response:
        return JSONResponse(OPENAPI)

    return Starlette(routes=[
        Route("/v1/certificate", route(certificate), methods=["POST"]),
        Route("/v1/cms", route(cms), methods=["POST"]),
        Route("/v1/login/challenge", route(challenge), methods=["POST"]),
        Route("/v1/login", route(login), methods=["POST"]),
        Route("/openapi.json", openapi, methods=["GET"]),
    ])


_ANSWER = {"$ref": "#/components/schemas/Answer"}


def _op(summary: str, request: dict[str, Any], answer: dict[str, Any]) -> dict[str, Any]:
    return {"post": {
        "summary": summary, "security": [{"bearer": []}],
        "requestBody": {"required": True,
                        "content": {"application/json": {"schema": request}}},
        "responses": {"200": {"description": "the answer",
                              "content": {"application/json": {"schema": answer}}},
                      "400": {"description": "not a valid request"},
                      "401": {"description": "no registered relying party's token"},
                      "403": {"description": "this kind of party is not answered about it"}},
    }}


OPENAPI: dict[str, Any] = {
    "openapi": "3.1.0",
    "info": {"title": "mynacard verification service", "version": "1"},
    "components": {
        "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        "schemas": {"Answer": {"type": "object", "required": ["result", "reasons"],
                               "properties": {
                                   "result": {"enum": ["valid", "invalid", "revoked",
                                                       "could-not-check"]},
                                   "reasons": {"type": "array", "items": {"type": "string"}},
                                   "certificate": {"type": "object"},
                                   "revocation": {"type": "object"},
                                   "facts": {"type": "object"},
                                   "user_id": {"type": ["string", "null"]},
                                   "successor": {"type": ["object", "null"]}}}},
    },
    "paths": {
        "/v1/certificate": _op("check a certificate", {
            "type": "object", "required": ["certificate"],
            "properties": {"certificate": {"type": "string", "contentEncoding": "base64"},
                           "consent": {"type": "boolean"}}}, _ANSWER),
        "/v1/cms": _op("check a CMS SignedData and its signer", {
            "type": "object", "required": ["signature"],
            "properties": {"signature": {"type": "string", "contentEncoding": "base64"},
                           "data": {"type": "string", "contentEncoding": "base64"},
                           "consent": {"type": "boolean"}}}, _ANSWER),
        "/v1/login/challenge": _op("a new login challenge for this party", {
            "type": "object", "properties": {"ttl": {"type": "integer"}}},
            {"type": "object"}),
        "/v1/login": _op("check a login response to this party's challenge", {
            "type": "object", "required": ["response"],
            "properties": {"response": {"type": "object"}}}, _ANSWER),
    },
}
