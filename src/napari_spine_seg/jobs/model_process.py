"""Model work for napari's widgets, in child processes: napari's process never loads Keras.

Why not threads alone: (1) TensorFlow exports the LLVM it bundles, and a Mesa OpenGL
driver (napari's canvas under Xvfb or any software-rendered desktop) then calls into
it, or TensorFlow into Mesa's, and the process crashes (segfault) whichever loads
first; (2) building a TensorFlow graph is Python work that holds the GIL for hundreds
of milliseconds at a time, which would freeze the viewer. So:

- **Predictions** go to one long-lived child process (:func:`call`), which keeps the
  model it has loaded; the widget's worker thread waits for the answer, at most
  :data:`CALL_TIMEOUT_S` seconds: a child that does not answer in time is killed and
  the call fails with one line, so a hung child blocks neither later calls nor
  napari's exit.
- **Training** runs in a child process of its own (:class:`ProcessJob`); its progress
  events come back as they happen, a napari worker thread yields them to the GUI, and
  Stop sends the child ``SIGUSR1``, which sets the event ``train(cancel=...)`` checks
  after every batch.

A child is ``python -m napari_spine_seg.jobs.model_process`` (never a fork of
napari's process, which has Qt and threads, and never a re-run of the script that
started napari, as ``multiprocessing``'s spawn would do). Requests, events and
results travel pickled over two pipes; images and predictions are plain arrays.
"""

from __future__ import annotations

import atexit
import os
import signal
import subprocess
import sys
import threading
import traceback
from collections.abc import Callable, Generator
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from ..data.images import read_xray
from ..errors import SpineSegError
from ..model.defaults import QUIET_TENSORFLOW_ENV
from ..model.files import load_model
from ..model.predict import predict_images
from ..review.priority import review_priority

_CHILD_MODULE = "napari_spine_seg.jobs.model_process"
#: how much lower than napari's the children's CPU priority is (see ``nice(1)``)
_NICENESS = 10
#: seconds a call to the model process may take (loading a model and predicting one
#: large X-ray on a slow CPU take well under a minute) before the child is killed
CALL_TIMEOUT_S = 300.0
#: seconds napari's exit waits for a running call before killing the child
_EXIT_WAIT_S = 2.0


class _Child:
    """A child Python process running :func:`_serve`, with a pipe each way."""

    def __init__(self):
        to_child_r, to_child_w = os.pipe()
        from_child_r, from_child_w = os.pipe()
        env = {**QUIET_TENSORFLOW_ENV, **os.environ}  # no TensorFlow chatter in napari's terminal
        # the child imports what this process imports (also a test's sys.path)
        env["PYTHONPATH"] = os.pathsep.join(p for p in sys.path if p)
        self.process = subprocess.Popen(
            [sys.executable, "-m", _CHILD_MODULE, str(to_child_r), str(from_child_w)],
            pass_fds=(to_child_r, from_child_w),
            stdin=subprocess.DEVNULL,
            env=env,
        )
        os.close(to_child_r)
        os.close(from_child_w)
        self.send = Connection(to_child_w, readable=False).send
        self._receive = Connection(from_child_r, writable=False)
        # the child says when it listens (and handles SIGUSR1, which would kill it before)
        while (message := self.receive(timeout=0.2)) is None:
            pass
        assert message == ("ready", None), message

    def receive(self, timeout: float | None = None):
        """The next message, or None when none came within `timeout` seconds.

        Raises
        ------
        SpineSegError
            When the child has died.
        """
        try:
            if timeout is not None and not self._receive.poll(timeout):
                if self.process.poll() is not None:
                    raise EOFError
                return None
            return self._receive.recv()
        except (EOFError, OSError):
            code = self.process.wait()
            raise SpineSegError(
                None, f"the model process stopped unexpectedly (exit code {code})"
            ) from None

    def interrupt(self) -> None:
        """Ask a running job to stop (``SIGUSR1``)."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGUSR1)

    def kill(self) -> None:
        """End the child now (``SIGKILL``)."""
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait()

    def stop(self) -> None:
        """End the child (it exits when its request pipe closes)."""
        try:
            self.send(None)
        except OSError:
            pass
        try:
            self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def _outcome(message):
    kind, value = message
    if kind == "error":
        raise value
    return value


_lock = threading.Lock()
_server: _Child | None = None


def call(function: Callable, *args, timeout_s: float | None = None, **kwargs) -> Any:
    """Run ``function(*args, **kwargs)`` in the model process and return its result.

    Blocks until done: call it from a worker thread, never from the GUI thread.
    `function` must be importable (module level). Calls are served one at a time. A
    model process that died is started again on the next call.

    Parameters
    ----------
    function : callable
    *args, **kwargs
        Its arguments (picklable).
    timeout_s : float, optional
        Seconds to wait for the answer (and, before that, for a call under way to
        end); default :data:`CALL_TIMEOUT_S`. A child that does not answer in time is
        killed; the next call starts a new one.

    Raises
    ------
    SpineSegError
        The function's own; when the model process died meanwhile; or when it did not
        answer in `timeout_s` seconds.
    """
    global _server
    timeout_s = CALL_TIMEOUT_S if timeout_s is None else float(timeout_s)
    if not _lock.acquire(timeout=timeout_s):
        raise SpineSegError(
            None, f"the model process is busy with another call for over {timeout_s:.0f} s"
        )
    try:
        if _server is None or _server.process.poll() is not None:
            _server = _Child()
        server = _server
        try:
            server.send(("call", function, args, kwargs))
            message = server.receive(timeout=timeout_s)
        except SpineSegError:
            if server.process.poll() is not None:
                _server = None
            raise
        if message is None:
            _server = None
            server.kill()
            raise SpineSegError(
                None,
                f"the model process did not answer in {timeout_s:.0f} s; it was stopped "
                "(the next call starts a new one)",
            )
        return _outcome(message)
    finally:
        _lock.release()


def shutdown() -> None:
    """Stop the model process (it is started again when needed).

    Waits a moment for a call under way; a child still busy then is killed, so that
    a hung child never holds up napari's exit.
    """
    global _server
    got = _lock.acquire(timeout=_EXIT_WAIT_S)
    try:
        server, _server = _server, None
    finally:
        if got:
            _lock.release()
    if server is None:
        return
    if got:
        server.stop()
    else:
        server.kill()  # the waiting call then fails with "stopped unexpectedly"


atexit.register(shutdown)


class ProcessJob:
    """A long job (training) in a child process of its own, with progress and Stop.

    Parameters
    ----------
    function : callable
        Importable; called in the child as ``function(progress=..., cancel=..., **kwargs)``.
    **kwargs
        Its other arguments (picklable).

    Examples
    --------
    In a widget::

        job = ProcessJob(train, dataset=path, out=model_file, epochs=3)
        start_worker(job.events, on_yield=show_event, on_return=done)
        stop_button.clicked.connect(job.cancel)
    """

    def __init__(self, function: Callable, **kwargs):
        self.function = function
        self.kwargs = kwargs
        self._child: _Child | None = None
        self._cancelled = threading.Event()

    def cancel(self) -> None:
        """Ask the job to stop at its next check (after the current batch)."""
        self._cancelled.set()
        if self._child is not None:
            self._child.interrupt()

    @property
    def cancelled(self) -> bool:
        """Whether :meth:`cancel` was called."""
        return self._cancelled.is_set()

    def events(self) -> Generator[object, None, Any]:
        """Start the child; yield its progress events; return its result (or raise its error).

        Meant to run in a napari worker thread
        (:func:`napari_spine_seg._napari._widgets._workers.start_worker`).
        """
        self._child = child = _Child()
        try:
            child.send(("job", self.function, (), self.kwargs))
            if self._cancelled.is_set():  # Stop pressed while the child started
                child.interrupt()
            while True:
                message = child.receive(timeout=0.2)
                if message is None:
                    continue
                if message[0] == "event":
                    yield message[1]
                else:
                    return _outcome(message)
        finally:
            child.stop()


# ------------------------------------------------------------- the child process's side

_MODELS: dict[tuple[str, int], Any] = {}


def _loaded(path: str | os.PathLike):
    """The model in `path`, loaded once per file version (one model kept at a time)."""
    path = Path(path).resolve()
    key = (str(path), path.stat().st_mtime_ns if path.exists() else 0)
    if key not in _MODELS:
        _MODELS.clear()
        _MODELS[key] = load_model(path)
    return _MODELS[key]


def load_model_info(path: str | os.PathLike):
    """Load the model file (checks it fully) and return its ModelInfo."""
    return _loaded(path).info


def predict_one(path: str | os.PathLike, pixels, tta: bool = False):
    """The whole :class:`~napari_spine_seg.model.predict.Prediction` of one image with
    the model in `path`: the trimap and probability, and a vertebra model's vertebrae,
    landmarks and faults (it travels back pickled, every field with it)."""
    return predict_images(_loaded(path), [pixels], tta=tta)[0]


def predict_arrays(path: str | os.PathLike, pixels, tta: bool = False):
    """``(trimap, probability)`` of one image with the model in `path`."""
    prediction = predict_one(path, pixels, tta)
    return prediction.trimap, prediction.probability


def predict_file(path: str | os.PathLike, image_path: str | os.PathLike, tta: bool = False):
    """``(trimap, probability)`` of one image file with the model in `path` (the file is
    read here, so only the prediction travels back)."""
    return predict_arrays(path, read_xray(image_path).pixels, tta)


def predict_priority(path: str | os.PathLike, image_path: str | os.PathLike):
    """The worst-first :class:`~napari_spine_seg.review.priority.Priority` of one image file."""
    trimap, probability = predict_arrays(path, read_xray(image_path).pixels)
    return review_priority(trimap, probability)


def _picklable(exc: BaseException) -> BaseException:
    if isinstance(exc, SpineSegError):
        return exc
    text = "".join(traceback.format_exception_only(type(exc), exc)).strip()
    return SpineSegError(None, f"unexpected error in the model process: {text}")


def _serve(receive: Connection, send: Connection) -> None:
    """The child's loop: answer requests until the pipe closes or None arrives."""
    cancel = threading.Event()
    signal.signal(signal.SIGUSR1, lambda *_: cancel.set())
    # background work: let the viewer have the CPU first when both want it
    os.nice(_NICENESS)
    send.send(("ready", None))
    while True:
        try:
            request = receive.recv()
        except EOFError:
            return
        if request is None:
            return
        kind, function, args, kwargs = request
        try:
            if kind == "job":
                cancel.clear()
                result = function(
                    *args,
                    progress=lambda event: send.send(("event", event)),
                    cancel=cancel,
                    **kwargs,
                )
            else:
                result = function(*args, **kwargs)
        except BaseException as exc:  # everything goes back to the GUI, as one line
            if not isinstance(exc, SpineSegError):
                traceback.print_exc()
            send.send(("error", _picklable(exc)))
        else:
            send.send(("done", result))


if __name__ == "__main__":
    _serve(
        Connection(int(sys.argv[1]), writable=False), Connection(int(sys.argv[2]), readable=False)
    )
