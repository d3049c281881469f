"""Retraining on a review's corrections: which samples, and a real fine-tuning run."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from napari_spine_seg.data.aasce import write_landmarks_mat
from napari_spine_seg.data.masks import read_mask
from napari_spine_seg.data.phantom import make_phantom
from napari_spine_seg.errors import SpineSegError
from napari_spine_seg.review.retrain import retraining_dataset
from napari_spine_seg.review.session import ReviewSession

SHAPE = (128, 64)


def write_aasce(root: Path, n_train: int = 4, n_test: int = 2) -> Path:
    """A tiny phantom set in the AASCE layout (128 x 64 X-rays)."""
    for split, n, offset in (("training", n_train, 0), ("test", n_test, 100)):
        (root / "data" / split).mkdir(parents=True)
        (root / "labels" / split).mkdir(parents=True)
        for i in range(n):
            ph = make_phantom(np.random.default_rng(offset + i), height=SHAPE[0], width=SHAPE[1])
            name = f"ph {split} {i:02d}.jpg"
            Image.fromarray(ph.image).save(root / "data" / split / name, quality=95)
            write_landmarks_mat(root / "labels" / split / f"{name}.mat", ph.landmarks)
    return root


@pytest.fixture
def aasce(tmp_path):
    return write_aasce(tmp_path / "phantoms")


def test_retraining_set_is_the_corrections_plus_the_original_training_set(aasce, tmp_path):
    session = ReviewSession.open(tmp_path / "review", aasce)
    test_key = "test/ph test 00.jpg"
    train_key = "training/ph training 01.jpg"
    corrected = session.sample(test_key).load_trimap()
    corrected[:10] = 1
    session.save_edit(test_key, corrected)
    session.accept(test_key, corrected)
    session.accept(train_key, session.sample(train_key).load_trimap())

    dataset = retraining_dataset(session, aasce)
    names = sorted((s.split, s.name) for s in dataset.samples)
    # the test split is left out, the corrected test image joins training
    assert names == [("training", "ph test 00.jpg")] + [
        ("training", f"ph training {i:02d}.jpg") for i in range(4)
    ]
    by_name = {s.name: s for s in dataset.samples}
    assert by_name["ph training 01.jpg"].trimap_path == session.trimap_path(train_key)
    assert np.array_equal(read_mask(by_name["ph test 00.jpg"].trimap_path), corrected)
    assert np.array_equal(by_name["ph test 00.jpg"].load_trimap(), corrected)

    alone = retraining_dataset(session, None)
    assert sorted(s.name for s in alone.samples) == ["ph test 00.jpg", "ph training 01.jpg"]
    assert {s.split for s in alone.samples} == {None}


def test_retraining_needs_a_reviewed_image(aasce, tmp_path):
    session = ReviewSession.open(tmp_path / "review", aasce)
    with pytest.raises(SpineSegError, match="has no accepted or corrected images to retrain on"):
        retraining_dataset(session, aasce)


_FINE_TUNE = textwrap.dedent(
    """
    import json, sys
    from pathlib import Path
    from napari_spine_seg.errors import SpineSegError
    import keras
    from napari_spine_seg.model.builders import build_model
    from napari_spine_seg.model.files import ModelInfo, read_metadata, save_model
    from napari_spine_seg.model.objects import make_loss, make_metrics
    from napari_spine_seg.review.retrain import retrain
    from napari_spine_seg.review.session import ReviewSession
    from napari_spine_seg.trimap import trimap_from_landmarks

    aasce, tmp = Path(sys.argv[1]), Path(sys.argv[2])
    # an untrained model, as train() would save it before its first epoch
    options = {"depth": 2, "filters": 4}
    model = build_model("unet", (64, 32, 1), 3, **options)
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss=make_loss("ce+dice"),
                  metrics=make_metrics())
    info = ModelInfo(preset="unet", options=options, input_size=(64, 32), channels=1,
                     training_set={"root": str(aasce)}, training={"epoch": 0})
    model_path = save_model(model, tmp / "m.keras", info)
    session = ReviewSession.open(tmp / "review", aasce / "data" / "test")
    sample = session.sample(session.keys[0])
    corrected = trimap_from_landmarks(sample.load_landmarks(), (128, 64))
    session.save_edit(session.keys[0], corrected)
    session.accept(session.keys[0], corrected)
    try:
        retrain(session, model_path, model_path)
    except SpineSegError as exc:
        refused = str(exc)
    events = []
    result = retrain(session, model_path, tmp / "m-ft.keras", epochs=1, batch_size=4,
                     cache=None, progress=events.append)
    info = read_metadata(result.model_path)
    print(json.dumps({"refused": refused, "model": str(result.model_path),
                      "epoch": info.training["epoch"], "training_set": info.training_set,
                      "last_event": type(events[-1]).__name__}))
    """
)


@pytest.mark.slow
def test_retrain_fine_tunes_from_the_model(aasce, tmp_path):
    # in a child process: TensorFlow and napari's OpenGL must not share a process (see
    # jobs/model_process.py), and other tests of this run may have opened a viewer
    run = subprocess.run(
        [sys.executable, "-c", _FINE_TUNE, os.fspath(aasce), os.fspath(tmp_path)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    out = json.loads(run.stdout.strip().splitlines()[-1])
    assert out["refused"].endswith("is the model being fine-tuned; choose another file name")
    assert out["model"] == str(tmp_path / "m-ft.keras")
    assert out["epoch"] == 1  # one epoch on top of the model's none
    ts = out["training_set"]
    assert ts["n_train"] + ts["n_val"] == 5  # the 4 original images + 1 corrected
    assert out["last_event"] == "TrainingDone"
