"""Each image's prediction is kept in the review folder: reopening a review predicts nothing.

A real (tiny, untrained) model predicts in the model process; the count of its calls
is what the tests check.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from _widget_helpers import write_tiny_model
from napari_spine_seg.jobs import model_process
from napari_spine_seg.review.predictions import (
    PREDICTION_FOLDER,
    PredictionCache,
    describe_seconds,
    model_identity,
    rank_images,
)
from napari_spine_seg.review.priority import review_priority
from napari_spine_seg.review.session import ReviewSession
from napari_spine_seg.review.state import WORST_FIRST

SHAPE = (128, 64)
NAMES = ("case 01 AP.jpg", "case 02 AP.jpg", "case 03 AP.jpg")


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    return write_tiny_model(tmp_path_factory.mktemp("model") / "tiny.keras")


@pytest.fixture
def images(tmp_path):
    root = tmp_path / "x-rays"
    root.mkdir()
    rng = np.random.default_rng(3)
    for name in NAMES:
        Image.fromarray(rng.integers(0, 255, SHAPE, dtype=np.uint8)).save(root / name, quality=90)
    return root


class CountedModel:
    """The model process's real prediction of an image file, counting the calls."""

    def __init__(self, model: Path):
        self.model = str(model)
        self.calls: list[str] = []

    def __call__(self, image_path: str):
        self.calls.append(Path(image_path).name)
        return model_process.call(model_process.predict_file, self.model, image_path)


def rank(session: ReviewSession, model: Path, predict):
    items = [(key, str(session.sample(key).image_path)) for key in session.keys]
    steps = []
    generator = rank_images(items, PredictionCache(session.folder, model), predict)
    while True:
        try:
            steps.append(next(generator))
        except StopIteration as stop:
            return stop.value, steps


def test_second_ranking_of_a_review_calls_the_model_for_no_image(images, model, tmp_path):
    folder = tmp_path / "review"
    predict = CountedModel(model)
    with ReviewSession.open(folder, images) as session:
        first, steps = rank(session, model, predict)
        session.set_order(WORST_FIRST, first.priorities)
    assert sorted(predict.calls) == sorted(NAMES) and sorted(first.predicted) == sorted(NAMES)
    # said before the first prediction: how many need the model
    assert (steps[0].done, steps[0].to_predict) == (0, 3)
    assert steps[0].describe() == "3 of 3 images to predict before ranking, timing after the first"
    assert [s.predicted for s in steps] == [0, 1, 2, 3]
    assert steps[1].left_s is not None
    kept = sorted(p.name for p in (folder / PREDICTION_FOLDER / model_identity(model)).iterdir())
    assert len([k for k in kept if k.endswith(".npz")]) == 3 and "speed.json" in kept
    assert not list(folder.rglob(".*.part.*"))

    # the priority kept is the one of the model's real prediction
    trimap, probability = model_process.call(
        model_process.predict_file, str(model), str(images / NAMES[0])
    )
    assert first.priorities[NAMES[0]] == review_priority(trimap, probability)

    predict.calls.clear()
    with ReviewSession.open(folder) as again:  # reopened: nothing to predict
        second, steps = rank(again, model, predict)
        kept = PredictionCache(folder, model).get(NAMES[0], images / NAMES[0])
    assert predict.calls == [] and second.predicted == []
    assert second.priorities == first.priorities
    assert steps[0].to_predict == 0
    assert steps[0].describe() == "all 3 predictions kept from before: ranking at once"
    np.testing.assert_array_equal(kept.trimap, trimap)
    np.testing.assert_allclose(kept.probability, probability, atol=1e-3)  # kept as float16


def test_a_changed_image_a_damaged_file_or_another_model_is_predicted_again(
    images, model, tmp_path
):
    folder = tmp_path / "review"
    predict = CountedModel(model)
    with ReviewSession.open(folder, images) as session:
        rank(session, model, predict)
        predict.calls.clear()
        # the image file changed since its prediction
        Image.fromarray(np.full(SHAPE, 90, np.uint8)).save(images / NAMES[1], quality=90)
        # a half-written cache file (a copied folder, say)
        damaged = PredictionCache(folder, model).path(NAMES[2])
        damaged.write_bytes(damaged.read_bytes()[:100])
        # a prediction an earlier version of the fit made (its format before the image's
        # end plates)
        older = PredictionCache(folder, model).path(NAMES[0])
        with np.load(older) as saved:
            arrays = dict(saved)
        meta = json.loads(str(arrays["meta"]))
        arrays["meta"] = np.array(json.dumps({**meta, "format": "napari-spine-seg prediction"}))
        np.savez(older, **arrays)
        rank(session, model, predict)
        assert sorted(predict.calls) == list(NAMES)

        # the same model file under another name is the same model: nothing predicted
        predict.calls.clear()
        copy = shutil.copyfile(model, tmp_path / "copy of tiny.keras")
        rank(session, model=copy, predict=predict)
        assert predict.calls == []
        # another model (other bytes) predicts everything again, in a folder of its own
        other = write_tiny_model(tmp_path / "other.keras")
        assert model_identity(other) != model_identity(model)
        rank(session, other, CountedModel(other))
        folders = sorted(p.name for p in (folder / PREDICTION_FOLDER).iterdir())
        assert folders == sorted({model_identity(model), model_identity(other)})


def test_the_estimate_uses_the_speed_measured_last_time(images, model, tmp_path):
    folder = tmp_path / "review"
    with ReviewSession.open(folder, images) as session:
        rank(session, model, CountedModel(model))
        per_image = PredictionCache(folder, model).seconds_per_image
        assert per_image is not None and per_image > 0
        Image.fromarray(np.full(SHAPE, 30, np.uint8)).save(images / NAMES[0], quality=90)
        _, steps = rank(session, model, CountedModel(model))
    assert steps[0].to_predict == 1
    assert steps[0].left_s == pytest.approx(per_image)
    assert steps[0].describe().startswith("1 of 3 images to predict before ranking, about ")


def test_describe_seconds():
    assert describe_seconds(0.2) == "about 1 s"
    assert describe_seconds(42) == "about 42 s"
    assert describe_seconds(600) == "about 10 min"
    assert describe_seconds(9000) == "about 2.5 h"


def test_a_vertebra_prediction_is_kept_with_its_bodies_corners_and_faults(images, model, tmp_path):
    from napari_spine_seg.spine.vertebra_labels import vertebra_labels
    from napari_spine_seg.trimap import trimap_from_landmarks

    image = images / NAMES[0]
    cache = PredictionCache(tmp_path / "review", model)
    landmarks = np.array(
        [[20 + 24 * (i % 2), 6 + 7 * k + 5 * (i // 2)] for k in range(17) for i in range(4)],
        dtype=float,
    )
    trimap, probability = trimap_from_landmarks(landmarks, SHAPE), np.zeros(SHAPE, np.float32)
    bodies = vertebra_labels(landmarks, SHAPE)
    cache.put("a", image, trimap, probability, vertebrae=bodies, landmarks=landmarks)
    kept = cache.get("a", image)
    assert np.array_equal(kept.vertebrae, bodies) and kept.vertebrae.dtype == np.uint8
    np.testing.assert_array_equal(kept.landmarks, landmarks)
    assert kept.vertebra_faults == ()
    # 16 found: the bodies and why, no corners
    cache.put("b", image, trimap, probability, vertebrae=bodies, vertebra_faults=["found 16"])
    kept = cache.get("b", image)
    assert kept.landmarks is None and kept.vertebra_faults == ("found 16",)
    # a trimap-only prediction (a ranking's) keeps none: a vertebra model predicts again
    cache.put("c", image, trimap, probability)
    kept = cache.get("c", image)
    assert kept.vertebrae is None and kept.landmarks is None and kept.vertebra_faults == ()
    np.testing.assert_array_equal(kept.trimap, trimap)
