"""The Cobb benchmark end to end: another generator's test split, spine-seg trimaps + cobb."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"
sys.path.insert(0, str(BENCHMARKS))

import bench_cobb  # noqa: E402
import bench_cobb_phantoms  # noqa: E402
import other_spines  # noqa: E402
from napari_spine_seg.data.aasce import read_angles_csv, read_landmarks_mat  # noqa: E402
from napari_spine_seg.data.dataset import open_dataset  # noqa: E402
from napari_spine_seg.spine.cobb import cobb_angles  # noqa: E402


def test_other_spines_writes_a_readable_set_with_reference_angles(tmp_path):
    root = other_spines.write_spine_set(tmp_path / "set", n_test=16, n_train=1, seed=7)
    dataset = open_dataset(root)
    assert set(dataset.splits) == {"training", "test"} and len(dataset) == 17
    test = dataset.split("test")
    angles = read_angles_csv(root / "labels" / "test")
    summary = json.loads((root / "other-spines.json").read_text())["images"]
    severities = []
    for sample in test:
        landmarks = read_landmarks_mat(sample.landmarks_path)
        height, width = sample.image_shape()
        np.testing.assert_allclose(angles[sample.name], cobb_angles(landmarks, height))
        # the column lies inside the image
        assert landmarks[:, 0].min() > 0 and landmarks[:, 0].max() < width
        assert landmarks[:, 1].min() > 0 and landmarks[:, 1].max() < height
        meta = summary[f"test/{sample.name}"]
        severities.append(meta["severity"])
        low, high = dict((n, r) for n, r, _ in other_spines.SEVERITIES)[meta["severity"]]
        assert low - 1.0 <= angles[sample.name][0] <= high + 1.0
    # every 16 images carry the real set's mix: mostly 10-60 deg, one near-straight
    assert sorted(severities) == sorted(
        ["near-straight"] + ["mild"] * 3 + ["moderate"] * 8 + ["severe"] * 4
    )


def test_other_spines_differ_from_each_other_and_repeat_by_seed():
    a = other_spines.make_spine(np.random.default_rng(1), severity="moderate")
    b = other_spines.make_spine(np.random.default_rng(1), severity="moderate")
    c = other_spines.make_spine(np.random.default_rng(2), severity="moderate")
    np.testing.assert_array_equal(a.image, b.image)
    assert a.image.shape != c.image.shape or not np.array_equal(a.image, c.image)
    assert a.image.dtype == np.uint8 and a.image.shape[0] > 2 * a.image.shape[1]


def test_a_strongly_curved_set_has_only_main_curves_of_30_to_75_degrees(tmp_path):
    root = tmp_path / "strong"
    assert other_spines.main([str(root), "--strong", "--test", "8", "--seed", "5"]) == 0
    angles = read_angles_csv(root / "labels" / "test")
    main = np.array([a[0] for a in angles.values()])
    low, high = other_spines.STRONG
    assert len(main) == 8 and main.min() >= low and main.max() <= high
    assert main.max() - main.min() > 10  # a spread, not one angle
    summary = json.loads((root / "other-spines.json").read_text())
    assert summary["main_range"] == [low, high]


def test_benchmark_split_meets_the_targets_from_ground_truth_trimaps(tmp_path):
    """The issue's bar: MAE <= 3 deg and SMAPE <= 10 % on a 16-image split.

    Seed 2024 is the benchmark's default split. Two of its images are double or triple
    curves whose angles tie within 1-2 deg, where the reference's PT/MT/TL assignment
    flips with any measurement error (docs/cobb.md); they cost about 2.5 deg of MAE, and
    the split passes by a hair (2.96 deg): a change that flips one more image fails here.
    """
    report = bench_cobb.run(16, 2024, tmp_path)
    gt = report["ground_truth"]
    assert gt["n"] == 16
    assert gt["mae"] <= bench_cobb.TARGET_MAE
    assert gt["smape"] <= bench_cobb.TARGET_SMAPE
    assert report["targets_met"]
    # the only doubt on these outlines is two curves of about one size, and every
    # curved image whose order flipped (SMAPE >= 20 %) was warned about
    assert gt["warnings"] and all("other curve PT" in w for w in gt["warnings"])
    warned = {
        im["name"]
        for im in gt["images"]
        if any(f"{Path(im['name']).stem}.png:" in w for w in gt["warnings"])
    }
    flipped = {im["name"] for im in gt["images"] if im["smape"] >= 20 and im["reference"][0] >= 10}
    assert flipped and flipped <= warned, (flipped, warned)
    assert len(warned) <= 5
    # without the tied double curves the angles are much closer than the bar
    flip_free = [im for im in gt["images"] if im["smape"] < 20]
    assert len(flip_free) >= 13
    errors = [
        abs(r - m) for im in flip_free for r, m in zip(im["reference"], im["measured"], strict=True)
    ]
    assert np.mean(errors) <= 1.0


@pytest.mark.parametrize("argv", [["--n", "2", "--seed", "5", "--degrade"]])
def test_benchmark_command_line_writes_json(tmp_path, argv, capsys):
    out = tmp_path / "report.json"
    status = bench_cobb.main([*argv, "--json", str(out), "--keep", str(tmp_path / "work")])
    report = json.loads(out.read_text())
    assert status in (0, 1) and status == (0 if report["targets_met"] else 1)
    assert report["n_images"] == 2 and {"ground_truth", "unet_like"} <= set(report)
    assert "ground-truth trimaps: MAE" in capsys.readouterr().out
    assert (tmp_path / "work" / "trimaps").is_dir()


def test_phantom_splits_benchmark_scores_both_outlines(tmp_path, capsys):
    """Plumbing only: an untrained tiny model finds no spine, so every image fails."""
    from napari_spine_seg.model.builders import build_model
    from napari_spine_seg.model.files import ModelInfo, save_model

    model = tmp_path / "m.keras"
    info = ModelInfo(preset="unet", options={"depth": 2, "filters": 4}, input_size=(64, 32))
    save_model(build_model("unet", (64, 32, 1), depth=2, filters=4), model, info)
    out = tmp_path / "report.json"
    argv = ["--model", str(model), "--splits", "1", "--json", str(out), "--keep", str(tmp_path)]
    assert bench_cobb_phantoms.main(argv) == 0
    report = json.loads(out.read_text())
    (row,) = report["splits"]
    assert row["seed"] == 101 and row["n_images"] == 16
    assert set(row) >= {"predicted", "auto"} and report["predicted"]["mean_smape"] >= 0
    assert len(list((tmp_path / "predicted-101").glob("*.png"))) == 16
    assert "splits with SMAPE <= 10 %" in capsys.readouterr().out
