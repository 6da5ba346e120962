"""opencryptoki's software token, for tests and development on a second vendor's module.

opencryptoki keeps its configuration (/etc/opencryptoki/opencryptoki.conf) and token
store (/var/lib/opencryptoki/swtok) at fixed paths compiled into the library: there is no
per-directory configuration like SOFTHSM2_CONF, so a test cannot give each token a
directory of its own. Instead the one software token is *reset* before use (C_InitToken,
which destroys every object on it, then C_InitPIN as the SO). The slot daemon pkcsslotd
must run; `ensure_slot_daemon` starts it (as root, as the Debian package expects).

The reset runs in a child process (the PINs travel on its standard input, never on a
command line), after this process's own copy of the module, if idle, has been
re-initialised: opencryptoki refuses C_InitToken while any process holds a session.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from hsm.errors import HsmError, ModuleNotFound
from hsm.module import load_module
from hsm.uri import Pkcs11Uri

OPENCRYPTOKI_MODULE_CANDIDATES = (
    "/usr/lib/x86_64-linux-gnu/opencryptoki/libopencryptoki.so.0",
    "/usr/lib/aarch64-linux-gnu/opencryptoki/libopencryptoki.so.0",
    "/usr/lib/opencryptoki/libopencryptoki.so.0",
    "/usr/lib64/opencryptoki/libopencryptoki.so.0",
)
SLOT_DAEMON = "/usr/sbin/pkcsslotd"
SLOT_DAEMON_PID = Path("/var/run/pkcsslotd.pid")
SOFT_TOKEN_SLOT = 3  # the software token's slot in the Debian opencryptoki.conf
DEFAULT_SO_PIN = "87654321"  # the soft token's SO PIN as shipped (PINs are 4 to 8 bytes)


def module_path() -> str:
    for candidate in OPENCRYPTOKI_MODULE_CANDIDATES:
        if os.path.exists(candidate):
            return candidate
    raise ModuleNotFound("opencryptoki is not installed (Debian package opencryptoki)")


def _daemon_running() -> bool:
    try:
        pid = int(SLOT_DAEMON_PID.read_text().strip())
        os.kill(pid, 0)
    except (OSError, ValueError):
        return False
    return Path(f"/proc/{pid}/exe").resolve().name == "pkcsslotd"


def ensure_slot_daemon(timeout: float = 10.0) -> None:
    """Start pkcsslotd unless it runs (it daemonises itself and writes its pid file)."""
    if _daemon_running():
        return
    if not os.path.exists(SLOT_DAEMON):
        raise ModuleNotFound(f"{SLOT_DAEMON} is missing (Debian package opencryptoki)")
    run = subprocess.run([SLOT_DAEMON], capture_output=True, timeout=timeout, check=False)
    deadline = time.monotonic() + timeout
    while not _daemon_running():
        if time.monotonic() > deadline:
            raise HsmError(f"pkcsslotd did not start (exit {run.returncode}): "
                           f"{run.stderr.decode(errors='replace').strip()[:200]}")
        time.sleep(0.1)


_RESET = r"""
import ctypes, sys
lib = ctypes.CDLL(sys.argv[1]); slot = int(sys.argv[2]); label = sys.argv[3].encode()
so, user = sys.stdin.read().split("\n")[:2]
so, user = so.encode(), user.encode()
U = ctypes.c_ulong
def ok(rv, what):
    if rv != 0:
        print(f"{what} returned 0x{rv:x}", file=sys.stderr); sys.exit(1)
ok(lib.C_Initialize(None), "C_Initialize")
ok(lib.C_InitToken(U(slot), so, U(len(so)), label.ljust(32, b" ")), "C_InitToken")
h = U()
ok(lib.C_OpenSession(U(slot), U(6), None, None, ctypes.byref(h)), "C_OpenSession")
ok(lib.C_Login(h, U(0), so, U(len(so))), "C_Login (SO)")
ok(lib.C_InitPIN(h, user, U(len(user))), "C_InitPIN")
ok(lib.C_Logout(h), "C_Logout")
ok(lib.C_CloseSession(h), "C_CloseSession")
ok(lib.C_Finalize(None), "C_Finalize")
"""


def reset_token(label: str, user_pin: str, *, so_pin: str = DEFAULT_SO_PIN,
                slot: int = SOFT_TOKEN_SLOT) -> str:
    """Wipe the software token, name it `label`, set the user PIN; its `pkcs11:` URI.

    Every object on the token is destroyed: for tests and development only."""
    for what, pin in (("SO PIN", so_pin), ("user PIN", user_pin)):
        if not 4 <= len(pin.encode()) <= 8 or "\n" in pin:
            raise ValueError(f"opencryptoki's {what} must be 4 to 8 bytes")
    if not label or len(label.encode()) > 32:
        raise ValueError("token label must be 1 to 32 bytes")
    path = module_path()
    ensure_slot_daemon()
    # opencryptoki refuses C_InitToken while any session is open, ours included (a login
    # session kept for reuse, one left by a refused login): close them all first.
    module = load_module(path)
    try:
        module.retarget(None)  # C_Finalize + C_Initialize; refused while key managers are open
    except HsmError as exc:
        raise HsmError(f"cannot reset the opencryptoki token: {exc}") from None
    run = subprocess.run([sys.executable, "-c", _RESET, path, str(slot), label],
                         input=f"{so_pin}\n{user_pin}\n".encode(), capture_output=True,
                         timeout=60, check=False)
    if run.returncode != 0:
        raise HsmError(f"resetting opencryptoki token in slot {slot}: "
                       f"{run.stderr.decode(errors='replace').strip()[-200:]}")
    return Pkcs11Uri(token=label, module_path=path).format()
