"""Write outputs so that a reader never sees a half-written file.

Every output file of this package goes through :func:`atomic_output`: it is written
under a temporary name in the same folder and renamed over the target only once it is
complete, so an interrupted run leaves either the old file or the new one. New files
get the permissions the umask gives, and are fsync'd (file, then folder) so that a
crash does not lose them; a failed write (a full disk) is one :class:`SpineSegError`
line naming the file.
"""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
import tempfile
from collections.abc import Iterator
from pathlib import Path

from .errors import SpineSegError

#: mode of a new output file before the umask, as ``open()`` and every other program use
FILE_MODE = 0o666


def _create_temporary(path: Path) -> Path:
    """Create an empty, new temporary file beside `path`, with the umask's permissions.

    :func:`tempfile.mkstemp` would make it 0600 whatever the umask, so that a shared
    folder's readers could not read the outputs; ``os.open`` with 0666 lets the umask
    decide, as for any other file the user writes.
    """
    for _ in range(100):
        tmp = path.parent / f".{path.stem}.{secrets.token_hex(4)}.part{path.suffix}"
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
        except FileExistsError:
            continue
        os.close(fd)
        return tmp
    raise FileExistsError(errno.EEXIST, "no free temporary name", str(path))


def _fsync_file(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_folder(folder: Path) -> None:
    """Make a rename in `folder` durable (where the platform can open a folder)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:  # Windows cannot open a folder; its renames need no folder sync
        return
    try:
        os.fsync(fd)
    except OSError as exc:
        if exc.errno not in (errno.EINVAL, errno.EBADF):  # file systems without folder sync
            raise
    finally:
        os.close(fd)


def _os_error(exc: BaseException) -> OSError | None:
    """The OSError that `exc` is or was raised from (writers wrap them in their own)."""
    seen = 0
    while exc is not None and seen < 10:
        if isinstance(exc, OSError):
            return exc
        exc = exc.__cause__ or exc.__context__
        seen += 1
    return None


def write_error(path: str | os.PathLike, exc: OSError) -> SpineSegError:
    """The one-line error for a failed write of `path` (a full disk, a quota, …)."""
    reason = exc.strerror or str(exc) or type(exc).__name__
    return SpineSegError(path, f"cannot be written ({reason}); nothing was written to it")


@contextlib.contextmanager
def atomic_output(path: str | os.PathLike, *, overwrite: bool = True) -> Iterator[Path]:
    """Yield a temporary path to write; rename it to `path` when the block succeeds.

    The file is created with the permissions the umask gives (0644 under umask 022),
    and made durable: the file is fsync'd before the rename and its folder after it,
    so a crash or power loss leaves the old file or the complete new one.

    Parameters
    ----------
    path : path-like
        The final file name.
    overwrite : bool
        When False and `path` exists, raise :class:`SpineSegError` before writing.

    Yields
    ------
    pathlib.Path
        A temporary file name in the same folder (same file-system, so the rename is
        atomic), with the same suffix so that format-guessing writers still work.

    Raises
    ------
    SpineSegError
        When the folder cannot be written, or writing fails with an OSError (a full
        disk, a file-size limit, a quota): one line naming `path`; the temporary file
        is removed and `path` is left as it was.
    """
    path = Path(path)
    if not overwrite and path.exists():
        raise SpineSegError(path, "exists already; not overwritten")
    folder = path.parent
    try:
        folder.mkdir(parents=True, exist_ok=True)
        tmp_path = _create_temporary(path)
    except OSError as exc:
        raise SpineSegError(folder, f"cannot write here ({exc.strerror or exc})") from exc
    try:
        yield tmp_path
        _fsync_file(tmp_path)
        os.replace(tmp_path, path)
    except BaseException as exc:
        with contextlib.suppress(OSError):
            tmp_path.unlink()
        cause = (
            _os_error(exc)
            if isinstance(exc, Exception) and not isinstance(exc, SpineSegError)
            else None
        )
        if cause is not None:
            raise write_error(path, cause) from exc
        raise
    try:
        _fsync_folder(folder)
    except OSError as exc:  # the new file is in place; only its durability is in doubt
        raise SpineSegError(
            folder, f"cannot be synced to disk after writing {path.name} ({exc.strerror or exc})"
        ) from exc


def write_bytes_atomic(path: str | os.PathLike, data: bytes) -> Path:
    """Write `data` to `path` atomically and return the path."""
    with atomic_output(path) as tmp:
        tmp.write_bytes(data)
    return Path(path)


def write_text_atomic(path: str | os.PathLike, text: str) -> Path:
    """Write `text` (UTF-8) to `path` atomically and return the path."""
    return write_bytes_atomic(path, text.encode("utf-8"))


def make_folder(folder: str | os.PathLike, what: str) -> Path:
    """Create `folder` (and its parents) if needed; return it.

    Raises
    ------
    SpineSegError
        ``cannot create <what> (<reason>)``, naming the folder.
    """
    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise SpineSegError(folder, f"cannot create {what} ({exc.strerror or exc})") from exc
    return folder


def check_writable_folder(folder: str | os.PathLike) -> Path:
    """Create `folder` if needed and make sure files can be written in it.

    Raises
    ------
    SpineSegError
        When the folder cannot be created or written to; raised before any work is
        done, so a long run does not fail at its end.
    """
    folder = make_folder(folder, "the output folder")
    if not folder.is_dir():
        raise SpineSegError(folder, "is not a folder")
    try:
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as exc:
        raise SpineSegError(
            folder, f"cannot write to the output folder ({exc.strerror or exc})"
        ) from exc
    return folder
