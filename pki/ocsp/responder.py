"""OCSP responder core (RFC 6960 / RFC 5019): DER request in, DER response out.

Every request looks the certificate's status up in the read-only store (a primary-key
read), so a revocation is visible at once; signing is what costs, so signed nonce-less
responses are cached per (issuer, serial, hash algorithm) and reused while the row's
``status_version`` is unchanged and the response is younger than half its validity.
Requests with a nonce are signed afresh (the nonce is echoed). Nothing raises out of
`respond`: unparsable input gives ``malformedRequest``, an issuer we do not serve gives
``unauthorized``, an internal failure gives ``internalError``.
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
                 cache_size: int = 200_000) -> None:
        if not isinstance(store, ReadOnlyStore):
            raise TypeError("store must be a ReadOnlyStore")
        if not identities:
            raise OcspError("the responder needs at least one issuer")
        if validity <= dt.timedelta(seconds=1):
            raise ValueError("validity must be more than one second")
        self._store, self._clock, self._validity = store, clock, validity
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
        revocation_time = revocation_reason = None
        if info is None:
            status, cert_status = "unknown", ocsp.OCSPCertStatus.UNKNOWN
        elif info.status is CertStatus.GOOD:
            status, cert_status = "good", ocsp.OCSPCertStatus.GOOD
        else:
            status, cert_status = "revoked", ocsp.OCSPCertStatus.REVOKED
            revocation_time = info.revoked_at
            revocation_reason = info.reason
        next_update = now + self._validity
        ident = issuer.identity
        b = (
            ocsp.OCSPResponseBuilder()
            .add_response_by_hash(
                issuer_name_hash=name_hash, issuer_key_hash=key_hash, serial_number=serial,
                algorithm=_HASHES[alg](), cert_status=cert_status, this_update=now,
                next_update=next_update, revocation_time=revocation_time,
                revocation_reason=revocation_reason,
            )
            .responder_id(ocsp.OCSPResponderEncoding.HASH, ident.responder)
            .certificates([ident.responder])
        )
        if nonce is not None:
            b = b.add_extension(x509.OCSPNonce(nonce), critical=False)
        with issuer.lock:
            resp = b.sign(ident.signer, hashes.SHA256())
        return OcspResult(resp.public_bytes(Encoding.DER), status, now, next_update,
                          cacheable=nonce is None)


def _unsuccessful(code: ocsp.OCSPResponseStatus, name: str) -> OcspResult:
    der = ocsp.OCSPResponseBuilder.build_unsuccessful(code).public_bytes(Encoding.DER)
    return OcspResult(der, name)
