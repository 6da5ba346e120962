"""The key manager: keys generated and used inside the HSM, named by label or URI.

    with open_key_manager("pkcs11:token=mynacard-dev",
                          pin_source=PinSource.from_spec("env:MYNACARD_HSM_PIN")) as km:
        km.create_key("jpki-sign-root", kind=KeyKind.RSA_2048)
        signer = km.signer("jpki-sign-root")   # an rsa.RSAPrivateKey for cryptography

Keys are generated in the HSM as a pair sharing a label and a random CKA_ID; the
private half is CKA_TOKEN, CKA_PRIVATE, CKA_SENSITIVE, not CKA_EXTRACTABLE, and may only
sign. Nothing here ever returns private key material.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from typing import TYPE_CHECKING, Any, TypeVar

import pkcs11.exceptions as p11e
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from pkcs11 import Attribute, KeyType, Mechanism, MechanismFlag, ObjectClass
from pkcs11.util.ec import encode_named_curve_parameters

from hsm.errors import HsmError, KeyExists, KeyNotFound, UriError, translate
from hsm.mechanisms import TokenMechanisms
from hsm.module import Module, load_module
from hsm.pin_source import PinSource
from hsm.session import PooledSession, SessionPool
from hsm.signers import HsmEcSigner, HsmRsaSigner
from hsm.templates import private_key_template, public_key_template
from hsm.uri import Pkcs11Uri

if TYPE_CHECKING:
    from hsm.signing_process import SigningProcess

T = TypeVar("T")

_CURVES: dict[str, tuple[str, type[ec.EllipticCurve]]] = {
    "ec-p256": ("1.2.840.10045.3.1.7", ec.SECP256R1),
    "ec-p384": ("1.3.132.0.34", ec.SECP384R1),
}


class KeyKind(Enum):
    """Kinds of keys the key manager creates. `AES_128` only names secret keys (see derive)."""

    RSA_2048 = "rsa-2048"
    RSA_3072 = "rsa-3072"
    RSA_4096 = "rsa-4096"
    EC_P256 = "ec-p256"
    EC_P384 = "ec-p384"
    AES_128 = "aes-128"

    @classmethod
    def parse(cls, text: str) -> KeyKind:
        """`rsa-2048`, `RSA_2048`, `ec-p256`, … (case-insensitive)."""
        norm = text.strip().lower().replace("_", "-")
        for kind in cls:
            if kind.value == norm:
                return kind
        raise ValueError(f"unknown key kind {text!r}; one of {', '.join(k.value for k in cls)}")

    @property
    def is_rsa(self) -> bool:
        return self.value.startswith("rsa-")

    @property
    def is_ec(self) -> bool:
        return self.value.startswith("ec-")

    @property
    def bits(self) -> int:
        """RSA modulus size, EC field size or AES key size in bits."""
        return {"ec-p256": 256, "ec-p384": 384}.get(self.value) or int(self.value.split("-")[1])

    @property
    def ec_params(self) -> bytes:
        """DER-encoded named-curve parameters (CKA_EC_PARAMS) of an EC kind."""
        if not self.is_ec:
            raise ValueError(f"{self.value} is not an EC kind")
        return encode_named_curve_parameters(_CURVES[self.value][0])

    def curve(self) -> ec.EllipticCurve:
        if not self.is_ec:
            raise ValueError(f"{self.value} is not an EC kind")
        return _CURVES[self.value][1]()


@dataclass(frozen=True)
class KeyInfo:
    """What is public about a key: label, CKA_ID, kind and its `pkcs11:` URI."""

    label: str
    id: bytes
    kind: KeyKind
    uri: str

    def to_json(self) -> dict[str, str]:
        return {"label": self.label, "id": self.id.hex(), "kind": self.kind.value, "uri": self.uri}


def _unwrap_ec_point(raw: bytes, coord_len: int) -> bytes:
    """CKA_EC_POINT is a DER OCTET STRING per the spec; some modules give the bare point."""
    if len(raw) == 1 + 2 * coord_len:
        return raw
    if len(raw) >= 2 and raw[0] == 0x04:
        length, hdr = raw[1], 2
        if length & 0x80:
            nb = length & 0x7F
            length, hdr = int.from_bytes(raw[2 : 2 + nb], "big"), 2 + nb
        if hdr + length == len(raw):
            return raw[hdr:]
    raise HsmError("unexpected CKA_EC_POINT encoding")


def _kind_of(obj: Any) -> KeyKind | None:
    attrs = obj.get_attributes([Attribute.KEY_TYPE])
    key_type = attrs.get(Attribute.KEY_TYPE)
    if key_type == KeyType.RSA:
        modulus = obj[Attribute.MODULUS]
        bits = int.from_bytes(modulus, "big").bit_length()
        return {2048: KeyKind.RSA_2048, 3072: KeyKind.RSA_3072, 4096: KeyKind.RSA_4096}.get(bits)
    if key_type == KeyType.EC:
        params = obj[Attribute.EC_PARAMS]
        for kind in (KeyKind.EC_P256, KeyKind.EC_P384):
            if params == kind.ec_params:
                return kind
        return None
    if key_type == KeyType.AES:
        try:
            length = obj[Attribute.VALUE_LEN]
        except p11e.AttributeTypeInvalid:
            # opencryptoki 3.8 keeps no CKA_VALUE_LEN for an imported (C_CreateObject)
            # key; the center only ever makes AES-128 keys
            return KeyKind.AES_128
        return KeyKind.AES_128 if length == 16 else None
    return None


class _KeyRef:
    """A private key found by (CKA_ID, label), usable from any thread (a RawSigner)."""

    def __init__(self, pool: SessionPool, label: str, key_id: bytes) -> None:
        self.pool = pool
        self.label = label
        self.key_id = key_id

    def _obj(self, ps: PooledSession, object_class: ObjectClass) -> Any:
        cache_key = (int(object_class), self.key_id)
        obj = ps.objects.get(cache_key)
        if obj is None:
            obj = ps.session.get_key(object_class=object_class, id=self.key_id, label=self.label)
            ps.objects[cache_key] = obj
        return obj

    def sign_raw(self, mechanism: Mechanism, data: bytes, mechanism_param: Any = None) -> bytes:
        try:
            with self.pool.session() as ps:
                key = self._obj(ps, ObjectClass.PRIVATE_KEY)
                return bytes(key.sign(data, mechanism=mechanism, mechanism_param=mechanism_param))
        except p11e.PKCS11Error as exc:
            raise translate(exc, f"signing with key {self.label!r}") from None


class KeyManager:
    """Keys on one token. Thread-safe. Use as a context manager, or call `close()`."""

    def __init__(self, pool: SessionPool, *, module_path: str) -> None:
        self._pool = pool
        self._module_path = module_path
        self._create_lock = threading.Lock()
        self._signers: dict[tuple[str, bytes], HsmRsaSigner | HsmEcSigner] = {}

    def __repr__(self) -> str:
        return f"<KeyManager {self.uri}>"

    def __enter__(self) -> KeyManager:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the sessions; signers made by this manager stop working."""
        self._pool.close()

    @property
    def token_label(self) -> str:
        return self._pool.token_label

    @property
    def module_path(self) -> str:
        return self._module_path

    def signing_process(self) -> SigningProcess:
        """A child process with a session of its own on this token, logged in with the same
        PIN (`hsm.signing_process`): signatures that never wait for this process's GIL."""
        from hsm.signing_process import SigningProcess

        return SigningProcess(self.uri, self._pool.pin_source)

    @property
    def uri(self) -> str:
        """The token's URI (with module-path, without any PIN)."""
        return Pkcs11Uri(token=self.token_label, module_path=self._module_path).format()

    def key_uri(self, label: str, key_id: bytes, kind: KeyKind) -> str:
        return Pkcs11Uri(
            token=self.token_label,
            object=label,
            id=key_id,
            type="secret-key" if kind is KeyKind.AES_128 else "private",
            module_path=self._module_path,
        ).format()

    # -- internals shared with hsm.derive ------------------------------------------------

    def _run(self, what: str, fn: Callable[[PooledSession], T]) -> T:
        try:
            with self._pool.session() as ps:
                return fn(ps)
        except p11e.PKCS11Error as exc:
            raise translate(exc, what) from None

    def _selector(self, name: str) -> dict[Attribute, Any]:
        if not isinstance(name, str):
            raise TypeError("key name must be a label or a pkcs11: URI (str)")
        if name[:7].lower() != "pkcs11:":
            if not name:
                raise ValueError("key label must not be empty")
            return {Attribute.LABEL: name}
        uri = Pkcs11Uri.parse(name)
        if uri.token is not None and uri.token != self.token_label:
            raise KeyNotFound(f"key URI names token {uri.token!r}, not {self.token_label!r}")
        sel: dict[Attribute, Any] = {}
        if uri.object is not None:
            sel[Attribute.LABEL] = uri.object
        if uri.id is not None:
            sel[Attribute.ID] = uri.id
        if not sel:
            raise UriError("key URI must name an object or an id")
        return sel

    def _find(self, ps: PooledSession, name: str, classes: tuple[ObjectClass, ...]) -> Any:
        sel = self._selector(name)
        found: list[Any] = []
        for cls in classes:
            found.extend(ps.session.get_objects({**sel, Attribute.CLASS: cls}))
        if not found:
            raise KeyNotFound(f"key {name!r} not found on token {self.token_label!r}")
        if len(found) > 1:
            raise HsmError(f"key {name!r} is ambiguous on token {self.token_label!r}")
        return found[0]

    def _info(self, obj: Any) -> KeyInfo | None:
        kind = _kind_of(obj)
        if kind is None:
            return None
        label = str(obj[Attribute.LABEL])
        key_id = bytes(obj[Attribute.ID])
        return KeyInfo(label, key_id, kind, self.key_uri(label, key_id, kind))

    def _label_taken(self, ps: PooledSession, label: str) -> bool:
        return any(True for _ in ps.session.get_objects({Attribute.LABEL: label}))

    def _new_id(self) -> bytes:
        return os.urandom(16)

    # -- the interface ----------------------------------------------------------------------

    def create_key(self, label: str, kind: KeyKind = KeyKind.RSA_2048) -> KeyInfo:
        """Generate a key pair in the HSM. `KeyExists` if any object has this label."""
        if not isinstance(label, str):
            raise TypeError("label must be a str")
        if not label or len(label.encode()) > 128:
            raise ValueError("label must be 1 to 128 bytes")
        if not isinstance(kind, KeyKind):
            raise TypeError("kind must be a KeyKind")
        if kind is KeyKind.AES_128:
            raise ValueError("AES keys are made with hsm.derive.create_master_key")

        def gen(ps: PooledSession) -> KeyInfo:
            if self._label_taken(ps, label):
                raise KeyExists(f"a key labelled {label!r} exists on token {self.token_label!r}")
            key_id = self._new_id()
            caps = MechanismFlag.SIGN | MechanismFlag.VERIFY
            pub_t, priv_t = public_key_template(label, key_id), private_key_template(label, key_id)
            if kind.is_rsa:
                ps.session.generate_keypair(
                    KeyType.RSA, kind.bits, id=key_id, label=label, store=True,
                    capabilities=caps, public_template=pub_t, private_template=priv_t,
                )
            else:
                pub_t[Attribute.EC_PARAMS] = kind.ec_params
                ps.session.generate_keypair(
                    KeyType.EC, id=key_id, label=label, store=True, capabilities=caps,
                    mechanism=Mechanism.EC_KEY_PAIR_GEN,
                    public_template=pub_t, private_template=priv_t,
                )
            return KeyInfo(label, key_id, kind, self.key_uri(label, key_id, kind))

        with self._create_lock:
            return self._run(f"creating key {label!r}", gen)

    def mechanisms(self) -> TokenMechanisms:
        """What the token offers (C_GetMechanismList and C_GetMechanismInfo)."""
        return self._run("listing the token's mechanisms",
                         lambda ps: TokenMechanisms.of_slot(ps.session.token.slot))

    def find_key(self, name: str) -> KeyInfo:
        """The key with this label (or `pkcs11:` URI). `KeyNotFound` if none."""

        def find(ps: PooledSession) -> KeyInfo:
            obj = self._find(ps, name, (ObjectClass.PRIVATE_KEY, ObjectClass.SECRET_KEY))
            info = self._info(obj)
            if info is None:
                raise HsmError(f"key {name!r} is of a kind this key manager does not handle")
            return info

        return self._run(f"finding key {name!r}", find)

    def list_keys(self) -> list[KeyInfo]:
        """Every private and secret key on the token, by label: never any key material."""

        def scan(ps: PooledSession) -> list[KeyInfo]:
            out: list[KeyInfo] = []
            for cls in (ObjectClass.PRIVATE_KEY, ObjectClass.SECRET_KEY):
                for obj in ps.session.get_objects({Attribute.CLASS: cls}):
                    info = self._info(obj)
                    if info is not None:
                        out.append(info)
            return sorted(out, key=lambda k: (k.label, k.id))

        return self._run("listing keys", scan)

    def public_key(self, name: str) -> rsa.RSAPublicKey | ec.EllipticCurvePublicKey:
        """The public half of a key pair as a cryptography public key object."""

        def read(ps: PooledSession) -> rsa.RSAPublicKey | ec.EllipticCurvePublicKey:
            priv = self._find(ps, name, (ObjectClass.PRIVATE_KEY,))
            info = self._info(priv)
            if info is None:
                raise HsmError(f"key {name!r} is of a kind this key manager does not handle")
            pubs = list(
                ps.session.get_objects(
                    {Attribute.CLASS: ObjectClass.PUBLIC_KEY, Attribute.ID: info.id,
                     Attribute.LABEL: info.label}
                )
            )
            if info.kind.is_rsa:
                src = pubs[0] if pubs else priv
                n = int.from_bytes(src[Attribute.MODULUS], "big")
                e = int.from_bytes(src[Attribute.PUBLIC_EXPONENT], "big")
                return rsa.RSAPublicNumbers(e, n).public_key()
            if not pubs:
                raise KeyNotFound(f"public key of {name!r} not found on token {self.token_label!r}")
            curve = info.kind.curve()
            point = _unwrap_ec_point(bytes(pubs[0][Attribute.EC_POINT]), (curve.key_size + 7) // 8)
            return ec.EllipticCurvePublicKey.from_encoded_point(curve, point)

        return self._run(f"reading public key {name!r}", read)

    def signer(self, name: str) -> HsmRsaSigner | HsmEcSigner:
        """A cryptography private-key object whose `sign` runs in the HSM. Thread-safe."""
        info = self.find_key(name)
        if not (info.kind.is_rsa or info.kind.is_ec):
            raise HsmError(f"key {name!r} is not a signing key")
        cache_key = (info.label, info.id)
        cached = self._signers.get(cache_key)
        if cached is not None:
            return cached
        pub = self.public_key(info.uri)
        ref = _KeyRef(self._pool, info.label, info.id)
        signer: HsmRsaSigner | HsmEcSigner
        if isinstance(pub, rsa.RSAPublicKey):
            signer = HsmRsaSigner(ref, pub)
        else:
            signer = HsmEcSigner(ref, pub)
        self._signers[cache_key] = signer
        return signer


def open_key_manager(
    uri: str | Pkcs11Uri,
    *,
    pin_source: PinSource | None = None,
    module_path: str | None = None,
) -> KeyManager:
    """Open the token named by a `pkcs11:` URI and log in.

    The module is `module_path`, else the URI's `module-path`, else SoftHSM2. The PIN
    comes from `pin_source`, else the URI's `pin-source` (`file:…` or `env:…`). For
    SoftHSM2 the caller sets `SOFTHSM2_CONF` (see `hsm.softhsm.softhsm_env`).
    """
    parsed = Pkcs11Uri.parse(uri) if isinstance(uri, str) else uri
    if not isinstance(parsed, Pkcs11Uri):
        raise TypeError("uri must be a str or Pkcs11Uri")
    if pin_source is None:
        if parsed.pin_source is None:
            raise HsmError("no PIN source: pass pin_source= or put pin-source= in the URI")
        pin_source = PinSource.from_spec(parsed.pin_source)
    module: Module = load_module(module_path or parsed.module_path)
    pool = SessionPool(module, parsed.token, pin_source, token_serial=parsed.serial)
    return KeyManager(pool, module_path=module.path)
