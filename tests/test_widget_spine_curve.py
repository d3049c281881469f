"""The spine curve widget in a real viewer: landmarks, trimaps, stacks, edits, bad input."""

from __future__ import annotations

import os
import warnings

import numpy as np
import pytest

from _files import synthetic_landmarks, synthetic_xray, write_jpeg, write_mat
from napari_spine_seg.spine.centreline import cobb_from_trimap
from napari_spine_seg.spine.cobb import cobb_angles, cobb_details
from napari_spine_seg.trimap import trimap_from_landmarks, xy_to_rowcol
from test_cobb import make_spine

pytestmark = pytest.mark.gui


def _widget(viewer):
    from napari_spine_seg._napari._widgets.spine_curve_widget import SpineCurveWidget

    widget = SpineCurveWidget(viewer)
    viewer.window.add_dock_widget(widget)
    return widget


def _lines(curve):
    """The curve layer's shapes: centre path first, then end-vertebra lines."""
    return (
        list(curve.shape_type),
        [np.asarray(d) for d in curve.data],
        list(curve.features["label"]),
    )


@pytest.fixture
def s_spine():
    landmarks, shape = make_spine(np.random.default_rng(3), kind="S", cobb=35, height=520)
    return landmarks, shape


def test_trimap_layer_draws_centre_line_and_end_vertebrae(make_napari_viewer, s_spine):
    landmarks, shape = s_spine
    trimap = trimap_from_landmarks(landmarks, shape)
    viewer = make_napari_viewer()
    labels = viewer.add_labels(trimap, name="x trimap")
    widget = _widget(viewer)
    assert widget.layer.value is labels
    widget.draw_button.clicked()

    expected = cobb_from_trimap(trimap)
    np.testing.assert_allclose(widget.drawing.angles, expected.angles)
    assert widget.angles.value == "  ".join(
        f"{n} {a:.1f}°" for n, a in zip(("PT", "MT", "TL/L"), expected.angles, strict=True)
    )
    assert expected.angles[0] > 15  # a real curve, not a straight line
    curve = viewer.layers["x trimap curve"]
    types, data, labels_text = _lines(curve)
    assert types[0] == "path" and set(types[1:]) == {"line", "rectangle"}
    # the path is the centre line the angles were measured on, in (row, col)
    centre = data[0]
    assert centre[0, 0] == expected.centreline[0, 1] and centre[-1, 0] == expected.centreline[-1, 1]
    np.testing.assert_allclose(
        np.interp(centre[:, 0], expected.centreline[:, 1], expected.centreline[:, 0]), centre[:, 1]
    )
    # each angle's upper end vertebra carries its value; the line is that vertebra's
    texts = " ".join(labels_text)
    for name, angle in zip(("PT", "MT", "TL/L"), expected.angles, strict=True):
        assert f"{name} {angle:.1f}°" in texts
    upper = expected.details.pairs[0][0]
    left, right = expected.details.left[upper], expected.details.right[upper]
    box = labels_text.index(next(t for t in labels_text if t.startswith("PT")))
    assert types[box] == "rectangle"  # the label's box …
    first = data[curve.features["labels_line"][box]]  # … labels this line
    direction = first[1] - first[0]
    np.testing.assert_allclose(
        np.degrees(np.arctan2(direction[0], direction[1])),
        np.degrees(np.arctan2(right[1] - left[1], right[0] - left[0])),
        atol=1e-3,  # shapes are stored as float32
    )
    assert viewer.layers.selection.active is labels  # still painting on the trimap


def test_a_predicted_trimap_layer_is_measured_as_a_networks_outline(make_napari_viewer, s_spine):
    landmarks, shape = s_spine
    trimap = trimap_from_landmarks(landmarks, shape)
    predicted = cobb_from_trimap(trimap, outline="predicted").angles
    assert np.abs(predicted - cobb_from_trimap(trimap).angles).max() > 0.01
    viewer = make_napari_viewer()
    # as the Predict widget marks the layers it makes
    viewer.add_labels(trimap, name="p trimap", metadata={"spine_seg": {"predicted": True}})
    widget = _widget(viewer)
    widget.draw_button.clicked()
    np.testing.assert_allclose(widget.drawing.angles, predicted)


def test_landmarks_layer_gives_the_reference_angles(make_napari_viewer, s_spine):
    landmarks, shape = s_spine
    viewer = make_napari_viewer()
    viewer.add_image(np.zeros(shape, np.uint8), name="x")
    points = viewer.add_points(xy_to_rowcol(landmarks), name="x landmarks")
    widget = _widget(viewer)
    assert widget.layer.value is points
    widget.draw()
    np.testing.assert_allclose(widget.drawing.angles, cobb_angles(landmarks, shape[0]))
    details = cobb_details(landmarks, shape[0])
    types, data, labels_text = _lines(viewer.layers["x landmarks curve"])
    # centre line through the 34 end-plate mid-points, then one line per end vertebra
    assert data[0].shape == (34, 2)
    n_lines = sum(len(set(pair)) for pair in details.pairs)
    n_labels = len({pair[0] for pair in details.pairs})
    assert types.count("line") == n_lines and types.count("rectangle") == n_labels
    assert len(data) == 1 + n_lines + n_labels
    assert widget.message.value == ""


def test_edits_redraw_after_a_pause(make_napari_viewer, qtbot, s_spine):
    landmarks, shape = s_spine
    trimap = trimap_from_landmarks(landmarks, shape)
    viewer = make_napari_viewer()
    labels = viewer.add_labels(trimap, name="t")
    widget = _widget(viewer)
    widget.draw()
    before = widget.drawing.angles.copy()
    rows = np.flatnonzero((trimap == 1).any(axis=1))
    mid = (rows[0] + rows[-1]) // 2
    # erase a band across the column: a broken column, measured with a warning
    labels.data[mid : mid + 40] = 0
    labels.events.paint()  # what a brush stroke emits
    qtbot.waitUntil(lambda: "broken column" in widget.message.value, timeout=5000)
    assert np.all(np.isfinite(widget.drawing.angles))

    # moving one landmark of a Points layer redraws too
    points = viewer.add_points(xy_to_rowcol(landmarks), name="p")
    viewer.add_image(np.zeros(shape, np.uint8), name="img")
    widget.layer.value = points
    widget.draw()
    first = widget.drawing.angles.copy()
    moved = points.data.copy()
    moved[0:4, 1] += 12  # shift vertebra 1 down... its top corners only: it tilts
    moved[1, 0] -= 10
    points.data = moved
    qtbot.waitUntil(lambda: not np.allclose(widget.drawing.angles, first), timeout=5000)
    assert not np.allclose(before, 0)


def _stack_set(root):
    """An AASCE split of three images of different sizes (padded in the stack)."""
    data, labels = root / "data" / "training", root / "labels" / "training"
    data.mkdir(parents=True)
    labels.mkdir(parents=True)
    sizes = [(400, 160), (360, 150), (420, 170)]
    curves = [0.0, 0.12, -0.1]
    all_landmarks = []
    for i, ((h, w), curve) in enumerate(zip(sizes, curves, strict=True)):
        name = f"img {i} AP.jpg"
        lm = synthetic_landmarks(h, w, curve=curve)
        write_jpeg(data / name, synthetic_xray(lm, (h, w), seed=i))
        write_mat(labels / f"{name}.mat", p2=lm)
        all_landmarks.append(lm)
    return data, sizes, all_landmarks


def test_stack_measures_the_slice_shown_and_follows_the_slider(make_napari_viewer, qtbot, tmp_path):
    split, sizes, all_landmarks = _stack_set(tmp_path / "set")
    viewer = make_napari_viewer()
    image, labels, points = viewer.open(os.fspath(split), plugin="napari-spine-seg")
    assert points.ndim == 3 and labels.data.shape[0] == 3
    widget = _widget(viewer)
    widget.layer.value = points
    viewer.dims.set_current_step(0, 1)
    widget.draw()
    h1 = sizes[1][0]
    np.testing.assert_allclose(widget.drawing.angles, cobb_angles(all_landmarks[1], h1))
    assert widget.drawing.angles[0] > 5
    curve = viewer.layers[f"{points.name} curve"]
    assert curve.ndim == 3 and all(np.all(d[:, 0] == 1) for d in curve.data)

    viewer.dims.set_current_step(0, 0)  # the straight spine
    qtbot.waitUntil(lambda: np.allclose(widget.drawing.angles, 0, atol=1e-6), timeout=5000)
    assert all(np.all(d[:, 0] == 0) for d in curve.data)

    # the trimap stack: the slice is cropped to its image before it is measured
    widget.layer.value = labels
    viewer.dims.set_current_step(0, 2)
    widget.draw()
    h2, w2 = sizes[2]
    expected = cobb_from_trimap(np.asarray(labels.data[2])[:h2, :w2])
    np.testing.assert_allclose(widget.drawing.angles, expected.angles)
    assert widget.drawing.warnings == []
    assert all(np.all(d[:, 0] == 2) for d in viewer.layers[f"{labels.name} curve"].data)


def test_straight_edge_touching_and_bad_layers(make_napari_viewer, napari_notifications):
    viewer = make_napari_viewer()
    straight = np.full((300, 120), 2, np.uint8)
    straight[0:300, 50:80] = 1  # straight, and running off the top and bottom edges
    viewer.add_labels(straight, name="straight")
    widget = _widget(viewer)
    widget.draw()
    assert np.all(widget.drawing.angles < 0.5)
    assert "edge" in widget.message.value

    empty = viewer.add_labels(np.full((300, 120), 2, np.uint8), name="empty")
    widget.layer.value = empty
    widget.draw()
    assert widget.drawing is None and widget.angles.value == "–"
    assert "no spine" in widget.message.value
    widget.draw()  # as a redraw after an edit would: shown in the widget, notified once
    assert sum("no spine" in str(n.message) for n in napari_notifications) == 1

    few = viewer.add_points(np.array([[10.0, 10.0], [20.0, 30.0]]), name="few")
    widget.layer.value = few
    widget.draw()
    assert "68 are needed" in widget.message.value
    assert len(viewer.layers["straight curve"].data) > 0  # another layer's curve stays


def test_works_through_the_viewer_proxy_napari_gives_plugins(make_napari_viewer, s_spine):
    # napari hands a plugin's widget a proxy that refuses private attributes
    from napari._qt.qt_main_window import _instantiate_dock_widget

    from napari_spine_seg._napari._widgets.spine_curve_widget import SpineCurveWidget

    landmarks, shape = s_spine
    viewer = make_napari_viewer()
    viewer.add_labels(trimap_from_landmarks(landmarks, shape), name="t")
    widget = _instantiate_dock_widget(SpineCurveWidget, viewer)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the proxy warns on private access
        widget.draw()
    assert len(viewer.layers["t curve"].data) > 1
    assert widget.drawing.angles[0] > 15


def _overlap(a, b) -> bool:
    """Whether boxes ``(row0, col0, row1, col1)`` share any area."""
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def test_labels_of_three_curves_close_together_never_overlap(make_napari_viewer):
    """Three angles whose upper end vertebrae are neighbours: their labels would sit on
    top of each other at the lines' ends; each gets its own rows beside its line."""
    from napari_spine_seg._napari._widgets.spine_curve_widget import (
        label_box_size,
        place_labels,
    )

    lines = [np.array([[100.0 + 6 * k, 150.0], [104.0 + 6 * k, 210.0]]) for k in range(3)]
    texts = ["PT 12.3°", "MT 25.0°", "TL/L 8.1°"]
    boxes = place_labels(lines, texts, size=10.0, image_width=300)
    flat = [np.array([*b.min(axis=0), *b.max(axis=0)]) for b in boxes]
    assert not any(_overlap(flat[i], flat[j]) for i in range(3) for j in range(i + 1, 3))
    for line, text, box in zip(lines, texts, flat, strict=True):
        height, width = label_box_size(text, 10.0)
        assert np.isclose(box[2] - box[0], height) and np.isclose(box[3] - box[1], width)
        assert box[3] < line[:, 1].min()  # left of its line …
        assert abs((box[0] + box[2]) / 2 - line[0, 0]) < 3 * height  # … near its row
    # no room on the left: right of the line, and still apart
    boxes = place_labels([line - [0, 75] for line in lines], texts, size=10.0, image_width=300)
    flat = [np.array([*b.min(axis=0), *b.max(axis=0)]) for b in boxes]
    assert all(b[1] > 135 for b in flat)
    assert not any(_overlap(flat[i], flat[j]) for i in range(3) for j in range(i + 1, 3))

    # and in a real viewer, on real spines: no two label boxes of a curve layer overlap
    viewer = make_napari_viewer()
    widget = _widget(viewer)
    for seed, kind in ((3, "S"), (5, "C"), (8, "S"), (11, "S")):
        landmarks, shape = make_spine(np.random.default_rng(seed), kind=kind, cobb=35, height=520)
        layer = viewer.add_labels(trimap_from_landmarks(landmarks, shape), name=f"t{seed}")
        widget.layer.value = layer
        widget.draw()
        curve = viewer.layers[f"t{seed} curve"]
        boxes = [
            np.array([*d.min(axis=0), *d.max(axis=0)])
            for d, t in zip(curve.data, curve.shape_type, strict=True)
            if t == "rectangle"
        ]
        assert len(boxes) >= 2
        assert not any(
            _overlap(boxes[i], boxes[j])
            for i in range(len(boxes))
            for j in range(i + 1, len(boxes))
        )
        assert curve.text.scaling and curve.text.anchor == "center"
