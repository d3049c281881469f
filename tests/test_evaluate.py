"""evaluate() and `spine-seg evaluate`: scores per image and mean, table, JSON, errors."""

from __future__ import annotations

import json

import numpy as np
import pytest

from _files import write_aasce_layout
from napari_spine_seg.cli import main
from napari_spine_seg.data.dataset import open_dataset
from napari_spine_seg.data.masks import trimap_name, write_trimap_png
from napari_spine_seg.errors import SpineSegError
from napari_spine_seg.evaluate import evaluate, write_report_json


@pytest.fixture
def test_split(tmp_path):
    root = write_aasce_layout(tmp_path / "aasce", n_train=1, n_test=3, size=(160, 64))
    return open_dataset(root / "data" / "test")


def _write_predictions(dataset, folder, damage=None):
    for i, sample in enumerate(dataset.samples):
        trimap = sample.load_trimap().copy()
        if damage is not None and i == damage:
            trimap[trimap == 1] = 2  # this prediction misses the spine entirely
        write_trimap_png(folder / trimap_name(sample.name), trimap)
    return folder


def test_perfect_predictions_score_one(test_split, tmp_path):
    report = evaluate(_write_predictions(test_split, tmp_path / "pred"), test_split)
    assert len(report.images) == 3
    assert report.mean["pixel_accuracy"] == 1.0
    assert report.mean["spine_dice"] == 1.0 and report.mean["spine_iou"] == 1.0
    assert report.mean["hd95"] == 0.0


def test_scores_per_image_and_mean(test_split, tmp_path):
    report = evaluate(_write_predictions(test_split, tmp_path / "pred", damage=1), test_split)
    dice = [s.spine_dice for s in report.images]
    assert dice[0] == 1.0 and dice[1] == 0.0 and dice[2] == 1.0
    assert report.mean["spine_dice"] == pytest.approx(2 / 3)
    assert report.images[1].pixel_accuracy < 1.0
    assert report.images[1].hd95 == float("inf") and report.mean["hd95_undefined"] == 1
    table = report.table()
    assert "mean" in table and "0.6667" in table and test_split.samples[0].name in table
    data = report.to_json()
    assert data["images"][1]["hd95"] is None  # JSON has no infinity
    out = write_report_json(report, tmp_path / "r" / "scores.json")
    assert json.loads(out.read_text())["mean"]["spine_dice"] == pytest.approx(2 / 3)


def test_a_missing_prediction_is_a_clear_error(test_split, tmp_path):
    pred = _write_predictions(test_split, tmp_path / "pred")
    missing = pred / trimap_name(test_split.samples[2].name)
    missing.unlink()
    with pytest.raises(SpineSegError) as err:
        evaluate(pred, test_split)
    assert str(missing) in str(err.value) and "no prediction for image" in str(err.value)


def test_a_prediction_of_the_wrong_size_is_a_clear_error(test_split, tmp_path):
    pred = _write_predictions(test_split, tmp_path / "pred")
    target = pred / trimap_name(test_split.samples[0].name)
    write_trimap_png(target, np.full((10, 10), 2, np.uint8))
    with pytest.raises(SpineSegError, match="is 10 x 10 pixels but image"):
        evaluate(pred, test_split)


def test_cli_prints_a_table_and_writes_json(test_split, tmp_path, capsys):
    pred = _write_predictions(test_split, tmp_path / "pred", damage=0)
    out = tmp_path / "scores.json"
    assert (
        main(["evaluate", str(pred), str(test_split.root / "data" / "test"), "--json", str(out)])
        == 0
    )
    printed = capsys.readouterr().out
    assert "Dice" in printed and "mean" in printed
    data = json.loads(out.read_text())
    assert data["n_images"] == 3 and data["images"][0]["spine_dice"] == 0.0


def test_cli_missing_prediction_is_exit_2_with_one_line(test_split, tmp_path, capsys):
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main(["evaluate", str(empty), str(test_split.root / "data" / "test")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("spine-seg evaluate: error: ") and "\n" not in err
    assert "no prediction for image" in err and "(and 2 more)" in err


def test_cobb_errors_against_angles_csv(tmp_path):
    """With angles.csv, evaluate scores the Cobb angles measured on each prediction."""
    root = write_aasce_layout(tmp_path / "aasce", n_train=1, n_test=3, size=(400, 150))
    split = open_dataset(root / "data" / "test")
    assert split.angles, "the test layout must carry angles.csv"
    report = evaluate(_write_predictions(split, tmp_path / "pred", damage=1), split)
    cobb = report.cobb
    assert cobb["n_images"] == 3
    # the damaged prediction has no spine: it cannot be measured and is scored as 0 deg
    assert [f["name"] for f in cobb["failed"]] == [split.samples[1].name]
    intact = [im for im in cobb["images"] if im["name"] != split.samples[1].name]
    assert all(max(im["abs_error"]) < 5.0 for im in intact)
    assert "Cobb angles vs angles.csv (3 images)" in report.table()
    # images whose angles' order is in doubt are counted under the scores, when any
    assert ("image(s) with two curves" in report.table()) == bool(cobb["order_doubtful"])
    assert report.to_json()["cobb"]["n_images"] == 3
