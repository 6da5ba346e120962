"""Relying-party verification of JPKI certificates and signatures.

`verify_certificate` checks, in order: a path to one of the given JPKI roots (the
certificate is issued directly by a root), validity at a time, the profile's key usage
and policy OID, and revocation by OCSP (the AIA URL or a given URL) or by a CRL (file
or URL; the CRL must be signed by the root and its IssuingDistributionPoint must match
the certificate's CRL shard). `verify_cms` first checks a CMS SignedData (attached, or
detached with the data given) and then the signer's certificate as a signing
certificate. Results carry every reason a check failed and, for signing certificates,
the signer's basic four facts. A certificate revoked after `at` counts as valid at `at`.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import os
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from asn1crypto import cms as acms
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed448, ed25519, padding, rsa
from cryptography.x509 import ocsp
from cryptography.x509.oid import ExtendedKeyUsageOID

from pki.errors import ProfileError, VerificationError
from pki.identity import Identity
from pki.profiles import Profile, certificate_profile, identity_from_certificate

CLOCK_SKEW = dt.timedelta(minutes=5)
# public-key types a CRL signature can be checked with (JPKI roots are RSA)
_CRL_SIGNER_KEYS = (rsa.RSAPublicKey, ec.EllipticCurvePublicKey, ed25519.Ed25519PublicKey,
                    ed448.Ed448PublicKey, dsa.DSAPublicKey)


@dataclasses.dataclass(frozen=True)
class RevocationCheck:
    method: str  # "ocsp" | "crl" | "none"
    status: str  # "good" | "revoked" | "unknown" | "error" | "not-checked"
    source: str | None = None
    revoked_at: dt.datetime | None = None
    reason: str | None = None
    detail: str | None = None
    next_update: dt.datetime | None = None  # of the OCSP response: how long it may be reused


@dataclasses.dataclass(frozen=True)
class VerificationResult:
    valid: bool
    reasons: tuple[str, ...]
    certificate: x509.Certificate
    profile: Profile | None
    root: x509.Certificate | None
    revocation: RevocationCheck
    identity: Identity | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "valid": self.valid,
            "reasons": list(self.reasons),
            "serial": format(self.certificate.serial_number, "x"),
            "profile": self.profile.value if self.profile else None,
            "subject": self.certificate.subject.rfc4514_string(),
            "issuer": self.certificate.issuer.rfc4514_string(),
            "not_before": self.certificate.not_valid_before_utc.isoformat(),
            "not_after": self.certificate.not_valid_after_utc.isoformat(),
            "revocation": {k: (v.isoformat() if isinstance(v, dt.datetime) else v)
                           for k, v in dataclasses.asdict(self.revocation).items()},
            "identity": self.identity.to_json() if self.identity else None,
        }


def load_certificate(data: bytes) -> x509.Certificate:
    try:
        if data.lstrip().startswith(b"-----"):
            return x509.load_pem_x509_certificate(data)
        return x509.load_der_x509_certificate(data)
    except ValueError as exc:
        raise VerificationError(f"not a certificate: {exc}") from exc


def load_roots(paths: Sequence[str | os.PathLike[str]]) -> list[x509.Certificate]:
    """Root certificates from PEM (one or more per file) or DER files."""
    roots: list[x509.Certificate] = []
    for p in paths:
        try:
            data = Path(p).read_bytes()
        except OSError as exc:
            raise VerificationError(f"cannot read root {p}: {exc.strerror}") from exc
        if data.lstrip().startswith(b"-----"):
            try:
                roots.extend(x509.load_pem_x509_certificates(data))
            except ValueError as exc:
                raise VerificationError(f"{p}: not a PEM certificate") from exc
        else:
            roots.append(load_certificate(data))
    return roots


def _find_root(
    cert: x509.Certificate, roots: Sequence[x509.Certificate]
) -> x509.Certificate | None:
    for root in roots:
        if root.subject != cert.issuer:
            continue
        try:
            cert.verify_directly_issued_by(root)
        except (ValueError, TypeError, InvalidSignature):
            continue
        return root
    return None


def _ext(cert: x509.Certificate, cls: type) -> Any:
    try:
        return cert.extensions.get_extension_for_class(cls).value
    except x509.ExtensionNotFound:
        return None


def _fetch(url: str, *, data: bytes | None = None, content_type: str | None = None,
           timeout: float, token: str | None = None) -> bytes:
    if not url.startswith(("http://", "https://")):
        raise VerificationError(f"not an http(s) URL: {url}")
    req = urllib.request.Request(url, data=data, method="POST" if data is not None else "GET")
    if content_type:
        req.add_header("Content-Type", content_type)
    if token is not None:
        req.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:  # noqa: S310
            return resp.read(10 * 1024 * 1024)
    except urllib.error.HTTPError as exc:
        if exc.code == 401:
            raise VerificationError(
                f"{url} answers registered relying parties only (HTTP 401): "
                + ("the token was refused" if token else "no relying-party token was sent")
            ) from None
        raise VerificationError(f"cannot fetch {url}: {exc}") from exc
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", None) or exc
        reason = getattr(reason, "strerror", None) or reason
        raise VerificationError(f"cannot fetch {url}: {reason}; check that the server is "
                                "running and reachable, then run the command again") from exc


def check_ocsp(cert: x509.Certificate, root: x509.Certificate, *, url: str | None = None,
               at: dt.datetime, timeout: float = 10.0,
               token: str | None = None, nonce: bool = True) -> RevocationCheck:
    """Ask the OCSP responder (the AIA URL unless `url` is given) about `cert`.

    JPKI's responders answer registered relying parties only: `token` is this party's
    bearer token (`mynacard rp add`). Without a nonce (RFC 5019) the answer may be
    reused until its nextUpdate (`pki.verify_service.OcspCache`)."""
    if url is None:
        aia = _ext(cert, x509.AuthorityInformationAccess)
        urls = [d.access_location.value for d in (aia or [])
                if d.access_method == x509.oid.AuthorityInformationAccessOID.OCSP]
        if not urls:
            return RevocationCheck("ocsp", "error", detail="certificate names no OCSP responder")
        url = urls[0]
    sent = os.urandom(16) if nonce else None
    builder = ocsp.OCSPRequestBuilder().add_certificate(cert, root, hashes.SHA256())
    if sent is not None:
        builder = builder.add_extension(x509.OCSPNonce(sent), critical=False)
    req = builder.build()
    try:
        body = _fetch(url, data=req.public_bytes(serialization.Encoding.DER),
                      content_type="application/ocsp-request", timeout=timeout, token=token)
        resp = ocsp.load_der_ocsp_response(body)
    except (VerificationError, ValueError) as exc:
        return RevocationCheck("ocsp", "error", url, detail=str(exc))
    if resp.response_status is not ocsp.OCSPResponseStatus.SUCCESSFUL:
        return RevocationCheck("ocsp", "error", url,
                               detail=f"responder said {resp.response_status.name}")
    problem = _check_ocsp_signature(resp, root)
    if problem:
        return RevocationCheck("ocsp", "error", url, detail=problem)
    if resp.serial_number != cert.serial_number:
        return RevocationCheck("ocsp", "error", url, detail="response is for another certificate")
    got_nonce = next((e.value.nonce for e in resp.extensions
                      if isinstance(e.value, x509.OCSPNonce)), None)
    if sent is not None and got_nonce != sent:
        return RevocationCheck("ocsp", "error", url, detail="nonce not echoed")
    now = dt.datetime.now(dt.UTC)
    if resp.this_update_utc > now + CLOCK_SKEW or (
            resp.next_update_utc is not None and resp.next_update_utc < now - CLOCK_SKEW):
        return RevocationCheck("ocsp", "error", url, detail="response is not current")
    nu = resp.next_update_utc
    if resp.certificate_status is ocsp.OCSPCertStatus.GOOD:
        return RevocationCheck("ocsp", "good", url, next_update=nu)
    if resp.certificate_status is ocsp.OCSPCertStatus.UNKNOWN:
        return RevocationCheck("ocsp", "unknown", url, detail="responder does not know it",
                               next_update=nu)
    reason = resp.revocation_reason.value if resp.revocation_reason else "unspecified"
    return RevocationCheck("ocsp", "revoked", url, resp.revocation_time_utc, reason,
                           next_update=nu)


def _check_ocsp_signature(resp: ocsp.OCSPResponse, root: x509.Certificate) -> str | None:
    signer_cert = None
    for c in resp.certificates:
        try:
            c.verify_directly_issued_by(root)
        except (ValueError, TypeError, InvalidSignature):
            continue
        eku = _ext(c, x509.ExtendedKeyUsage)
        if eku is not None and ExtendedKeyUsageOID.OCSP_SIGNING in eku:
            signer_cert = c
            break
    key = (signer_cert or root).public_key()
    if not isinstance(key, rsa.RSAPublicKey) or resp.signature_hash_algorithm is None:
        return "unsupported OCSP response signature"
    try:
        key.verify(resp.signature, resp.tbs_response_bytes, padding.PKCS1v15(),
                   resp.signature_hash_algorithm)
    except InvalidSignature:
        return "OCSP response signature is not from this CA's responder"
    return None


def load_crl(source: str | os.PathLike[str] | bytes, *, timeout: float = 10.0
             ) -> x509.CertificateRevocationList:
    if isinstance(source, bytes):
        data = source
    elif isinstance(source, str) and source.startswith(("http://", "https://")):
        data = _fetch(source, timeout=timeout)
    else:
        try:
            data = Path(source).read_bytes()
        except OSError as exc:
            raise VerificationError(f"cannot read CRL {source}: {exc.strerror}") from exc
    try:
        if data.lstrip().startswith(b"-----"):
            return x509.load_pem_x509_crl(data)
        return x509.load_der_x509_crl(data)
    except ValueError as exc:
        raise VerificationError(f"not a CRL: {exc}") from exc


def check_crl(cert: x509.Certificate, root: x509.Certificate,
              crl: x509.CertificateRevocationList, *, at: dt.datetime,
              source: str | None = None) -> RevocationCheck:
    """Look `cert` up in a CRL shard signed by `root`."""
    root_key = root.public_key()
    if not isinstance(root_key, _CRL_SIGNER_KEYS):
        return RevocationCheck("crl", "error", source,
                               detail="the root's key type cannot sign CRLs")
    if crl.issuer != root.subject or not crl.is_signature_valid(root_key):
        return RevocationCheck("crl", "error", source, detail="CRL is not signed by the root")
    if crl.next_update_utc is not None and crl.next_update_utc < at - CLOCK_SKEW:
        return RevocationCheck("crl", "error", source, detail="CRL is out of date")
    dps = _ext(cert, x509.CRLDistributionPoints)
    try:
        idp = crl.extensions.get_extension_for_class(x509.IssuingDistributionPoint).value
    except x509.ExtensionNotFound:
        idp = None
    if idp is not None and dps is not None:
        cert_urls = {n.value for dp in dps for n in (dp.full_name or [])}
        crl_urls = {n.value for n in (idp.full_name or [])}
        if not cert_urls & crl_urls:
            return RevocationCheck("crl", "error", source,
                                   detail="this CRL shard does not cover the certificate")
    entry = crl.get_revoked_certificate_by_serial_number(cert.serial_number)
    if entry is None:
        return RevocationCheck("crl", "good", source)
    reason = "unspecified"
    try:
        reason = entry.extensions.get_extension_for_class(x509.CRLReason).value.reason.value
    except x509.ExtensionNotFound:
        pass
    return RevocationCheck("crl", "revoked", source, entry.revocation_date_utc, reason)


def verify_certificate(
    cert: x509.Certificate,
    *,
    roots: Sequence[x509.Certificate],
    at: dt.datetime | None = None,
    expected_profile: Profile | None = None,
    ocsp_url: str | None = None,
    crl: str | os.PathLike[str] | x509.CertificateRevocationList | None = None,
    check_revocation: bool = True,
    timeout: float = 10.0,
    ocsp_token: str | None = None,
    ocsp_checker: Callable[[x509.Certificate, x509.Certificate], RevocationCheck] | None = None,
) -> VerificationResult:
    """Check a JPKI end-entity certificate; see the module docstring. `ocsp_checker`
    (certificate, root) replaces the OCSP request (a cache of answers, for instance)."""
    if not isinstance(cert, x509.Certificate):
        raise TypeError("cert must be an x509.Certificate")
    if not roots:
        raise VerificationError("no trusted roots given")
    at = at or dt.datetime.now(dt.UTC)
    reasons: list[str] = []
    profile = certificate_profile(cert)
    root = _find_root(cert, roots)
    if root is None:
        reasons.append("not issued by any of the trusted JPKI roots")
    else:
        if not (root.not_valid_before_utc <= at <= root.not_valid_after_utc):
            reasons.append("the root certificate is not valid at the checked time")
        bc = _ext(root, x509.BasicConstraints)
        if bc is None or not bc.ca:
            reasons.append("the issuing certificate is not a CA")
    if not (cert.not_valid_before_utc <= at <= cert.not_valid_after_utc):
        reasons.append(f"not valid at {at.isoformat()} (valid "
                       f"{cert.not_valid_before_utc.isoformat()} to "
                       f"{cert.not_valid_after_utc.isoformat()})")
    if expected_profile is not None and profile is not expected_profile:
        reasons.append(f"not a {expected_profile.value} certificate (policy "
                       f"{expected_profile.policy_oid.dotted_string} missing)")
    if profile is None:
        reasons.append("no JPKI certificate policy")
    want = expected_profile or profile
    ku = _ext(cert, x509.KeyUsage)
    if want is not None:
        if ku is None or not ku.digital_signature:
            reasons.append("key usage lacks digitalSignature")
        if want is Profile.SIGNING and (ku is None or not ku.content_commitment):
            reasons.append("key usage lacks nonRepudiation")
    identity = None
    if profile is Profile.SIGNING:
        try:
            identity = identity_from_certificate(cert)
        except ProfileError as exc:
            reasons.append(str(exc))
    revocation = RevocationCheck("none", "not-checked")
    if check_revocation and root is not None:
        if crl is not None:
            try:
                crl_obj = crl if isinstance(crl, x509.CertificateRevocationList) \
                    else load_crl(crl, timeout=timeout)
                src = None if isinstance(crl, x509.CertificateRevocationList) else str(crl)
                revocation = check_crl(cert, root, crl_obj, at=at, source=src)
            except VerificationError as exc:
                revocation = RevocationCheck("crl", "error", str(crl), detail=str(exc))
        elif ocsp_checker is not None:
            revocation = ocsp_checker(cert, root)
        else:
            revocation = check_ocsp(cert, root, url=ocsp_url, at=at, timeout=timeout,
                                    token=ocsp_token)
        if revocation.status == "revoked":
            if revocation.revoked_at is None or revocation.revoked_at <= at:
                reasons.append(f"revoked ({revocation.reason})"
                               + (f" at {revocation.revoked_at.isoformat()}"
                                  if revocation.revoked_at else ""))
        elif revocation.status != "good":
            reasons.append(f"revocation status {revocation.status}: {revocation.detail}")
    return VerificationResult(not reasons, tuple(reasons), cert, profile, root, revocation,
                              identity)


_DIGESTS: dict[str, Callable[[], hashes.HashAlgorithm]] = {
    "sha1": hashes.SHA1, "sha256": hashes.SHA256, "sha384": hashes.SHA384,
    "sha512": hashes.SHA512,
}


def verify_cms(
    signature: bytes,
    *,
    data: bytes | None = None,
    roots: Sequence[x509.Certificate],
    at: dt.datetime | None = None,
    **options: Any,
) -> VerificationResult:
    """Check a CMS SignedData (DER or PEM) over `data` (detached) or its own content,
    then its signer's certificate as a signing certificate (options as
    `verify_certificate`)."""
    try:
        if signature.lstrip().startswith(b"-----"):
            body = b"".join(ln for ln in signature.strip().splitlines()
                            if not ln.startswith(b"-----"))
            import base64
            signature = base64.b64decode(body)
        info = acms.ContentInfo.load(signature)
        if info["content_type"].native != "signed_data":
            raise VerificationError("CMS content is not SignedData")
        sd = info["content"]
        signer_infos = list(sd["signer_infos"])
        if len(signer_infos) != 1:
            raise VerificationError(f"expected one signer, found {len(signer_infos)}")
        si = signer_infos[0]
        certs = [x509.load_der_x509_certificate(c.chosen.dump())
                 for c in (sd["certificates"] or []) if c.name == "certificate"]
    except VerificationError:
        raise
    except Exception as exc:
        raise VerificationError(f"not a CMS SignedData: {exc}") from exc
    content = sd["encap_content_info"]["content"].native
    if content is None:
        if data is None:
            raise VerificationError("detached signature: the signed data must be given")
        content = data
    elif data is not None and data != content:
        return _cms_failure(certs, "the given data differs from the signed content")
    sid = si["sid"]
    signer = None
    for c in certs:
        if sid.name == "issuer_and_serial_number":
            if c.serial_number == sid.chosen["serial_number"].native and \
                    c.issuer.public_bytes() == sid.chosen["issuer"].dump():
                signer = c
        else:
            ski = _ext(c, x509.SubjectKeyIdentifier)
            if ski is not None and ski.digest == sid.chosen.native:
                signer = c
    if signer is None:
        return _cms_failure(certs, "the signer's certificate is not in the CMS")
    digest_name = si["digest_algorithm"]["algorithm"].native
    if digest_name not in _DIGESTS:
        return _cms_failure([signer], f"unsupported digest {digest_name}")
    if si["signature_algorithm"].signature_algo != "rsassa_pkcs1v15":
        return _cms_failure([signer], "only RSA PKCS#1 v1.5 signatures are supported")
    digest = hashlib.new(digest_name, content).digest()
    signed_attrs = si["signed_attrs"]
    if signed_attrs:
        md = [a["values"][0].native for a in signed_attrs if a["type"].native == "message_digest"]
        if md != [digest]:
            return _cms_failure([signer], "signature does not match the data (message digest)")
        to_verify = b"\x31" + signed_attrs.dump()[1:]
    else:
        to_verify = content
    pub = signer.public_key()
    if not isinstance(pub, rsa.RSAPublicKey):
        return _cms_failure([signer], "signer key is not RSA")
    try:
        pub.verify(si["signature"].native, to_verify, padding.PKCS1v15(), _DIGESTS[digest_name]())
    except InvalidSignature:
        return _cms_failure([signer], "signature does not match the data")
    options.setdefault("expected_profile", Profile.SIGNING)
    return verify_certificate(signer, roots=roots, at=at, **options)


def _cms_failure(certs: list[x509.Certificate], reason: str) -> VerificationResult:
    if not certs:
        raise VerificationError(reason)
    cert = certs[0]
    return VerificationResult(False, (reason,), cert, certificate_profile(cert), None,
                              RevocationCheck("none", "not-checked"))
