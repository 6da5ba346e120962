"""Where a PIN or password comes from, one grammar for every command:

    env:NAME     an environment variable
    file:PATH    the first line of a file (also file:///abs/path)
    fd:N         the first line read from an open file descriptor (a pipe from a vault)
    prompt       asked on the terminal without echo (also `tty`)

A PIN is never taken from the command line or a URI, never logged, and never kept
longer than one login: `PinSource.read()` reads env and file afresh each time (a
descriptor or a prompt can be read only once, so those keep what they read). The repr
of a `PinSource` names the source, not the value.
"""

from __future__ import annotations

import getpass
import os
import sys
from pathlib import Path

from hsm.errors import PinSourceError
from hsm.files import others_can_read

_MAX_PIN = 255
_warned: set[str] = set()  # PIN files already warned about (once per process)
_KINDS = ("file", "env", "fd", "prompt", "value")
GRAMMAR = "env:NAME, file:PATH, fd:N or prompt"


def _warn_if_readable(path: str) -> None:
    """A PIN file that the group or others may read gets one warning on stderr (the
    path only, never the PIN): the PIN is as good as published."""
    if path not in _warned and others_can_read(path):
        _warned.add(path)
        print(f"mynacard: warning: PIN file {path} is readable by other users"
              " (chmod 600 it)", file=sys.stderr)


class PinSource:
    """A place to read a PIN from. Build with `from_spec`, `from_file`, `from_env`."""

    __slots__ = ("_kind", "_where", "_value")

    def __init__(self, kind: str, where: str, value: str | None = None) -> None:
        if kind not in _KINDS:
            raise ValueError(f"PinSource kind must be one of {', '.join(_KINDS)}")
        self._kind = kind
        self._where = where
        self._value = value

    @classmethod
    def from_spec(cls, spec: str) -> PinSource:
        """`file:/path/to/pin` (also `file:///path`), `env:NAME`, `fd:N` or `prompt`."""
        if not isinstance(spec, str):
            raise TypeError("pin source spec must be a str")
        if spec in ("prompt", "tty", "prompt:", "tty:"):
            return cls("prompt", "terminal")
        scheme, sep, rest = spec.partition(":")
        if not sep or not rest:
            raise PinSourceError(f"pin source must be {GRAMMAR}")
        if scheme == "file":
            if rest.startswith("//"):
                rest = rest[2:]  # file:///abs/path -> /abs/path (empty authority)
                if not rest.startswith("/"):
                    raise PinSourceError("pin source file: URI must have an empty host")
            return cls.from_file(Path(rest))
        if scheme == "env":
            return cls.from_env(rest)
        if scheme == "fd":
            if not rest.isdigit() or int(rest) > 1 << 20:
                raise PinSourceError("pin source fd: needs a descriptor number")
            return cls("fd", str(int(rest)))
        if scheme in ("prompt", "tty"):  # prompt:LABEL names what is asked for
            return cls("prompt", rest)
        raise PinSourceError(f"pin source must be {GRAMMAR}")

    @classmethod
    def from_file(cls, path: str | os.PathLike[str]) -> PinSource:
        """The first line of a file (trailing newline removed)."""
        return cls("file", str(Path(path).expanduser()))

    @classmethod
    def from_env(cls, name: str) -> PinSource:
        """The value of an environment variable."""
        if not name or "=" in name:
            raise PinSourceError("pin source env: needs a variable name")
        return cls("env", name)

    @classmethod
    def from_value(cls, pin: str) -> PinSource:
        """A PIN held in memory (tests, freshly generated PINs). Its repr hides it."""
        if not isinstance(pin, str):
            raise TypeError("PIN must be a str")
        return cls("value", "<hidden>", pin)

    @property
    def spec(self) -> str:
        """The spec this source was built from (`file:…`, `env:…`); never the PIN."""
        if self._kind == "value":
            return "value:<hidden>"
        return f"{self._kind}:{self._where}"

    def read(self) -> str:
        """The PIN. `PinSourceError` if the source is missing, empty or unreadable."""
        if self._kind in ("fd", "prompt") and self._value is None:
            self._value = self._read_once()
        if self._value is not None:
            pin = self._value
        elif self._kind == "env":
            value = os.environ.get(self._where)
            if value is None:
                raise PinSourceError(f"pin source {self.spec}: variable is not set")
            pin = value
        else:
            _warn_if_readable(self._where)
            try:
                with open(self._where, encoding="utf-8") as f:
                    pin = f.readline(_MAX_PIN + 2)
            except OSError as exc:
                raise PinSourceError(f"pin source {self.spec}: {exc.strerror}") from None
            except UnicodeDecodeError:
                raise PinSourceError(f"pin source {self.spec}: not UTF-8 text") from None
        pin = pin.rstrip("\r\n")
        if not pin:
            raise PinSourceError(f"pin source {self.spec}: empty")
        if len(pin) > _MAX_PIN:
            raise PinSourceError(f"pin source {self.spec}: longer than {_MAX_PIN} characters")
        return pin

    def _read_once(self) -> str:
        """A descriptor's first line, or what the operator types (EOFError at Ctrl-D)."""
        if self._kind == "prompt":
            if not sys.stdin.isatty():
                raise PinSourceError("pin source prompt: no terminal to ask on"
                                     " (use env:NAME, file:PATH or fd:N)")
            what = self._where if self._where != "terminal" else "PIN or password"
            return getpass.getpass(f"{what}: ")
        data = b""
        try:
            while not data.endswith(b"\n") and len(data) <= _MAX_PIN + 2:
                chunk = os.read(int(self._where), 1)
                if not chunk:
                    break
                data += chunk
        except OSError as exc:
            raise PinSourceError(f"pin source {self.spec}: {exc.strerror}") from None
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError:
            raise PinSourceError(f"pin source {self.spec}: not UTF-8 text") from None

    def __repr__(self) -> str:
        return f"PinSource({self.spec!r})"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, PinSource):
            return NotImplemented
        return (self._kind, self._where, self._value) == (other._kind, other._where, other._value)

    def __hash__(self) -> int:
        return hash((self._kind, self._where))

    def __reduce__(self) -> tuple[object, ...]:
        if self._kind == "value":
            raise TypeError("an in-memory PinSource cannot be pickled")
        return (PinSource, (self._kind, self._where))
