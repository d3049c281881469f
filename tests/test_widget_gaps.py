"""The gap inspector in a real viewer: find, list, mark, visit, refresh after an edit."""

from __future__ import annotations

import numpy as np
import pytest

from napari_spine_seg.trimap import trimap_from_mask

pytestmark = pytest.mark.gui


def broken_column(shape=(128, 64)):
    mask = np.zeros(shape, dtype=bool)
    mask[8:-8, 24:40] = True
    mask[60:72] = False  # a break
    return trimap_from_mask(mask, border=2)


def new_widget(viewer):
    from napari.utils._proxies import PublicOnlyProxy

    from napari_spine_seg._napari._widgets.gaps_widget import GapsWidget

    widget = GapsWidget(PublicOnlyProxy(viewer))  # as napari hands it to plugins
    viewer.window.add_dock_widget(widget)
    return widget


@pytest.fixture
def viewer(make_napari_viewer):
    viewer = make_napari_viewer()
    viewer.add_image(np.zeros((128, 64), np.uint8), name="x")
    viewer.add_labels(broken_column(), name="x trimap")
    return viewer


def wait_analysed(qtbot, widget):
    qtbot.waitUntil(lambda: not widget._workers and widget.summary.value != "–", timeout=10_000)


def test_finds_marks_and_visits_a_break(viewer, qtbot):
    widget = new_widget(viewer)
    assert widget.trimap.value == viewer.layers["x trimap"]  # the active labels layer
    widget.analyse_button.clicked()
    wait_analysed(qtbot, widget)
    assert [g.kind for g in widget.gaps] == ["break"]
    gap = widget.gaps[0]
    assert 60 <= gap.row < 72 and 12 <= gap.height <= 16  # the border band eats 2 px a side
    assert widget.table.data.to_list() == [["break", gap.row, gap.col, gap.height]]
    points = viewer.layers["x trimap gaps"]
    assert points.data.tolist() == [[gap.row, gap.col]]
    assert list(points.features["kind"]) == ["break"]

    viewer.scene.camera.center = (0, 0)
    widget.next_button.clicked()
    assert widget.current == 0
    assert np.allclose(viewer.scene.camera.center[-2:], (gap.row, gap.col))
    assert viewer.scene.camera.zoom > 1.0
    assert "gap 1/1: break" in widget.summary.value


def test_refreshes_after_an_edit(viewer, qtbot):
    widget = new_widget(viewer)
    widget.analyse()
    wait_analysed(qtbot, widget)
    assert len(widget.gaps) == 1
    labels = viewer.layers["x trimap"]
    labels.paint((66, 32), 1, refresh=True)  # too small to bridge it: a brush of 10 px
    labels.brush_size = 30
    labels.paint((66, 32), 1, refresh=True)  # a stroke across the break mends it
    qtbot.waitUntil(lambda: widget.gaps == [] and not widget._workers, timeout=10_000)
    assert widget.summary.value == "no gaps"
    assert len(viewer.layers["x trimap gaps"].data) == 0


def test_uses_the_probability_layer_for_low_confidence(make_napari_viewer, qtbot):
    viewer = make_napari_viewer()
    mask = np.zeros((128, 64), dtype=bool)
    mask[8:-8, 24:40] = True
    probability = np.where(mask, 0.95, 0.02).astype(np.float32)
    probability[30:50] = np.where(mask[30:50], 0.3, 0.02)
    viewer.add_image(probability, name="x probability")
    viewer.add_labels(trimap_from_mask(mask, border=2), name="x trimap")
    widget = new_widget(viewer)
    widget.analyse()
    wait_analysed(qtbot, widget)
    assert [g.kind for g in widget.gaps] == ["low-confidence"]


def test_keyboard_shortcuts_visit_gaps(viewer, qtbot):
    from qtpy.QtCore import Qt

    widget = new_widget(viewer)
    twice = np.full((128, 64), 2, np.uint8)
    twice[8:120, 24:40] = 1
    twice[40:48, 24:40] = 2  # two breaks
    twice[80:88, 24:40] = 2
    viewer.add_labels(twice, name="y trimap")
    widget.trimap.value = viewer.layers["y trimap"]
    widget.analyse()
    wait_analysed(qtbot, widget)
    assert [g.kind for g in widget.gaps] == ["break", "break"]
    canvas = viewer.window._qt_viewer.canvas.native
    qtbot.keyClick(canvas, Qt.Key_G)
    assert widget.current == 0
    qtbot.keyClick(canvas, Qt.Key_G)
    assert widget.current == 1
    qtbot.keyClick(canvas, Qt.Key_G, Qt.ShiftModifier)
    assert widget.current == 0


def test_markers_go_with_their_trimap(viewer, qtbot):
    widget = new_widget(viewer)
    widget.analyse()
    wait_analysed(qtbot, widget)
    assert "x trimap gaps" in viewer.layers
    viewer.layers.remove("x trimap")  # e.g. the review queue moved to its next image
    assert "x trimap gaps" not in viewer.layers
    assert widget.gaps == [] and widget.summary.value == "–"
