"""From a vertebrae model's maps to a prediction: which bodies are fitted, which trimap.

The maps are drawn from a phantom's landmarks (no network), so each rule is checked on
its own: the first pass stands in where the zoom pass splits a body, and the trimap is
drawn from the fitted corners when there are 17 of them.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from napari_spine_seg.data.phantom import make_phantom
from napari_spine_seg.model.predict import vertebra_maps_prediction
from napari_spine_seg.spine.metrics import pixel_accuracy
from napari_spine_seg.spine.vertebrae import BODY, OUTSIDE, body_space_target
from napari_spine_seg.trimap import trimap_from_landmarks, trimap_from_mask


def _maps(seed: int = 3):
    """A phantom, its landmarks, and body / background maps as a perfect network's."""
    phantom = make_phantom(seed, height=700, width=280, curve=("C", 20.0), artefacts=())
    target = body_space_target(phantom.landmarks, phantom.image.shape)
    body = (target == BODY).astype(np.float32)
    background = (target == OUTSIDE).astype(np.float32)
    return phantom, body, background


def test_a_body_the_zoom_pass_splits_is_fitted_from_the_first_pass():
    phantom, first, background = _maps()
    truth = phantom.landmarks
    zoomed = first.copy()
    row = int(truth.reshape(17, 4, 2)[8][:, 1].mean())
    zoomed[row - 1 : row + 2] = 0.0  # T9 cut in two
    alone = vertebra_maps_prediction(zoomed, background, "x", image=phantom.image)
    assert alone.landmarks is None and "found 18" in alone.vertebra_faults[0]
    both = vertebra_maps_prediction(zoomed, background, "x", image=phantom.image, first_pass=first)
    assert both.vertebra_faults == () and int(both.vertebrae.max()) == 17
    assert np.abs(both.landmarks - truth).max() < 3.0
    # a first pass that fails too leaves the zoom pass's faults
    worse = vertebra_maps_prediction(
        zoomed, background, "x", image=phantom.image, first_pass=zoomed
    )
    assert worse.landmarks is None and worse.vertebra_faults == alone.vertebra_faults


def test_the_trimap_is_drawn_from_the_corners_when_17_were_fitted():
    phantom, body, background = _maps(5)
    shape = phantom.image.shape
    truth = trimap_from_landmarks(phantom.landmarks, shape)
    # a network whose column is 3 px wider on each side than the landmarks' outline
    wide = ~ndimage.binary_dilation(background < 0.5, iterations=3)
    pred = vertebra_maps_prediction(body, wide.astype(np.float32), "x", image=phantom.image)
    assert pred.landmarks is not None
    np.testing.assert_array_equal(pred.trimap, trimap_from_landmarks(pred.landmarks, shape))
    column_trimap = trimap_from_mask(wide == 0)
    assert pixel_accuracy(truth, pred.trimap) > 0.998
    assert pixel_accuracy(truth, pred.trimap) > pixel_accuracy(truth, column_trimap) + 0.005
    # no landmarks (a body lost): the network's column, as before
    lost = body.copy()
    lost[: int(phantom.landmarks[:8, 1].max()) + 1] = 0.0
    without = vertebra_maps_prediction(lost, wide.astype(np.float32), "x", image=phantom.image)
    assert without.landmarks is None
    np.testing.assert_array_equal(without.trimap, column_trimap)
