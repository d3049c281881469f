"""One test set drawn again (benchmarks/bench_set_draws.py): the draws' spread, the
images that move their MT, and the plate reader started at the truth."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"
sys.path.insert(0, str(BENCHMARKS))

import bench_set_draws  # noqa: E402
import other_generator  # noqa: E402


@pytest.fixture(scope="module")
def small_set(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("draws") / "other"
    return other_generator.write_other_set(root, n_train=0, n_test=6, seed=7)


def test_no_noise_scores_nothing_and_more_noise_scores_more(small_set):
    spines = bench_set_draws.load_set(small_set)
    assert len(spines) == 6 and spines[0]["image"].ndim == 2
    exact = bench_set_draws.draw_scores(spines, np.zeros(17), 1.0, draws=3, seed=1)
    assert exact["set_smape_p10_p50_p90"] == [0.0, 0.0, 0.0]
    assert exact["share_smape_at_most_6"] == 1.0 and max(exact["mt_moved_per_image"]) == 0.0
    small = bench_set_draws.draw_scores(spines, np.full(17, 0.3), 1.0, draws=40, seed=1)
    large = bench_set_draws.draw_scores(spines, np.full(17, 2.0), 1.0, draws=40, seed=1)
    assert 0.0 < small["set_smape_p10_p50_p90"][1] < large["set_smape_p10_p50_p90"][1]
    assert small["share_mae_at_most_2"] >= large["share_mae_at_most_2"]
    assert len(large["smape_per_image"]) == 6


def test_the_reader_at_the_truth_reads_the_images_plates_closely(small_set):
    spines = bench_set_draws.load_set(small_set)
    exact = bench_set_draws.image_scores(spines, [s["landmarks"] for s in spines])
    assert exact["tilt_sd"] == 0.0 and exact["smape"] == 0.0
    assert exact["gain"] == pytest.approx(1.0)
    report = bench_set_draws.measure_set(spines, {}, draws=5, seed=1)
    reader = report["reader_at_truth"]
    # the image's own edges, read from where they are: under a degree per vertebra and
    # not flattened, yet not the truth itself (grain and whole-pixel edges)
    assert 0.05 < reader["tilt_sd"] < 1.0, reader
    assert 0.9 < reader["gain"] < 1.1
    assert "the reader at the truth, as measured" in report["draws"]
    # the bodies as drawn: with their corners on quarter pixels (the default drawing)
    # a tenth of a degree off their landmarks, on whole pixels (as before 2026-12-01)
    # about a third of a degree
    assert 0.02 < report["drawn_bodies"]["tilt_sd"] < 0.15, report["drawn_bodies"]
    coarse = bench_set_draws.measure_set(spines, {}, draws=1, seed=1, antialias=1)
    assert 0.2 < coarse["drawn_bodies"]["tilt_sd"] < 0.6, coarse["drawn_bodies"]


def test_main_writes_each_set_with_the_model_measured_on_it(small_set, tmp_path):
    measured = tmp_path / "v.json"
    sd = [1.2] + [0.6] * 16
    measured.write_text(json.dumps({"tilt_error_deg": {"sd_per_vertebra": sd, "gain": 0.97}}))
    out = tmp_path / "draws.json"
    argv = [str(out), "--set", "s", str(small_set), "--measured", "s", str(measured)]
    assert bench_set_draws.main([*argv, "--sd", "0.5", "--draws", "4"]) == 0
    draws = json.loads(out.read_text())["sets"]["s"]["draws"]
    assert set(draws) == {
        "sd 0.5 deg",
        "measured (v.json)",
        "the reader at the truth, as measured",
    }


def test_drawn_corners_floor_to_the_grid_the_shapes_were_drawn_on():
    corners = np.array([[10.2, 20.9], [30.74, 20.1]])
    np.testing.assert_array_equal(
        bench_set_draws.drawn_corners(corners, antialias=1), [[10, 20], [30, 20]]
    )
    # four times finer: a quarter of a pixel, a fine pixel's centre at (i - 1.5) / 4
    fine = bench_set_draws.drawn_corners(corners, antialias=4)
    assert np.abs(fine - corners).max() <= 0.25
    np.testing.assert_allclose(fine[0], [10.125, 20.875])
