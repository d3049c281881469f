"""Retraining on a review's corrections: which samples, and a real fine-tuning run."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from napari_spine_seg.data.aasce import write_landmarks_mat
from napari_spine_seg.data.masks import read_mask
from napari_spine_seg.data.phantom import make_phantom
from napari_spine_seg.errors import SpineSegError
from napari_spine_seg.review.retrain import retrain, retraining_dataset
from napari_spine_seg.review.session import ReviewSession
from napari_spine_seg.trimap import trimap_from_landmarks

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


@pytest.mark.slow
def test_retrain_fine_tunes_from_the_model(aasce, tmp_path):
    from napari_spine_seg.model.files import read_metadata
    from napari_spine_seg.model.train import train

    first = train(
        aasce,
        tmp_path / "m.keras",
        size=(64, 32),
        epochs=1,
        batch_size=4,
        cache=None,
        options={"depth": 2, "filters": 4},
        augment=False,
    )
    session = ReviewSession.open(tmp_path / "review", aasce / "data" / "test")
    key = session.keys[0]
    trimap = trimap_from_landmarks(session.sample(key).load_landmarks(), SHAPE)
    session.save_edit(key, trimap)
    events = []
    with pytest.raises(SpineSegError, match="is the model being fine-tuned"):
        retrain(session, first.model_path, first.model_path)
    result = retrain(
        session,
        first.model_path,
        tmp_path / "m-ft.keras",
        epochs=1,
        batch_size=4,
        cache=None,
        progress=events.append,
    )
    info = read_metadata(result.model_path)
    assert result.model_path == tmp_path / "m-ft.keras"
    assert info.training["epoch"] == 2  # one more epoch on top of the model's one
    assert (
        info.training_set["n_train"] + info.training_set["n_val"] == 5
    )  # 4 original + 1 corrected
    assert type(events[-1]).__name__ == "TrainingDone"
