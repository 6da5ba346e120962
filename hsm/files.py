"""Private files: created exclusively, never through a symlink, readable by the owner only.

Here, in the lowest package that both `pki` and `issuance` may import, because every
file the CLI writes (certificates, CRLs, rejects, exports, PIN files, databases) can hold
personal data or secrets, and a planted symlink or a world-readable mode must not leak
or clobber them.

* `write_file(path, data, force=...)` writes `data` to a temporary file created with
  ``O_CREAT | O_EXCL | O_NOFOLLOW`` (mode 0600) in the same directory, then moves it in
  place: with a hard link (fails if anything, a symlink included, is at `path`) or, with
  `force`, with `os.replace` (which replaces a symlink itself, never its target).
* `private_writer(path, force=...)` does the same for a file written piece by piece.
* `private_dir(path)` makes a directory 0700 (and fixes a looser mode); `tighten(path)`
  fixes a file's mode to 0600. Neither follows a symlink.
* `private_database(path)` checks (and creates, 0600) a SQLite database file before
  SQLite opens it: a symlink at it or at its -wal/-shm/-journal files is refused.
"""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Literal, overload

FILE_MODE = 0o600
DIR_MODE = 0o700
_CREATE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0)


class OutputExists(FileExistsError):
    """The output path exists (or is a symlink) and overwriting was not asked for."""

    def __init__(self, path: Path) -> None:
        super().__init__(errno.EEXIST, "exists (use --force to overwrite)", str(path))
        self.path = path

    def __str__(self) -> str:
        return f"{self.filename}: exists (use --force to overwrite)"


def _temporary(path: Path) -> tuple[Path, int]:
    """A new temporary file next to `path`, opened for writing, mode 0600."""
    for _ in range(100):
        tmp = path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp")
        try:
            return tmp, os.open(tmp, _CREATE, FILE_MODE)
        except FileExistsError:
            continue
    raise FileExistsError(errno.EEXIST, "no free temporary name", str(path))  # pragma: no cover


def _move_in(tmp: Path, path: Path, *, force: bool) -> None:
    try:
        if force:
            os.replace(tmp, path)  # replaces a symlink at `path`, not its target
            return
        try:
            os.link(tmp, path, follow_symlinks=False)  # atomic, fails if `path` exists
        except FileExistsError:
            raise OutputExists(path) from None
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    tmp.unlink()


@overload
def private_writer(path: str | os.PathLike[str], *, force: bool = ...,
                   text: Literal[False] = ..., mode: int = ...
                   ) -> contextlib.AbstractContextManager[IO[bytes]]:
    ...


@overload
def private_writer(path: str | os.PathLike[str], *, force: bool = ...,
                   text: Literal[True], mode: int = ...
                   ) -> contextlib.AbstractContextManager[IO[str]]:
    ...


def private_writer(path: str | os.PathLike[str], *, force: bool = False, text: bool = False,
                   mode: int = FILE_MODE
                   ) -> contextlib.AbstractContextManager[IO[bytes] | IO[str]]:
    """A file object writing to a private temporary file that becomes `path` when the
    block ends without an exception (and is removed otherwise). `text`: UTF-8 (a lone
    surrogate written as a backslash escape), newline as written. `OutputExists` if
    `path` exists and `force` is false. `mode`: 0600 unless the file is public (a CRL)."""
    return _writer(Path(path), force=force, text=text, mode=mode)


@contextlib.contextmanager
def _writer(path: Path, *, force: bool, text: bool,
            mode: int) -> Iterator[IO[bytes] | IO[str]]:
    if not force and os.path.lexists(path):
        raise OutputExists(path)  # early, before writing anything (checked again on link)
    tmp, fd = _temporary(path)
    try:
        fh: IO[bytes] | IO[str]
        fh = os.fdopen(fd, "w", encoding="utf-8", errors="backslashreplace", newline="") \
            if text else os.fdopen(fd, "wb")
    except BaseException:
        os.close(fd)
        tmp.unlink(missing_ok=True)
        raise
    try:
        with fh:
            yield fh
            fh.flush()
            if mode != FILE_MODE:
                os.fchmod(fh.fileno(), mode)
            os.fsync(fh.fileno())
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _move_in(tmp, path, force=force)


def write_file(path: str | os.PathLike[str], data: bytes | str, *, force: bool = False,
               mode: int = FILE_MODE) -> None:
    """Write `data` (str as UTF-8) to `path`, mode 0600, exclusively unless `force`."""
    raw = data.encode("utf-8") if isinstance(data, str) else data
    with private_writer(path, force=force, mode=mode) as fh:
        fh.write(raw)


def private_dir(path: str | os.PathLike[str]) -> Path:
    """Create `path` (and missing parents, 0700) or fix its mode to 0700; refuse a
    symlink or a non-directory there."""
    p = Path(path)
    try:
        os.mkdir(p, DIR_MODE)
    except FileExistsError:
        pass
    except FileNotFoundError:
        p.parent.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)
        with contextlib.suppress(FileExistsError):
            os.mkdir(p, DIR_MODE)
    st = os.lstat(p)
    if stat.S_ISLNK(st.st_mode) or not stat.S_ISDIR(st.st_mode):
        raise NotADirectoryError(errno.ENOTDIR, "not a directory (or a symlink)", str(p))
    if stat.S_IMODE(st.st_mode) != DIR_MODE:
        os.chmod(p, DIR_MODE)
    return p


def tighten(path: str | os.PathLike[str], mode: int = FILE_MODE) -> None:
    """Fix the mode of an existing regular file to `mode` (0600); a symlink, a missing
    file or another kind of file is left alone."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return
    if stat.S_ISREG(st.st_mode) and stat.S_IMODE(st.st_mode) & ~mode:
        os.chmod(path, mode)


def create_private(path: str | os.PathLike[str]) -> None:
    """Make sure `path` exists as an empty 0600 file before another library opens it
    (SQLite creates its files with the umask's mode): created exclusively, without
    following a symlink; an existing file only gets its mode fixed."""
    try:
        os.close(os.open(path, _CREATE, FILE_MODE))
    except FileExistsError:
        tighten(path)


SQLITE_COMPANIONS = ("-wal", "-shm", "-journal")


class UnsafePath(OSError):
    """A file that is opened by another library (SQLite), which follows symlinks, is a
    symlink or not a regular file."""

    def __str__(self) -> str:
        return f"{self.filename}: {self.strerror}"


def _refuse_unsafe(path: Path, st: os.stat_result) -> None:
    if stat.S_ISLNK(st.st_mode):
        raise UnsafePath(errno.ELOOP, "is a symlink (a database is never opened through a "
                         "symlink: remove it, or name the real file)", str(path))
    if not stat.S_ISREG(st.st_mode):
        raise UnsafePath(errno.EINVAL, "is not a regular file", str(path))


def private_database(path: str | os.PathLike[str], *, create: bool = True) -> Path:
    """Make `path` safe to hand to SQLite, which follows symlinks for the database and for
    its -wal, -shm and -journal companions: `UnsafePath` (an OSError naming the file) when
    any of them is a symlink or not a regular file. With `create`, a missing database is
    first created empty, exclusively, without following a symlink, mode 0600 (SQLite gives
    its companions the database's mode), and existing files get their mode fixed to 0600;
    without it, FileNotFoundError when the database is missing."""
    p = Path(path)
    if create:
        create_private(p)
    _refuse_unsafe(p, os.lstat(p))
    for suffix in SQLITE_COMPANIONS:
        companion = p.with_name(p.name + suffix)
        try:
            st = os.lstat(companion)
        except FileNotFoundError:
            continue
        _refuse_unsafe(companion, st)
        if create:
            tighten(companion)
    return p


def others_can_read(path: str | os.PathLike[str]) -> bool:
    """True when the group or others may read `path` (a PIN file should be 0600)."""
    try:
        return bool(os.stat(path).st_mode & (stat.S_IRGRP | stat.S_IROTH))
    except OSError:
        return False
