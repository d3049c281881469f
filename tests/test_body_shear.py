"""Body shear augmentation: each body's plates turn by its own angle, its sides stay put,
image and labels move together, and only vertebrae targets are sheared."""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from _files import write_aasce
from napari_spine_seg.data.dataset import open_dataset
from napari_spine_seg.model.bend import column_centre
from napari_spine_seg.model.body_shear import body_slopes, column_width, shear_bodies
from napari_spine_seg.model.pipeline import (
    ArrayCache,
    Augmentation,
    BatchSource,
    InputSpec,
    augment,
)
from napari_spine_seg.model.targets import V_BACKGROUND, V_BODY
from napari_spine_seg.spine.vertebrae import BODY, OUTSIDE, body_space_target, fit_vertebrae

ROWS, COLS = 384, 144


def straight_column() -> np.ndarray:
    """A straight body / space / outside label map: 17 level bodies 40 px wide."""
    corners = [
        [52 + 40 * (i % 2), 30 + 19 * k + 14 * (i // 2)] for k in range(17) for i in range(4)
    ]
    return body_space_target(np.array(corners, float), (ROWS, COLS))


def plates_and_sides(body: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Each body's top and bottom plate angles and its left side's, in degrees, fitted to
    a body map (the image, moved bilinearly: the labels move by whole pixels)."""
    fit = fit_vertebrae(body)
    assert fit.count == 17 and fit.landmarks is not None, fit.faults
    g = fit.landmarks.reshape(17, 4, 2)

    def angle(a, b):
        d = g[:, b] - g[:, a]
        return np.degrees(np.arctan2(d[:, 1], d[:, 0]))

    return angle(0, 1), angle(2, 3), angle(0, 2)


def test_each_body_turns_its_plates_by_its_own_angle_and_keeps_its_sides():
    labels = straight_column()
    image = (labels == BODY).astype(np.float32)
    top, bottom, side = plates_and_sides(image)
    assert np.abs(top).max() < 0.5 and np.abs(side - 90).max() < 0.5
    rng = np.random.default_rng(1)
    slopes = body_slopes(labels, BODY, rng, 5.0)
    middles = 30 + 19 * np.arange(17) + 7
    own = np.degrees(np.arctan(slopes[np.round(middles).astype(int)]))
    assert np.std(own) > 2.0  # the checks below can fail
    centre = column_centre(labels, OUTSIDE)
    out_image, out = shear_bodies(image, labels, slopes, centre, column_width(labels, OUTSIDE))
    assert out.dtype == labels.dtype and set(np.unique(out)) <= set(np.unique(labels))
    assert np.mean((out_image > 0.5) == (out == BODY)) > 0.99  # moved together
    top, bottom, side = plates_and_sides(out_image)
    # a plate lies 7 px from its body's middle, 19 px between middles: it takes about
    # two thirds of its own body's angle and a third of its neighbour's
    for plate, neighbour in ((top, np.r_[own[0], own[:-1]]), (bottom, np.r_[own[1:], own[-1]])):
        expected = own + 7 / 19 * (neighbour - own)
        np.testing.assert_allclose(plate, expected, atol=0.8)
    np.testing.assert_allclose(side, 90.0, atol=0.8)


def test_no_bodies_no_shear():
    labels = np.full((ROWS, COLS), OUTSIDE, dtype=np.uint8)
    slopes = body_slopes(labels, BODY, np.random.default_rng(0), 5.0)
    np.testing.assert_array_equal(slopes, 0.0)


def test_only_vertebrae_targets_are_sheared():
    labels = straight_column()
    stored = np.where(labels == BODY, V_BODY, np.where(labels == OUTSIDE, V_BACKGROUND, 2))
    stored = stored.astype(np.uint8)
    image = (labels == BODY).astype(np.float32)
    shear = replace(Augmentation.off(), body_shear_deg=5.0, body_shear_probability=1.0)
    _, same = augment(image, stored, np.random.default_rng(2), shear, V_BACKGROUND)
    np.testing.assert_array_equal(same, stored)  # no body label given: a trimap target
    _, sheared = augment(image, stored, np.random.default_rng(2), shear, V_BACKGROUND, V_BODY)
    assert np.mean(sheared != stored) > 0.005
    _, off = augment(
        image, stored, np.random.default_rng(2), Augmentation.off(), V_BACKGROUND, V_BODY
    )
    np.testing.assert_array_equal(off, stored)


def test_training_shears_the_column_tiles_only(tmp_path):
    # at the whole image's scale a body is some 9 px tall: there the shear turned its
    # plates too little to teach anything and taught a small network to split bodies
    root = write_aasce(tmp_path / "set", {"training": (4, 100)}, shape=(700, 260))
    samples = open_dataset(root).split("training").samples
    spec = InputSpec((384, 144), target="vertebrae", zoom=True)
    shear = replace(Augmentation.off(), body_shear_deg=5.0, body_shear_probability=1.0)

    def batches(augmentation):
        source = BatchSource(
            samples, spec, batch_size=4, cache=ArrayCache(None), augmentation=augmentation
        )
        out = []
        for epoch in range(4):
            source.epoch = epoch
            tiles = [source._tile(i) for i in range(len(samples))]
            out.append((tiles, source.batch(0)[1]))
        return out

    whole, cut = 0, 0
    for (tiles, still), (_, sheared) in zip(
        batches(Augmentation.off()), batches(shear), strict=True
    ):
        for tile, a, b in zip(tiles, still, sheared, strict=True):
            if tile is None:
                whole += 1
                np.testing.assert_array_equal(a, b)
            else:
                cut += 1
                assert np.mean(a != b) > 0.002
    assert whole and cut  # both kinds were drawn
