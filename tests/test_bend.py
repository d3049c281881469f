"""Bending augmentation: the bodies turn with the new curve, labels keep their values, and
the setting travels through the training config and the command line."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from napari_spine_seg.cli import build_parser
from napari_spine_seg.cli import train as train_cli
from napari_spine_seg.data.phantom import make_phantom
from napari_spine_seg.errors import SpineSegError
from napari_spine_seg.model.bend import MAX_SHIFT, bend, column_centre, random_curve
from napari_spine_seg.model.config import TrainConfig
from napari_spine_seg.model.pipeline import Augmentation, augment
from napari_spine_seg.model.targets import V_BACKGROUND, V_BODY, V_IGNORE, V_SPACE
from napari_spine_seg.spine.vertebrae import BODY, OUTSIDE, body_space_target, fit_vertebrae

ROWS, COLS = 384, 144
#: everything but bending off
STILL = replace(Augmentation.off(), bend_deg=30.0, bend_probability=1.0)


def straight_column(centre_x: float = 72.0) -> np.ndarray:
    """A straight body / space / outside label map: 17 level bodies 24 px wide."""
    corners = [
        [centre_x - 12 + 24 * (i % 2), 30 + 19 * k + 14 * (i // 2)]
        for k in range(17)
        for i in range(4)
    ]
    return body_space_target(np.array(corners, float), (ROWS, COLS))


def body_tilts(labels: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Tilt (degrees, + when the right end is higher), centre row and width of each body."""
    fit = fit_vertebrae(labels == BODY)
    assert fit.count == 17 and fit.landmarks is not None, fit.faults
    g = fit.landmarks.reshape(17, 4, 2)
    plate = (g[:, 1] - g[:, 0] + g[:, 3] - g[:, 2]) / 2
    tilt = -np.degrees(np.arctan2(plate[:, 1], plate[:, 0]))
    return tilt, g[..., 1].mean(axis=1), np.hypot(*plate.T)


@pytest.mark.parametrize("centre_x", [72.0, 58.0])
def test_bent_bodies_tilt_like_the_curve_and_keep_their_width(centre_x):
    labels = straight_column(centre_x)
    level, _, width = body_tilts(labels)
    assert np.abs(level).max() < 0.5
    y = np.arange(ROWS)
    curve = 30.0 * np.sin(2 * np.pi * y / ROWS)  # slope up to ±0.49: tilts up to ±26°
    image = (labels == BODY).astype(np.float32)
    bent_image, bent = bend(image, labels, curve, column_centre(labels, OUTSIDE))
    assert set(np.unique(bent)) <= set(np.unique(labels)) and bent.dtype == labels.dtype
    # image and labels were moved together
    assert np.mean((bent_image > 0.5) == (bent == BODY)) > 0.99
    tilt, rows, bent_width = body_tilts(bent)
    expected = np.degrees(np.arctan(np.interp(rows, y, np.gradient(curve))))
    assert np.ptp(expected) > 40  # the check below can fail
    np.testing.assert_allclose(tilt, expected, atol=2.0)
    # turned, not sheared: the end plates keep their length
    np.testing.assert_allclose(bent_width, width, rtol=0.05)
    # the column follows the curve
    centres = column_centre(bent, OUTSIDE)
    inside = slice(60, 320)
    np.testing.assert_allclose(centres[inside], (centre_x + curve)[inside], atol=2.0)


def test_a_random_curve_adds_at_most_the_tilt_asked_and_stays_near_the_column():
    tilts = []
    for seed in range(200):
        curve = random_curve(np.random.default_rng(seed), ROWS, COLS, 25.0)
        assert curve.shape == (ROWS,) and np.abs(curve).max() <= MAX_SHIFT * COLS + 1e-9
        theta = np.degrees(np.arctan(np.gradient(curve)))
        tilts.append(np.abs(theta).max())
    assert max(tilts) <= 25.5 and np.percentile(tilts, 90) > 12 and min(tilts) < 5


def test_augment_bends_the_vertebrae_target_seeded_and_with_valid_labels():
    labels = straight_column()
    labels = np.where(labels == BODY, V_BODY, np.where(labels == OUTSIDE, V_BACKGROUND, V_SPACE))
    labels[:, :4] = V_IGNORE  # any stored label value must survive as itself
    labels = labels.astype(np.uint8)
    image = (labels == V_BODY).astype(np.float32)
    moved = 0
    for seed in range(5):
        xa, ta = augment(image, labels, np.random.default_rng(seed), STILL, V_BACKGROUND)
        xb, tb = augment(image, labels, np.random.default_rng(seed), STILL, V_BACKGROUND)
        np.testing.assert_array_equal(ta, tb)
        np.testing.assert_array_equal(xa, xb)
        assert set(np.unique(ta)) <= {V_BODY, V_SPACE, V_BACKGROUND, V_IGNORE}
        assert np.mean((xa > 0.5) == (ta == V_BODY)) > 0.99
        moved += not np.array_equal(ta, labels)
    assert moved >= 4
    # off: the same augmentation leaves the labels where they were
    _, same = augment(
        image,
        labels,
        np.random.default_rng(0),
        replace(STILL, bend_deg=0.0),
        V_BACKGROUND,
    )
    np.testing.assert_array_equal(same, labels)


def test_bend_deg_round_trips_and_reaches_the_config_from_the_command_line(tmp_path):
    data = tmp_path / "set"
    data.mkdir()
    config = TrainConfig(data, tmp_path / "m.keras", bend_deg=22.5)
    again = TrainConfig.from_json(config.to_json())
    assert again == config and again.bend_deg == 22.5
    for bad in (-1.0, 90.0, float("nan")):
        with pytest.raises(SpineSegError, match="bend must be 0 to 45 degrees"):
            TrainConfig(data, tmp_path / "m.keras", bend_deg=bad)
    args = build_parser().parse_args(
        ["train", str(data), "--out", str(tmp_path / "m.keras"), "--bend-deg", "17"]
    )
    assert train_cli.config_from_args(args).bend_deg == 17.0
    plain = build_parser().parse_args(["train", str(data), "--out", str(tmp_path / "m.keras")])
    assert (
        train_cli.config_from_args(plain).bend_deg
        == TrainConfig(data, tmp_path / "m.keras").bend_deg
    )


def test_mild_phantoms_keep_everything_but_the_size_of_the_curve():
    for seed in range(12):
        free, mild = make_phantom(seed), make_phantom(seed, max_curve=20.0)
        assert mild.meta["curve"] == free.meta["curve"]
        assert mild.image.shape == free.image.shape
        assert mild.meta["amplitude"] <= 20.0 and mild.angles[0] < 24.0
