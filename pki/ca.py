"""The JPKI CA: the key ceremony (`init_ca`) and certificate issuance (`IssuingCA`).

Two JPKI hierarchies (signing, user authentication) and the center's operator
hierarchy (the certificates of operator IC cards), each with a self-signed root whose key
is in the HSM, and a delegated OCSP responder certificate (id-kp-OCSPSigning,
id-pkix-ocsp-nocheck) whose key is in the HSM too. CRLs are signed by the root. A CA
made before the operator hierarchy existed still loads; it issues no operator cards.
The CA directory holds only public material: the certificates (PEM and DER) and
`ca.json` (shard count, URLs, key labels).
"""

from __future__ import annotations

import collections
import contextlib
import dataclasses
import datetime as dt
import functools
import json
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.asymmetric.types import (
    CertificateIssuerPrivateKeyTypes,
    PublicKeyTypes,
)
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from hsm.files import write_file
from pki.attestation import AttestationPolicy, CardKeyEvidence
from pki.errors import CAError
from pki.identity import Identity
from pki.keys import Clock, KeyCeremonySource, KeySource, utc_now
from pki.operator_profile import OPERATOR_VALIDITY, operator_certificate_builder
from pki.profiles import (
    JPKI_HIERARCHIES,
    Hierarchy,
    Profile,
    SigningCertificateBuilder,
    UserAuthenticationCertificateBuilder,
    assemble_rsa_sha256,
)
from pki.store import CertificateStore
from pki.store.db import key_digest

if TYPE_CHECKING:
    from hsm.signing_process import SigningProcess

CONFIG_NAME = "ca.json"
DEFAULT_CRL_BASE_URL = "http://crl.mynacard.test/jpki"
DEFAULT_OCSP_URL = "http://ocsp.mynacard.test/jpki"
_TITLES = {Hierarchy.SIGN: "Signing", Hierarchy.AUTH: "User Authentication",
           Hierarchy.OPERATOR: "Operator"}


def fingerprint(cert: x509.Certificate) -> str:
    """SHA-256 fingerprint, upper-case hex pairs joined by colons."""
    return cert.fingerprint(hashes.SHA256()).hex(":").upper()


@dataclasses.dataclass(frozen=True)
class HierarchyConfig:
    hierarchy: Hierarchy
    root_key: str
    ocsp_key: str
    root_cert: x509.Certificate
    ocsp_cert: x509.Certificate


@dataclasses.dataclass(frozen=True)
class CAConfig:
    """A CA directory, loaded and checked."""

    directory: Path
    shards: int
    crl_base_url: str
    ocsp_url: str
    hierarchies: dict[Hierarchy, HierarchyConfig]
    # label of the issuer master key in the HSM: this CA certifies only card keys the card
    # attested (card/PROTOCOL.md); None for a CA made without it
    attestation_master: str | None = None

    def crl_url(self, hierarchy: Hierarchy, shard: int) -> str:
        return f"{self.crl_base_url}/{hierarchy.value}/{crl_file_name(shard)}"

    def shard_of(self, serial: int) -> int:
        return serial % self.shards

    def fingerprints(self) -> dict[str, str]:
        out = {}
        for h, hc in self.hierarchies.items():
            out[f"{h.value}-root"] = fingerprint(hc.root_cert)
            out[f"{h.value}-ocsp"] = fingerprint(hc.ocsp_cert)
        return out


def crl_file_name(shard: int) -> str:
    return f"shard-{shard:04d}.crl"


def ca_exists(ca_dir: Path) -> bool:
    return (Path(ca_dir) / CONFIG_NAME).exists()


def load_ca(ca_dir: Path | str) -> CAConfig:
    """Read `ca.json` and the certificates beside it; CAError when missing or inconsistent."""
    ca_dir = Path(ca_dir)
    try:
        raw = json.loads((ca_dir / CONFIG_NAME).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise CAError(f"no CA in {ca_dir} (run `mynacard ca init` first)") from None
    except (OSError, ValueError) as exc:
        raise CAError(f"cannot read {ca_dir / CONFIG_NAME}: {exc}") from exc
    try:
        hierarchies = {}
        for name, h in raw["hierarchies"].items():
            hier = Hierarchy(name)
            root = x509.load_pem_x509_certificate((ca_dir / h["root_cert"]).read_bytes())
            ocsp = x509.load_pem_x509_certificate((ca_dir / h["ocsp_cert"]).read_bytes())
            if ocsp.issuer != root.subject:
                raise CAError(f"{h['ocsp_cert']} was not issued by {h['root_cert']}")
            hierarchies[hier] = HierarchyConfig(hier, h["root_key"], h["ocsp_key"], root, ocsp)
        master = raw.get("card_key_attestation_master")
        if master is not None and (not isinstance(master, str) or not master):
            raise ValueError("card_key_attestation_master must be a key label")
        config = CAConfig(ca_dir, int(raw["shards"]), raw["crl_base_url"], raw["ocsp_url"],
                          hierarchies, master)
    except (KeyError, TypeError, ValueError, OSError) as exc:
        raise CAError(f"bad CA configuration in {ca_dir}: {exc}") from exc
    if not set(JPKI_HIERARCHIES) <= set(config.hierarchies) or config.shards < 1:
        raise CAError(f"bad CA configuration in {ca_dir}: needs both JPKI hierarchies and"
                      " shards >= 1")
    return config


def _name(org: str, hierarchy: Hierarchy, role: str) -> x509.Name:
    return x509.Name([
        x509.NameAttribute(NameOID.COUNTRY_NAME, "JP"),
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, org),
        x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, f"{_TITLES[hierarchy]} CA"),
        x509.NameAttribute(NameOID.COMMON_NAME, f"{org} {_TITLES[hierarchy]} {role}"),
    ])


def _hsm_attestation(key_source: KeySource, master_label: str) -> AttestationPolicy:
    """The policy of a CA that certifies only attested card keys: the MAC checked in the
    HSM holding the issuer master key."""
    from hsm.derive import HsmAttestationVerifier
    from hsm.keys import KeyManager

    if not isinstance(key_source, KeyManager):
        raise CAError("this CA certifies only card keys the card attested: open it on the "
                      "HSM token that holds the issuer master key")
    return AttestationPolicy(HsmAttestationVerifier(key_source, master_label))


def _serial() -> int:
    while True:
        s = x509.random_serial_number()
        if s.bit_length() >= 64:
            return s


def _key_usage(**on: bool) -> x509.KeyUsage:
    fields = dict(digital_signature=False, content_commitment=False, key_encipherment=False,
                  data_encipherment=False, key_agreement=False, key_cert_sign=False,
                  crl_sign=False, encipher_only=False, decipher_only=False)
    fields.update(on)
    return x509.KeyUsage(**fields)


def _check_ca_key(key: PublicKeyTypes, label: str) -> rsa.RSAPublicKey:
    if not isinstance(key, rsa.RSAPublicKey) or key.key_size < 2048:
        raise CAError(f"key {label!r} must be RSA-2048 or larger")
    return key


def _write_cert(out_dir: Path, stem: str, cert: x509.Certificate) -> str:
    # public certificates, replaced through a new temporary file (never a planted symlink)
    write_file(out_dir / f"{stem}.pem", cert.public_bytes(Encoding.PEM), force=True, mode=0o644)
    write_file(out_dir / f"{stem}.der", cert.public_bytes(Encoding.DER), force=True, mode=0o644)
    return f"{stem}.pem"


def init_ca(
    key_source: KeyCeremonySource,
    out_dir: Path | str,
    *,
    shards: int = 16,
    crl_base_url: str = DEFAULT_CRL_BASE_URL,
    ocsp_url: str = DEFAULT_OCSP_URL,
    organization: str = "mynacard JPKI",
    key_prefix: str = "jpki",
    root_validity: dt.timedelta = dt.timedelta(days=20 * 365),
    ocsp_validity: dt.timedelta = dt.timedelta(days=2 * 365),
    create_key_options: dict[str, Any] | None = None,
    clock: Clock = utc_now,
    attestation_master: str | None = None,
    hierarchies: Iterable[Hierarchy] = tuple(Hierarchy),
) -> CAConfig:
    """The key ceremony: make every hierarchy's root and OCSP keys in `key_source`, sign
    the certificates and write them to `out_dir`. Refuses to overwrite an existing CA.

    `hierarchies`: all three by default (an issuance center's CA); both JPKI ones are
    always among them (a bare JPKI CA passes `JPKI_HIERARCHIES`).

    `attestation_master`: the label of the issuer master key in the same HSM; the CA then
    certifies only card keys with a valid key attestation (`IssuingCA`)."""
    if attestation_master is not None and (not isinstance(attestation_master, str)
                                           or not attestation_master):
        raise ValueError("attestation_master must be a key label")
    if not isinstance(shards, int) or isinstance(shards, bool):
        raise TypeError("shards must be an int")
    if not 1 <= shards <= 9999:
        raise ValueError("shards must be between 1 and 9999")
    for name, url in (("crl_base_url", crl_base_url), ("ocsp_url", ocsp_url)):
        if not isinstance(url, str) or not url.startswith(("http://", "https://")):
            raise ValueError(f"{name} must be an http(s) URL")
    made = [h for h in Hierarchy if h in set(hierarchies)]
    if not set(JPKI_HIERARCHIES) <= set(made):
        raise ValueError("a CA has both JPKI hierarchies (sign, auth)")
    out = Path(out_dir)
    if ca_exists(out) or (out.exists() and any(out.glob("*-root.pem"))):
        raise CAError(f"a CA already exists in {out}; refusing to overwrite it")
    labels = [f"{key_prefix}-{h.value}-{r}" for h in made for r in ("root", "ocsp")]
    find = getattr(key_source, "find_key", None) or getattr(key_source, "has_key", None)
    if find is not None:
        for label in labels:
            try:
                found = find(label)
            except Exception:
                found = False
            if found:
                raise CAError(f"key {label!r} already exists in the HSM; refusing to overwrite")
    out.mkdir(parents=True, exist_ok=True)
    now = clock()
    opts = create_key_options or {}
    config: dict[str, Any] = {"version": 1, "shards": shards, "crl_base_url":
                              crl_base_url.rstrip("/"), "ocsp_url": ocsp_url, "hierarchies": {}}
    if attestation_master is not None:
        config["card_key_attestation_master"] = attestation_master
    for h in made:
        root_label, ocsp_label = f"{key_prefix}-{h.value}-root", f"{key_prefix}-{h.value}-ocsp"
        key_source.create_key(root_label, **opts)
        key_source.create_key(ocsp_label, **opts)
        root_pub = _check_ca_key(key_source.public_key(root_label), root_label)
        ocsp_pub = _check_ca_key(key_source.public_key(ocsp_label), ocsp_label)
        root_signer = key_source.signer(root_label)
        root_name = _name(organization, h, "Root")
        root_ski = x509.SubjectKeyIdentifier.from_public_key(root_pub)
        root = (
            x509.CertificateBuilder()
            .subject_name(root_name).issuer_name(root_name).public_key(root_pub)
            .serial_number(_serial()).not_valid_before(now).not_valid_after(now + root_validity)
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(_key_usage(key_cert_sign=True, crl_sign=True), critical=True)
            .add_extension(root_ski, critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(
                root_ski), critical=False)
            .sign(root_signer, hashes.SHA256())
        )
        ocsp = (
            x509.CertificateBuilder()
            .subject_name(_name(organization, h, "OCSP Responder")).issuer_name(root_name)
            .public_key(ocsp_pub).serial_number(_serial())
            .not_valid_before(now)
            .not_valid_after(min(now + ocsp_validity, root.not_valid_after_utc))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(_key_usage(digital_signature=True), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.OCSP_SIGNING]),
                           critical=False)
            .add_extension(x509.OCSPNoCheck(), critical=False)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(ocsp_pub), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(
                root_ski), critical=False)
            .sign(root_signer, hashes.SHA256())
        )
        config["hierarchies"][h.value] = {
            "root_key": root_label, "ocsp_key": ocsp_label,
            "root_cert": _write_cert(out, f"{h.value}-root", root),
            "ocsp_cert": _write_cert(out, f"{h.value}-ocsp", ocsp),
        }
    write_file(out / CONFIG_NAME, json.dumps(config, indent=2) + "\n", force=True)
    return load_ca(out)


@dataclasses.dataclass(frozen=True)
class IssuedCertificate:
    certificate: x509.Certificate
    serial: int
    hierarchy: Hierarchy
    profile: Profile
    shard: int


@dataclasses.dataclass(frozen=True)
class CertificateRequest:
    """One certificate for `IssuingCA.issue_many`: the arguments of `issue_signing` or
    `issue_user_authentication` (no `replaces`: a replacement is issued on its own)."""

    profile: Profile
    public_key: rsa.RSAPublicKey
    identity: Identity
    holder_id: str
    card_expiry: dt.date
    renewing: dt.datetime | None = None
    user_certificate_not_after: dt.datetime | None = None  # signing only
    adult_ward: bool = False  # signing only
    evidence: CardKeyEvidence | None = None  # the card's key attestation (AttestationPolicy)


_Builder = SigningCertificateBuilder | UserAuthenticationCertificateBuilder


class IssuingCA:
    """Issues both profiles and records each certificate in the store, in one transaction.

    Thread-safe: several threads may issue at once. The certificate is signed outside
    the database transaction (the HSM signs in parallel on per-thread sessions); the
    transaction then records it, and supersedes the certificate it replaces, atomically.
    Serial numbers are random (at least 64 bits) and unique by the store's primary key:
    in the (astronomically unlikely) case that a fresh serial is taken, the certificate
    is never recorded or returned, and it is signed again under a new serial.

    With `attestation` (the issuance center's CA), every request must carry the card's
    key attestation for exactly that key and key slot, checked before anything is
    signed (`pki.attestation.AttestationRefused` otherwise).
    """

    def __init__(self, *, key_source: KeySource, ca: CAConfig | Path | str,
                 store: CertificateStore, clock: Clock = utc_now,
                 attestation: AttestationPolicy | None = None) -> None:
        if not isinstance(store, CertificateStore):
            raise TypeError("store must be a read-write CertificateStore")
        self._config = ca if isinstance(ca, CAConfig) else load_ca(ca)
        self._keys = key_source
        self._store = store
        self._clock = clock
        if attestation is None and self._config.attestation_master is not None:
            attestation = _hsm_attestation(key_source, self._config.attestation_master)
        self._attestation = attestation
        self._signers: dict[Hierarchy, CertificateIssuerPrivateKeyTypes] = {}
        self._crl_urls: dict[tuple[Hierarchy, int], str] = {}
        for h, hc in self._config.hierarchies.items():
            pub = key_source.public_key(hc.root_key)
            cert_pub = hc.root_cert.public_key()
            if not isinstance(pub, rsa.RSAPublicKey) or not isinstance(cert_pub, rsa.RSAPublicKey) \
                    or pub.public_numbers() != cert_pub.public_numbers():
                raise CAError(f"HSM key {hc.root_key!r} does not match {h.value}-root.pem")
            self._signers[h] = key_source.signer(hc.root_key)
            for shard in range(self._config.shards):
                self._crl_urls[(h, shard)] = self._config.crl_url(h, shard)

    @property
    def config(self) -> CAConfig:
        return self._config

    def _signer(self, h: Hierarchy) -> CertificateIssuerPrivateKeyTypes:
        return self._signers[h]

    def issue_signing(
        self, *, public_key: rsa.RSAPublicKey, identity: Identity, holder_id: str,
        card_expiry: dt.date, user_certificate_not_after: dt.datetime | None = None,
        renewing: dt.datetime | None = None, replaces: int | None = None,
        adult_ward: bool = False, evidence: CardKeyEvidence | None = None,
    ) -> IssuedCertificate:
        """Issue a signing certificate (refused for holders under 15 and adult wards).

        `renewing`: notAfter of the certificate being renewed (6th-birthday rule);
        `replaces`: serial of a certificate this one supersedes (revoked as superseded
        and linked to the new one, in the same transaction)."""
        return self._issue(CertificateRequest(
            profile=Profile.SIGNING, public_key=public_key, identity=identity,
            holder_id=holder_id, card_expiry=card_expiry, renewing=renewing,
            user_certificate_not_after=user_certificate_not_after, adult_ward=adult_ward,
            evidence=evidence), replaces=replaces)

    def issue_user_authentication(
        self, *, public_key: rsa.RSAPublicKey, identity: Identity, holder_id: str,
        card_expiry: dt.date, renewing: dt.datetime | None = None, replaces: int | None = None,
        evidence: CardKeyEvidence | None = None,
    ) -> IssuedCertificate:
        """Issue a user-authentication certificate (no personal data in it)."""
        return self._issue(CertificateRequest(
            profile=Profile.USER_AUTHENTICATION, public_key=public_key, identity=identity,
            holder_id=holder_id, card_expiry=card_expiry, renewing=renewing,
            evidence=evidence), replaces=replaces)

    def issue_operator(
        self, *, public_key: rsa.RSAPublicKey, operator: str,
        validity: dt.timedelta = OPERATOR_VALIDITY, evidence: CardKeyEvidence | None = None,
    ) -> IssuedCertificate:
        """Issue an operator certificate (operator hierarchy) for the key an operator IC
        card generated; recorded in the store (holder `operator:<name>`), so it is revoked,
        listed in CRLs and answered by OCSP like the others. The subject is the operator
        and the center (the operator root's organisation), never a resident."""
        h = Hierarchy.OPERATOR
        hc = self._config.hierarchies.get(h)
        if hc is None:
            raise CAError("this CA has no operator hierarchy (made before operator cards):"
                          " operator cards need a CA made by `ca init` or `center init` now")
        if self._attestation is not None:
            self._attestation.check(Profile.OPERATOR, public_key, evidence)
        orgs = hc.root_cert.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)
        center = str(orgs[0].value) if orgs else "mynacard"
        now = self._clock()
        for _ in range(100):
            serial = _serial()
            shard = self._config.shard_of(serial)
            cert = operator_certificate_builder(
                public_key=public_key, operator=operator, center=center, issuer=hc.root_cert,
                serial=serial, now=now, crl_url=self._crl_urls[(h, shard)],
                ocsp_url=self._config.ocsp_url, validity=validity,
            ).sign(self._signers[h], hashes.SHA256())
            if self._store.add_if_absent(cert, hierarchy=h.value, profile=Profile.OPERATOR.value,
                                         holder_id=f"operator:{operator}", shard=shard,
                                         issued_at=now, der=cert.public_bytes(Encoding.DER)):
                return IssuedCertificate(cert, serial, h, Profile.OPERATOR, shard)
        raise CAError("could not find an unused serial number")  # pragma: no cover

    def issue_many(self, requests: Iterable[CertificateRequest], *, parallel: int = 1,
                   commit_every: int = 64,
                   signing: SigningProcess | None = None) -> list[IssuedCertificate]:
        """Issue many certificates, pipelined: `parallel` threads sign in the HSM (each
        on its own session) while this thread builds the next certificates and records
        the signed ones, so the HSM never waits for Python or the database.

        Every request is checked first (a signing certificate for a holder under 15
        fails the call before anything is signed). Certificates are recorded in
        transactions of up to `commit_every`, in request order, and returned only once
        all are recorded; a card's two certificates issued together (commit_every >= 2)
        are recorded together or not at all. If the HSM or the store fails midway, the
        error is raised; the certificates of transactions already committed stay
        recorded (valid, findable by holder), and nothing signed but unrecorded exists
        anywhere else, as it was never returned.

        `signing`: a `hsm.SigningProcess` on this CA's token signs instead of `parallel`
        threads: a process of its own, so the GIL this thread holds while it builds and
        records never keeps the HSM waiting."""
        if parallel < 1 or commit_every < 1:
            raise ValueError("parallel and commit_every must be at least 1")
        now = self._clock()
        builders: list[tuple[str, _Builder]] = []
        for r in requests:
            b = self._builder(r)
            b.check(now)
            builders.append((r.holder_id, b))
        if not builders:
            return []
        done: list[IssuedCertificate] = []
        staged: list[tuple[str, _Builder, int, int, bytes]] = []
        # each certificate waiting for its signature, with how to wait for it
        pending: collections.deque[tuple[str, _Builder, int, int, bytes,
                                         Callable[[], bytes]]] = collections.deque()
        todo = iter(builders)
        pool: ThreadPoolExecutor | None = None
        with contextlib.ExitStack() as stack:
            if signing is None:
                pool = stack.enter_context(ThreadPoolExecutor(
                    max_workers=parallel, thread_name_prefix="ca-hsm-sign"))
            else:
                stack.callback(signing.drain)  # a failure midway leaves nothing owed
                parallel = 1

            def submit() -> bool:
                item = next(todo, None)
                if item is None:
                    return False
                holder, b = item
                serial, shard, tbs = self._tbs(b, now)
                h = b.profile.hierarchy
                signed: Callable[[], bytes]
                if pool is not None:
                    signed = pool.submit(self._rsa_signer(h).sign, tbs, padding.PKCS1v15(),
                                         hashes.SHA256()).result
                else:
                    assert signing is not None
                    signing.submit(self._config.hierarchies[h].root_key, tbs)
                    signed = functools.partial(self._checked, signing, h, tbs)
                pending.append((holder, b, serial, shard, tbs, signed))
                return True

            # keep every signer busy, also while a transaction of certificates is being
            # recorded: as many ready to sign as one transaction holds
            while len(pending) < parallel + commit_every and submit():
                pass
            while pending:
                holder, b, serial, shard, tbs, signed = pending.popleft()
                staged.append((holder, b, serial, shard, assemble_rsa_sha256(tbs, signed())))
                submit()
                if len(staged) >= commit_every or not pending:
                    done.extend(self._record(staged, now))
                    staged = []
        return done

    def _checked(self, signing: SigningProcess, h: Hierarchy, tbs: bytes) -> bytes:
        """The next signature from `signing` (answers come in the order asked), verified
        with the root certificate's key: another process could have opened a token that
        holds a different key under the same label, and a faulty RSA signature must never
        leave the CA."""
        signature = signing.result()
        public = self._config.hierarchies[h].root_cert.public_key()
        if not isinstance(public, rsa.RSAPublicKey):  # every JPKI root is RSA (init_ca)
            raise CAError(f"the {h.value} root key is not an RSA key")
        try:
            public.verify(signature, tbs, padding.PKCS1v15(), hashes.SHA256())
        except InvalidSignature:
            raise CAError(f"the signing process's signature does not verify with the "
                          f"{h.value} root certificate: is it on this CA's token?") from None
        return signature

    def _rsa_signer(self, h: Hierarchy) -> rsa.RSAPrivateKey:
        signer = self._signers[h]
        if not isinstance(signer, rsa.RSAPrivateKey):  # every JPKI root is RSA (init_ca)
            raise CAError(f"the {h.value} root key is not an RSA key")
        return signer

    def _builder(self, r: CertificateRequest) -> _Builder:
        if not isinstance(r, CertificateRequest):
            raise TypeError("requests must be pki.ca.CertificateRequest values")
        if not isinstance(r.holder_id, str) or not r.holder_id:
            raise ValueError("holder_id must be a non-empty str")
        b: _Builder
        if r.profile is Profile.SIGNING:
            sb = SigningCertificateBuilder().public_key(r.public_key).identity(r.identity)
            sb = sb.adult_ward(r.adult_ward).card_expiry(r.card_expiry)
            if r.user_certificate_not_after is not None:
                sb = sb.user_certificate_not_after(r.user_certificate_not_after)
            b = sb
        elif r.profile is Profile.USER_AUTHENTICATION:
            if r.adult_ward or r.user_certificate_not_after is not None:
                raise ValueError("adult_ward and user_certificate_not_after are for signing"
                                 " certificates")
            b = UserAuthenticationCertificateBuilder().public_key(r.public_key)
            b = b.identity(r.identity).card_expiry(r.card_expiry)
        else:
            raise TypeError("profile must be a pki.profiles.Profile")
        if self._attestation is not None:
            self._attestation.check(r.profile, r.public_key, r.evidence)
        if r.renewing is not None:
            b = b.renewing(r.renewing)
        return b

    def _tbs(self, builder: _Builder, now: dt.datetime) -> tuple[int, int, bytes]:
        """A fresh serial, its shard, and the TBSCertificate with them."""
        h = builder.profile.hierarchy
        serial = _serial()
        shard = self._config.shard_of(serial)
        tbs = (builder.serial_number(serial)
               .distribution(crl_url=self._crl_urls[(h, shard)], ocsp_url=self._config.ocsp_url)
               .tbs_der(issuer=self._config.hierarchies[h].root_cert, now=now))
        return serial, shard, tbs

    def _signed(self, builder: _Builder, now: dt.datetime) -> tuple[int, int, bytes]:
        """A fresh serial, its shard, and the certificate signed in this thread (DER)."""
        serial, shard, tbs = self._tbs(builder, now)
        signer = self._rsa_signer(builder.profile.hierarchy)
        return serial, shard, assemble_rsa_sha256(
            tbs, signer.sign(tbs, padding.PKCS1v15(), hashes.SHA256()))

    def _record(self, staged: list[tuple[str, _Builder, int, int, bytes]],
                now: dt.datetime) -> list[IssuedCertificate]:
        """Record signed certificates in one transaction (a taken serial: signed again
        under a new one, in this thread)."""
        out: list[IssuedCertificate] = []
        store = self._store
        with store.transaction():
            for holder, b, serial, shard, der in staged:
                h, profile = b.profile.hierarchy, b.profile
                for _ in range(100):
                    cert = x509.load_der_x509_certificate(der)
                    if store.add_if_absent(cert, hierarchy=h.value, profile=profile.value,
                                           holder_id=holder, shard=shard,
                                           issued_at=now, der=der):
                        break
                    serial, shard, der = self._signed(b, now)
                else:  # pragma: no cover
                    raise CAError("could not find an unused serial number")
                out.append(IssuedCertificate(cert, serial, h, profile, shard))
        return out

    def _issue(self, request: CertificateRequest, *, replaces: int | None) -> IssuedCertificate:
        builder = self._builder(request)
        holder_id = request.holder_id
        profile: Profile = builder.profile
        h = profile.hierarchy
        if replaces is not None:
            # a stored certificate's hierarchy never changes: checked before signing
            old = self._store.get(replaces)
            if old.hierarchy != h.value:
                raise CAError("a certificate can only replace one of the same hierarchy")
        now = self._clock()
        store = self._store
        digest = key_digest(request.public_key)  # the certificate's key is the request's
        for _ in range(100):
            serial, shard, der = self._signed(builder, now)
            cert = x509.load_der_x509_certificate(der)
            if replaces is None:
                # one INSERT is one transaction (autocommit): no BEGIN/COMMIT round trips
                if not store.add_if_absent(cert, hierarchy=h.value, profile=profile.value,
                                           holder_id=holder_id, shard=shard, issued_at=now,
                                           der=der, key_sha256=digest):
                    continue  # serial taken: nothing written; sign again with a new one
                return IssuedCertificate(cert, serial, h, profile, shard)
            with store.transaction():
                if not store.add_if_absent(cert, hierarchy=h.value, profile=profile.value,
                                           holder_id=holder_id, shard=shard, issued_at=now,
                                           der=der):
                    continue
                store.revoke(replaces, reason=x509.ReasonFlags.superseded,
                             cause=f"superseded by {serial:x}", at=now)
                store.set_successor(replaces, serial)
            return IssuedCertificate(cert, serial, h, profile, shard)
        raise CAError("could not find an unused serial number")  # pragma: no cover
