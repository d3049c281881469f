"""The zoom pass: column tiles learnt at the X-ray's own resolution, predicted second.

A small vertebrae model is trained for real with ``zoom_pass``; its file says so, and
``spine-seg predict`` runs the second pass and writes the data set's 68 × 2 landmarks.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np
import pytest

from _files import write_aasce
from napari_spine_seg.cli import main
from napari_spine_seg.data.aasce import read_landmarks_mat
from napari_spine_seg.data.dataset import open_dataset
from napari_spine_seg.data.phantom import make_phantom
from napari_spine_seg.errors import SpineSegError
from napari_spine_seg.model import predict
from napari_spine_seg.model.config import TrainConfig
from napari_spine_seg.model.files import load_model, read_metadata
from napari_spine_seg.model.pipeline import Augmentation, InputSpec, decode_sample
from napari_spine_seg.model.predict import zoom_pass
from napari_spine_seg.model.targets import V_BODY
from napari_spine_seg.model.zoom import TILE_SPAN, TILES, column_tiles, landmark_tiles, model_tiles

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

import other_generator

SIZE = (384, 144)
OPTIONS = {"depth": 3, "filters": 8}


def test_zoom_pass_is_a_checked_setting_that_round_trips(tmp_path):
    config = TrainConfig(tmp_path, tmp_path / "m.keras", zoom_pass=True)
    assert TrainConfig.from_json(config.to_json()) == config
    assert TrainConfig.from_json(config.to_json()).zoom_pass is True
    # by default: on for a vertebrae model, and a trimap model is not refused
    assert TrainConfig(tmp_path, tmp_path / "m.keras").zoom_pass is None
    assert TrainConfig(tmp_path, tmp_path / "m.keras", outputs="trimap").zoom_pass is None
    with pytest.raises(SpineSegError, match="zoom pass is for a model with vertebrae"):
        TrainConfig(tmp_path, tmp_path / "m.keras", outputs="trimap", zoom_pass=True)


def test_a_column_tile_shows_the_bodies_larger(tmp_path):
    root = write_aasce(tmp_path / "p", {"training": (1, 100)}, shape=(700, 260))
    sample = open_dataset(root).samples[0]
    spec = InputSpec(SIZE, fit="letterbox", target="vertebrae", zoom=True)
    whole = decode_sample(sample, spec)
    boxes = landmark_tiles(sample.load_landmarks(), sample.image_shape(), SIZE)
    assert len(boxes) == TILES
    assert boxes[0][0] < boxes[1][0] and boxes[0][2] < boxes[1][2]  # top to bottom
    for tile in range(TILES):
        zoomed = decode_sample(sample, spec, tile)
        assert zoomed.shape == whole.shape
        # about half the column, twice as large: more body pixels than the whole image
        assert (zoomed[1] == V_BODY).sum() > 1.2 * (whole[1] == V_BODY).sum()


@pytest.mark.slow
def test_a_zoom_model_predicts_twice_and_writes_landmarks(tmp_path, capsys, monkeypatch):
    from napari_spine_seg.model.train import train

    root = write_aasce(tmp_path / "phantoms", {"training": (24, 100)}, shape=(700, 260))
    start = time.process_time()
    result = train(
        root,
        tmp_path / "z.keras",
        size=SIZE,
        options=OPTIONS,
        epochs=35,
        batch_size=4,
        learning_rate=2e-3,
        patience=None,
        cache=tmp_path / "cache",
        seed=3,
        zoom_pass=True,
    )
    cpu = time.process_time() - start
    training = read_metadata(result.model_path).training
    assert training["zoom_pass"] is True
    assert (training["zoom_tiles"], training["zoom_tile_span"]) == (TILES, TILE_SPAN)
    assert training["body_shear_deg"] == Augmentation().body_shear_deg > 0
    other = other_generator.write_other_set(tmp_path / "other", n_train=0, n_test=2, seed=7)
    out = tmp_path / "out"
    code = main(
        ["predict", str(result.model_path), str(other / "data" / "test"), "--out", str(out)]
    )
    assert code == 0, capsys.readouterr().err
    found = [read_landmarks_mat(p) for p in sorted((out / "landmarks").glob("*.mat"))]
    assert found and all(p.shape == (68, 2) and np.isfinite(p).all() for p in found)
    assert cpu < 120, f"training took {cpu:.0f} s of CPU"

    # the second pass paints bodies inside the column's tiles, and only there
    image = open_dataset(other).split("test")[0].load_image().pixels.astype(np.float32)
    body = np.zeros(image.shape, np.float32)
    background = np.ones(image.shape, np.float32)
    h, w = image.shape
    background[h // 8 : -h // 8, w // 2 - 20 : w // 2 + 20] = 0.0  # a column
    new_body = zoom_pass(result.model_path, image, body, background)
    assert new_body.shape == body.shape
    assert new_body.max() > 0.5 and not new_body[: h // 16].any() and not new_body[-h // 16 :].any()

    # predicted with the tiles the model file records, not with today's constants
    crops = []
    network = predict._network

    def counting(loaded, fitted, batch_size, tta):
        crops.append(len(fitted))
        return network(loaded, fitted, batch_size, tta)

    loaded = load_model(result.model_path)
    loaded.info.training.update(zoom_tiles=TILES + 2, zoom_tile_span=0.3)
    monkeypatch.setattr(predict, "_network", counting)
    again = zoom_pass(loaded, image, body, background)
    assert crops == [TILES + 2] and not np.array_equal(again, new_body)


def test_train_zoom_pass_option_reaches_the_config(tmp_path, capsys):
    from napari_spine_seg.cli import build_parser
    from napari_spine_seg.cli.train import config_from_args

    (tmp_path / "ds").mkdir()
    out = str(tmp_path / "m.keras")
    parse = build_parser().parse_args
    on = config_from_args(parse(["train", str(tmp_path / "ds"), "--out", out, "--zoom-pass"]))
    off = config_from_args(parse(["train", str(tmp_path / "ds"), "--out", out, "--no-zoom-pass"]))
    auto = config_from_args(parse(["train", str(tmp_path / "ds"), "--out", out]))
    assert on.zoom_pass is True and off.zoom_pass is False and auto.zoom_pass is None
    # refused with a trimap-only network: one line, exit 2, nothing written
    code = main(["train", str(tmp_path / "ds"), "--out", out, "--outputs", "trimap", "--zoom-pass"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and "zoom pass is for a model with vertebrae" in err and "\n" not in err
    assert not Path(out).exists()


def test_tiles_hold_the_ends_of_a_strongly_curved_column():
    # the column's ends lean far from the mean of a tile's rows: the tile moves or widens
    phantom = make_phantom(5, height=1100, curve=("C", 70.0), artefacts=())
    shape = phantom.image.shape[:2]
    boxes = landmark_tiles(phantom.landmarks, shape, SIZE)
    for body in np.asarray(phantom.landmarks).reshape(17, 4, 2):
        assert any(
            all(top <= y <= bottom and left <= x <= right for x, y in body)
            for top, left, bottom, right in boxes
        )
    # a straight column keeps the input's aspect
    straight = make_phantom(5, height=1100, curve=("C", 0.0), artefacts=())
    for top, left, bottom, right in landmark_tiles(
        straight.landmarks, straight.image.shape[:2], SIZE
    ):
        assert (right - left) / (bottom - top) == pytest.approx(SIZE[1] / SIZE[0], abs=0.01)


def test_a_model_is_predicted_with_the_tiles_it_learnt(tmp_path):
    phantom = make_phantom(5, height=900, curve=("C", 20.0), artefacts=())
    column = np.zeros(phantom.image.shape[:2], bool)
    column[100:800, 120:160] = True
    # a model written before the tiles were recorded learnt three of 60 %
    assert model_tiles({"zoom_pass": True}) == (3, 0.6)
    tiles, span = model_tiles({"zoom_tiles": 5, "zoom_tile_span": 0.35})
    boxes = column_tiles(column, SIZE, tiles=tiles, span=span)
    assert len(boxes) == 5 and len(column_tiles(column, SIZE)) == TILES
    # each of the 5 is 35 % of the column's 700 rows, plus a 5 % margin top and bottom
    assert all(bottom - top == pytest.approx(0.45 * 700, abs=1) for top, _, bottom, _ in boxes)
    for bad in (
        {"zoom_tiles": 0},
        {"zoom_tiles": 2.5},
        {"zoom_tile_span": 1.5},
        {"zoom_tiles": True},
    ):
        with pytest.raises(SpineSegError, match=r"m\.keras: has unusable zoom tiles"):
            model_tiles(bad, tmp_path / "m.keras")
