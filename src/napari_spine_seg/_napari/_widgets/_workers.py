"""Thread plumbing shared by the widgets: start a worker, relay progress events, report errors.

Every long job of a widget (training, loading a model, predicting, finding gaps)
runs in a napari worker thread. Its results come back to the GUI thread through the
worker's signals, so a widget only ever touches layers on the GUI thread.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Generator
from typing import Any

from ...errors import SpineSegError
from .._notify import notify_error

#: seconds a relaying generator waits for the next event before checking again
_POLL_S = 0.05


def error_message(exc: BaseException) -> str:
    """One line for the person: a SpineSegError as it is, anything else with its type."""
    if isinstance(exc, SpineSegError):
        return str(exc)
    return f"unexpected error: {type(exc).__name__}: {exc}"


def start_worker(
    func: Callable,
    *args,
    on_yield: Callable[[Any], None] | None = None,
    on_return: Callable[[Any], None] | None = None,
    on_error: Callable[[BaseException], None] | None = None,
    on_finish: Callable[[], None] | None = None,
    **kwargs,
):
    """Run `func` (a function or a generator function) in a napari worker thread.

    Parameters
    ----------
    func : callable
        Called as ``func(*args, **kwargs)`` in the thread.
    on_yield, on_return : callable, optional
        Called on the GUI thread with each yielded value and with the return value.
    on_error : callable, optional
        Called on the GUI thread with an exception raised in the thread; by default
        it is shown as a napari error notification (one line).
    on_finish : callable, optional
        Called on the GUI thread when the thread ends, whatever the outcome.

    Returns
    -------
    napari.qt.threading.WorkerBase
        The started worker; keep a reference to it while it runs.
    """
    from napari.qt.threading import create_worker

    worker = create_worker(func, *args, _start_thread=False, _ignore_errors=True, **kwargs)
    if on_yield is not None and hasattr(worker, "yielded"):
        worker.yielded.connect(on_yield)
    if on_return is not None:
        worker.returned.connect(on_return)
    worker.errored.connect(on_error or (lambda exc: notify_error(error_message(exc))))
    if on_finish is not None:
        worker.finished.connect(on_finish)
    worker.start()
    return worker


def relay_events(run: Callable[[Callable[[object], None]], Any]) -> Generator[object, None, Any]:
    """Yield the progress events of ``run(progress)`` as it runs; return its result.

    `run` is called in a thread of its own with a ``progress`` callable that queues
    each event; this generator (itself run by a napari worker) yields them to the
    GUI thread as they come. An exception in `run` is raised here.

    Parameters
    ----------
    run : callable
        ``run(progress) -> result``; calls ``progress(event)`` any number of times.

    Yields
    ------
    object
        Each event, in order.

    Returns
    -------
    object
        What `run` returned.
    """
    events: queue.Queue = queue.Queue()
    outcome: dict[str, Any] = {}

    def target():
        try:
            outcome["result"] = run(events.put)
        except BaseException as exc:  # handed to the generator's caller
            outcome["error"] = exc

    thread = threading.Thread(target=target, name="spine-seg-job", daemon=True)
    thread.start()
    while thread.is_alive() or not events.empty():
        try:
            yield events.get(timeout=_POLL_S)
        except queue.Empty:
            continue
    thread.join()
    if "error" in outcome:
        raise outcome["error"]
    return outcome.get("result")
