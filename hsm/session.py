"""Sessions on one token: a small pool, one session per thread at a time.

A PKCS#11 login belongs to the application, not to a session: the pool logs in once
on a dedicated *login session* (kept open, shared by every pool on the same token in
this process, reference-counted) and opens its working sessions without a PIN; they
inherit the login. `CKR_USER_ALREADY_LOGGED_IN` counts as success. Working sessions are
borrowed with `pool.session()` (a context manager) and returned afterwards, so
several threads sign at once on separate sessions. Each thread keeps the session it
borrowed pinned to itself (up to `max_idle` threads), so a thread's next call reuses it,
and the object handles cached on it, without touching the shared pool; a nested borrow
in the same thread gets a session of its own from the pool. After `fork()` the pool notices
the module's new generation, forgets the inherited sessions (without closing them:
their handles belong to the parent) and logs in again, reading the PIN afresh.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import threading
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import pkcs11.exceptions as p11e

from hsm.errors import HsmError, PinIncorrect, translate
from hsm.module import Module
from hsm.pin_source import PinSource


@dataclass
class _Login:
    session: Any | None  # our login session, or None if someone else logged in
    salt: bytes
    digest: bytes
    refs: int = 1


def _pin_digest(salt: bytes, pin: str) -> bytes:
    return hashlib.sha256(salt + pin.encode("utf-8")).digest()


@dataclass(eq=False)  # identity: a session is itself, whatever its cache holds
class PooledSession:
    """A borrowed session and its cache of object handles (by class and CKA_ID)."""

    session: Any
    generation: int
    objects: dict[tuple[int, bytes], Any] = field(default_factory=dict)
    in_use: bool = False  # a thread's pinned session is being used (nested borrows)


class SessionPool:
    """Sessions on one token, logged in as the user. Thread-safe; close when done."""

    def __init__(
        self,
        module: Module,
        token_label: str | None,
        pin_source: PinSource,
        *,
        token_serial: str | None = None,
        max_idle: int = 32,
    ) -> None:
        if not isinstance(pin_source, PinSource):
            raise TypeError("pin_source must be a PinSource")
        self.module = module
        self._label = token_label
        self._serial = token_serial
        self._pin_source = pin_source
        self._max_idle = max_idle
        self._lock = threading.Lock()
        self._idle: list[PooledSession] = []
        self._local = threading.local()  # .ps: this thread's pinned PooledSession
        # every pinned session and its thread: closed with the pool, reclaimed when the
        # thread has ended and room is needed
        self._pinned: dict[PooledSession, threading.Thread] = {}
        self._generation = -1
        self._token: Any = None
        self._login_key: tuple[bytes, str] | None = None
        self._closed = False
        _pools.add(self)
        self._ensure()  # fail now on a missing token or a wrong PIN

    @property
    def pin_source(self) -> PinSource:
        """Where the PIN comes from (a `prompt` source asks once and keeps the answer)."""
        return self._pin_source

    @property
    def token_label(self) -> str:
        return str(self._token.label) if self._token is not None else (self._label or "")

    @property
    def closed(self) -> bool:
        return self._closed

    def _ensure(self) -> tuple[Any, int]:
        module = self.module
        if self._generation == module.generation and _pid_of(module) == os.getpid():
            return self._token, self._generation  # fast path: nothing changed
        _, gen = self.module.current()
        with self._lock:
            if gen == self._generation:
                return self._token, gen
        with self.module.lock:
            _, gen = self.module.current()
            with self._lock:
                if gen == self._generation:
                    return self._token, gen
                if self._closed:
                    raise HsmError("key manager is closed")
                self._idle.clear()  # sessions of an older generation: forget, never close
                self._pinned.clear()
            token = self.module.token(self._label, serial=self._serial)
            key = (bytes(token.serial), str(token.label))
            self._login(token, key)
            self.module.add_user()
            with self._lock:
                self._token = token
                self._login_key = key
                self._generation = gen
            return token, gen

    def _login(self, token: Any, key: tuple[bytes, str]) -> None:
        # Called with the module lock held.
        where = f"token {token.label!r}"
        pin = self._pin_source.read()
        entry: _Login | None = self.module.logins.get(key)
        if entry is not None:
            if not hmac.compare_digest(entry.digest, _pin_digest(entry.salt, pin)):
                raise PinIncorrect(f"login to {where}: PIN incorrect")
            entry.refs += 1
            return
        session: Any | None
        try:
            session = token.open(rw=True, user_pin=pin)
        except p11e.UserAlreadyLoggedIn:
            session = None  # someone in this process logged in already: that is success
        except p11e.PKCS11Error as exc:
            raise translate(exc, f"login to {where}") from None
        salt = os.urandom(16)
        self.module.logins[key] = _Login(session, salt, _pin_digest(salt, pin))

    @contextmanager
    def session(self) -> Iterator[PooledSession]:
        """Borrow a logged-in session for the duration of the `with` block."""
        module = self.module
        ps: PooledSession | None = getattr(self._local, "ps", None)
        if (
            ps is not None
            and not ps.in_use
            and ps.generation == module.generation
            and _pid_of(module) == os.getpid()
            and not self._closed
        ):
            # fast path: this thread's own session, no lock, no lookup
            with module.serial():  # no-op unless the module is not thread-safe
                ps.in_use = True
                try:
                    yield ps
                except BaseException:
                    self._unpin(ps)
                    self._close_quietly(ps)
                    raise
                finally:
                    ps.in_use = False
                if self._closed:  # closed while this thread used it: close it now
                    self._unpin(ps)
                    self._close_quietly(ps)
            return
        with module.serial():
            ps = self._acquire()
            ok = False
            try:
                yield ps
                ok = True
            finally:
                if not (ok and self._pin(ps)):
                    self._release(ps, ok)

    def _pin(self, ps: PooledSession) -> bool:
        """Keep `ps` as this thread's session, if the thread has none and there is room."""
        current: PooledSession | None = getattr(self._local, "ps", None)
        if current is not None and current.generation == ps.generation and not self._closed:
            return False  # a nested borrow: the pinned one stays
        with self._lock:
            if self._closed or ps.generation != self._generation:
                return False
            if current is not None:
                self._pinned.pop(current, None)  # of an older generation: forget it
            if len(self._pinned) >= self._max_idle:
                for old, thread in list(self._pinned.items()):
                    if not thread.is_alive():  # its thread has ended: back to the pool
                        del self._pinned[old]
                        if len(self._idle) < self._max_idle:
                            self._idle.append(old)
                        else:
                            self._close_quietly(old)
                if len(self._pinned) >= self._max_idle:
                    return False
            self._pinned[ps] = threading.current_thread()
        self._local.ps = ps
        return True

    def _unpin(self, ps: PooledSession) -> None:
        with self._lock:
            self._pinned.pop(ps, None)
        if getattr(self._local, "ps", None) is ps:
            self._local.ps = None

    @property
    def kept(self) -> int:
        """Open sessions kept for reuse: idle in the pool or pinned to a thread."""
        with self._lock:
            return len(self._idle) + len(self._pinned)

    def _acquire(self) -> PooledSession:
        if self._closed:
            raise HsmError("key manager is closed")
        token, gen = self._ensure()
        with self._lock:
            while self._idle:
                ps = self._idle.pop()
                if ps.generation == gen:
                    return ps
        try:
            session = token.open(rw=True)
        except p11e.PKCS11Error as exc:
            raise translate(exc, f"opening a session on token {token.label!r}") from None
        return PooledSession(session, gen)

    def _release(self, ps: PooledSession, ok: bool) -> None:
        with self._lock:
            if (
                ok
                and not self._closed
                and ps.generation == self._generation
                and len(self._idle) < self._max_idle
            ):
                self._idle.append(ps)
                return
        self._close_quietly(ps)

    def _close_quietly(self, ps: PooledSession) -> None:
        if ps.generation != self.module.generation or os.getpid() != _pid_of(self.module):
            return
        try:
            ps.session.close()
        except p11e.PKCS11Error:
            pass

    def close(self) -> None:
        """Close the working sessions and, if this was the last pool, log out."""
        with self.module.lock:
            with self._lock:
                if self._closed:
                    return
                self._closed = True
                # a pinned session in use is closed by its thread when it is done
                idle = self._idle + [ps for ps in self._pinned if not ps.in_use]
                self._idle, self._pinned = [], {}
                gen, key = self._generation, self._login_key
            if gen != self.module.generation or gen < 0 or os.getpid() != _pid_of(self.module):
                return  # nothing of ours lives in this process generation
            for ps in idle:
                self._close_quietly(ps)
            self.module.remove_user()
            entry: _Login | None = self.module.logins.get(key) if key else None
            if entry is None:
                return
            entry.refs -= 1
            if entry.refs <= 0:
                del self.module.logins[key]  # type: ignore[arg-type]
                if entry.session is not None:
                    try:
                        entry.session.close()  # C_Logout + C_CloseSession
                    except p11e.PKCS11Error:
                        pass

    def __enter__(self) -> SessionPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _pid_of(module: Module) -> int:
    return module._pid


_pools: weakref.WeakSet[SessionPool] = weakref.WeakSet()


def _after_fork_in_child() -> None:
    for pool in list(_pools):
        pool._lock = threading.Lock()


os.register_at_fork(after_in_child=_after_fork_in_child)
