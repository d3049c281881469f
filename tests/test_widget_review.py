"""The review queue in a real viewer: open, paint, autosave, navigate, accept, resume, export.

Includes the kill test: a napari process reviewing a dataset is killed with SIGKILL
right after a brush stroke, and a new viewer resumes at the same image with the stroke.
"""

from __future__ import annotations

import os
import queue
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from _files import write_aasce
from _widget_helpers import new_widget, write_tiny_model
from napari_spine_seg.review.session import ACCEPTED, CORRECTED, DRAFT, UNREVIEWED, ReviewSession

WIDGET = "review_widget:ReviewWidget"

pytestmark = pytest.mark.gui
SHAPE = (128, 64)


@pytest.fixture
def dataset(tmp_path):
    return write_aasce(tmp_path / "phantoms")


def wait_shown(qtbot, widget, key):
    qtbot.waitUntil(lambda: widget._key == key, timeout=15_000)


def test_review_paint_autosave_navigate_accept_export(make_napari_viewer, qtbot, dataset, tmp_path):
    viewer = make_napari_viewer()
    widget = new_widget(viewer, WIDGET)
    widget.dataset_edit.value = dataset
    assert widget.folder_edit.value == dataset.with_name("phantoms-review")  # suggested
    widget.folder_edit.value = tmp_path / "review"
    widget.open_button.clicked()
    session = widget.session
    keys = list(session.keys)
    wait_shown(qtbot, widget, keys[0])
    assert [layer.name for layer in viewer.layers] == ["ph 00 AP", "ph 00 AP trimap"]
    labels = viewer.layers["ph 00 AP trimap"]
    assert np.array_equal(labels.data, session.current.load_trimap())  # no model: the labels
    assert "1 / 3" in widget.position.value and "unreviewed" in widget.position.value

    labels.brush_size = 6
    labels.paint((10, 5), 1)  # a stroke: autosaved as soon as napari has finished it
    qtbot.waitUntil(lambda: session.status() == DRAFT, timeout=1000)  # painted, not accepted
    saved = np.asarray(Image.open(session.trimap_path(keys[0])))
    assert saved[10, 5] == 1 and saved.shape == SHAPE

    widget.next_button.clicked()
    wait_shown(qtbot, widget, keys[1])
    assert [layer.name for layer in viewer.layers] == ["ph 01 AP", "ph 01 AP trimap"]
    widget.accept_button.clicked()  # accepted, on to the next unreviewed
    wait_shown(qtbot, widget, keys[2])
    assert session.status(keys[1]) == ACCEPTED
    assert session.counts() == {UNREVIEWED: 1, DRAFT: 1, ACCEPTED: 1, CORRECTED: 0}
    assert widget.counts.value == "1 unreviewed, 1 draft, 1 accepted, 0 corrected"

    from qtpy.QtCore import Qt

    canvas = viewer.window._qt_viewer.canvas.native
    qtbot.keyClick(canvas, Qt.Key_PageUp)
    wait_shown(qtbot, widget, keys[1])
    qtbot.keyClick(canvas, Qt.Key_PageUp)
    wait_shown(qtbot, widget, keys[0])
    assert viewer.layers["ph 00 AP trimap"].data[10, 5] == 1  # the saved correction is shown
    widget.accept_button.clicked()  # accepted after painting: corrected
    wait_shown(qtbot, widget, keys[2])
    assert session.status(keys[0]) == CORRECTED

    widget.export_edit.value = tmp_path / "export"
    widget.colour_check.value = True
    widget.export_button.clicked()
    qtbot.waitUntil(lambda: hasattr(widget, "last_export"), timeout=15_000)
    written = sorted(
        p.relative_to(tmp_path / "export").as_posix() for p in widget.last_export.written
    )
    assert written == [
        "training/colour/ph 00 AP.png",
        "training/colour/ph 01 AP.png",
        "training/overlay/ph 00 AP.png",
        "training/overlay/ph 01 AP.png",
        "training/ph 00 AP.png",
        "training/ph 01 AP.png",
    ]
    assert widget.message.value.startswith("wrote 2 trimaps, 2 colour trimaps, 2 overlays")


def test_untouched_image_stays_unreviewed_through_timed_autosaves(
    make_napari_viewer, qtbot, dataset, tmp_path
):
    viewer = make_napari_viewer()
    widget = new_widget(viewer, WIDGET)
    widget.folder_edit.value = tmp_path / "review"
    widget.dataset_edit.value = dataset
    widget.open_review()
    wait_shown(qtbot, widget, widget.session.keys[0])
    qtbot.wait(1500)  # the autosave timer fires at least once
    assert widget.session.status() == UNREVIEWED
    labels = widget.trimap_layer
    labels.data[0:3, 0:3] = 1  # a change napari does not announce (like undo)
    qtbot.waitUntil(lambda: widget.session.status() == DRAFT, timeout=5_000)


def read_line_starting(proc, prefix: str, timeout: float) -> str:
    """The first line of `proc`'s stdout that starts with `prefix` ("" if none in time)."""
    lines: queue.Queue = queue.Queue()
    threading.Thread(target=lambda: [lines.put(x) for x in proc.stdout], daemon=True).start()
    deadline = time.monotonic() + timeout
    while (left := deadline - time.monotonic()) > 0:
        try:
            line = lines.get(timeout=left)
        except queue.Empty:
            break
        if line.startswith(prefix):
            return line.strip()
    return ""


_REVIEWER = textwrap.dedent(
    """
    import sys
    import napari
    from qtpy.QtCore import QTimer
    from napari_spine_seg._napari._widgets.review_widget import ReviewWidget

    viewer = napari.Viewer()
    widget = ReviewWidget(viewer)
    viewer.window.add_dock_widget(widget)
    widget.dataset_edit.value = sys.argv[1]
    widget.folder_edit.value = sys.argv[2]
    widget.open_review()

    def step():
        if widget._key is None:
            return
        if widget.session.index == 0:
            widget.next_image()  # review the second image
            return
        timer.stop()
        labels = widget.trimap_layer
        labels.brush_size = 8
        labels.paint((40, 10), 3)
        # the stroke is saved on the next turn of the event loop; say so after it
        QTimer.singleShot(50, lambda: print("painted", widget._key, flush=True))

    timer = QTimer()
    timer.timeout.connect(step)
    timer.start(100)
    napari.run()
    """
)


def test_killed_napari_resumes_at_the_same_image_with_the_edit(
    make_napari_viewer, qtbot, dataset, tmp_path
):
    folder = tmp_path / "review"
    proc = subprocess.Popen(
        [sys.executable, "-c", _REVIEWER, os.fspath(dataset), os.fspath(folder)],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        line = read_line_starting(proc, "painted ", timeout=120)
    finally:
        proc.send_signal(signal.SIGKILL)  # no chance to save anything on the way out
        proc.wait(timeout=30)
    assert line.startswith("painted ")
    painted_key = line[len("painted ") :]

    viewer = make_napari_viewer()
    widget = new_widget(viewer, WIDGET)
    widget.folder_edit.value = folder  # the review folder alone: it names its dataset
    widget.open_review()
    assert widget.session.current_key == painted_key == ReviewSession.open(folder).keys[1]
    wait_shown(qtbot, widget, painted_key)
    assert widget.session.status() == DRAFT
    data = widget.trimap_layer.data
    assert data[40, 10] == 3 and data[40, 14] == 3
    assert Path(widget.dataset_edit.value) == dataset.resolve()


def test_review_with_a_model_worst_first(make_napari_viewer, qtbot, dataset, tmp_path):
    from napari_spine_seg._napari._widgets._state import ModelRef, viewer_state
    from napari_spine_seg.model.files import read_metadata

    model = write_tiny_model(tmp_path / "tiny.keras")
    viewer = make_napari_viewer()
    viewer_state(viewer).set_model(ModelRef(model, read_metadata(model)))
    widget = new_widget(viewer, WIDGET)
    assert widget.model_label.value == "tiny.keras"
    widget.dataset_edit.value = dataset
    widget.folder_edit.value = tmp_path / "review"
    widget.order.value = "worst"
    widget.open_review()
    qtbot.waitUntil(lambda: widget.session.order == "worst", timeout=120_000)
    session = widget.session
    wait_shown(qtbot, widget, session.keys[0])  # a fresh review starts at the worst
    assert session.index == 0
    stem = Path(session.current.name).stem
    assert [layer.name for layer in viewer.layers] == [
        stem,
        f"{stem} probability",
        f"{stem} trimap",
    ]
    assert viewer.layers[f"{stem} probability"].visible is False
    assert widget.message.value == "showing prediction"
    trimap = viewer.layers[f"{stem} trimap"].data
    assert trimap.shape == SHAPE and set(np.unique(trimap)) <= {1, 2, 3}
    # a prediction: measured as one by the Spine curve widget, and saved with its mark
    assert viewer.layers[f"{stem} trimap"].metadata["spine_seg"]["predicted"] is True
    assert session.began_as_prediction(session.current_key)
    assert ReviewSession.open(tmp_path / "review").order == "worst"  # saved with the state


def add_test_split(root: Path, n: int = 2) -> Path:
    """A test split beside the training split of `write_aasce`."""
    write_aasce(root, {"test": (n, 50)}, name="ph {split} {i:02d}.jpg")
    return root / "data" / "test"


def test_a_split_review_reopens_from_its_folder_as_it_was_with_kept_predictions(
    make_napari_viewer, qtbot, dataset, tmp_path
):
    from napari_spine_seg._napari._widgets._state import ModelRef, viewer_state
    from napari_spine_seg.jobs import model_process
    from napari_spine_seg.model.files import read_metadata

    test_split = add_test_split(dataset)
    model = write_tiny_model(tmp_path / "tiny.keras")
    folder = tmp_path / "review"
    viewer = make_napari_viewer()
    viewer_state(viewer).set_model(ModelRef(model, read_metadata(model)))
    widget = new_widget(viewer, WIDGET)
    widget.dataset_edit.value = test_split
    widget.folder_edit.value = folder
    widget.order.value = "worst"
    widget.open_review()
    qtbot.waitUntil(lambda: widget.last_ranking is not None, timeout=120_000)
    assert len(widget.last_ranking.predicted) == 2  # every image of the split, once
    session = widget.session
    wait_shown(qtbot, widget, session.keys[0])
    keys = list(session.keys)
    assert len(keys) == 2 and all(k.startswith("test/") for k in keys)
    # the queue says why each image ranks where it does
    entries = [widget.queue_box.native.itemText(i) for i in range(widget.queue_box.native.count())]
    assert [e for e in entries if e != "-----"] == [  # "-----": no image
        f"{i + 1}. {k}  ({session.priorities[k].describe()})" for i, k in enumerate(keys)
    ]
    assert widget.why.value.startswith("ranked 1 of 2: ") and " gap" in widget.why.value
    assert widget.close_review()
    state_file = folder / "review.json"
    before = (state_file.read_bytes(), state_file.stat().st_mtime_ns)

    model_process.shutdown()  # any later model call would start a new model process
    viewer2 = make_napari_viewer()
    viewer_state(viewer2).set_model(ModelRef(model, read_metadata(model)))
    again = new_widget(viewer2, WIDGET)
    again.folder_edit.value = folder  # the review folder alone
    assert again.order.value == "file"  # the drop-down's default must not win
    again.open_review()
    wait_shown(qtbot, again, keys[0])
    assert again.session.keys == keys and again.session.order == "worst"
    assert again.order.value == "worst"
    assert Path(again.dataset_edit.value) == test_split.resolve()
    assert again.message.value == "showing prediction"
    assert again.why.value.startswith("ranked 1 of 2: ")
    qtbot.wait(1200)  # the autosave timer runs at least once: nothing is written
    assert (state_file.read_bytes(), state_file.stat().st_mtime_ns) == before
    assert model_process._server is None  # the prediction shown came from the review folder

    again.order.value = "file"  # the person reorders...
    assert again.session.order == "file" and again.why.value == "file order"
    again.order.value = "worst"  # ...and back: ranked from the kept predictions
    qtbot.waitUntil(lambda: again.last_ranking is not None, timeout=60_000)
    assert again.last_ranking.predicted == [] and again.session.keys == keys
    assert model_process._server is None
    assert again.message.value.startswith("ordered worst first: 0 predicted, 2 kept")

    # the same folder with the training split: one line naming both, nothing changes
    state = state_file.read_bytes()
    again.dataset_edit.value = dataset / "data" / "training"
    again.open_review()
    training = (dataset / "data" / "training").resolve()
    assert again.message.value.endswith(
        f"is the review of {test_split.resolve()}, not of {training}"
    )
    assert "\n" not in again.message.value
    assert again.session.keys == keys and state_file.read_bytes() == state


def test_a_painted_image_is_a_draft_until_accepted_and_export_says_so(
    make_napari_viewer, qtbot, dataset, tmp_path
):
    viewer = make_napari_viewer()
    widget = new_widget(viewer, WIDGET)
    widget.dataset_edit.value = dataset
    widget.folder_edit.value = tmp_path / "review"
    widget.open_review()
    session = widget.session
    wait_shown(qtbot, widget, session.keys[0])
    widget.trimap_layer.paint((20, 20), 1)
    qtbot.waitUntil(lambda: session.status() == DRAFT, timeout=5_000)
    assert "(draft)" in widget.position.value
    widget.export_edit.value = tmp_path / "export"
    widget.export()
    qtbot.waitUntil(lambda: hasattr(widget, "last_export"), timeout=15_000)
    assert widget.last_export.trimaps == []
    assert widget.message.value.startswith(
        "wrote 0 trimaps; 2 unreviewed images left out; 1 draft (painted, never accepted) "
        "left out: accept to export"
    )


def test_an_image_that_loads_while_the_viewer_closes_is_not_shown(
    make_napari_viewer, qtbot, dataset, tmp_path
):
    # the load landed in the closed viewer, whose layer controls were gone: napari raised
    viewer = make_napari_viewer()
    widget = new_widget(viewer, WIDGET)
    widget.dataset_edit.value = dataset
    widget.folder_edit.value = tmp_path / "review"
    widget.open_review()
    keys = list(widget.session.keys)
    wait_shown(qtbot, widget, keys[0])
    widget.next_image()  # the next image loads in a thread...
    viewer.close()  # ...and comes back after the viewer closed
    qtbot.waitUntil(lambda: not widget._workers, timeout=15_000)
    qtbot.wait(100)
    assert widget.viewer_closed and widget._key is None
    assert list(viewer.layers) == []
