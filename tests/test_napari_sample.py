"""The "Spine X-ray (phantom)" sample data, opened in a real napari viewer (Xvfb)."""

from __future__ import annotations

import numpy as np
import pytest

from napari_spine_seg.trimap import column_mask, rowcol_to_xy, trimap_from_landmarks

pytestmark = pytest.mark.gui


def test_phantom_sample_adds_image_landmarks_and_trimap(make_napari_viewer):
    viewer = make_napari_viewer()
    viewer.open_sample("napari-spine-seg", "phantom")
    image, labels, points = viewer.layers
    assert (image._type_string, points._type_string, labels._type_string) == (
        "image",
        "points",
        "labels",
    )
    assert image.data.ndim == 2 and image.data.dtype == np.uint8
    assert labels.data.shape == image.data.shape
    assert points.data.shape == (68, 2)
    landmarks = rowcol_to_xy(points.data)
    np.testing.assert_array_equal(labels.data, trimap_from_landmarks(landmarks, image.data.shape))
    assert set(np.unique(labels.data)) == {1, 2, 3}
    # the landmarks sit on the drawn spine: brighter inside the column than outside
    inside = column_mask(landmarks, image.data.shape)
    assert image.data[inside].mean() > image.data[~inside].mean() + 10


def test_phantom_sample_is_the_same_every_time(make_napari_viewer):
    viewer = make_napari_viewer()
    viewer.open_sample("napari-spine-seg", "phantom")
    viewer.open_sample("napari-spine-seg", "phantom")
    first, second = viewer.layers[0].data, viewer.layers[3].data
    np.testing.assert_array_equal(first, second)
