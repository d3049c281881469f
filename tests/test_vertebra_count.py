"""A count of vertebrae that is not 17 is said per image: ``vertebrae.json`` from
``spine-seg predict``, its counts in ``spine-seg evaluate``, a ``"vertebrae"`` fault in
``spine-seg gaps``."""

from __future__ import annotations

import json

import numpy as np
from PIL import Image

from _files import write_aasce_layout, write_untrained_vertebra_model
from napari_spine_seg.cli import main
from napari_spine_seg.data.dataset import open_dataset
from napari_spine_seg.spine.vertebra_count import (
    VERTEBRAE_FILE,
    count_entry,
    count_gap,
    read_vertebra_counts,
    update_vertebra_counts,
)
from napari_spine_seg.spine.vertebra_labels import vertebra_labels
from napari_spine_seg.trimap import trimap_from_landmarks
from test_cobb import make_spine


def _phantom(seed):
    landmarks, shape = make_spine(np.random.default_rng(seed))
    return landmarks, shape


def merged(labels: np.ndarray, k: int) -> np.ndarray:
    """Bodies `k` and `k + 1` (and the space between them) as one; the rest renumbered."""
    out = labels.copy()
    rows = np.flatnonzero(((labels == k) | (labels == k + 1)).any(axis=1))
    cols = np.flatnonzero(((labels == k) | (labels == k + 1)).any(axis=0))
    box = (slice(rows[0], rows[-1] + 1), slice(cols[0], cols[-1] + 1))
    out[box] = np.where(out[box] == 0, k, out[box])
    out[out == k + 1] = k
    out[out > k + 1] -= 1
    return out


def test_the_largest_body_is_where_two_merged():
    landmarks, shape = _phantom(4)
    labels = vertebra_labels(landmarks, shape)
    assert labels.max() == 17 and count_gap(17, vertebrae=labels) is None
    bodies = merged(labels, 9)
    assert np.count_nonzero(np.unique(bodies)) == 16
    gap = count_gap(16, vertebrae=bodies)
    rows, cols = np.nonzero(bodies == 9)
    assert gap.kind == "vertebrae"
    assert bodies[gap.row, gap.col] == 9  # on the merged body, not between two others
    assert gap.height == rows.max() - rows.min() + 1
    assert abs(gap.col - cols.mean()) <= 1


def _prediction_folder(tmp_path):
    """Two predicted trimaps and the counts a prediction recorded for their images."""
    folder = tmp_path / "pred"
    folder.mkdir()
    trimaps = {}
    for seed, name in ((1, "a.jpg"), (2, "b.jpg")):
        landmarks, shape = _phantom(seed)
        trimaps[name] = trimap_from_landmarks(landmarks, shape)
        Image.fromarray(trimaps[name]).save(folder / name.replace(".jpg", ".png"))
    update_vertebra_counts(
        folder / VERTEBRAE_FILE,
        {"a.jpg": count_entry(17, []), "b.jpg": count_entry(16, ["found 16 bodies, not 17"])},
    )
    return folder, trimaps


def test_gaps_lists_an_image_whose_count_is_not_17(tmp_path, capsys):
    folder, trimaps = _prediction_folder(tmp_path)
    out = tmp_path / "gaps.json"
    assert main(["gaps", str(folder), "--json", str(out)]) == 0
    found = json.loads(out.read_text())
    assert [g for g in found["a.png"] if g["kind"] == "vertebrae"] == []
    (fault,) = [g for g in found["b.png"] if g["kind"] == "vertebrae"]
    assert set(fault) == {"row", "col", "height", "kind", "detail"}
    assert fault["detail"].startswith("16 vertebrae found, not 17")
    spine = np.nonzero(trimaps["b.jpg"] == 1)
    top, bottom = spine[0].min(), spine[0].max()
    assert fault["height"] == bottom - top + 1  # the whole column: no body to point at
    assert abs(fault["row"] - (top + bottom) / 2) <= 1
    assert trimaps["b.jpg"][fault["row"], fault["col"]] == 1  # on the column
    stdout = capsys.readouterr().out
    assert "b.png: 1 vertebrae; 16 vertebrae found, not 17" in stdout


def test_a_broken_counts_file_is_one_line_and_exit_2(tmp_path, capsys):
    folder, _ = _prediction_folder(tmp_path)
    (folder / VERTEBRAE_FILE).write_text('{"images": {"b.jpg": {"found": "many"}}}')
    assert main(["gaps", str(folder)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert VERTEBRAE_FILE in err and "not a file of vertebra counts" in err


def test_predict_records_the_counts_and_evaluate_and_gaps_read_them(tmp_path):
    """An untrained vertebrae model does not find 17: predict says so in vertebrae.json,
    evaluate reports each image's count, gaps lists each as a fault; a trimap-only model
    predicting into the same folder takes its images' counts out again."""
    from napari_spine_seg.model.builders import build_model
    from napari_spine_seg.model.files import ModelInfo, save_model
    from napari_spine_seg.model.predict import predict_files

    model = write_untrained_vertebra_model(tmp_path / "v.keras")
    images = write_aasce_layout(tmp_path / "set", n_train=0, n_test=2, size=(120, 48))
    names = open_dataset(images).names
    out = tmp_path / "out"
    predict_files(model, [images / "data" / "test"], out, report=lambda line: None)
    counts = read_vertebra_counts(out / VERTEBRAE_FILE)
    assert sorted(counts) == sorted(names)
    assert all(e["found"] != 17 and e["faults"] for e in counts.values()), counts

    report = tmp_path / "eval.json"
    assert main(["evaluate", str(out), str(images / "data" / "test"), "--json", str(report)]) == 0
    scored = json.loads(report.read_text())["landmarks"]["counts"]["not_found"]
    assert {e["name"]: e["count"] for e in scored} == {n: counts[n]["found"] for n in names}

    gaps = tmp_path / "gaps.json"
    assert main(["gaps", str(out), "--json", str(gaps)]) == 0
    for name, faults in json.loads(gaps.read_text()).items():
        assert [g["kind"] for g in faults].count("vertebrae") == 1, name

    trimap_only = save_model(
        build_model("unet", (64, 32, 1), depth=2, filters=4),
        tmp_path / "t.keras",
        ModelInfo(preset="unet", options={"depth": 2, "filters": 4}, input_size=(64, 32)),
    )
    predict_files(trimap_only, [images / "data" / "test" / names[0]], out)
    assert sorted(read_vertebra_counts(out / VERTEBRAE_FILE)) == [names[1]]
