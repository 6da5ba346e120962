"""Reader names from what a user types: `--reader 0` means the first PC/SC reader.

Every command that takes `--reader` resolves it here, so an index works everywhere.
"""

from __future__ import annotations

from collections.abc import Callable

from card.errors import ReaderNotFound
from card.transport import list_readers


def resolve_reader(spec: str, readers: Callable[[], list[str]] = list_readers) -> str:
    """The reader name `spec` means: a reader's name as is, or a decimal index into
    PC/SC's reader list (an existing reader whose name is all digits wins). A name is
    returned without asking PC/SC, so the transport reports an unknown name itself."""
    spec = spec.strip() if spec.strip().isdigit() else spec
    if not spec.isdigit() or not spec.isascii():
        return spec
    names = readers()
    if spec in names:
        return spec
    index = int(spec)
    if index < len(names):
        return names[index]
    if not names:
        raise ReaderNotFound(f"no reader {index}: PC/SC knows no reader "
                             "(is pcscd running? is the emulator up?)")
    listing = ", ".join(f"{i} {n!r}" for i, n in enumerate(names))
    raise ReaderNotFound(f"no reader {index}: there are {len(names)} ({listing})")


def resolve_readers(specs: str) -> list[str]:
    """A comma-separated list of readers (names or indexes), resolved one by one."""
    return [resolve_reader(s) for s in specs.split(",") if s]
