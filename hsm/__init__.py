"""Key management over PKCS#11: keys that never leave the HSM, named by pkcs11: URIs.

    from hsm import open_key_manager, KeyKind, PinSource
    with open_key_manager("pkcs11:token=mynacard-dev",
                          pin_source=PinSource.from_spec("env:MYNACARD_HSM_PIN")) as km:
        km.create_key("jpki-sign-root", kind=KeyKind.RSA_2048)
        signer = km.signer("jpki-sign-root")   # plugs into cryptography's builders
"""

# Registers the CKA_ALLOWED_MECHANISMS packer before any session exists.
import hsm.derive  # noqa: E402,F401,I001
from hsm.errors import (
    DeviceError,
    HsmError,
    KeyExists,
    KeyNotExportable,
    KeyNotFound,
    ModuleNotFound,
    NotLoggedIn,
    PinIncorrect,
    PinLocked,
    PinSourceError,
    TokenExists,
    TokenNotFound,
    UnsupportedAlgorithm,
    UriError,
)
from hsm.keys import KeyInfo, KeyKind, KeyManager, open_key_manager
from hsm.module import default_module_path
from hsm.pin_source import PinSource
from hsm.signers import HsmEcSigner, HsmRsaSigner, HsmSigner
from hsm.uri import Pkcs11Uri, format_uri, parse_uri

__all__ = [
    "DeviceError",
    "HsmEcSigner",
    "HsmError",
    "HsmRsaSigner",
    "HsmSigner",
    "KeyExists",
    "KeyInfo",
    "KeyKind",
    "KeyManager",
    "KeyNotExportable",
    "KeyNotFound",
    "ModuleNotFound",
    "NotLoggedIn",
    "PinIncorrect",
    "PinLocked",
    "PinSource",
    "PinSourceError",
    "Pkcs11Uri",
    "TokenExists",
    "TokenNotFound",
    "UnsupportedAlgorithm",
    "UriError",
    "default_module_path",
    "format_uri",
    "open_key_manager",
    "parse_uri",
]
