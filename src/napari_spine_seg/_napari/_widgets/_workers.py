"""Thread plumbing shared by the widgets: start a worker, report its errors as one line.

Every long job of a widget (training, loading a model, predicting, finding gaps)
runs in a napari worker thread (model work itself in a child process, see
:mod:`~napari_spine_seg.jobs.model_process`). Results come back to the GUI thread
through the worker's signals, so a widget only ever touches layers on the GUI thread.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ...errors import SpineSegError
from .._notify import notify_error


def error_message(exc: BaseException) -> str:
    """One line for the person: a SpineSegError as it is, anything else with its type."""
    if isinstance(exc, SpineSegError):
        return str(exc)
    return f"unexpected error: {type(exc).__name__}: {exc}"


def show_error(label, exc: BaseException) -> str:
    """Put `exc` as one line in a widget's status `label` and in a napari notification.

    Returns
    -------
    str
        The line shown.
    """
    text = error_message(exc)
    label.value = text
    notify_error(text)
    return text


def start_worker(
    func: Callable,
    *args,
    on_yield: Callable[[Any], None] | None = None,
    on_return: Callable[[Any], None] | None = None,
    on_error: Callable[[BaseException], None] | None = None,
    on_finish: Callable[[], None] | None = None,
    keep_in: set | None = None,
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
    keep_in : set, optional
        The widget's set of running workers: the worker is added to it and removed
        when it ends (a worker nobody references can be collected while it runs).

    Returns
    -------
    napari.qt.threading.WorkerBase
        The started worker; keep a reference to it while it runs (`keep_in` does).
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
    if keep_in is not None:
        keep_in.add(worker)
        worker.finished.connect(lambda: keep_in.discard(worker))
    worker.start()
    return worker


def status_label(**kwargs):
    """A magicgui Label for changing text that never resizes its dock widget.

    A label that grows with its text widens the dock, which resizes napari's canvas,
    whose software-OpenGL redraw can hold the GUI for a few hundred milliseconds; so
    the label wraps its text within the width it has instead.
    """
    from magicgui.widgets import Label
    from qtpy.QtWidgets import QSizePolicy

    label = Label(**kwargs)
    label.native.setWordWrap(True)
    label.native.setSizePolicy(QSizePolicy.Ignored, QSizePolicy.Preferred)
    return label
