"""The second X-ray generator (benchmarks/other_generator.py) writes a readable set with
the reference Cobb angles of its landmarks, so that evaluating on it scores angles too."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

import other_generator
from napari_spine_seg.data.aasce import read_angles_csv, read_landmarks_mat
from napari_spine_seg.data.dataset import open_dataset
from napari_spine_seg.spine.cobb import cobb_angles


def test_other_set_has_the_reference_angles_of_its_landmarks(tmp_path):
    root = other_generator.write_other_set(tmp_path / "other", n_train=1, n_test=3, seed=7)
    test = open_dataset(root).split("test")
    angles = read_angles_csv(root / "labels" / "test")
    assert len(test) == 3 and set(angles) == set(test.names)
    for sample in test:
        expected = cobb_angles(read_landmarks_mat(sample.landmarks_path), sample.image_shape()[0])
        np.testing.assert_allclose(angles[sample.name], expected, atol=1e-5)
    # curved spines: a placeholder of zeros would score every prediction 100 % SMAPE
    assert max(a[0] for a in angles.values()) > 5.0


def test_a_scaled_image_draws_the_same_spine_with_more_pixels():
    image, pts = other_generator.other_xray(np.random.default_rng(3))
    big, big_pts = other_generator.other_xray(np.random.default_rng(3), scale=2.0)
    assert big.shape == (2 * image.shape[0], 2 * image.shape[1])
    np.testing.assert_allclose(big_pts, 2.0 * pts, atol=1e-6)
    np.testing.assert_allclose(
        cobb_angles(big_pts, big.shape[0]), cobb_angles(pts, image.shape[0]), atol=1e-6
    )


def test_an_image_without_grain_is_the_same_image_less_its_noise():
    image, pts = other_generator.other_xray(np.random.default_rng(4))
    clean, clean_pts = other_generator.other_xray(np.random.default_rng(4), grain=False)
    np.testing.assert_array_equal(clean_pts, pts)
    assert clean.shape == image.shape

    def roughness(a):
        return float(np.abs(np.diff(a.astype(np.float64), axis=1)).mean())

    assert roughness(clean) < 0.5 * roughness(image)
    # the same picture beneath the noise
    assert np.corrcoef(clean.ravel(), image.ravel())[0, 1] > 0.7
