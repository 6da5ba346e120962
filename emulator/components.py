"""What the emulator runs and where it finds it: pcscd, the vpcd driver, java, the bridge jar
and the loopback shim. A missing part is named with the package or build step that provides it."""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from emulator.errors import EmulatorError

SOCKET_ENV = "PCSCLITE_CSOCK_NAME"
BRIDGE_JAR_ENV = "MYNACARD_BRIDGE_JAR"
VPCD_DRIVER = Path("/usr/lib/pcsc/drivers/serial/libifdvpcd.so")
SYSTEM_DRIVER_DIR = Path("/usr/lib/pcsc/drivers")
SYSTEM_SOCKET_DIR = Path("/run/pcscd")
REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_BRIDGE_JAR = REPO_ROOT / "emulator" / "bridge" / "target" / "mynacard-bridge.jar"
LOOPBACK_SHIM = REPO_ROOT / "emulator" / "native" / "target" / "libloopback_bind.so"
LOOPBACK = "127.0.0.1"  # the only address card ports listen on
SETUP_HINT = ("run `make setup` in a checkout (an installed wheel carries the bridge and "
              "the library when it was built after `make setup`; set MYNACARD_BRIDGE_JAR "
              "to use another jar)")
JVM_OPTIONS = ("-XX:+UseSerialGC", "-Xmx192m", "-XX:+PerfDisableSharedMem")


@dataclass(frozen=True)
class Components:
    """Paths of everything the emulator runs."""

    pcscd: Path
    vpcd_driver: Path
    java: Path
    bridge_jar: Path
    unshare: Path | None
    loopback_shim: Path


def find_components(bridge_jar: Path | None = None) -> Components:
    """Locate pcscd, the vpcd driver, java and the bridge jar.

    EmulatorError names every missing part and how to get it.
    """
    missing: list[str] = []
    pcscd = shutil.which("pcscd")
    if pcscd is None and Path("/usr/sbin/pcscd").exists():  # sbin is not on every PATH
        pcscd = "/usr/sbin/pcscd"
    if pcscd is None:
        missing.append("pcscd (Debian package pcscd)")
    if not VPCD_DRIVER.exists():
        missing.append(f"the vpcd driver {VPCD_DRIVER} (Debian package vsmartcard-vpcd)")
    java = shutil.which("java")
    if java is None:
        missing.append("java (Debian package openjdk-17-jdk-headless)")
    jar = bridge_jar or Path(os.environ.get(BRIDGE_JAR_ENV) or DEFAULT_BRIDGE_JAR)
    if not jar.is_file():
        missing.append(f"the card bridge {jar} (built by Maven)")
    if not LOOPBACK_SHIM.is_file():
        missing.append(f"the loopback bind library {LOOPBACK_SHIM} (built by cc)")
    unshare = shutil.which("unshare")
    if missing:
        raise EmulatorError("emulator parts missing: " + "; ".join(missing) + f" — {SETUP_HINT}")
    assert pcscd is not None and java is not None
    return Components(Path(pcscd), VPCD_DRIVER, Path(java), jar,
                      Path(unshare) if unshare else None, LOOPBACK_SHIM)
