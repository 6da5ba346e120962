"""An issuance center's keys and CA: set up once (`init_center`), opened per command
(`Center.open`).

`HOME/center.json` records where everything is (never a PIN): the PKCS#11 token URI and
the pin source of its user PIN, the labels of the issuer master key (per-card issuer
keys are derived from it inside the HSM) and of the integrity-record signing key, the CA
directory and the certificate store. Only entry points open the HSM; the workflow gets
a `Center` holding signer handles, never key material.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric import rsa

from card.attestation import AttestationGate, KeyAttestation
from card.issuer import IssuerAuthenticator
from hsm import HsmError, KeyManager, KeyNotFound, PinSource, open_key_manager
from hsm.advice import redacted
from hsm.derive import (
    HsmAttestationVerifier,
    HsmIssuerAuthenticator,
    create_master_key,
    import_master_key,
)
from hsm.files import private_dir, write_file
from hsm.mechanisms import DerivationMethod
from hsm.softhsm import init_token, softhsm_dir, use_softhsm
from hsm.uri import Pkcs11Uri
from issuance.audit.keyer import AUDIT_KEY_LABEL, ensure_audit_key
from issuance.errors import IssuanceError
from pki.attestation import AttestationPolicy, CardKeyEvidence
from pki.ca import DEFAULT_CRL_BASE_URL, DEFAULT_OCSP_URL, IssuingCA, ca_exists, init_ca, load_ca
from pki.profiles import Hierarchy
from pki.store import CertificateStore, open_store

CONFIG_NAME = "center.json"
DEFAULT_TOKEN = "jpki"
MASTER_LABEL = "issuer-master"
INTEGRITY_LABEL = "issuer-integrity"
# The factory key of emulated cards (card.contract.TEST_ISSUER_MASTER_KEY); a real
# deployment imports its own master key from the card manufacturer's key ceremony.
TEST_MASTER_KEY = bytes(range(0x40, 0x50))


class CenterError(IssuanceError):
    """The center is not set up, or its keys and CA do not fit together."""


@dataclass(frozen=True)
class CenterConfig:
    token_uri: str  # pkcs11: URI of the token (no PIN in it)
    pin_source: str  # env:NAME or file:PATH
    softhsm: bool  # a SoftHSM2 token under HOME/hsm (SOFTHSM2_CONF is set on open)
    master_label: str
    integrity_label: str
    ca_dir: str
    store: str  # certificate store: SQLite path or postgresql:// URL
    # how per-card keys are derived in this center's HSM (hsm.mechanisms.DerivationMethod);
    # every method yields AES-ECB(master, data), the key the cards hold
    derivation: str = DerivationMethod.AES_ECB_ENCRYPT_DATA.value

    def save(self, home: Path) -> Path:
        path = Path(home) / CONFIG_NAME
        # replaced through a new temporary file (0600, never a planted symlink)
        write_file(path, json.dumps(asdict(self), indent=2) + "\n", force=True)
        return path

    @classmethod
    def load(cls, home: Path) -> CenterConfig:
        path = Path(home) / CONFIG_NAME
        try:
            raw = json.loads(path.read_text(encoding="utf-8"))
            return cls(**raw)
        except FileNotFoundError:
            raise CenterError(f"no issuance center in {home} (run `mynacard center init`)") \
                from None
        except (OSError, ValueError, TypeError) as exc:
            raise CenterError(f"bad center configuration {path}: {exc}") from exc


def _write_secret(path: Path, value: str) -> None:
    """A new PIN file, 0600, created exclusively (FileExistsError if anything is there)."""
    private_dir(path.parent)
    write_file(path, value + "\n")


def _has_key(km: KeyManager, label: str) -> bool:
    try:
        km.find_key(label)
    except KeyNotFound:
        return False
    return True


def init_center(
    home: Path,
    *,
    token: str = DEFAULT_TOKEN,
    pkcs11_uri: str | None = None,
    pin_source: str | None = None,
    master_key: str | None = None,  # "test" | "generate" | "file:PATH" (16 bytes or 32 hex)
    store: str | None = None,
    shards: int = 16,
    ocsp_url: str = DEFAULT_OCSP_URL,
    crl_base_url: str = DEFAULT_CRL_BASE_URL,
    report: Callable[[str, str], None] = lambda what, outcome: None,
) -> CenterConfig:
    """Create (or find) the token, the CA, the issuer master key, the integrity key and
    the audit log key (the HMAC key that keys the audit chain).

    Idempotent: whatever exists is kept and reported as `found`; `report(what, outcome)`
    is called once per item with outcome `created` or `found`.
    """
    home = Path(home)
    if master_key is not None and master_key not in ("test", "generate") \
            and not master_key.startswith("file:"):
        raise CenterError("the master key is test, generate or file:PATH")
    softhsm = pkcs11_uri is None
    if softhsm:
        use_softhsm(home)
        from hsm.module import load_module

        pin_file = softhsm_dir(home) / f"{token}.pin"
        if pin_source is None:
            pin_source = f"file:{pin_file}"
        if token in load_module().token_labels():
            report(f"HSM token {token!r} (SoftHSM2, {softhsm_dir(home)})", "found")
        else:
            if pin_source == f"file:{pin_file}" and not pin_file.exists():
                _write_secret(pin_file, secrets.token_hex(8))
            so_file = softhsm_dir(home) / f"{token}.so.pin"
            if not so_file.exists():
                _write_secret(so_file, secrets.token_hex(8))
            so_pin = PinSource.from_file(so_file).read()
            init_token(home, token, so_pin, PinSource.from_spec(pin_source).read())
            report(f"HSM token {token!r} (SoftHSM2, {softhsm_dir(home)}; user PIN in "
                   f"{pin_source})", "created")
        uri = Pkcs11Uri(token=token).format()
    else:
        assert pkcs11_uri is not None
        parsed = Pkcs11Uri.parse(pkcs11_uri)
        if pin_source is None:
            if parsed.pin_source is None:
                raise CenterError("a --pkcs11-uri needs a pin source (--pin-source or "
                                  "pin-source= in the URI)")
            pin_source = parsed.pin_source
        uri = parsed.replace(pin_source=None).format()
        report(f"HSM token {uri}", "found")
    ca_dir = home / "ca"
    # a re-run without --store keeps the center's store (never a new SQLite one beside it)
    store_location = store or _recorded_store(home) or str(home / "store.sqlite")
    with open_key_manager(uri, pin_source=PinSource.from_spec(pin_source)) as km:
        # chosen once per center (every card of it is derived alike), kept on a re-run
        recorded = _recorded_derivation(home)
        try:
            offered = km.mechanisms()
            if recorded is None:
                method = offered.derivation()
            else:
                method = recorded
                offered.check_derivation(method)
        except HsmError as exc:
            raise CenterError(str(exc)) from None
        report(f"card-key derivation {method.value} ({method.describe()}; cards for this "
               f"center hold AES-ECB-{method.card_function} keys), CMAC by "
               f"{offered.card_mac().describe()}", "ready")
        config = CenterConfig(uri, pin_source, softhsm, MASTER_LABEL, INTEGRITY_LABEL,
                              str(ca_dir), store_location, method.value)
        if _has_key(km, MASTER_LABEL):
            report(f"issuer master key {MASTER_LABEL!r} (AES-128, in the HSM)", "found")
        else:
            if master_key is None:
                raise CenterError("there is no issuer master key yet: choose one with "
                                  "--master-key test (the emulator's test key, development "
                                  "only), generate, or file:PATH (your manufacturer's key)")
            if master_key == "test":
                import_master_key(km, MASTER_LABEL, TEST_MASTER_KEY, method)
                what = "the emulator's TEST key 404142…4F imported — development only"
            elif master_key == "generate":
                create_master_key(km, MASTER_LABEL, method)
                what = "generated in the HSM"
            elif master_key.startswith("file:"):
                import_master_key(km, MASTER_LABEL, _read_master(Path(master_key[5:])), method)
                what = f"imported from {master_key[5:]}"
            else:
                raise CenterError("master key must be test, generate or file:PATH")
            report(f"issuer master key {MASTER_LABEL!r} (AES-128, {what})", "created")
        if ca_exists(ca_dir):
            load_ca(ca_dir)
            report(f"JPKI CA (signing and user-authentication roots) in {ca_dir}", "found")
            if Hierarchy.OPERATOR not in load_ca(ca_dir).hierarchies:
                report("no operator hierarchy in this CA (made before operator cards):"
                       " `operator issue-card` needs a CA made now", "missing")
        else:
            init_ca(km, ca_dir, shards=shards, ocsp_url=ocsp_url, crl_base_url=crl_base_url,
                    attestation_master=MASTER_LABEL)
            report(f"JPKI CA (signing and user-authentication roots, OCSP responders) and "
                   f"the operator hierarchy (operator IC cards) in {ca_dir}; OCSP URL "
                   f"{ocsp_url}", "created")
        if _has_key(km, INTEGRITY_LABEL):
            report(f"integrity-record signing key {INTEGRITY_LABEL!r} (RSA-2048)", "found")
        else:
            km.create_key(INTEGRITY_LABEL)
            report(f"integrity-record signing key {INTEGRITY_LABEL!r} (RSA-2048, in the HSM)",
                   "created")
        created = ensure_audit_key(km)
        report(f"audit log key {AUDIT_KEY_LABEL!r} (HMAC-SHA256, in the HSM)",
               "created" if created else "found")
    open_store(store_location).close()
    # the report reaches the terminal, --json and the audit log: never the URL's password
    report(f"certificate store {redacted(store_location)}", "ready")
    config.save(home)
    return config


def _recorded_derivation(home: Path) -> DerivationMethod | None:
    """The derivation method an existing center recorded (None for a new center)."""
    if not (Path(home) / CONFIG_NAME).exists():
        return None
    try:
        return DerivationMethod.parse(CenterConfig.load(home).derivation)
    except ValueError as exc:
        raise CenterError(f"bad center configuration: {exc}") from None


def _recorded_store(home: Path) -> str | None:
    """The certificate store an existing center recorded (None for a new center)."""
    if not (Path(home) / CONFIG_NAME).exists():
        return None
    return CenterConfig.load(home).store


def _read_master(path: Path) -> bytes:
    raw = path.read_bytes()
    if len(raw) == 16:
        return raw
    try:
        value = bytes.fromhex(raw.decode("ascii").strip())
    except (UnicodeDecodeError, ValueError):
        raise CenterError(f"{path}: not 16 raw bytes or 32 hex digits") from None
    if len(value) != 16:
        raise CenterError(f"{path}: an AES-128 master key is 16 bytes")
    return value


def ca_evidence(attestation: KeyAttestation) -> CardKeyEvidence:
    """What the center's CA needs of a card's attestation to check it again itself."""
    return CardKeyEvidence(card_serial=attestation.serial, key_fid=attestation.key_fid,
                           challenge=attestation.challenge, mac=attestation.mac,
                           aid=attestation.aid)


class Center:
    """The opened center: HSM session, issuing CA, certificate store, issuer keys, and the
    attestation gate every card key passes before the CA certifies it."""

    def __init__(self, *, km: KeyManager, ca: IssuingCA, store: CertificateStore,
                 authenticator: IssuerAuthenticator, integrity_signer: rsa.RSAPrivateKey,
                 attestation: AttestationGate, owns: tuple[Any, ...] = ()) -> None:
        self.km = km
        self.ca = ca
        self.store = store
        self.authenticator = authenticator
        self.attestation = attestation
        self.integrity_signer = integrity_signer
        self._owns = owns

    @classmethod
    def open(cls, home: Path, config: CenterConfig | None = None, *,
             clock: Callable[[], datetime] | None = None) -> Center:
        """`clock`: when the CA says it issues (tests of a card's ten-year life)."""
        config = config or CenterConfig.load(home)
        if config.softhsm:
            use_softhsm(Path(home))
        km = open_key_manager(config.token_uri, pin_source=PinSource.from_spec(config.pin_source))
        try:
            store = open_store(config.store)
            try:
                try:
                    method = DerivationMethod.parse(config.derivation)
                except ValueError as exc:
                    raise CenterError(f"bad center configuration: {exc}") from None
                authenticator = HsmIssuerAuthenticator(km, config.master_label, method)
                verifier = HsmAttestationVerifier(km, config.master_label, method)
                attestation = AttestationGate(verifier, random=verifier.random)
                # the CA itself refuses a card key without the card's proof, too
                ca = IssuingCA(key_source=km, ca=config.ca_dir, store=store,
                               attestation=AttestationPolicy(verifier),
                               **({"clock": clock} if clock else {}))
                signer = km.signer(config.integrity_label)
                if not isinstance(signer, rsa.RSAPrivateKey):
                    raise CenterError(f"key {config.integrity_label!r} is not an RSA key")
            except BaseException:
                store.close()
                raise
        except BaseException:
            km.close()
            raise
        return cls(km=km, ca=ca, store=store, authenticator=authenticator,
                   integrity_signer=signer, attestation=attestation, owns=(store, km))

    def close(self) -> None:
        for thing in self._owns:
            thing.close()

    def __enter__(self) -> Center:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
