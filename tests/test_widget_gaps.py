"""The gap inspector in a real viewer: find, list, mark, visit, refresh after an edit."""

from __future__ import annotations

import numpy as np
import pytest

from _widget_helpers import new_widget
from napari_spine_seg.trimap import trimap_from_mask

WIDGET = "gaps_widget:GapsWidget"

pytestmark = pytest.mark.gui

#: milliseconds after an edit by which the widget has started analysing again
REFRESH_WAIT = 600


def broken_column(shape=(128, 64)):
    mask = np.zeros(shape, dtype=bool)
    mask[8:-8, 24:40] = True
    mask[60:72] = False  # a break
    return trimap_from_mask(mask, border=2)


@pytest.fixture
def viewer(make_napari_viewer):
    viewer = make_napari_viewer()
    viewer.add_image(np.zeros((128, 64), np.uint8), name="x")
    viewer.add_labels(broken_column(), name="x trimap")
    return viewer


def shown(part):
    """Whether a part of a widget shows (once the widget is on the screen)."""
    return part.native.isVisibleTo(part.native.window())


def wait_analysed(qtbot, widget):
    qtbot.waitUntil(lambda: not widget._workers and widget.summary.value != "–", timeout=10_000)


def test_finds_marks_and_visits_a_break(viewer, qtbot):
    widget = new_widget(viewer, WIDGET)
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
    widget = new_widget(viewer, WIDGET)
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
    viewer.add_image(probability, name="x probability")  # as the review queue names them
    viewer.add_labels(trimap_from_mask(mask, border=2), name="x trimap")
    widget = new_widget(viewer, WIDGET)
    widget.analyse()
    wait_analysed(qtbot, widget)
    assert [g.kind for g in widget.gaps] == ["low-confidence"]


def test_keyboard_shortcuts_visit_gaps(viewer, qtbot):
    from qtpy.QtCore import Qt

    widget = new_widget(viewer, WIDGET)
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
    widget = new_widget(viewer, WIDGET)
    widget.analyse()
    wait_analysed(qtbot, widget)
    assert "x trimap gaps" in viewer.layers
    viewer.layers.remove("x trimap")  # e.g. the review queue moved to its next image
    assert "x trimap gaps" not in viewer.layers
    assert widget.gaps == [] and widget.summary.value == "–"


def test_painting_over_a_low_confidence_stretch_settles_it(make_napari_viewer, qtbot):
    """The person's strokes are certain: the stretch they painted is no longer listed
    (the probability layer, the model's, does not change; the widget overlays the strokes)."""
    viewer = make_napari_viewer()
    mask = np.zeros((128, 64), dtype=bool)
    mask[8:-8, 24:40] = True
    probability = np.where(mask, 0.95, 0.02).astype(np.float32)
    probability[30:50] = np.where(mask[30:50], 0.3, 0.02)
    viewer.add_image(probability, name="x predicted probability")
    labels = viewer.add_labels(trimap_from_mask(mask, border=2), name="x predicted trimap")
    widget = new_widget(viewer, WIDGET)
    widget.analyse()
    wait_analysed(qtbot, widget)
    assert [g.kind for g in widget.gaps] == ["low-confidence"]
    before = widget.gaps[0]
    labels.brush_size = 14  # spine painted over the stretch, inside the column's width
    for row in range(26, 56, 4):
        labels.paint((row, 32), 1, refresh=True)
    qtbot.waitUntil(lambda: widget.gaps != [before] and not widget._workers, timeout=10_000)
    assert widget.gaps == [] and widget.summary.value == "no gaps"
    assert np.array_equal(viewer.layers["x predicted probability"].data, probability)


def test_a_gap_ticked_checked_stays_checked(viewer, qtbot):
    from qtpy.QtCore import Qt

    widget = new_widget(viewer, WIDGET)
    widget.analyse()
    wait_analysed(qtbot, widget)
    assert widget.checked == [False]
    widget.table.native.item(0, 0).setCheckState(Qt.Checked)  # the person ticks it
    assert widget.checked == [True]
    assert widget.summary.value == "1 break (1 of 1 checked)"
    labels = viewer.layers["x trimap"]
    stored = labels.metadata["spine_seg"]["checked_gaps"]["image"]
    assert stored == [widget.gaps[0].to_dict()]
    labels.paint((20, 32), 2, refresh=True)  # an edit away from the break: analysed again
    qtbot.waitUntil(lambda: not widget._workers and widget.summary.value != "–", timeout=10_000)
    qtbot.wait(REFRESH_WAIT)
    wait_analysed(qtbot, widget)
    assert widget.checked == [True]
    assert widget.table.native.item(0, 0).checkState() == Qt.Checked
    widget.current = 0
    widget.toggle_checked()  # the button: unticked again
    assert widget.checked == [False] and labels.metadata["spine_seg"]["checked_gaps"] == {}


def test_checked_gaps_of_a_review_are_kept_in_its_folder(make_napari_viewer, qtbot, tmp_path):
    import json

    from PIL import Image

    from napari_spine_seg._napari._widgets._state import viewer_state
    from napari_spine_seg.review.session import ReviewSession

    data = tmp_path / "set"
    data.mkdir()
    Image.fromarray(np.zeros((128, 64), np.uint8)).save(data / "a.jpg", quality=90)
    session = ReviewSession.open(tmp_path / "review", data)
    viewer = make_napari_viewer()
    viewer_state(viewer).set_review(session)
    viewer.add_labels(broken_column(), name="a trimap", metadata={"spine_seg": {"review": "a.jpg"}})
    widget = new_widget(viewer, WIDGET)
    widget.analyse()
    wait_analysed(qtbot, widget)
    widget.set_checked(0)
    saved = json.loads((tmp_path / "review" / "gaps-checked.json").read_text())
    assert saved["images"] == {"a.jpg": [widget.gaps[0].to_dict()]}
    # the review reopened later: the tick comes back
    other = new_widget(viewer, WIDGET)
    other.trimap.value = viewer.layers["a trimap"]
    other.analyse()
    wait_analysed(qtbot, other)
    assert other.checked == [True]


def test_an_empty_trimap_has_no_spine(viewer, qtbot):
    widget = new_widget(viewer, WIDGET)
    for data in (np.zeros((128, 64), np.uint8), np.full((128, 64), 2, np.uint8)):
        layer = viewer.add_labels(data, name="empty")
        widget.trimap.value = layer
        widget.analyse()
        wait_analysed(qtbot, widget)
        assert widget.summary.value == "no spine"
        assert widget.gaps == [] and not shown(widget.verdict)
        assert len(viewer.layers["empty gaps"].data) == 0
        viewer.layers.remove(layer)


def test_an_implausible_prediction_is_flagged_as_a_whole(viewer, qtbot):
    widget = new_widget(viewer, WIDGET)
    widget.analyse()
    wait_analysed(qtbot, widget)
    assert not shown(widget.verdict)  # a broken column is still a spine
    blob = np.full((128, 64), 2, np.uint8)
    blob[50:70, 4:60] = 1  # a short, wide patch: no spine looks so
    for row in range(8, 120, 10):
        blob[row : row + 3, 30:34] = 1  # and specks along the middle
    viewer.add_labels(blob, name="blob")
    widget.trimap.value = viewer.layers["blob"]
    widget.analyse()
    wait_analysed(qtbot, widget)
    assert shown(widget.verdict)
    assert widget.verdict.value.startswith("⚠ not like a spine: ")
    assert "times as wide as tall" in widget.verdict.value
    assert "pieces of spine label" in widget.verdict.value


def test_a_vertebrae_layer_without_17_bodies_is_a_fault(make_napari_viewer, qtbot):
    """Predict's ``<image> vertebrae`` with two bodies merged (16) is listed, on the merged
    body; with all 17 it is not."""
    from napari_spine_seg.spine.vertebra_labels import vertebra_labels
    from napari_spine_seg.trimap import trimap_from_landmarks
    from test_cobb import make_spine
    from test_vertebra_count import merged

    landmarks, shape = make_spine(np.random.default_rng(4))
    bodies = vertebra_labels(landmarks, shape)
    viewer = make_napari_viewer()
    viewer.add_image(np.zeros(shape, np.uint8), name="p")
    vertebrae = viewer.add_labels(merged(bodies, 9), name="p vertebrae")
    trimap = viewer.add_labels(trimap_from_landmarks(landmarks, shape), name="p trimap")
    widget = new_widget(viewer, WIDGET)
    widget.trimap.value = trimap
    widget.analyse()
    wait_analysed(qtbot, widget)
    (index,) = [i for i, g in enumerate(widget.gaps) if g.kind == "vertebrae"]
    gap = widget.gaps[index]
    assert vertebrae.data[gap.row, gap.col] == 9  # the merged body
    assert "vertebrae" in widget.table.data.to_list()[index]
    assert "1 vertebrae" in widget.summary.value
    for _ in range(index + 1):
        widget.next_gap()
    assert widget.current == index
    assert np.allclose(viewer.scene.camera.center[-2:], (gap.row, gap.col))

    vertebrae.data = bodies
    widget.analyse()
    wait_analysed(qtbot, widget)
    assert "vertebrae" not in [g.kind for g in widget.gaps]
