"""The end-plate benchmark's neighbour pull: how far predicted tilts lean to their neighbours'."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"
sys.path.insert(0, str(BENCHMARKS))

import bench_end_plates  # noqa: E402


def own_tilts(truth: np.ndarray) -> np.ndarray:
    """Each interior vertebra's tilt less the mean of its neighbours' (NaN at the ends)."""
    own = np.full_like(truth, np.nan)
    own[:, 1:-1] = truth[:, 1:-1] - (truth[:, :-2] + truth[:, 2:]) / 2.0
    return own


def test_tilts_blurred_with_their_neighbours_show_the_blur_as_pull():
    rng = np.random.default_rng(0)
    truth = rng.normal(0.0, 4.0, (64, 17)) + np.linspace(-10, 10, 17)
    pull = 0.1
    # each prediction moves a tenth of the way towards its neighbours' mean, and the
    # whole spine turns by an angle of its own, which no Cobb angle sees
    blurred = truth - pull * np.nan_to_num(own_tilts(truth))
    errors = blurred - truth + rng.normal(0.0, 3.0, (64, 1)) + rng.normal(0.0, 0.3, (64, 17))
    result = bench_end_plates.neighbour_pull(errors, truth)
    assert abs(result["all"] - pull) < 0.02
    assert set(result) == {"all", *bench_end_plates.PULL_BANDS}
    for band in bench_end_plates.PULL_BANDS:
        assert abs(result[band] - pull) < 0.04


def test_independent_errors_pull_nothing():
    rng = np.random.default_rng(1)
    truth = rng.normal(0.0, 4.0, (64, 17))
    result = bench_end_plates.neighbour_pull(rng.normal(0.0, 0.7, (64, 17)), truth)
    assert abs(result["all"]) < 0.03
