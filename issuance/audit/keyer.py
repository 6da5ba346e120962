"""Who keys the audit chain: an HMAC over each entry's hash, made in the HSM.

The plain SHA-256 chain finds an edit, but whoever can write the database can also
recompute every hash after one (re-chaining) or append an entry of their own. Each
entry therefore also carries `mac` = HMAC-SHA256(audit key, entry hash): the key is a
generic secret in the center's HSM token (label `audit-mac`, sensitive, not
extractable, sign/verify only), made by `mynacard center init`.

A `Keyer` is anything that makes and checks those MACs. The CLI always uses the
center's HSM key (`center_keyer`); pure unit tests of the log pin a `SoftwareKeyer`.
The root command installs the keyer for the whole command (`keyed_by`), so every
entry written during it -- by the root command or by the workflow's own
`append_entry` calls -- is keyed without each caller passing it along.

Entries written before the center has an audit key (`hsm init`, `ca init`,
`registry load` before `center init`, or a log from before schema version 2) carry no
MAC. The first keyed entry covers them: its MAC is over its hash, which chains every
entry before it. After the first keyed entry every entry must be keyed.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Protocol

from issuance.errors import IssuanceError

AUDIT_KEY_LABEL = "audit-mac"


class KeyerError(IssuanceError):
    """The audit key could not be opened or used."""


class Keyer(Protocol):
    """Makes and checks the MAC of an entry hash."""

    name: str

    def mac(self, data: bytes) -> bytes: ...

    def check(self, data: bytes, mac: bytes) -> bool: ...


class SoftwareKeyer:
    """HMAC-SHA256 with a key held in memory: for unit tests of the log only."""

    def __init__(self, key: bytes, name: str = "software") -> None:
        if len(key) < 16:
            raise ValueError("an HMAC key needs at least 16 bytes")
        self._key = key
        self.name = name

    def __repr__(self) -> str:
        return f"<SoftwareKeyer {self.name!r}>"  # never the key

    def mac(self, data: bytes) -> bytes:
        return hmac.new(self._key, data, hashlib.sha256).digest()

    def check(self, data: bytes, mac: bytes) -> bool:
        return hmac.compare_digest(self.mac(data), mac)


class HsmKeyer:
    """CKM_SHA256_HMAC with the audit key inside the HSM; the key never leaves it."""

    def __init__(self, mac: Any, *, owns: Any = None) -> None:
        self._mac = mac  # hsm.mac.HsmMac
        self._owns = owns
        self.name = f"hsm:{mac.label}"

    def __repr__(self) -> str:
        return f"<HsmKeyer {self.name!r}>"

    def mac(self, data: bytes) -> bytes:
        return bytes(self._mac.mac(data))

    def check(self, data: bytes, mac: bytes) -> bool:
        return bool(self._mac.verify(data, mac))

    def close(self) -> None:
        if self._owns is not None:
            self._owns.close()
            self._owns = None


def ensure_audit_key(km: Any, label: str = AUDIT_KEY_LABEL) -> bool:
    """Create the audit key on the token of `km` unless it is there; True if created."""
    from hsm.mac import create_mac_key

    return create_mac_key(km, label)


def center_keyer(home: Path, *, create: bool = True) -> HsmKeyer | None:
    """The keyer of the center set up in `home`, or None when there is no center yet.

    A center made before the audit key existed gets it here (`create`, for commands
    that record), on its own token: the first keyed entry then covers every earlier
    one. Without `create` (read-only commands) a missing key means no keyer.
    """
    from hsm import HsmError, PinSource, open_key_manager
    from hsm.mac import HsmMac, has_mac_key
    from hsm.softhsm import use_softhsm
    from issuance.workflow.center import CONFIG_NAME, CenterConfig

    if not (Path(home) / CONFIG_NAME).exists():
        return None
    config = CenterConfig.load(home)
    try:
        if config.softhsm:
            use_softhsm(Path(home))
        km = open_key_manager(config.token_uri, pin_source=PinSource.from_spec(config.pin_source))
    except HsmError as exc:
        raise KeyerError(f"cannot open the center's HSM for the audit key: {exc}") from None
    try:
        if create:
            ensure_audit_key(km)
        elif not has_mac_key(km, AUDIT_KEY_LABEL):
            km.close()
            return None
        return HsmKeyer(HsmMac(km, AUDIT_KEY_LABEL), owns=km)
    except HsmError as exc:
        km.close()
        raise KeyerError(f"the audit key {AUDIT_KEY_LABEL!r}: {exc}") from None
    except BaseException:
        km.close()
        raise


class LazyCenterKeyer:
    """The center's keyer, opened on first use (so `center init` can make it first).

    Before there is a center it keys nothing (`available` is False) and entries are
    written without a MAC.
    """

    name = "center"

    def __init__(self, home: Path, *, create: bool = True) -> None:
        self.home = Path(home)
        self.create = create
        self._keyer: HsmKeyer | None = None

    def resolve(self) -> HsmKeyer | None:
        if self._keyer is None:
            # None again until a center exists
            self._keyer = center_keyer(self.home, create=self.create)
        return self._keyer

    @property
    def available(self) -> bool:
        return self.resolve() is not None

    def mac(self, data: bytes) -> bytes:
        keyer = self.resolve()
        if keyer is None:
            raise KeyerError("no audit key: the center is not set up")
        return keyer.mac(data)

    def check(self, data: bytes, mac: bytes) -> bool:
        keyer = self.resolve()
        if keyer is None:
            raise KeyerError("no audit key: the center is not set up")
        return keyer.check(data, mac)

    def close(self) -> None:
        if self._keyer is not None:
            self._keyer.close()
            self._keyer = None


_current: Keyer | None = None


def current_keyer() -> Keyer | None:
    """The keyer installed for the running command, if any."""
    return _current


def keyer_available(keyer: Keyer | None) -> Keyer | None:
    """`keyer` if it can key now (a lazy center keyer without a center cannot)."""
    if keyer is None:
        return None
    if isinstance(keyer, LazyCenterKeyer):
        return keyer if keyer.available else None
    return keyer


@contextmanager
def keyed_by(keyer: Keyer | None) -> Iterator[Keyer | None]:
    """Install `keyer` for every entry written inside the block (and restore after)."""
    global _current
    before = _current
    _current = keyer
    try:
        yield keyer
    finally:
        _current = before
