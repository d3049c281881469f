"""Map a function over items in worker processes, in order, for the batch commands."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import TypeVar

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


def map_in_processes(
    func: Callable[[T], R],
    items: Iterable[T],
    *,
    jobs: int,
    preload: Sequence[str] = (),
    chunksize: int = 4,
) -> Iterator[R]:
    """Yield ``func(item)`` for every item, in order, computed by `jobs` worker processes.

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
    if jobs <= 1:
        yield from map(func, items)
        return
    from concurrent.futures import ProcessPoolExecutor

    pool = ProcessPoolExecutor(max_workers=jobs, mp_context=_context(preload))
    try:
        yield from pool.map(func, items, chunksize=chunksize)
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
