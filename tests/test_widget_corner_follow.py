"""A corner moved in ``<image> landmarks`` paints its vertebra again in ``<image> vertebrae``.

The layers are landed by the Predict widget itself from a
:class:`~napari_spine_seg.model.predict.Prediction` holding a phantom's own vertebrae and
corners (what a vertebra model that found all 17 gives), in a real viewer.
"""

from __future__ import annotations

import numpy as np
import pytest

from _widget_helpers import new_widget
from napari_spine_seg.data.phantom import make_phantom
from napari_spine_seg.model.predict import Prediction
from napari_spine_seg.spine.vertebra_labels import vertebra_labels
from napari_spine_seg.trimap import polygon_mask, rowcol_to_xy, trimap_from_landmarks

pytestmark = pytest.mark.gui


@pytest.fixture(scope="module")
def spine():
    phantom = make_phantom(3, height=600, curve=("S", 35.0), artefacts=())
    return phantom.image, phantom.landmarks


def _prediction(image, landmarks) -> Prediction:
    shape = image.shape
    return Prediction(
        trimap=trimap_from_landmarks(landmarks, shape),
        probability=np.zeros(shape, np.float32),
        vertebrae=vertebra_labels(landmarks, shape).astype(np.int32),
        landmarks=np.asarray(landmarks, np.float64),
    )


def _quad_mask(points_rowcol, k, shape):
    """Vertebra `k`'s (0-based) body drawn from its corners TL, TR, BL, BR (row, col)."""
    xy = rowcol_to_xy(np.asarray(points_rowcol)[4 * k : 4 * k + 4])
    return polygon_mask(xy[[0, 1, 3, 2]], shape)


def test_moving_a_corner_repaints_only_its_vertebra(make_napari_viewer, spine):
    image, landmarks = spine
    viewer = make_napari_viewer()
    layer = viewer.add_image(image, name="x")
    predict = new_widget(viewer, "predict_widget:PredictWidget")
    predict._land(layer, [_prediction(image, landmarks)], None)
    points, labels = viewer.layers["x landmarks"], viewer.layers["x vertebrae"]
    before = np.array(labels.data)

    # T5's top-right corner 9 px right and T9's bottom-left 14 px down (into T10)
    moved = np.array(points.data)
    moved[4 * 4 + 1, 1] += 9
    moved[4 * 8 + 2, 0] += 14
    points.data = moved
    after = np.asarray(labels.data)
    expected = before.copy()
    for k in (4, 8):
        expected[before == k + 1] = 0
        free = (before == 0) | (before == k + 1)
        expected[_quad_mask(moved, k, image.shape) & free] = k + 1
    np.testing.assert_array_equal(after, expected)
    assert (after == 5).sum() > (before == 5).sum() + 9 * 5  # T5 grew to the right
    grown = (after == 5) & (before == 0)
    assert (
        grown.any() and (rowcol_to_xy(np.argwhere(grown))[:, 0] > landmarks[16:20, 0].min()).all()
    )
    for k in set(range(1, 18)) - {5, 9}:  # no other vertebra touched, T10 included
        np.testing.assert_array_equal(after == k, before == k)

    # a new prediction landing in the same layers is no edit: its own bodies, not quads
    shifted = landmarks + (3.0, 5.0)
    predict._land(layer, [_prediction(image, shifted)], None)
    assert viewer.layers["x vertebrae"] is labels and viewer.layers["x landmarks"] is points
    np.testing.assert_array_equal(labels.data, vertebra_labels(shifted, image.shape))
    np.testing.assert_allclose(rowcol_to_xy(points.data), shifted)
    # and edits of the new prediction's corners are followed again
    moved = np.array(points.data)
    moved[4 * 12 + 3, 1] -= 6  # L1's bottom-right corner 6 px left
    before = np.array(labels.data)
    points.data = moved
    assert (labels.data == 13).sum() < (before == 13).sum()
    np.testing.assert_array_equal(labels.data == 12, before == 12)


def test_a_stack_repaints_the_vertebra_on_its_own_slice(make_napari_viewer, spine):
    image, landmarks = spine
    rows, cols = image.shape
    stack = np.zeros((2, rows, cols + 20), image.dtype)
    stack[0, :, :cols] = image
    stack[1, :, :cols] = image
    viewer = make_napari_viewer()
    layer = viewer.add_image(stack, name="s", metadata={"spine_seg": {"names": ["a", "b"]}})
    predict = new_widget(viewer, "predict_widget:PredictWidget")
    predict._land(layer, [_prediction(image, landmarks)] * 2, [(rows, cols)] * 2)
    points, labels = viewer.layers["s landmarks"], viewer.layers["s vertebrae"]
    before = np.array(labels.data)
    moved = np.array(points.data)
    second = np.flatnonzero(np.round(moved[:, 0]) == 1)
    moved[second[4 * 6], 2] -= 7  # T7's top-left corner on slice 1, 7 px left
    points.data = moved
    np.testing.assert_array_equal(labels.data[0], before[0])  # the other slice untouched
    assert (labels.data[1] == 7).sum() > (before[1] == 7).sum()
    for k in set(range(1, 18)) - {7}:
        np.testing.assert_array_equal(labels.data[1] == k, before[1] == k)
