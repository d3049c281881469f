"""Predicted landmarks measured: corner error, vertebrae found, Cobb angles from landmarks.

The predictions are real files in the format ``spine-seg predict`` writes
(``PRED/<stem>.png`` trimaps and ``PRED/landmarks/<image file name>.mat`` holding
``p2``), made from a phantom data set's own landmarks moved by known amounts, and the
commands run for real: ``spine-seg cobb`` and ``spine-seg evaluate``.
"""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest

from _files import tree_checksums, truncate_file, write_aasce, write_aasce_layout, write_mat
from napari_spine_seg.cli import main
from napari_spine_seg.data.aasce import write_landmarks_mat
from napari_spine_seg.data.dataset import open_dataset
from napari_spine_seg.data.masks import trimap_name, write_trimap_png
from napari_spine_seg.evaluate import evaluate
from napari_spine_seg.spine.cobb import cobb_angles
from napari_spine_seg.spine.cobb_eval import angle_scores, landmark_cobb_errors
from napari_spine_seg.spine.landmark_eval import corner_scores, count_scores
from napari_spine_seg.trimap import sort_landmarks

SHAPE = (320, 128)


def _ring_noise(rng, radius):
    """Every corner moved by exactly `radius` px in a random direction."""
    angle = rng.uniform(0, 2 * np.pi, 68)
    return radius * np.column_stack([np.cos(angle), np.sin(angle)])


def _predict(split, out, *, noise=None, radius=0.0, drop=(), seed=0):
    """Write a prediction folder of `split` as ``spine-seg predict`` lays it out.

    Trimaps are the ground truth's; landmarks the data set's moved by `radius` px
    (`noise="ring"`) or by Gaussian noise of `radius` px per axis (`noise="gauss"`);
    images whose index is in `drop` get no landmark file (17 vertebrae not found).
    """
    rng = np.random.default_rng(seed)
    for i, sample in enumerate(split.samples):
        write_trimap_png(out / trimap_name(sample.name), sample.load_trimap(), predicted=True)
        if i in drop:
            continue
        landmarks = sort_landmarks(sample.load_landmarks())
        if noise == "ring":
            landmarks = landmarks + _ring_noise(rng, radius)
        elif noise == "gauss":
            landmarks = landmarks + rng.normal(0.0, radius, landmarks.shape)
        write_landmarks_mat(out / "landmarks" / f"{sample.name}.mat", landmarks)
    return out


@pytest.fixture(scope="module")
def phantoms(tmp_path_factory):
    """Six phantom X-rays in the AASCE layout (no CSVs: the reference is the landmarks)."""
    root = write_aasce(tmp_path_factory.mktemp("phantoms"), {"test": (6, 40)}, shape=SHAPE)
    return open_dataset(root / "data" / "test")


@pytest.fixture(scope="module")
def with_angles(tmp_path_factory):
    """Four curved synthetic spines in the AASCE layout with angles.csv."""
    root = write_aasce_layout(tmp_path_factory.mktemp("set"), 1, 4, size=(400, 150))
    return open_dataset(root / "data" / "test")


def _reference(split):
    return {
        s.name: cobb_angles(sort_landmarks(s.load_landmarks()), s.image_shape()[0])
        for s in split.samples
    }


def _read_csv(path):
    with open(path, newline="") as f:
        return list(csv.reader(f))


# --------------------------------------------------------------------------- the core


def test_zero_noise_is_exact_and_noise_of_n_px_is_n_px(phantoms):
    truth = {s.name: sort_landmarks(s.load_landmarks()) for s in phantoms.samples}
    heights = {s.name: s.image_shape()[0] for s in phantoms.samples}
    reference = _reference(phantoms)
    exact = landmark_cobb_errors(truth, reference, heights)
    assert exact["n_images"] == 6 and exact["mae"] < 0.01 and exact["smape"] < 0.01
    assert corner_scores(truth, truth, heights)["mean_px"] == 0.0
    rng = np.random.default_rng(1)
    for radius in (0.5, 2.0):
        moved = {n: lm + _ring_noise(rng, radius) for n, lm in truth.items()}
        corners = corner_scores(moved, truth, heights)
        assert corners["mean_px"] == pytest.approx(radius, abs=1e-9)
        assert corners["mean_percent_height"] == pytest.approx(100 * radius / SHAPE[0])
        assert landmark_cobb_errors(moved, reference, heights)["mae"] > 0.01
    # Gaussian noise of sigma per axis: a mean distance of sigma * sqrt(pi / 2)
    moved = {n: lm + rng.normal(0.0, 1.0, lm.shape) for n, lm in truth.items()}
    assert 1.0 < corner_scores(moved, truth, heights)["mean_px"] < 1.5


def test_more_corner_noise_costs_more_cobb_error(phantoms):
    truth = {s.name: sort_landmarks(s.load_landmarks()) for s in phantoms.samples}
    heights = {s.name: s.image_shape()[0] for s in phantoms.samples}
    reference = _reference(phantoms)
    rng = np.random.default_rng(2)
    mae = []
    for sigma in (0.25, 4.0):
        runs = [
            landmark_cobb_errors(
                {n: lm + rng.normal(0, sigma, lm.shape) for n, lm in truth.items()},
                reference,
                heights,
            )["mae"]
            for _ in range(3)
        ]
        mae.append(np.mean(runs))
    assert mae[0] < 1.0 < mae[1]


def test_a_missing_image_is_scored_as_zero_and_listed(with_angles):
    truth = {s.name: sort_landmarks(s.load_landmarks()) for s in with_angles.samples}
    heights = {s.name: s.image_shape()[0] for s in with_angles.samples}
    gone = with_angles.samples[1].name
    pred = {n: (None if n == gone else lm) for n, lm in truth.items()}
    report = landmark_cobb_errors(pred, with_angles.angles, heights)
    assert report["missing"] == [gone] and report["n_images"] == 4
    assert report["found"]["n"] == 3 and report["found"]["mae"] < 0.01
    reference = np.array([with_angles.angles[n] for n in truth])
    measured = np.array([np.zeros(3) if n == gone else with_angles.angles[n] for n in truth])
    assert report["smape"] == pytest.approx(angle_scores(reference, measured)["smape"], abs=0.01)
    assert report["smape"] > 20.0  # one image in four at 100 %
    missing = [im for im in report["images"] if im["missing"]]
    assert [im["name"] for im in missing] == [gone] and missing[0]["angles"] is None
    counts = count_scores(pred, {gone: 16})
    assert counts["n_found"] == 3 and counts["found_rate"] == 0.75
    assert counts["not_found"] == [{"name": gone, "count": 16}]


def test_landmarks_that_cannot_be_measured_are_listed_and_scored_as_zero(with_angles):
    truth = {s.name: sort_landmarks(s.load_landmarks()) for s in with_angles.samples}
    heights = {s.name: s.image_shape()[0] for s in with_angles.samples}
    broken = with_angles.samples[2].name
    flat = truth[broken].copy()
    flat[8:12] = flat[8:12].mean(axis=0)  # vertebra 3: all four corners on one point
    pred = {**truth, broken: flat}
    report = landmark_cobb_errors(pred, with_angles.angles, heights, sources={broken: "x.mat"})
    assert [f["name"] for f in report["failed"]] == [broken]
    assert "vertebra 3" in report["failed"][0]["problem"]
    assert report["missing"] == [] and report["found"]["n"] == 3
    entry = next(im for im in report["images"] if im["name"] == broken)
    assert entry["angles"] == [0.0, 0.0, 0.0] and entry["abs_error"] == entry["reference"]


# --------------------------------------------------------------------------- spine-seg cobb


def test_cli_cobb_on_exact_landmarks_matches_the_reference(phantoms, tmp_path, capsys):
    pred = _predict(phantoms, tmp_path / "pred")
    split_dir = phantoms.root / "data" / "test"
    before = tree_checksums(phantoms.root)
    out = tmp_path / "cobb.csv"
    assert main(["cobb", str(pred), "--dataset", str(split_dir), "--csv", str(out)]) == 0
    stdout = capsys.readouterr().out
    rows = {r[0]: np.array(r[1:], float) for r in _read_csv(out)[1:]}
    reference = _reference(phantoms)
    assert set(rows) == set(reference)
    for name, angles in reference.items():
        np.testing.assert_allclose(rows[name], angles, atol=0.01)
    assert "17 vertebrae found on 6 of 6 images (100.0 %)" in stdout
    assert "corner error (6 images): mean 0.00 px" in stdout
    assert "Cobb angles from landmarks vs the landmarks' angles (6 images): MAE 0.00" in stdout
    assert tree_checksums(phantoms.root) == before
    # the landmark folder itself, its images and heights from the trimaps beside it
    assert main(["cobb", str(pred / "landmarks"), "--csv", str(out)]) == 0
    assert {r[0]: np.array(r[1:], float) for r in _read_csv(out)[1:]}.keys() == rows.keys()
    capsys.readouterr()
    # --trimaps measures the same folder's trimaps: other angles, scored against the set
    assert main(["cobb", str(pred), "--trimaps", "--dataset", str(split_dir)]) == 0
    stdout = capsys.readouterr().out
    assert "against the landmarks' angles (6 images)" in stdout and "vertebrae" not in stdout


def test_cli_cobb_reports_every_missing_landmark_file(with_angles, tmp_path, capsys):
    pred = _predict(with_angles, tmp_path / "pred", noise="ring", radius=1.0, drop=(0, 2))
    out = tmp_path / "cobb.csv"
    split_dir = with_angles.root / "data" / "test"
    assert main(["cobb", str(pred), "--dataset", str(split_dir), "--csv", str(out)]) == 0
    captured = capsys.readouterr()
    gone = [with_angles.samples[i].name for i in (0, 2)]
    warnings = captured.err.strip().splitlines()
    assert len(warnings) == 2
    for name, line in zip(gone, warnings, strict=True):
        assert name in line and "17 vertebrae not found" in line
    table = {r[0]: r[1:] for r in _read_csv(out)[1:]}
    assert len(table) == 4 and all(table[name] == ["", "", ""] for name in gone)
    assert "17 vertebrae found on 2 of 4 images (50.0 %)" in captured.out
    assert "vs angles.csv (4 images, 2 not measured scored as 0 deg)" in captured.out
    assert "on the 2 with landmarks" in captured.out
    assert "corner error (2 images): mean 1.00 px" in captured.out
    # without the data set: the trimaps say which images there are
    assert main(["cobb", str(pred)]) == 0
    captured = capsys.readouterr()
    assert len(captured.err.strip().splitlines()) == 2
    assert "17 vertebrae found on 2 of 4 images" in captured.out


def test_cli_cobb_says_each_count_that_was_not_17(with_angles, tmp_path, capsys):
    """With the prediction's vertebrae.json each image without landmarks is one line
    with its count and why; when no image had 17 (no landmarks/ at all) every image is
    still reported, not measured on its trimap silently."""
    from napari_spine_seg.spine.vertebra_count import count_entry, update_vertebra_counts

    names = [s.name for s in with_angles.samples]
    split_dir = with_angles.root / "data" / "test"
    pred = _predict(with_angles, tmp_path / "pred", drop=(1, 3))
    counts = {n: count_entry(17, []) for n in names}
    counts[names[1]] = count_entry(16, ["two bodies merged"])
    counts[names[3]] = count_entry(18, [])
    update_vertebra_counts(pred / "vertebrae.json", counts)
    assert main(["cobb", str(pred), "--dataset", str(split_dir)]) == 0
    captured = capsys.readouterr()
    warnings = captured.err.strip().splitlines()
    assert len(warnings) == 2
    assert (
        names[1] in warnings[0] and "16 vertebrae found, not 17: two bodies merged" in warnings[0]
    )
    assert names[3] in warnings[1] and "18 vertebrae found, not 17)" in warnings[1]
    assert f"no landmarks for {names[1]}: 17 vertebrae 16 found" in captured.out
    assert f"no landmarks for {names[3]}: 17 vertebrae 18 found" in captured.out
    # a vertebrae model that found 17 nowhere wrote no landmarks/ folder
    bare = _predict(with_angles, tmp_path / "bare", drop=range(len(names)))
    assert not (bare / "landmarks").exists()
    update_vertebra_counts(bare / "vertebrae.json", {n: count_entry(15, []) for n in names})
    assert main(["cobb", str(bare), "--dataset", str(split_dir)]) == 0
    captured = capsys.readouterr()
    warnings = captured.err.strip().splitlines()
    assert len(warnings) == len(names)
    assert all(
        n in w and "15 vertebrae found, not 17" in w for n, w in zip(names, warnings, strict=True)
    )
    assert f"17 vertebrae found on 0 of {len(names)} images" in captured.out
    # --trimaps still measures the trimaps
    assert main(["cobb", str(bare), "--trimaps", "--dataset", str(split_dir)]) == 0
    assert "against angles.csv (4 images): MAE" in capsys.readouterr().out


def test_cli_cobb_trimap_folder_against_a_dataset(with_angles, tmp_path, capsys):
    folder = tmp_path / "trimaps"
    for sample in with_angles.samples:
        write_trimap_png(folder / trimap_name(sample.name), sample.load_trimap())
    split_dir = with_angles.root / "data" / "test"
    assert main(["cobb", str(folder), "--dataset", str(split_dir)]) == 0
    assert "against angles.csv (4 images): MAE" in capsys.readouterr().out


# --------------------------------------------------------------------------- spine-seg evaluate


def test_cli_evaluate_adds_the_landmark_scores(with_angles, tmp_path, capsys):
    pred = _predict(with_angles, tmp_path / "pred", noise="ring", radius=2.0, drop=(3,))
    out = tmp_path / "scores.json"
    split_dir = with_angles.root / "data" / "test"
    assert main(["evaluate", str(pred), str(split_dir), "--json", str(out)]) == 0
    printed = capsys.readouterr().out
    data = json.loads(out.read_text())
    # the old keys are all still there, the trimap scores as before
    for key in ("predictions", "dataset", "n_images", "mean", "images", "cobb"):
        assert key in data
    assert data["mean"]["spine_dice"] == 1.0 and data["cobb"]["n_images"] == 4
    lm = data["landmarks"]
    assert lm["counts"]["n_found"] == 3 and lm["counts"]["found_rate"] == 0.75
    assert lm["counts"]["not_found"] == [{"name": with_angles.samples[3].name, "count": None}]
    assert lm["corner_error"]["n_images"] == 3
    assert lm["corner_error"]["mean_px"] == pytest.approx(2.0, abs=1e-6)
    assert lm["corner_error"]["mean_percent_height"] == pytest.approx(0.5, abs=1e-6)
    assert lm["cobb"]["n_images"] == 4 and lm["cobb"]["missing"] == [with_angles.samples[3].name]
    assert lm["cobb"]["found"]["mae"] > 0.01  # 2 px moves the angles
    assert data["cobb_reference"] == "angles.csv"
    assert "corner error (3 images): mean 2.00 px, 0.500 % of the image height" in printed
    assert "Cobb angles vs angles.csv (4 images)" in printed  # the trimaps' line
    assert "Cobb angles from landmarks vs angles.csv (4 images, 1 not measured" in printed
    assert f"no landmarks for {with_angles.samples[3].name}" in printed


def test_evaluate_exact_landmarks_beside_trimaps(phantoms, tmp_path):
    report = evaluate(_predict(phantoms, tmp_path / "pred"), phantoms)
    lm = report.landmarks
    assert lm["counts"]["found_rate"] == 1.0 and lm["corner_error"]["mean_px"] == 0.0
    assert lm["cobb"]["mae"] < 0.01 and report.cobb_reference == "landmarks"
    # the trimaps are scored against the same reference angles
    assert report.cobb["n_images"] == 6


def test_evaluate_without_landmarks_is_as_before(with_angles, tmp_path):
    pred = _predict(with_angles, tmp_path / "pred")
    for path in (pred / "landmarks").iterdir():
        path.unlink()
    (pred / "landmarks").rmdir()
    report = evaluate(pred, with_angles)
    assert report.landmarks is None and report.to_json()["landmarks"] is None
    assert "landmarks" not in report.table()
    # a model with vertebrae that found 17 on no image wrote no landmarks/ at all
    report = evaluate(pred, with_angles, landmarks=True)
    assert report.landmarks["counts"]["n_found"] == 0
    # 0 deg for all: 100 % on each curved spine, 0 % on the straight one (image 0)
    assert report.landmarks["cobb"]["smape"] == 75.0
    assert "17 vertebrae found on 0 of 4 images (0.0 %)" in report.table()


# --------------------------------------------------------------------------- bad input


def _bad_mat(kind, path):
    if kind == "truncated":
        truncate_file(path, 0.4)
    elif kind == "shape":
        write_mat(path, p2=np.zeros((17, 2)))
    else:
        path.write_bytes(b"not a MAT file at all, just text" * 8)


@pytest.mark.parametrize("command", ["cobb", "evaluate"])
@pytest.mark.parametrize(
    ("kind", "says"),
    [("truncated", "truncated"), ("shape", "expected 68 x 2"), ("text", "not a MATLAB")],
)
def test_a_bad_landmark_file_is_exit_2_naming_it(
    with_angles, tmp_path, capsys, command, kind, says
):
    pred = _predict(with_angles, tmp_path / "pred")
    bad = pred / "landmarks" / f"{with_angles.samples[1].name}.mat"
    _bad_mat(kind, bad)
    before = tree_checksums(tmp_path)
    split_dir = with_angles.root / "data" / "test"
    argv = [command, str(pred), str(split_dir)]
    if command == "cobb":
        argv.insert(2, "--dataset")
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"spine-seg {command}: error: "), err
    assert str(bad) in err[0] and says in err[0], err[0]
    assert tree_checksums(tmp_path) == before


def test_cli_cobb_landmarks_without_images_is_exit_2(with_angles, tmp_path, capsys):
    folder = tmp_path / "only mats"
    folder.mkdir()
    sample = with_angles.samples[0]
    write_landmarks_mat(folder / f"{sample.name}.mat", sample.load_landmarks())
    assert main(["cobb", str(folder)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and str(folder) in err[0] and "--dataset" in err[0]


# --------------------------------------------------------------------------- the demo's report


def test_demo_report_and_summary_put_landmarks_beside_trimaps(with_angles, tmp_path):
    from napari_spine_seg import demo, demo_report
    from napari_spine_seg.cli.demo import summary_lines

    pred = _predict(with_angles, tmp_path / "pred", noise="ring", radius=1.0, drop=(3,))
    report = evaluate(pred, with_angles)
    section = "\n".join(demo_report._landmark_section(report))
    assert "## Vertebrae and landmarks" in section
    assert "on 3 of 4 test images (75.0 %)" in section
    assert "Mean corner error against the phantoms' landmarks: 1.00 px, 0.250 %" in section
    trimaps = f"| from the predicted trimaps (centre line) | 4 | {report.cobb['mae']:.2f}° |"
    assert trimaps in section
    lm = report.landmarks["cobb"]
    assert f"| from the predicted landmarks (the reference computation) | 4 | {lm['mae']:.2f}°" in (
        section
    )
    assert "| from the landmarks, images with landmarks only | 3 |" in section
    assert f"Without landmarks (scored as 0°): {with_angles.samples[3].name}." in section
    targets = "\n".join(demo_report._landmark_targets(report))
    assert "17 vertebrae found on ≥ 95 % of the images: 75.0 % — NOT met" in targets
    assert "mean corner error ≤ 0.3 % of the image height: 0.250 % — met" in targets
    assert "Cobb angles from the predicted landmarks" in targets
    result = demo.DemoResult(
        tmp_path,
        tmp_path / "report.md",
        tmp_path / "m.keras",
        dict(report.mean),
        None,
        {},
        report.cobb,
        report.landmarks,
    )
    lines = summary_lines(result)
    assert lines[0].startswith("Cobb angles from the trimaps (4 images): MAE")
    assert "landmarks: 17 vertebrae found on 3 of 4 images (75.0 %)" in lines
    assert any(line.startswith("Cobb angles from landmarks vs angles.csv") for line in lines)
    # a model without vertebra outputs: nothing about landmarks
    plain = evaluate(pred, with_angles, landmarks=False)
    assert demo_report._landmark_section(plain) == [] and demo_report._landmark_targets(plain) == []
    result.landmarks = None
    assert len(summary_lines(result)) == 1
