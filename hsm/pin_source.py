"""Where a PIN comes from: a file (`file:/path`) or an environment variable (`env:NAME`).

A PIN is never taken from the command line or a URI, never logged, and never kept
longer than one login: `PinSource.read()` reads it afresh each time. The repr of a
`PinSource` names the source, not the value.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from hsm.errors import PinSourceError
from hsm.files import others_can_read

_MAX_PIN = 255
_warned: set[str] = set()  # PIN files already warned about (once per process)


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
        if kind not in ("file", "env", "value"):
            raise ValueError("PinSource kind must be 'file', 'env' or 'value'")
        self._kind = kind
        self._where = where
        self._value = value

    @classmethod
    def from_spec(cls, spec: str) -> PinSource:
        """`file:/path/to/pin` (also `file:///path`) or `env:NAME`."""
        if not isinstance(spec, str):
            raise TypeError("pin source spec must be a str")
        scheme, sep, rest = spec.partition(":")
        if not sep or not rest:
            raise PinSourceError("pin source must be 'file:PATH' or 'env:NAME'")
        if scheme == "file":
            if rest.startswith("//"):
                rest = rest[2:]  # file:///abs/path -> /abs/path (empty authority)
                if not rest.startswith("/"):
                    raise PinSourceError("pin source file: URI must have an empty host")
            return cls.from_file(Path(rest))
        if scheme == "env":
            return cls.from_env(rest)
        raise PinSourceError("pin source must be 'file:PATH' or 'env:NAME'")

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
        if self._kind == "value":
            assert self._value is not None
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
