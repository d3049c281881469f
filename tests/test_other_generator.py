"""The second X-ray generator (benchmarks/other_generator.py) writes a readable set with
the reference Cobb angles of its landmarks, so that evaluating on it scores angles too."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

import bench_set_draws
import other_generator
import other_spines
from fine_drawing import FineLayers
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


def test_the_default_drawing_is_the_old_one_with_edges_between_pixels():
    image, pts = other_generator.other_xray(np.random.default_rng(5))
    stepped, stepped_pts = other_generator.other_xray(np.random.default_rng(5), antialias=1)
    np.testing.assert_array_equal(stepped_pts, pts)
    assert image.shape == stepped.shape and not np.array_equal(image, stepped)
    # the same picture and the same noise: only the shapes' edges differ
    assert np.corrcoef(image.ravel(), stepped.ravel())[0, 1] > 0.98
    # and the next image of the stream is the same spine either way
    rng_a, rng_b = np.random.default_rng(5), np.random.default_rng(5)
    other_generator.other_xray(rng_a)
    other_generator.other_xray(rng_b, antialias=1)
    np.testing.assert_array_equal(
        other_generator.other_xray(rng_a)[1], other_generator.other_xray(rng_b, antialias=1)[1]
    )


def test_antialiased_shapes_cover_a_pixel_in_part_where_an_edge_crosses_it():
    layers = FineLayers(4, 4, [1, 4])
    # pixel centres at integer coordinates: a left edge at x = 1 halves column 1, to the
    # quarter of a pixel Pillow snaps a fine vertex to
    layers.polygon([(1.0, -0.5), (3.5, -0.5), (3.5, 3.5), (1.0, 3.5)], fill=1.0)
    coarse, cover = layers.images()
    np.testing.assert_allclose(cover[1], [0.0, 0.5, 1.0, 1.0], atol=0.25)
    assert 0.0 < cover[1, 1] < 1.0
    # drawn coarse, as the sets are, the same edge fills column 1 whole
    np.testing.assert_array_equal(coarse[1], [0.0, 1.0, 1.0, 1.0])


def test_pillow_fills_a_body_with_its_corners_floored_to_whole_pixels():
    # bench_set_draws.drawn_corners scores the bodies as the test generators draw them
    rng = np.random.default_rng(0)
    for _ in range(50):
        centre, turn = 20.0 + rng.uniform(-0.5, 0.5, 2), np.radians(rng.uniform(-10, 10))
        half = np.array([[-6.0, -4.0], [6.0, -4.0], [6.0, 4.0], [-6.0, 4.0]]) * rng.uniform(
            0.8, 1.2
        )
        rotation = np.array([[np.cos(turn), -np.sin(turn)], [np.sin(turn), np.cos(turn)]])
        corners = centre + half @ rotation.T

        def filled(points):
            layer = Image.new("F", (40, 40), 0.0)
            ImageDraw.Draw(layer).polygon([tuple(p) for p in points], fill=1.0)
            return np.asarray(layer)

        np.testing.assert_array_equal(
            filled(corners), filled(bench_set_draws.drawn_corners(corners, antialias=1))
        )


def test_other_spines_default_drawing_is_the_old_one_with_edges_between_pixels():
    fine = other_spines.make_spine(np.random.default_rng([2024, 1, 0]), severity="moderate")
    coarse = other_spines.make_spine(
        np.random.default_rng([2024, 1, 0]), severity="moderate", antialias=1
    )
    np.testing.assert_array_equal(fine.landmarks, coarse.landmarks)
    np.testing.assert_array_equal(fine.angles, coarse.angles)
    assert fine.image.shape == coarse.image.shape
    assert not np.array_equal(fine.image, coarse.image)
    # the same noise and the same picture: only the shapes' edges differ
    assert np.corrcoef(fine.image.ravel(), coarse.image.ravel())[0, 1] > 0.98


def test_a_fineness_under_one_is_refused_before_anything_is_drawn(tmp_path, capsys):
    out = tmp_path / "set"
    for bad in ("0", "-2", "2.5"):
        for main in (other_generator.main, other_spines.main):
            with pytest.raises(SystemExit) as exit_info:
                main([str(out), "--antialias", bad])
            assert exit_info.value.code == 2
            assert "not a whole number of at least 1" in capsys.readouterr().err
    assert not out.exists()
