"""The review widget keeps the data set read-only, its folder to itself, and never closes
an image whose edits could not be saved; in a real viewer."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from _files import write_aasce_layout
from _widget_helpers import new_widget, tree_checksums
from napari_spine_seg.review.session import DRAFT, STATE_FILE, UNREVIEWED

WIDGET = "review_widget:ReviewWidget"

pytestmark = pytest.mark.gui


@pytest.fixture
def dataset(tmp_path):
    return write_aasce_layout(tmp_path / "phantoms", n_train=3, n_test=0, size=(120, 48))


def errors(notes) -> list[str]:
    return [str(n.message) for n in notes if n.severity.name == "ERROR"]


def open_shown(qtbot, widget, dataset, folder):
    widget.dataset_edit.value = dataset
    widget.folder_edit.value = folder
    widget.open_review()
    qtbot.waitUntil(lambda: widget._key is not None, timeout=15_000)
    return widget.session


def test_a_review_folder_inside_the_data_set_is_one_line_and_writes_nothing(
    make_napari_viewer, dataset, napari_notifications
):
    viewer = make_napari_viewer()
    widget = new_widget(viewer, WIDGET)
    widget.dataset_edit.value = dataset / "data" / "training"
    # the suggestion lies beside the data set, not in data/
    assert widget.folder_edit.value == dataset.with_name("phantoms-training-review")
    before = tree_checksums(dataset)
    for folder in (dataset, dataset / "data" / "training", dataset / "labels" / "review"):
        widget.folder_edit.value = folder
        widget.open_review()
    assert widget.session is None and len(viewer.layers) == 0
    shown = errors(napari_notifications)
    assert len(shown) == 3 and all("data set" in line and "\n" not in line for line in shown)
    assert tree_checksums(dataset) == before


def test_export_into_the_data_set_is_refused(
    make_napari_viewer, qtbot, dataset, tmp_path, napari_notifications
):
    viewer = make_napari_viewer()
    widget = new_widget(viewer, WIDGET)
    session = open_shown(qtbot, widget, dataset, tmp_path / "review")
    widget.accept_and_next()
    qtbot.waitUntil(lambda: widget._key == session.keys[1], timeout=15_000)
    before = tree_checksums(dataset)
    widget.export_edit.value = dataset / "labels" / "training"
    widget.export_button.clicked()
    assert len(errors(napari_notifications)) == 1
    assert "is inside the data set folder" in widget.message.value
    assert tree_checksums(dataset) == before
    assert not list((tmp_path / "review").glob(".snapshot-*"))


_HOLDER = textwrap.dedent(
    """
    import sys, time
    from napari_spine_seg.review.session import ReviewSession

    session = ReviewSession.open(sys.argv[1], sys.argv[2])
    print("open", flush=True)
    time.sleep(600)
    """
)


def test_a_folder_open_in_another_process_is_one_line_naming_it(
    make_napari_viewer, dataset, tmp_path, napari_notifications
):
    folder = tmp_path / "review"
    holder = subprocess.Popen(
        [sys.executable, "-c", _HOLDER, os.fspath(folder), os.fspath(dataset)],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "open"
        viewer = make_napari_viewer()
        widget = new_widget(viewer, WIDGET)
        widget.dataset_edit.value = dataset
        widget.folder_edit.value = folder
        widget.open_review()
        assert widget.session is None and len(viewer.layers) == 0
        (line,) = errors(napari_notifications)
        assert f"is open in another review (process {holder.pid} on " in line
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait(timeout=30)


def test_an_image_whose_save_fails_stays_open_with_its_edits(
    make_napari_viewer, qtbot, dataset, tmp_path, napari_notifications
):
    # tests run as root, where chmod stops no write: the review folder's trimaps/ is
    # made unwritable by a file of that name, its state file by a folder of that name
    viewer = make_napari_viewer()
    widget = new_widget(viewer, WIDGET)
    folder = tmp_path / "review"
    session = open_shown(qtbot, widget, dataset, folder)
    key = session.current_key
    blocker = folder / "trimaps"
    blocker.write_text("in the way")
    labels = widget.trimap_layer
    labels.data[0:4, 0:4] = 1  # an edit not yet autosaved
    edited = labels.data.copy()

    widget.next_image()
    assert len(errors(napari_notifications)) == 1  # told once
    assert "trimaps" in errors(napari_notifications)[0]
    qtbot.wait(2500)  # the autosave timer keeps trying, quietly
    assert len(errors(napari_notifications)) == 1
    assert widget._key == key == session.current_key
    assert widget.trimap_layer is labels and labels in viewer.layers
    assert np.array_equal(labels.data, edited)

    widget.accept_and_next()  # Accept fails too: one line, still on the image
    assert len(errors(napari_notifications)) == 2
    assert widget._key == key and session.status(key) == UNREVIEWED
    widget.previous_image()
    assert len(errors(napari_notifications)) == 3 and widget._key == key

    blocker.unlink()  # writable again: the timer's autosave saves the edits
    qtbot.waitUntil(lambda: session.status(key) == DRAFT, timeout=5_000)
    assert np.array_equal(session.reviewed_trimap(key)[0:4, 0:4], edited[0:4, 0:4])

    (folder / STATE_FILE).unlink()  # now the state cannot be saved: moving is refused
    (folder / STATE_FILE).mkdir()
    widget.next_image()
    assert len(errors(napari_notifications)) == 4
    assert widget._key == key == session.current_key and labels in viewer.layers
    (folder / STATE_FILE).rmdir()
    widget.next_image()
    qtbot.waitUntil(lambda: widget._key == session.keys[1], timeout=15_000)
    assert labels not in viewer.layers
    assert len(errors(napari_notifications)) == 4
