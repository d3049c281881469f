"""End plates averaged with the X-ray's own edges (spine/image_plates.py)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from _files import synthetic_landmarks
from napari_spine_seg.spine.image_plates import image_plates
from napari_spine_seg.spine.vertebrae import corner_error, fit_vertebrae
from test_vertebrae import plate_slope, soft_bodies

SHAPE = (900, 360)


def xray(landmarks: np.ndarray, seed: int = 0) -> np.ndarray:
    """Bright bodies on a darker column, blurred, with counting noise: a plain radiograph."""
    rng = np.random.default_rng(seed)
    image = 0.25 + 0.5 * ndimage.gaussian_filter(soft_bodies(landmarks, SHAPE), 1.0)
    return image + rng.normal(0.0, 0.03, SHAPE)


def leaned(landmarks: np.ndarray, degrees: float) -> np.ndarray:
    """Every end plate turned about its middle, alternately either way, corners kept on
    their sides: a network that draws plates off their edges."""
    corners = landmarks.reshape(17, 4, 2).copy()
    for k, body in enumerate(corners):
        turn = degrees if k % 2 else -degrees
        for a, b in ((0, 1), (2, 3)):
            half = (body[b, 0] - body[a, 0]) / 2 * np.tan(np.radians(turn))
            body[a, 1] -= half
            body[b, 1] += half
    return corners.reshape(68, 2)


def plate_errors(landmarks: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """Degrees off, of every end plate (34 of them)."""
    got, want = landmarks.reshape(17, 4, 2), truth.reshape(17, 4, 2)
    return np.array(
        [
            plate_slope(g[a], g[b]) - plate_slope(w[a], w[b])
            for g, w in zip(got, want, strict=True)
            for a, b in ((0, 1), (2, 3))
        ]
    )


@pytest.mark.parametrize("curve", [0.0, 0.15])
def test_a_plate_drawn_off_its_edge_moves_half_way_to_it(curve):
    truth = synthetic_landmarks(*SHAPE, curve=curve)
    start = leaned(truth, 2.0)
    refined = image_plates(xray(truth), start)
    before, after = np.abs(plate_errors(start, truth)), np.abs(plate_errors(refined, truth))
    assert before.mean() == pytest.approx(2.0, abs=0.05)
    # half-way: the network's line and the image's are averaged
    assert 0.35 < after.mean() / before.mean() < 0.65, after.mean()
    assert corner_error(refined, truth) < corner_error(start, truth)
    # the sides keep their lines: each corner moved along its side, not across it
    moved = (refined - start).reshape(17, 4, 2)
    sides = (truth.reshape(17, 4, 2)[:, 2:] - truth.reshape(17, 4, 2)[:, :2]).repeat(2, axis=0)
    moved, sides = moved.reshape(-1, 2, 2), sides.reshape(-1, 2, 2)
    across = np.abs(moved[..., 0] * sides[..., 1] - moved[..., 1] * sides[..., 0])
    assert across.max() / np.linalg.norm(sides, axis=-1).min() < 1e-6


def test_a_share_of_one_puts_each_plate_on_the_image_line():
    truth = synthetic_landmarks(*SHAPE, curve=0.15)
    start = leaned(truth, 2.0)
    onto = image_plates(xray(truth), start, share=1.0)
    half = image_plates(xray(truth), start)
    # the image's line alone: the lean is gone, to the noise of the image's edges
    assert np.abs(plate_errors(onto, truth)).mean() < 0.5 * np.abs(plate_errors(half, truth)).mean()
    # and half-way is half of that move
    np.testing.assert_allclose(half - start, 0.5 * (onto - start), atol=1e-9)
    # no move at all keeps the network's corners
    np.testing.assert_array_equal(image_plates(xray(truth), start, share=0.0), start)


def test_bone_dark_or_bright_and_the_pixels_units_read_the_same():
    truth = synthetic_landmarks(*SHAPE, curve=0.1)
    start = leaned(truth, 2.0)
    image = xray(truth, seed=3)
    refined = image_plates(image, start)
    assert not np.allclose(refined, start)
    np.testing.assert_allclose(image_plates(1.0 - image, start), refined)
    # a 12-bit radiograph in uint16 reads as its float image does
    counts = np.round(np.clip(image, 0.0, 1.0) * 4095).astype(np.uint16)
    np.testing.assert_allclose(image_plates(counts, start), refined, atol=0.05)


def test_without_an_edge_near_them_the_plates_stay():
    truth = synthetic_landmarks(*SHAPE, curve=0.1)
    start = leaned(truth, 2.0)
    flat = np.random.default_rng(1).normal(0.5, 0.001, SHAPE)
    np.testing.assert_array_equal(image_plates(flat, start), start)
    # an edge further off than the search reaches is another structure's, not the plate's
    far = truth.copy()
    far[:, 1] += 8.0
    np.testing.assert_array_equal(image_plates(xray(truth), far), far)
    # a body drawn as a point (its corners coincide) has no plate to read
    point = start.copy()
    point[:4] = point[:4].mean(axis=0)
    np.testing.assert_array_equal(image_plates(xray(truth), point)[:4], point[:4])


def test_the_fit_averages_the_bodies_plates_with_the_image():
    truth = synthetic_landmarks(*SHAPE, curve=0.12)
    # a probability whose plates lean 2° off the image's edges
    probability = soft_bodies(leaned(truth, 2.0), SHAPE)
    alone = fit_vertebrae(probability).landmarks
    read = fit_vertebrae(probability, image=xray(truth)).landmarks
    before = np.abs(plate_errors(alone, truth)).mean()
    assert before > 1.5
    assert np.abs(plate_errors(read, truth)).mean() < 0.65 * before
    with pytest.raises(ValueError, match="shape"):
        fit_vertebrae(probability, image=np.zeros((10, 10)))
