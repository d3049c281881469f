"""The model child process: a call that hangs is reported and killed, not waited on forever."""

from __future__ import annotations

import os
import threading
import time

import pytest

from napari_spine_seg.errors import SpineSegError
from napari_spine_seg.jobs import model_process


@pytest.fixture(autouse=True)
def fresh_model_process():
    model_process.shutdown()
    yield
    model_process.shutdown()


def test_a_hung_call_is_reported_and_the_child_killed():
    first = model_process.call(os.getpid, timeout_s=120)  # starts the child
    assert first != os.getpid()
    start = time.monotonic()
    with pytest.raises(SpineSegError) as caught:
        model_process.call(time.sleep, 600, timeout_s=2)
    waited = time.monotonic() - start
    assert str(caught.value) == (
        "the model process did not answer in 2 s; it was stopped (the next call starts a new one)"
    )
    assert waited < 60  # 2 s, with room for a loaded machine; not the 600 s sleep
    # the hung child is gone, and the next call gets a new one
    with pytest.raises(ProcessLookupError):
        os.kill(first, 0)
    second = model_process.call(os.getpid, timeout_s=120)
    assert second not in (first, os.getpid())


def test_a_call_waiting_behind_a_hung_one_is_not_blocked_for_ever():
    model_process.call(os.getpid, timeout_s=120)
    outcomes = {}

    def hang():
        try:
            model_process.call(time.sleep, 600, timeout_s=3)
        except SpineSegError as exc:
            outcomes["hung"] = str(exc)

    hung = threading.Thread(target=hang)
    hung.start()
    time.sleep(0.5)  # the hung call holds the model process
    # the next call waits for its turn, then is served by a new child
    outcomes["next"] = model_process.call(os.getpid, timeout_s=120)
    hung.join(timeout=60)
    assert outcomes["hung"].startswith("the model process did not answer in 3 s")
    assert isinstance(outcomes["next"], int)


def test_exit_does_not_wait_for_a_hung_child():
    model_process.call(os.getpid, timeout_s=120)
    errors = []

    def hang():
        try:
            model_process.call(time.sleep, 600, timeout_s=600)
        except SpineSegError as exc:
            errors.append(str(exc))

    hung = threading.Thread(target=hang, daemon=True)
    hung.start()
    time.sleep(0.5)
    start = time.monotonic()
    model_process.shutdown()  # what napari's exit runs (atexit)
    assert time.monotonic() - start < 30  # about 2 s: not the 600 s the call would wait
    hung.join(timeout=30)
    assert not hung.is_alive()
    assert errors and errors[0].startswith("the model process stopped unexpectedly")
