"""PredictConfig: every prediction setting checked once, before any image is read."""

from __future__ import annotations

import json

import pytest

from _files import write_folder_layout
from napari_spine_seg.cli import main
from napari_spine_seg.data.masks import read_trimap_png
from napari_spine_seg.errors import SpineSegError
from napari_spine_seg.model.builders import build_model
from napari_spine_seg.model.files import ModelInfo, save_model
from napari_spine_seg.model.predict import predict_files
from napari_spine_seg.model.predict_config import PredictConfig


@pytest.fixture
def images(tmp_path):
    return write_folder_layout(tmp_path / "ds", n=3, size=(64, 32))


def test_a_config_round_trips_through_json(images, tmp_path):
    config = PredictConfig(tmp_path / "m.keras", [images], tmp_path / "out", 3, True, True)
    assert config.inputs == (images,) and config.batch_size == 3
    text = config.to_json()
    assert json.loads(text)["inputs"] == [str(images)]
    assert PredictConfig.from_json(text) == config
    with pytest.raises(SpineSegError, match="unknown prediction setting.*: colour"):
        PredictConfig.from_dict({**config.to_dict(), "colour": "red"})
    with pytest.raises(SpineSegError, match="prediction settings are not JSON"):
        PredictConfig.from_json("{")


@pytest.mark.parametrize(
    ("change", "says"),
    [
        ({"batch_size": 0}, "the batch size must be 1 or more images, not 0"),
        ({"batch_size": 2.5}, "the batch size must be a whole number, not 2.5"),
        ({"inputs": []}, "name at least one image, folder or data set to predict"),
    ],
)
def test_bad_settings_are_one_line(images, tmp_path, change, says):
    settings = {"model": tmp_path / "m.keras", "inputs": [images], "out": tmp_path / "o"}
    with pytest.raises(SpineSegError) as info:
        PredictConfig(**{**settings, **change})
    assert str(info.value) == says


def test_paths_are_checked_with_the_commands_messages(images, tmp_path):
    missing = tmp_path / "missing.jpg"
    with pytest.raises(SpineSegError) as info:
        PredictConfig(tmp_path / "m.keras", [images, missing], tmp_path / "o")
    assert str(info.value) == f"{missing}: does not exist"
    with pytest.raises(SpineSegError, match="inside"):  # never into an input folder
        PredictConfig(tmp_path / "m.keras", [images], images / "preds")
    assert not (images / "preds").exists()


def test_predict_files_takes_a_config_as_the_command_line_does(images, tmp_path, capsys):
    model = save_model(
        build_model("unet", (64, 32, 1), depth=2, filters=4),
        tmp_path / "m.keras",
        ModelInfo(preset="unet", options={"depth": 2, "filters": 4}, input_size=(64, 32)),
    )
    config = PredictConfig(model, [images], tmp_path / "by-config", probability=True)
    written = predict_files(config)
    names = sorted(p.name for p in written)
    assert names == sorted(p.name.replace(".jpg", ".png") for p in images.glob("*.jpg"))
    assert len(list((tmp_path / "by-config").glob("*.probability.tif"))) == 3
    out = tmp_path / "by-cli"
    assert main(["predict", str(model), str(images), "--out", str(out), "--probability"]) == 0
    assert f"wrote 3 trimap(s) to {out}" in capsys.readouterr().out
    for name in names:  # the same trimaps either way
        by_cli, by_config = (read_trimap_png(f / name) for f in (out, tmp_path / "by-config"))
        assert (by_cli == by_config).all()
