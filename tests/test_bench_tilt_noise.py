"""The tilt-noise simulation: turning vertebrae, telling a moved MT, scores that grow with noise."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"
sys.path.insert(0, str(BENCHMARKS))

import bench_tilt_noise  # noqa: E402
from napari_spine_seg.spine.cobb import vertebra_tilts  # noqa: E402


def test_turned_turns_each_vertebra_about_its_own_centre():
    ((landmarks, _),) = bench_tilt_noise.second_generator_spines(1, seed=3)
    turns = np.linspace(-5.0, 5.0, 17)
    moved = bench_tilt_noise.turned(landmarks, turns)
    np.testing.assert_allclose(vertebra_tilts(moved) - vertebra_tilts(landmarks), turns, atol=1e-9)
    centres = lambda lm: lm.reshape(17, 4, 2).mean(axis=1)  # noqa: E731
    np.testing.assert_allclose(centres(moved), centres(landmarks), atol=1e-9)


def test_an_end_vertebra_one_off_is_not_a_moved_curve_but_another_curve_is():
    reference = ((0, 8), (0, 0), (8, 16))
    assert not bench_tilt_noise.mt_moved(reference, ((1, 8), (0, 1), (8, 16)))
    assert not bench_tilt_noise.mt_moved(reference, ((0, 9), (0, 0), (9, 16)))
    assert bench_tilt_noise.mt_moved(reference, ((8, 16), (0, 8), (0, 0)))


def test_scores_are_zero_without_noise_and_grow_with_it():
    spines = bench_tilt_noise.second_generator_spines(48, seed=4)
    exact = bench_tilt_noise.score(spines, np.zeros(17), 1.0, seed=4)
    assert exact["smape"] == 0.0 and exact["mae"] == 0.0 and exact["mt_moved"] == 0.0
    small = bench_tilt_noise.score(spines, np.full(17, 0.5), 1.0, seed=4)
    large = bench_tilt_noise.score(spines, np.full(17, 2.0), 1.0, seed=4)
    assert 0.0 < small["smape"] < large["smape"]
    assert small["mae"] < large["mae"]
    # flattening the tilts shrinks every angle: a gain of 0.8 alone costs about 11 %
    flat = bench_tilt_noise.score(spines, np.zeros(17), 0.8, seed=4)
    assert 8.0 < flat["smape"] < 14.0
    assert flat["sets_of_16"]["n"] == 3


def test_main_writes_a_model_measured_by_bench_vertebrae(tmp_path):
    measured = tmp_path / "v.json"
    sd = [1.5] + [0.7] * 16
    measured.write_text(
        json.dumps({"generator": "other", "tilt_error_deg": {"sd_per_vertebra": sd, "gain": 0.95}})
    )
    out = tmp_path / "noise.json"
    assert (
        bench_tilt_noise.main([str(out), "--n", "32", "--sd", "0.5", "--measured", str(measured)])
        == 0
    )
    report = json.loads(out.read_text())
    rows = report["sets"]["second generator"]
    assert set(rows) == {"sd 0.5 deg", "measured (v.json)", "measured (v.json), gain 1"}
    # the file's spread and gain are what was simulated
    spines = bench_tilt_noise.second_generator_spines(32, seed=1)
    assert rows["measured (v.json)"] == bench_tilt_noise.score(spines, np.array(sd), 0.95, seed=1)
    assert rows["measured (v.json), gain 1"] == bench_tilt_noise.score(spines, np.array(sd), 1.0, 1)
    # measured on the second generator's images: not simulated on the strong curves
    assert set(report["sets"]["strong curves 30-75 deg"]) == {"sd 0.5 deg"}
