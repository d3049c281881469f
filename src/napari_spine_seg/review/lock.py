"""One process at a time per review folder: an exclusive lock held while a session lives.

Two napari processes on one review folder would autosave over each other's trimaps
and delete each other's temporary files. The lock is ``flock`` on an open
``review.lock`` in the folder, held on that open file for the session's life: the
kernel drops it when the process ends however it ends (``kill -9`` included), so a
stale lock never needs clearing by hand. The file says who holds it (process id,
host, since when), for the one line a second process gets.

Sessions of one process share the folder's lock (reopening a review in the same
napari, or a test resuming one); the lock is released when the last of them closes
or is collected. Where ``fcntl`` does not exist (Windows), or the file system has no
locks, there is no lock.
"""

from __future__ import annotations

import datetime
import os
import socket
import threading
from dataclasses import dataclass
from pathlib import Path

from ..errors import SpineSegError

try:
    import fcntl
except ImportError:  # Windows: no flock
    fcntl = None

LOCK_FILE = "review.lock"

_guard = threading.Lock()
#: resolved folder → [open lock file descriptor, number of holders in this process]
_held: dict[str, list[int]] = {}


@dataclass(frozen=True)
class FolderLock:
    """This process's hold on a review folder's lock.

    Attributes
    ----------
    key : str
        The resolved folder.
    first : bool
        Whether this hold took the lock (no other session of this process had it):
        only then may leftovers of killed writes be cleared, since no write of this
        process can be under way.
    """

    key: str
    first: bool

    def release(self) -> None:
        """Give up this hold; the lock itself is dropped when the last hold is released."""
        release(self.key)


def _holder(path: Path) -> str:
    try:
        text = path.read_text(encoding="utf-8", errors="replace").split()
    except OSError:
        text = []
    if len(text) >= 3:
        return f"process {text[0]} on {text[1]}, since {text[2]}"
    return "another process"


def acquire(folder: str | os.PathLike) -> FolderLock:
    """Lock review folder `folder` (it must exist) for this process.

    Raises
    ------
    SpineSegError
        When another process holds the lock (the message names it), or the lock
        file cannot be made.
    """
    folder = Path(folder)
    key = os.fspath(folder.resolve())
    with _guard:
        if key in _held:
            _held[key][1] += 1
            return FolderLock(key, first=False)
        if fcntl is None:
            _held[key] = [-1, 1]
            return FolderLock(key, first=True)
        path = folder / LOCK_FILE
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
        except OSError as exc:
            raise SpineSegError(path, f"cannot be made ({exc.strerror or exc})") from exc
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise SpineSegError(
                folder,
                f"is open in another review ({_holder(path)}); close it there first",
            ) from None
        except OSError:
            pass  # a file system without locks (an NFS mount without its lock service)
        since = datetime.datetime.now().astimezone().isoformat(timespec="seconds")
        text = f"{os.getpid()} {socket.gethostname()} {since}\n".encode()
        try:
            os.ftruncate(fd, 0)
            os.pwrite(fd, text, 0)
        except OSError:
            pass  # the lock holds without the note of who holds it
        _held[key] = [fd, 1]
        return FolderLock(key, first=True)


def release(key: str) -> None:
    """Drop one hold of this process on the lock of folder `key` (resolved)."""
    with _guard:
        entry = _held.get(key)
        if entry is None:
            return
        entry[1] -= 1
        if entry[1] > 0:
            return
        del _held[key]
        if entry[0] >= 0:
            os.close(entry[0])  # closing the file drops the flock


def held(folder: str | os.PathLike) -> bool:
    """Whether this process holds the lock of `folder`."""
    with _guard:
        return os.fspath(Path(folder).resolve()) in _held
