"""The 17 vertebrae as labels and their end plates, from landmarks (no napari)."""

from __future__ import annotations

import doctest

import numpy as np
import pytest

from _files import synthetic_landmarks
from napari_spine_seg.data.phantom import make_phantom
from napari_spine_seg.errors import SpineSegError
from napari_spine_seg.spine import vertebra_labels as module
from napari_spine_seg.spine.vertebra_labels import end_plates, vertebra_labels, vertebra_name
from napari_spine_seg.spine.vertebrae import BODY, body_space_target


def test_each_body_is_its_own_label_top_to_bottom():
    phantom = make_phantom(2, height=640, curve=("S", 40.0), artefacts=())
    shape = phantom.image.shape
    labels = vertebra_labels(phantom.landmarks, shape)
    assert labels.shape == shape and labels.dtype == np.uint8
    assert set(np.unique(labels)) == set(range(18))
    # the bodies are exactly the body class of the vertebra target
    np.testing.assert_array_equal(labels > 0, body_space_target(phantom.landmarks, shape) == BODY)
    # numbered top to bottom, each around its own corners
    rows = [np.nonzero(labels == k)[0].mean() for k in range(1, 18)]
    assert np.all(np.diff(rows) > 0)
    centres = phantom.landmarks.reshape(17, 4, 2).mean(axis=1)
    for k, (x, y) in enumerate(centres, start=1):
        assert labels[int(round(y)), int(round(x))] == k


def test_a_corner_dragged_past_its_neighbour_keeps_the_vertebrae_apart():
    landmarks = synthetic_landmarks(400, 160, curve=0.1)
    swapped = landmarks.copy()
    swapped[[0, 1]] = swapped[[1, 0]]  # T1's top corners stored the other way round
    np.testing.assert_array_equal(
        vertebra_labels(swapped, (400, 160)), vertebra_labels(landmarks, (400, 160))
    )


def test_end_plates_are_the_top_and_bottom_corner_pairs():
    landmarks = synthetic_landmarks(400, 160, curve=0.1)
    upper, lower = end_plates(landmarks)
    corners = landmarks.reshape(17, 4, 2)
    np.testing.assert_array_equal(upper, corners[:, [0, 1]])
    np.testing.assert_array_equal(lower, corners[:, [2, 3]])
    assert np.all(upper[:, 0, 0] < upper[:, 1, 0])  # left end first


def test_names_and_bad_landmarks():
    assert [vertebra_name(k) for k in (1, 12, 13, 17)] == ["T1", "T12", "L1", "L5"]
    assert vertebra_name(0) == vertebra_name(18) == ""
    with pytest.raises(SpineSegError, match="68 x 2"):
        vertebra_labels(np.zeros((67, 2)), (100, 50))
    with pytest.raises(SpineSegError, match="NaN"):
        vertebra_labels(np.full((68, 2), np.nan), (100, 50))


def test_the_docstring_examples_hold():
    result = doctest.testmod(module)
    assert result.attempted >= 3 and result.failed == 0
