"""One PKCS#11 library per process: loaded once, cached by path, re-initialised after fork.

The library is initialised with CKF_OS_LOCKING_OK (python-pkcs11 passes NULL to
C_Initialize, which tells a module such as SoftHSM2 that it will never be called from
two threads at once), so sessions on separate threads really run in parallel. If the
module does not export C_Initialize for that, every call is serialised instead.

PKCS#11 state does not survive `fork()`: a child must call `C_Initialize` again and
open new sessions. `Module.current()` notices a new process id (and an at-fork hook
resets the locks) and re-initialises the library before handing it out; every session
opened before carries the old *generation* and is dropped by the session pool.

SoftHSM2 reads `SOFTHSM2_CONF` once, when it is initialised. `load_module` therefore
caches SoftHSM2 by (path, `SOFTHSM2_CONF`): when the variable changes and the loaded
instance is idle (no key manager open) it is re-initialised with the new configuration;
when key managers are still open on it, a private copy of the library is loaded for the
new configuration, so both keep working side by side (tests that give each test its
own token directory, next to a session-wide one).
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import os
import shutil
import tempfile
import threading
import weakref
from pathlib import Path
from typing import Any

import pkcs11
import pkcs11.exceptions as p11e

from hsm.errors import HsmError, ModuleNotFound, TokenNotFound, translate

SOFTHSM2_CONF_ENV = "SOFTHSM2_CONF"
SOFTHSM_MODULE_CANDIDATES = (
    "/usr/lib/softhsm/libsofthsm2.so",
    "/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so",
    "/usr/lib/aarch64-linux-gnu/softhsm/libsofthsm2.so",
    "/usr/local/lib/softhsm/libsofthsm2.so",
    "/opt/homebrew/lib/softhsm/libsofthsm2.so",
)


_CKF_OS_LOCKING_OK = 0x2
_CKR_CRYPTOKI_ALREADY_INITIALIZED = 0x191


class _InitArgs(ctypes.Structure):
    _fields_ = [
        ("CreateMutex", ctypes.c_void_p),
        ("DestroyMutex", ctypes.c_void_p),
        ("LockMutex", ctypes.c_void_p),
        ("UnlockMutex", ctypes.c_void_p),
        ("flags", ctypes.c_ulong),
        ("pReserved", ctypes.c_void_p),
    ]


def default_module_path() -> str:
    """The SoftHSM2 module of this machine (the first candidate that exists)."""
    for candidate in SOFTHSM_MODULE_CANDIDATES:
        if os.path.exists(candidate):
            return candidate
    return SOFTHSM_MODULE_CANDIDATES[0]


class Module:
    """A loaded PKCS#11 library. Get one with `load_module`; never construct directly."""

    def __init__(self, path: str, *, load_path: str | None = None) -> None:
        self.path = path  # as named by the caller (what URIs show)
        self.load_path = load_path or path  # the file actually loaded (maybe a private copy)
        self._lock = threading.RLock()
        self._pid = os.getpid()
        self._generation = 0
        self._users = 0
        self.logins: dict[Any, Any] = {}  # owned by hsm.session, guarded by `lock`
        self.is_softhsm = "softhsm" in Path(path).name.lower()
        self._conf = os.environ.get(SOFTHSM2_CONF_ENV)
        try:
            self._lib = pkcs11.lib(self.load_path)
        except p11e.PKCS11Error as exc:
            hint = self._conf_hint(self._conf)
            raise translate(exc, f"cannot initialise PKCS#11 module {path}{hint}") from None
        except Exception as exc:  # dlopen failures surface as various exceptions
            raise ModuleNotFound(f"cannot load PKCS#11 module {path}: {exc}") from None
        self._c_init: Any = None
        self._c_final: Any = None
        self._needs_init = False
        self.threadsafe = self._switch_to_os_locking()

    def _switch_to_os_locking(self) -> bool:
        """Re-initialise with CKF_OS_LOCKING_OK through the module's exported functions."""
        try:
            cdll = ctypes.CDLL(self.load_path)
            c_init, c_final = cdll.C_Initialize, cdll.C_Finalize
        except (OSError, AttributeError):
            return False
        c_init.argtypes, c_init.restype = [ctypes.c_void_p], ctypes.c_ulong
        c_final.argtypes, c_final.restype = [ctypes.c_void_p], ctypes.c_ulong
        try:
            self._lib.finalize()
        except p11e.PKCS11Error:
            return False
        args = _InitArgs(None, None, None, None, _CKF_OS_LOCKING_OK, None)
        if c_init(ctypes.byref(args)) != 0:
            self._lib.initialize()  # the module refuses OS locking: serialise instead
            return False
        self._c_init, self._c_final = c_init, c_final
        return True

    def serial(self) -> contextlib.AbstractContextManager[Any]:
        """Hold this while calling into a module that is not thread-safe (else no-op)."""
        return contextlib.nullcontext() if self.threadsafe else self._lock

    def __repr__(self) -> str:
        return f"<hsm.Module {self.path} generation={self._generation}>"

    @property
    def lock(self) -> threading.RLock:
        return self._lock

    @property
    def generation(self) -> int:
        return self._generation

    def _conf_hint(self, conf: str | None) -> str:
        if not self.is_softhsm:
            return ""
        return f"; check {SOFTHSM2_CONF_ENV}={conf}" if conf else f"; {SOFTHSM2_CONF_ENV} is unset"

    @property
    def conf(self) -> str | None:
        """The `SOFTHSM2_CONF` this instance was initialised with (SoftHSM2 only)."""
        return self._conf

    @property
    def users(self) -> int:
        return self._users

    def _reinitialise(self, conf: str | None) -> None:
        """C_Finalize + C_Initialize; for SoftHSM2 with `conf` as SOFTHSM2_CONF."""
        # After fork the inherited state may refuse C_Finalize; initialise anyway.
        self._needs_init = True
        if self.threadsafe:
            self._c_final(None)
        else:
            try:
                self._lib.finalize()
            except p11e.PKCS11Error:
                pass
        saved = os.environ.get(SOFTHSM2_CONF_ENV)
        target = conf
        try:
            if self.is_softhsm:  # SoftHSM2 reads it in C_Initialize
                if target is None:
                    os.environ.pop(SOFTHSM2_CONF_ENV, None)
                else:
                    os.environ[SOFTHSM2_CONF_ENV] = target
            if self.threadsafe:
                args = _InitArgs(None, None, None, None, _CKF_OS_LOCKING_OK, None)
                rv = self._c_init(ctypes.byref(args))
                if rv not in (0, _CKR_CRYPTOKI_ALREADY_INITIALIZED):
                    raise HsmError(
                        f"cannot initialise PKCS#11 module {self.path} (CKR 0x{rv:x})"
                        + self._conf_hint(target)
                    )
            else:
                self._lib.initialize()
        except p11e.PKCS11Error as exc:
            raise translate(
                exc, f"cannot initialise PKCS#11 module {self.path}{self._conf_hint(target)}"
            ) from None
        finally:
            if self.is_softhsm:
                if saved is None:
                    os.environ.pop(SOFTHSM2_CONF_ENV, None)
                else:
                    os.environ[SOFTHSM2_CONF_ENV] = saved
        self._conf = target
        self._needs_init = False
        self._generation += 1
        self.logins.clear()

    def retarget(self, conf: str | None) -> None:
        """Re-initialise an idle SoftHSM2 instance with another configuration."""
        with self._lock:
            if self._users:
                raise HsmError("cannot re-configure a module with open key managers")
            self._reinitialise(conf)

    def current(self) -> tuple[Any, int]:
        """The python-pkcs11 library object, valid in this process, and its generation."""
        with self._lock:
            if os.getpid() != self._pid:
                self._pid = os.getpid()
                self._users = 0
                self._reinitialise(self._conf)
            elif self._needs_init:  # an earlier re-initialisation failed: try again
                self._reinitialise(self._conf)
            return self._lib, self._generation

    def add_user(self) -> None:
        with self._lock:
            self._users += 1

    def remove_user(self) -> None:
        with self._lock:
            self._users = max(0, self._users - 1)

    def token(self, label: str | None = None, *, serial: str | None = None) -> Any:
        """The python-pkcs11 Token with this label (and/or serial). `TokenNotFound` if none."""
        lib, _ = self.current()
        kwargs: dict[str, Any] = {}
        if label is not None:
            kwargs["token_label"] = label
        if serial is not None:
            kwargs["token_serial"] = serial.encode()
        what = f"token {label!r}" if label is not None else f"token with serial {serial!r}"
        try:
            tokens = list(lib.get_tokens(**kwargs))
        except p11e.PKCS11Error as exc:
            raise translate(exc, f"listing tokens of {self.path}") from None
        tokens = [t for t in tokens if t.flags & pkcs11.TokenFlag.TOKEN_INITIALIZED]
        if not tokens:
            raise TokenNotFound(f"{what} not found in {self.path}")
        if len(tokens) > 1:
            raise TokenNotFound(f"{what} is ambiguous in {self.path}: {len(tokens)} tokens match")
        return tokens[0]

    def token_labels(self) -> list[str]:
        """Labels of the initialised tokens present."""
        lib, _ = self.current()
        try:
            return [
                t.label
                for t in lib.get_tokens()
                if t.flags & pkcs11.TokenFlag.TOKEN_INITIALIZED
            ]
        except p11e.PKCS11Error as exc:
            raise translate(exc, f"listing tokens of {self.path}") from None


_registry_lock = threading.Lock()
_modules: dict[str, list[Module]] = {}
_all_modules: weakref.WeakSet[Module] = weakref.WeakSet()
_copies_dir: str | None = None


def _remove_copies(directory: str, owner: int) -> None:
    if os.getpid() == owner:  # not in a forked child that exits normally
        shutil.rmtree(directory, ignore_errors=True)


def _private_copy(real: str) -> str:
    """A copy of a library file, so that dlopen() gives a separate instance."""
    global _copies_dir
    if _copies_dir is None:
        _copies_dir = tempfile.mkdtemp(prefix="mynacard-p11-")
        atexit.register(_remove_copies, _copies_dir, os.getpid())
    n = sum(len(v) for v in _modules.values())
    target = os.path.join(_copies_dir, f"{n}-{os.path.basename(real)}")
    shutil.copy2(real, target)
    return target


def load_module(path: str | os.PathLike[str] | None = None) -> Module:
    """The process-wide `Module` for a library path (default: SoftHSM2).

    For SoftHSM2 the instance also matches the current `SOFTHSM2_CONF` (see above).
    """
    raw = os.fspath(path) if path is not None else default_module_path()
    if not os.path.isfile(raw):
        raise ModuleNotFound(f"PKCS#11 module not found: {raw}")
    real = os.path.realpath(raw)
    conf = os.environ.get(SOFTHSM2_CONF_ENV)
    with _registry_lock:
        instances = _modules.setdefault(real, [])
        for module in instances:
            if not module.is_softhsm or module.conf == conf:
                return module
        for module in instances:
            with module.lock:
                if module.users == 0 and module._pid == os.getpid():
                    module.retarget(conf)
                    return module
        load_path = raw if not instances else _private_copy(real)
        module = Module(raw, load_path=load_path)
        instances.append(module)
        _all_modules.add(module)
        return module


def _after_fork_in_child() -> None:
    global _registry_lock
    _registry_lock = threading.Lock()
    for module in list(_all_modules):
        module._lock = threading.RLock()


os.register_at_fork(after_in_child=_after_fork_in_child)
