"""Signer objects: HSM keys that plug into cryptography's builders.

`HsmRsaSigner` subclasses `rsa.RSAPrivateKey` and `HsmEcSigner` subclasses
`ec.EllipticCurvePrivateKey`, so `x509.CertificateBuilder.sign`,
`CertificateRevocationListBuilder.sign`, `ocsp.OCSPResponseBuilder.sign` and any
code that calls `key.sign(...)` accept them unchanged.

The message is hashed on the host and only the digest goes to the HSM (CKM_RSA_PKCS
over a DigestInfo, CKM_RSA_PKCS_PSS, CKM_ECDSA): a large CRL costs one hash, not a
transfer of megabytes into the HSM, and `Prehashed` works the same way. ECDSA
signatures come back from PKCS#11 as r||s and are returned DER-encoded, as
cryptography does. Signers are thread-safe: each call borrows its own session.
Everything that would reveal the private key raises `KeyNotExportable`.
"""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING, Any, NoReturn, Protocol, Self

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric import padding as apadding
from cryptography.hazmat.primitives.asymmetric import utils as autils
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed, encode_dss_signature
from pkcs11 import MGF, Mechanism

from hsm.errors import HsmError, KeyNotExportable, UnsupportedAlgorithm

_DIGEST_INFO: dict[str, bytes] = {
    "sha1": bytes.fromhex("3021300906052b0e03021a05000414"),
    "sha224": bytes.fromhex("302d300d06096086480165030402040500041c"),
    "sha256": bytes.fromhex("3031300d060960864801650304020105000420"),
    "sha384": bytes.fromhex("3041300d060960864801650304020205000430"),
    "sha512": bytes.fromhex("3051300d060960864801650304020305000440"),
}
_HASH_MECH: dict[str, tuple[Mechanism, MGF]] = {
    "sha1": (Mechanism.SHA_1, MGF.SHA1),
    "sha224": (Mechanism.SHA224, MGF.SHA224),
    "sha256": (Mechanism.SHA256, MGF.SHA256),
    "sha384": (Mechanism.SHA384, MGF.SHA384),
    "sha512": (Mechanism.SHA512, MGF.SHA512),
}


# digests hashlib computes under the same name (same OpenSSL implementation)
_HASHLIB: frozenset[type[hashes.HashAlgorithm]] = frozenset(
    {hashes.SHA1, hashes.SHA224, hashes.SHA256, hashes.SHA384, hashes.SHA512}
)


# cryptography >= 49: sign the data as given with PKCS#1 v1.5 (caller built the DigestInfo).
_NO_DIGEST_INFO: type | None = getattr(autils, "NoDigestInfo", None)


class RawSigner(Protocol):
    """What a signer needs from the key manager: one signing call inside the HSM."""

    label: str
    key_id: bytes

    def sign_raw(self, mechanism: Mechanism, data: bytes, mechanism_param: Any = None) -> bytes:
        """Sign `data` with the private key using `mechanism`; thread-safe."""
        ...


def _digest(
    data: bytes | bytearray | memoryview, algorithm: Prehashed | hashes.HashAlgorithm
) -> tuple[bytes, hashes.HashAlgorithm]:
    if isinstance(algorithm, Prehashed):
        hash_alg: hashes.HashAlgorithm = algorithm._algorithm
        if len(data) != hash_alg.digest_size:
            raise ValueError("data must be as long as the digest of the Prehashed algorithm")
        return bytes(data), hash_alg
    if not isinstance(algorithm, hashes.HashAlgorithm):
        raise TypeError("algorithm must be a hashes.HashAlgorithm or Prehashed")
    if type(algorithm) in _HASHLIB:  # the common SHA-1/SHA-2 digests: hashlib is cheaper
        return hashlib.new(algorithm.name, data).digest(), algorithm
    h = hashes.Hash(algorithm)
    h.update(bytes(data))
    return h.finalize(), algorithm


def _refuse(what: str) -> NoReturn:
    raise KeyNotExportable(f"the private key stays in the HSM; {what} is not available")


class _HsmKey:
    """What both signers share: the HSM key behind them, and no way to copy it out."""

    def __init__(self, raw: RawSigner, public_key: Any) -> None:
        self._raw = raw
        self._public = public_key

    @property
    def label(self) -> str:
        return self._raw.label

    @property
    def key_id(self) -> bytes:
        return self._raw.key_id

    def __copy__(self) -> Self:
        return self

    def __deepcopy__(self, memo: dict[Any, Any]) -> Self:
        return self

    def __reduce__(self) -> NoReturn:
        raise TypeError("HSM signers cannot be pickled; open the key manager in the other process")

    def private_bytes(
        self,
        encoding: serialization.Encoding,
        format: serialization.PrivateFormat,
        encryption_algorithm: serialization.KeySerializationEncryption,
    ) -> bytes:
        _refuse("private_bytes()")


class HsmRsaSigner(_HsmKey, rsa.RSAPrivateKey):
    """An RSA private key held in the HSM."""

    _public: rsa.RSAPublicKey

    def __repr__(self) -> str:
        return f"<HsmRsaSigner label={self._raw.label!r} key_size={self.key_size}>"

    @property
    def key_size(self) -> int:
        return self._public.key_size

    def public_key(self) -> rsa.RSAPublicKey:
        return self._public

    def sign(
        self,
        data: bytes,
        padding: apadding.AsymmetricPadding,
        algorithm: Prehashed | hashes.HashAlgorithm | autils.NoDigestInfo,
    ) -> bytes:
        if _NO_DIGEST_INFO is not None and isinstance(algorithm, _NO_DIGEST_INFO):
            if not isinstance(padding, apadding.PKCS1v15):
                raise UnsupportedAlgorithm("NoDigestInfo needs PKCS#1 v1.5 padding")
            return self._raw.sign_raw(Mechanism.RSA_PKCS, bytes(data))
        if TYPE_CHECKING:
            assert not isinstance(algorithm, autils.NoDigestInfo)
        digest, hash_alg = _digest(data, algorithm)
        name = hash_alg.name
        if isinstance(padding, apadding.PKCS1v15):
            prefix = _DIGEST_INFO.get(name)
            if prefix is None:
                raise UnsupportedAlgorithm(f"PKCS#1 v1.5 with {name} is not supported")
            return self._raw.sign_raw(Mechanism.RSA_PKCS, prefix + digest)
        if isinstance(padding, apadding.PSS):
            return self._raw.sign_raw(
                Mechanism.RSA_PKCS_PSS, digest, self._pss_params(padding, hash_alg)
            )
        if isinstance(padding, apadding.AsymmetricPadding):
            raise UnsupportedAlgorithm(f"padding {padding.name} is not supported for signing")
        raise TypeError("padding must be an AsymmetricPadding instance")

    def _pss_params(
        self, padding: apadding.PSS, hash_alg: hashes.HashAlgorithm
    ) -> tuple[Mechanism, MGF, int]:
        mechs = _HASH_MECH.get(hash_alg.name)
        if mechs is None:
            raise UnsupportedAlgorithm(f"PSS with {hash_alg.name} is not supported")
        mgf = padding.mgf
        if not isinstance(mgf, apadding.MGF1):
            raise UnsupportedAlgorithm("PSS needs MGF1")
        mgf_mechs = _HASH_MECH.get(mgf._algorithm.name)
        if mgf_mechs is None:
            raise UnsupportedAlgorithm(f"MGF1 with {mgf._algorithm.name} is not supported")
        em_len = (self.key_size - 1 + 7) // 8
        max_salt = em_len - hash_alg.digest_size - 2
        salt = padding._salt_length
        if isinstance(salt, int):
            salt_len = salt
        elif salt is apadding.PSS.MAX_LENGTH:
            salt_len = max_salt
        elif salt is apadding.PSS.DIGEST_LENGTH:
            salt_len = hash_alg.digest_size
        else:
            raise ValueError("PSS salt length AUTO is only valid when verifying")
        if salt_len > max_salt:
            raise ValueError("PSS salt length is too long for this key")
        return mechs[0], mgf_mechs[1], salt_len

    def decrypt(self, ciphertext: bytes, padding: apadding.AsymmetricPadding) -> bytes:
        raise HsmError("HSM signing keys are not decryption keys (CKA_DECRYPT is false)")

    def private_numbers(self) -> rsa.RSAPrivateNumbers:
        _refuse("private_numbers()")


class HsmEcSigner(_HsmKey, ec.EllipticCurvePrivateKey):
    """An EC private key held in the HSM (ECDSA only)."""

    _public: ec.EllipticCurvePublicKey

    def __repr__(self) -> str:
        return f"<HsmEcSigner label={self._raw.label!r} curve={self.curve.name}>"

    @property
    def curve(self) -> ec.EllipticCurve:
        return self._public.curve

    @property
    def key_size(self) -> int:
        return self._public.curve.key_size

    def public_key(self) -> ec.EllipticCurvePublicKey:
        return self._public

    def sign(
        self,
        data: bytes | bytearray | memoryview,
        signature_algorithm: ec.EllipticCurveSignatureAlgorithm,
    ) -> bytes:
        if not isinstance(signature_algorithm, ec.ECDSA):
            raise UnsupportedAlgorithm("only ECDSA is supported")
        if signature_algorithm.deterministic_signing:
            raise UnsupportedAlgorithm("deterministic ECDSA (RFC 6979) is not supported by the HSM")
        digest, _ = _digest(data, signature_algorithm.algorithm)
        raw = self._raw.sign_raw(Mechanism.ECDSA, digest)
        half = len(raw) // 2
        r = int.from_bytes(raw[:half], "big")
        s = int.from_bytes(raw[half:], "big")
        return encode_dss_signature(r, s)

    def exchange(
        self, algorithm: ec.ECDH, peer_public_key: ec.EllipticCurvePublicKey
    ) -> bytes:
        raise HsmError("HSM signing keys are not key-agreement keys (CKA_DERIVE is false)")

    def private_numbers(self) -> ec.EllipticCurvePrivateNumbers:
        _refuse("private_numbers()")


HsmSigner = HsmRsaSigner | HsmEcSigner
