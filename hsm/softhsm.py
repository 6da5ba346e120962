"""SoftHSM2 tokens for development and tests, kept under the state directory.

`init_token(home, label, so_pin, user_pin)` writes `home/hsm/softhsm2.conf` (tokens in
`home/hsm/tokens/`), points `SOFTHSM2_CONF` of this process at it and creates the
token. Any other process that uses these tokens needs the same variable: run it with
`env.update(softhsm_env(home))`.

The token is initialised through PKCS#11 (`C_InitToken`, then `C_InitPIN` as the SO),
not with `softhsm2-util`, so that no PIN ever appears on a command line.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
from pathlib import Path

import pkcs11
import pkcs11.exceptions as p11e

from hsm.errors import HsmError, PinIncorrect, TokenExists, translate
from hsm.files import OutputExists, private_dir, write_file
from hsm.module import SOFTHSM2_CONF_ENV, default_module_path, load_module
from hsm.uri import Pkcs11Uri

CONF_NAME = "softhsm2.conf"
_CKR_OK = 0
_CKR_PIN_LEN_RANGE = 0xA2
_CKR_PIN_INCORRECT = 0xA0


def softhsm_dir(home: Path) -> Path:
    """`home/hsm`: where the SoftHSM2 configuration and tokens of a state directory live."""
    return Path(home) / "hsm"


def softhsm_conf_path(home: Path) -> Path:
    return softhsm_dir(home) / CONF_NAME


def ensure_softhsm_config(home: Path) -> Path:
    """Create `home/hsm/softhsm2.conf` and `home/hsm/tokens/` (0700) if missing. `HsmError`
    when `home/hsm` or its `tokens` is a symlink (the tokens, the CA's key among them,
    would be kept wherever it points) or not a directory."""
    base = softhsm_dir(home)
    tokens = base / "tokens"
    for d in (base, tokens):
        try:
            private_dir(d)  # 0700, never through a symlink
        except NotADirectoryError:
            raise HsmError(f"{d} is a symlink or not a directory: refusing to keep SoftHSM2 "
                           "tokens there (remove it; the tokens live in the home)") from None
    conf = base / CONF_NAME
    if not os.path.lexists(conf):
        # created exclusively, 0600: a symlink planted there is never followed
        with contextlib.suppress(OutputExists):  # made meanwhile by another process
            write_file(conf,
                       "# SoftHSM2 configuration written by mynacard (hsm.softhsm)\n"
                       f"directories.tokendir = {tokens.resolve()}\n"
                       "objectstore.backend = file\n"
                       "log.level = ERROR\n"
                       "slots.removable = false\n"
                       "slots.mechanisms = ALL\n"
                       "library.reset_on_fork = false\n")
    return conf


def softhsm_env(home: Path) -> dict[str, str]:
    """The environment a process needs to see this state directory's SoftHSM2 tokens."""
    return {SOFTHSM2_CONF_ENV: str(ensure_softhsm_config(home).resolve())}


def use_softhsm(home: Path) -> Path:
    """Point this process's `SOFTHSM2_CONF` at the state directory's configuration."""
    conf = ensure_softhsm_config(home).resolve()
    os.environ[SOFTHSM2_CONF_ENV] = str(conf)
    return conf


def _check_pin(pin: str, what: str) -> bytes:
    if not isinstance(pin, str):
        raise TypeError(f"{what} must be a str")
    raw = pin.encode("utf-8")
    if not 4 <= len(raw) <= 255:
        raise ValueError(f"{what} must be 4 to 255 bytes long")
    return raw


def _label_bytes(label: str) -> bytes:
    if not isinstance(label, str):
        raise TypeError("token label must be a str")
    raw = label.encode("utf-8")
    if not label or len(raw) > 32 or label != label.strip():
        raise ValueError("token label must be 1 to 32 bytes without leading or trailing spaces")
    return raw.ljust(32, b" ")


def init_token(
    home: Path,
    label: str,
    so_pin: str,
    user_pin: str,
    *,
    module_path: str | None = None,
) -> str:
    """Create a SoftHSM2 token under `home/hsm` and return its `pkcs11:` URI.

    Sets `SOFTHSM2_CONF` for this process. `TokenExists` if the label is taken.
    """
    padded_label = _label_bytes(label)
    so_raw = _check_pin(so_pin, "SO PIN")
    user_raw = _check_pin(user_pin, "user PIN")
    del user_raw
    use_softhsm(Path(home))
    module = load_module(module_path or default_module_path())
    with module.lock:
        lib, _ = module.current()
        if label in module.token_labels():
            raise TokenExists(f"token {label!r} already exists; refusing to re-create it")
        free = None
        for slot in lib.get_slots(token_present=True):
            token = slot.get_token()
            if not token.flags & pkcs11.TokenFlag.TOKEN_INITIALIZED:
                free = slot
                break
        if free is None:
            raise HsmError("no free slot to initialise a token in")
        cdll = ctypes.CDLL(module.load_path)
        c_init = cdll.C_InitToken
        c_init.argtypes = [ctypes.c_ulong, ctypes.c_char_p, ctypes.c_ulong, ctypes.c_char_p]
        c_init.restype = ctypes.c_ulong
        rv = c_init(free.slot_id, so_raw, len(so_raw), padded_label)
        if rv == _CKR_PIN_INCORRECT:
            raise PinIncorrect(f"initialising token {label!r}: SO PIN incorrect")
        if rv == _CKR_PIN_LEN_RANGE:
            raise PinIncorrect(f"initialising token {label!r}: SO PIN length out of range")
        if rv != _CKR_OK:
            raise HsmError(f"initialising token {label!r}: C_InitToken returned 0x{rv:x}")
        token = module.token(label)
        try:
            with token.open(rw=True, so_pin=so_pin) as session:
                session.init_pin(user_pin)
        except p11e.PKCS11Error as exc:
            raise translate(exc, f"setting the user PIN of token {label!r}") from None
    return Pkcs11Uri(token=label, module_path=module.path).format()
