"""napari side of a read-only data set: the writer refuses the data set's folders, the
reader warns about unlabelled images, the stack reports on the GUI thread. Real viewer."""

from __future__ import annotations

import os
import threading

import numpy as np
import pytest

from _files import truncate_file, write_aasce_layout, write_png
from _widget_helpers import tree_checksums
from napari_spine_seg._napari._stack import _SliceLoader
from napari_spine_seg.data.masks import read_trimap_png
from napari_spine_seg.errors import SpineSegError

pytestmark = pytest.mark.gui
PLUGIN = "napari-spine-seg"
REFUSED = r"(is the data set folder|is inside the data set folder|is a file this layer was opened)"


def _warnings(notes) -> list[str]:
    return [str(n.message) for n in notes if n.severity.name == "WARNING"]


def _save(viewer, layer, path):
    viewer.layers.selection = {layer}
    return viewer.layers.save(os.fspath(path), selected=True, plugin=PLUGIN)


def test_a_stack_is_never_saved_into_its_data_set(make_napari_viewer, tmp_path):
    root = write_aasce_layout(tmp_path / "set", n_train=2, n_test=1, size=(120, 48))
    viewer = make_napari_viewer()
    _, labels, _ = viewer.open(os.fspath(root / "data" / "training"), plugin=PLUGIN)
    labels.paint((0, 5, 5), 1)
    before = tree_checksums(root)
    for target in (
        root / "trimaps.png",  # <dataset>/trimaps/
        root / "data" / "training.png",  # data/training/ itself
        root / "labels" / "training" / "fixed.png",
        root / "data" / "test" / "x.png",  # another split of the same data set
    ):
        with pytest.raises(SpineSegError, match=REFUSED):
            _save(viewer, labels, target)
    assert tree_checksums(root) == before
    written = _save(viewer, labels, tmp_path / "out.png")  # beside the data set: fine
    assert len(written) == 2 and read_trimap_png(written[0])[5, 5] == 1


def test_a_file_layer_is_never_saved_over_its_file_or_into_its_data_set(
    make_napari_viewer, tmp_path
):
    root = write_aasce_layout(tmp_path / "set", n_train=1, n_test=0, size=(120, 48))
    (image_file,) = sorted((root / "data" / "training").iterdir())
    viewer = make_napari_viewer()
    _, trimap, _ = viewer.open(os.fspath(image_file), plugin=PLUGIN)  # with its landmarks
    before = tree_checksums(root)
    for target in (
        image_file.with_suffix(".png"),
        root / "labels" / "training" / "t.png",
        root / "t.png",
    ):
        with pytest.raises(SpineSegError, match=REFUSED):
            _save(viewer, trimap, target)
    assert tree_checksums(root) == before

    # a lone trimap file: never saved over itself; beside it is fine
    lone = tmp_path / "lone" / "t.png"
    write_png(lone, np.full((20, 10), 2, np.uint8))
    (layer,) = viewer.open(os.fspath(lone), plugin=PLUGIN)
    lone_bytes = lone.read_bytes()
    with pytest.raises(SpineSegError, match="is a file this layer was opened from"):
        _save(viewer, layer, lone)
    assert lone.read_bytes() == lone_bytes
    assert _save(viewer, layer, lone.with_name("t2.png")) == [os.fspath(lone.with_name("t2.png"))]


def test_a_split_with_unlabelled_images_or_missing_names_warns(
    make_napari_viewer, tmp_path, napari_notifications
):
    root = write_aasce_layout(tmp_path / "set", n_train=3, n_test=0, size=(120, 48))
    labels = root / "labels" / "training"
    names = sorted(p.name for p in (root / "data" / "training").iterdir())
    # one image loses its landmarks (its .mat, and its row of filenames.csv)
    (labels / f"{names[1]}.mat").unlink()
    listed = (labels / "filenames.csv").read_text().splitlines()
    (labels / "filenames.csv").write_text(
        "\n".join(n if n != names[1] else "gone.jpg" for n in listed) + "\n"
    )
    viewer = make_napari_viewer()
    image, _, _ = viewer.open(os.fspath(root / "data" / "training"), plugin=PLUGIN)
    assert image.data.shape[0] == 3  # it opens
    shown = _warnings(napari_notifications)
    assert any(names[1] in m and "no landmarks or trimap" in m for m in shown), shown
    assert any("filenames.csv" in m and "gone.jpg" in m for m in shown), shown
    assert all("\n" not in m for m in shown)


def test_a_slice_read_in_a_worker_thread_warns_on_the_gui_thread(
    make_napari_viewer, qtbot, tmp_path, napari_notifications
):
    from napari.utils.notifications import notification_manager

    make_napari_viewer()  # a Qt application with napari's notification area
    bad = tmp_path / "bad.png"
    write_png(bad, np.zeros((40, 30), np.uint8))
    truncate_file(bad, 0.2)
    threads = []

    def note_thread(_):
        threads.append(threading.current_thread() is threading.main_thread())

    notification_manager.notification_ready.connect(note_thread)

    def unreadable():
        from napari_spine_seg.data.images import read_xray

        return read_xray(bad).pixels

    loader = _SliceLoader((40, 30), np.uint8, "image")
    results = []
    worker = threading.Thread(target=lambda: results.append(loader(0, unreadable, bad.name)))
    try:
        worker.start()
        worker.join(timeout=30)
        assert results and not results[0].any()  # shown empty
        qtbot.waitUntil(lambda: bool(_warnings(napari_notifications)), timeout=5_000)
    finally:
        notification_manager.notification_ready.disconnect(note_thread)
    assert threads == [True]  # dispatched on the GUI thread, not the worker's
    (line,) = _warnings(napari_notifications)
    assert "bad.png" in line and "slice is shown empty" in line
