"""Write outputs so that a reader never sees a half-written file.

Every output file of this package goes through :func:`atomic_output`: it is written
under a temporary name in the same folder and renamed over the target only once it is
complete, so an interrupted run leaves either the old file or the new one.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

from .errors import SpineSegError


@contextlib.contextmanager
def atomic_output(path: str | os.PathLike, *, overwrite: bool = True) -> Iterator[Path]:
    """Yield a temporary path to write; rename it to `path` when the block succeeds.

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
    """
    path = Path(path)
    if not overwrite and path.exists():
        raise SpineSegError(path, "exists already; not overwritten")
    folder = path.parent
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(
            prefix=f".{path.stem}.", suffix=f".part{path.suffix}", dir=folder
        )
    except OSError as exc:
        raise SpineSegError(folder, f"cannot write here ({exc.strerror or exc})") from exc
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.replace(tmp_path, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp_path.unlink()
        raise


def write_bytes_atomic(path: str | os.PathLike, data: bytes) -> Path:
    """Write `data` to `path` atomically and return the path."""
    with atomic_output(path) as tmp:
        tmp.write_bytes(data)
    return Path(path)


def write_text_atomic(path: str | os.PathLike, text: str) -> Path:
    """Write `text` (UTF-8) to `path` atomically and return the path."""
    return write_bytes_atomic(path, text.encode("utf-8"))


def check_writable_folder(folder: str | os.PathLike) -> Path:
    """Create `folder` if needed and make sure files can be written in it.

    Raises
    ------
    SpineSegError
        When the folder cannot be created or written to; raised before any work is
        done, so a long run does not fail at its end.
    """
    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise SpineSegError(
            folder, f"cannot create the output folder ({exc.strerror or exc})"
        ) from exc
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
