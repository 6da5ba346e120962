"""OCSP responder core (RFC 6960 / RFC 5019): DER request in, DER response out.

A nonce-less request for a certificate with a pre-generated response (`pki.ocsp.pregenerate`,
table ``ocsp_responses``) is answered with those bytes: one indexed read that also checks
the response was signed for the certificate's current ``status_version``, no signature.
Otherwise the status is looked up in the read-only store (a primary-key read), so a
revocation is visible at once; signing is what costs, so signed nonce-less responses are
cached per (issuer, serial, hash algorithm) and reused while the row's ``status_version``
is unchanged and the response is younger than half its validity.

Nonces (RFC 6960 4.4.1, RFC 5019 4): a pre-generated response cannot carry a client's
nonce. By default (``nonces="sign"``) a request with a nonce is signed afresh with the nonce
echoed; with ``nonces="ignore"`` (what RFC 5019 allows) the nonce is ignored and the
pre-generated or cached response is served, so no request can force a signature.
Nothing raises out of `respond`: unparsable input gives ``malformedRequest``, an issuer we
do not serve gives ``unauthorized``, an internal failure gives ``internalError``.
"""

from __future__ import annotations

import collections
import dataclasses
import datetime as dt
import hashlib
import logging
import threading
from collections.abc import Collection
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from cryptography.x509 import ocsp

from pki.ca import CAConfig
from pki.errors import OcspError
from pki.keys import Clock, KeySource, utc_now
from pki.store import CertStatus, ReadOnlyStore

log = logging.getLogger(__name__)

DEFAULT_VALIDITY = dt.timedelta(hours=1)
# the longest an HTTP cache in front may keep an answer (Cache-Control max-age): a
# pre-generated response is valid for a day, and a cache keeping "good" that long would
# hide a revocation from the relying parties behind it as long; an answer signed on
# demand is valid for an hour anyway (RFC 5019 lets max-age end before nextUpdate)
HTTP_MAX_AGE = 3600
# the DER of id-pkix-ocsp-nonce (1.3.6.1.5.5.7.48.1.2), tag and length included
_NONCE_OID = bytes.fromhex("06092b0601050507300102")
_HASHES: dict[str, type[hashes.HashAlgorithm]] = {
    "sha1": hashes.SHA1, "sha256": hashes.SHA256, "sha384": hashes.SHA384,
    "sha512": hashes.SHA512,
}


@dataclasses.dataclass(frozen=True)
class ResponderIdentity:
    """One hierarchy as the responder sees it: the CA certificate it answers for and the
    delegated responder certificate and key that sign the answers."""

    name: str
    issuer: x509.Certificate
    responder: x509.Certificate
    signer: Any


@dataclasses.dataclass(frozen=True)
class OcspResult:
    der: bytes
    status: str  # good | revoked | unknown | malformedRequest | unauthorized | internalError
    this_update: dt.datetime | None = None
    next_update: dt.datetime | None = None
    cacheable: bool = False  # true for a nonce-less successful response
    pregenerated: bool = False  # served from ocsp_responses (the store's current row)
    hierarchy: str | None = None  # of the issuer, for a pre-generated response

    @property
    def etag(self) -> str:
        return '"' + hashlib.sha256(self.der).hexdigest()[:32] + '"'


@dataclasses.dataclass
class _Issuer:
    identity: ResponderIdentity
    lock: threading.Lock


class OcspResponder:
    """Answers OCSP requests for the certificates in a read-only store."""

    def __init__(self, *, store: ReadOnlyStore, identities: list[ResponderIdentity],
                 clock: Clock = utc_now, validity: dt.timedelta = DEFAULT_VALIDITY,
                 cache_size: int = 200_000, nonces: str = "sign",
                 pregenerated: bool = True) -> None:
        if not isinstance(store, ReadOnlyStore):
            raise TypeError("store must be a ReadOnlyStore")
        if not identities:
            raise OcspError("the responder needs at least one issuer")
        if validity <= dt.timedelta(seconds=1):
            raise ValueError("validity must be more than one second")
        if nonces not in ("sign", "ignore"):
            raise ValueError("nonces must be 'sign' or 'ignore'")
        self._store, self._clock, self._validity = store, clock, validity
        self._sign_nonces = nonces == "sign"
        self._pregenerated = pregenerated
        self._cache: collections.OrderedDict[tuple[Any, ...], tuple[int, OcspResult]] = \
            collections.OrderedDict()
        self._cache_size = cache_size
        self._cache_lock = threading.Lock()
        self._issuers: dict[tuple[str, bytes, bytes], _Issuer] = {}
        for ident in identities:
            if ident.responder.issuer != ident.issuer.subject:
                raise OcspError(f"{ident.name}: responder certificate not issued by its CA")
            try:
                eku = ident.responder.extensions.get_extension_for_class(x509.ExtendedKeyUsage)
            except x509.ExtensionNotFound:
                raise OcspError(f"{ident.name}: responder certificate lacks OCSPSigning") \
                    from None
            if x509.oid.ExtendedKeyUsageOID.OCSP_SIGNING not in eku.value:
                raise OcspError(f"{ident.name}: responder certificate lacks OCSPSigning")
            name_der = ident.issuer.subject.public_bytes()
            key_der = ident.issuer.public_key().public_bytes(Encoding.DER, PublicFormat.PKCS1)
            issuer = _Issuer(ident, threading.Lock())
            for alg in _HASHES:
                self._issuers[(alg, hashlib.new(alg, name_der).digest(),
                               hashlib.new(alg, key_der).digest())] = issuer

    @property
    def store(self) -> ReadOnlyStore:
        """The read-only store the responder answers from."""
        return self._store

    @property
    def clock(self) -> Clock:
        """The clock the responder judges validity by."""
        return self._clock

    @classmethod
    def from_ca(cls, *, key_source: KeySource, ca: CAConfig, store: ReadOnlyStore,
                **options: Any) -> OcspResponder:
        identities = [
            ResponderIdentity(h.value, hc.root_cert, hc.ocsp_cert, key_source.signer(hc.ocsp_key))
            for h, hc in ca.hierarchies.items()
        ]
        return cls(store=store, identities=identities, **options)

    # ---------------------------------------------------------------------------------
    def respond(self, request_der: bytes, *,
                hierarchies: Collection[str] | None = None) -> OcspResult:
        """Answer one DER-encoded OCSPRequest; never raises. With `hierarchies`, a
        question about a certificate of another hierarchy gets ``unauthorized`` (access
        by relying-party kind)."""
        try:
            req = ocsp.load_der_ocsp_request(request_der)
            alg = req.hash_algorithm.name
            key = (alg, req.issuer_name_hash, req.issuer_key_hash)
            serial = req.serial_number
            nonce = None
            if _NONCE_OID in request_der:  # parse extensions only when a nonce may be there
                for ext in req.extensions:
                    if isinstance(ext.value, x509.OCSPNonce):
                        nonce = ext.value.nonce
        except Exception:
            return _unsuccessful(ocsp.OCSPResponseStatus.MALFORMED_REQUEST, "malformedRequest")
        try:
            issuer = self._issuers.get(key)
            if issuer is None or (hierarchies is not None
                                  and issuer.identity.name not in hierarchies):
                return _unsuccessful(ocsp.OCSPResponseStatus.UNAUTHORIZED, "unauthorized")
            if not self._sign_nonces:
                nonce = None
            if nonce is None and self._pregenerated and alg == "sha1" and serial > 0:
                stored = self._store.pregenerated(key[2], serial, self._clock())
                if stored is not None:
                    return OcspResult(stored.der, stored.status, stored.this_update,
                                      stored.next_update, cacheable=True, pregenerated=True,
                                      hierarchy=issuer.identity.name)
            info = self._store.status(serial) if serial > 0 else None
            if info is not None and info.hierarchy != issuer.identity.name:
                info = None
            version = -1 if info is None else info.status_version
            cache_key = (issuer.identity.name, serial, alg)
            now = self._clock()
            if nonce is None:
                with self._cache_lock:
                    hit = self._cache.get(cache_key)
                if hit is not None and hit[0] == version and hit[1].this_update is not None \
                        and now < hit[1].this_update + self._validity / 2:
                    return hit[1]
            result = self._sign(issuer, key, serial, info, nonce, now)
            if nonce is None:
                with self._cache_lock:
                    self._cache[cache_key] = (version, result)
                    self._cache.move_to_end(cache_key)
                    while len(self._cache) > self._cache_size:
                        self._cache.popitem(last=False)
            return result
        except Exception:
            log.exception("OCSP responder failed")
            return _unsuccessful(ocsp.OCSPResponseStatus.INTERNAL_ERROR, "internalError")

    def _sign(self, issuer: _Issuer, key: tuple[str, bytes, bytes], serial: int, info: Any,
              nonce: bytes | None, now: dt.datetime) -> OcspResult:
        alg, name_hash, key_hash = key
        if info is None:
            status, revoked_at, reason = "unknown", None, None
        else:
            status, revoked_at, reason = info.status.value, info.revoked_at, info.reason
        with issuer.lock:
            der = sign_response(issuer.identity, alg=alg, name_hash=name_hash,
                                key_hash=key_hash, serial=serial, status=status,
                                revoked_at=revoked_at, reason=reason, this_update=now,
                                next_update=now + self._validity, nonce=nonce)
        return OcspResult(der, "good" if status == "good" else
                          "unknown" if status == "unknown" else "revoked",
                          now, now + self._validity, cacheable=nonce is None)


def issuer_hashes(issuer: x509.Certificate, alg: str = "sha1") -> tuple[bytes, bytes]:
    """(issuerNameHash, issuerKeyHash) of a CA certificate as a CertID carries them."""
    name_der = issuer.subject.public_bytes()
    key_der = issuer.public_key().public_bytes(Encoding.DER, PublicFormat.PKCS1)
    return hashlib.new(alg, name_der).digest(), hashlib.new(alg, key_der).digest()


def sign_response(ident: ResponderIdentity, *, alg: str, name_hash: bytes, key_hash: bytes,
              serial: int, status: str, revoked_at: dt.datetime | None,
              reason: x509.ReasonFlags | None, this_update: dt.datetime,
              next_update: dt.datetime, nonce: bytes | None = None) -> bytes:
    """One signed BasicOCSPResponse (DER) for one CertID; `status` is a store status
    (good, revoked, hold) or unknown. The one place responses are built, on demand
    and pre-generated alike."""
    if status == "unknown":
        cert_status = ocsp.OCSPCertStatus.UNKNOWN
    elif status == CertStatus.GOOD.value:
        cert_status = ocsp.OCSPCertStatus.GOOD
    else:
        cert_status = ocsp.OCSPCertStatus.REVOKED
    if cert_status is not ocsp.OCSPCertStatus.REVOKED:
        revoked_at = reason = None
    b = (
        ocsp.OCSPResponseBuilder()
        .add_response_by_hash(
            issuer_name_hash=name_hash, issuer_key_hash=key_hash, serial_number=serial,
            algorithm=_HASHES[alg](), cert_status=cert_status, this_update=this_update,
            next_update=next_update, revocation_time=revoked_at,
            revocation_reason=reason,
        )
        .responder_id(ocsp.OCSPResponderEncoding.HASH, ident.responder)
        .certificates([ident.responder])
    )
    if nonce is not None:
        b = b.add_extension(x509.OCSPNonce(nonce), critical=False)
    return b.sign(ident.signer, hashes.SHA256()).public_bytes(Encoding.DER)


def _unsuccessful(code: ocsp.OCSPResponseStatus, name: str) -> OcspResult:
    der = ocsp.OCSPResponseBuilder.build_unsuccessful(code).public_bytes(Encoding.DER)
    return OcspResult(der, name)
