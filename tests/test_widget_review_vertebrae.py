"""The review queue with a model that finds vertebrae: the image's vertebrae and landmarks
layers beside its trimap, as Predict gives them, kept with the prediction in the review
folder; a moved corner repaints its vertebra. Real viewer, real model files."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from _files import write_aasce
from _widget_helpers import new_widget

WIDGET = "review_widget:ReviewWidget"
TESTS = Path(__file__).resolve().parent

pytestmark = pytest.mark.gui


def _vertebra_model(path: Path) -> Path:
    """tests/_files.write_untrained_vertebra_model, in a child process (TensorFlow must not
    load beside napari's OpenGL)."""
    code = (
        f"import sys; sys.path.insert(0, {os.fspath(TESTS)!r}); "
        "from _files import write_untrained_vertebra_model as w; w(sys.argv[1])"
    )
    subprocess.run([sys.executable, "-c", code, os.fspath(path)], check=True, timeout=300)
    return path


def _found_by_predict(model: Path, image: Path, out: Path) -> int:
    """How many bodies ``spine-seg predict`` finds in `image` (its vertebrae.json)."""
    command = [sys.executable, "-m", "napari_spine_seg.cli", "predict", os.fspath(model)]
    subprocess.run(
        [*command, os.fspath(image), "--out", os.fspath(out)],
        check=True,
        timeout=300,
        capture_output=True,
    )
    entries = json.loads((out / "vertebrae.json").read_text())["images"]
    return entries[image.name]["found"]


def test_review_shows_a_vertebra_models_vertebrae_and_landmarks(
    make_napari_viewer, qtbot, tmp_path, napari_notifications
):
    from napari.layers import Labels, Points

    from napari_spine_seg._napari._widgets._state import ModelRef, viewer_state
    from napari_spine_seg.model.files import read_metadata
    from napari_spine_seg.review.predictions import PredictionCache
    from napari_spine_seg.spine.vertebra_labels import vertebra_labels
    from napari_spine_seg.trimap import rowcol_to_xy, trimap_from_landmarks

    dataset = write_aasce(tmp_path / "phantoms", {"training": (2, 0)})
    model = _vertebra_model(tmp_path / "v.keras")
    folder = tmp_path / "review"
    viewer = make_napari_viewer()
    viewer_state(viewer).set_model(ModelRef(model, read_metadata(model)))
    widget = new_widget(viewer, WIDGET)
    widget.dataset_edit.value = dataset
    widget.folder_edit.value = folder
    widget.open_review()
    session = widget.session
    keys = list(session.keys)
    qtbot.waitUntil(lambda: widget._key == keys[0], timeout=120_000)
    sample = session.sample(keys[0])
    stem = Path(sample.name).stem
    names = [layer.name for layer in viewer.layers]
    assert names == [stem, f"{stem} probability", f"{stem} trimap"] + [
        f"{stem} vertebrae",
        f"{stem} landmarks",
    ]
    vertebrae, points = viewer.layers[f"{stem} vertebrae"], viewer.layers[f"{stem} landmarks"]
    assert isinstance(vertebrae, Labels) and isinstance(points, Points)
    assert vertebrae.data.shape == sample.load_image().pixels.shape
    # the model's own bodies: as many as spine-seg predict finds in the same image
    bodies = len(set(np.unique(vertebrae.data)) - {0})
    assert bodies == _found_by_predict(model, sample.image_path, tmp_path / "pred") != 17
    assert len(points.data) == 0  # not 17: no corners guessed, and the review says why
    warned = [str(n.message) for n in napari_notifications if n.severity.name == "WARNING"]
    assert any(m.startswith("vertebrae: ") and sample.name in m for m in warned)
    # kept in the review folder with the prediction
    cache = PredictionCache(folder, model)
    kept = cache.get(keys[0], sample.image_path)
    assert kept is not None and np.array_equal(kept.vertebrae, vertebrae.data)
    assert kept.landmarks is None and kept.vertebra_faults

    # the next image's kept prediction has 17 vertebrae (its phantom's own): the review
    # shows them from the review folder, paired with its predicted trimap
    second = session.sample(keys[1])
    landmarks = second.load_landmarks()
    shape = second.load_image().pixels.shape
    cache.put(
        keys[1],
        second.image_path,
        trimap_from_landmarks(landmarks, shape),
        np.zeros(shape, np.float32),
        vertebrae=vertebra_labels(landmarks, shape),
        landmarks=landmarks,
    )
    widget.next_image()
    qtbot.waitUntil(lambda: widget._key == keys[1], timeout=60_000)
    stem = Path(second.name).stem
    assert f"{stem} vertebrae" in viewer.layers and f"{stem} vertebrae" != names[3]
    assert names[3] not in viewer.layers  # the first image's went with it
    vertebrae, points = viewer.layers[f"{stem} vertebrae"], viewer.layers[f"{stem} landmarks"]
    np.testing.assert_array_equal(vertebrae.data, vertebra_labels(landmarks, shape))
    np.testing.assert_allclose(rowcol_to_xy(points.data), landmarks)
    pair = {
        viewer.layers[n].metadata["spine_seg"]["prediction"]
        for n in (f"{stem} trimap", f"{stem} vertebrae", f"{stem} landmarks")
    }
    assert len(pair) == 1  # the Spine curve widget measures the trimap on these corners
    # a corner moved repaints its vertebra (L3's bottom-right, 4 px right)
    before = np.array(vertebrae.data)
    moved = np.array(points.data)
    moved[4 * 14 + 3, 1] += 4
    points.data = moved
    assert (vertebrae.data == 15).sum() > (before == 15).sum()
    for k in set(range(1, 18)) - {15}:
        np.testing.assert_array_equal(vertebrae.data == k, before == k)
