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
