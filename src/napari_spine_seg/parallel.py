"""Map a function over items in worker processes, in order, for the batch commands."""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import TypeVar

from .errors import SpineSegError

T = TypeVar("T")
R = TypeVar("R")


def _context(preload: Sequence[str]):
    """Worker processes that do not fork the caller (it may be napari, with threads)."""
    import multiprocessing

    if "forkserver" not in multiprocessing.get_all_start_methods():
        return multiprocessing.get_context("spawn")
    ctx = multiprocessing.get_context("forkserver")
    # the server imports these modules once; each worker is forked from it ready to go
    ctx.set_forkserver_preload(list(preload))
    return ctx


def _call(func: Callable[[T], R], item: T) -> R:
    """``func(item)``, with an OSError (a full disk, an unreadable file) as one-line error.

    A raw OSError from a worker would reach the user as a ``_RemoteTraceback``; a
    :class:`SpineSegError` pickles across and is reported as one line naming the file.
    """
    try:
        return func(item)
    except OSError as exc:
        reason = exc.strerror or str(exc) or type(exc).__name__
        raise SpineSegError(exc.filename, f"cannot be read or written ({reason})") from None


def map_in_processes(
    func: Callable[[T], R],
    items: Iterable[T],
    *,
    jobs: int,
    preload: Sequence[str] = (),
    chunksize: int = 4,
) -> Iterator[R]:
    """Yield ``func(item)`` for every item, in order, computed by `jobs` worker processes.

    An OSError raised by `func` becomes a :class:`SpineSegError` naming its file, so a
    full disk in a worker is one line for the user, not a remote traceback.

    Parameters
    ----------
    func : callable
        A module-level function (it is pickled to the workers).
    items : iterable
    jobs : int
        Worker processes; 1 or fewer runs `func` in this process.
    preload : sequence of str
        Modules the workers import before their first item.
    chunksize : int
        Items handed to a worker at a time.
    """
    call = functools.partial(_call, func)
    if jobs <= 1:
        yield from map(call, items)
        return
    from concurrent.futures import ProcessPoolExecutor
    from concurrent.futures.process import BrokenProcessPool

    pool = ProcessPoolExecutor(max_workers=jobs, mp_context=_context(preload))
    try:
        yield from pool.map(call, items, chunksize=chunksize)
    except BrokenProcessPool as exc:
        raise SpineSegError(
            None, "a worker process ended abruptly (out of memory?); try fewer --jobs"
        ) from exc
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
