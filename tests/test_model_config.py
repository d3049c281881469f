"""TrainConfig: one checked, JSON-able home for every training setting (no Keras needed)."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest

from napari_spine_seg.errors import SpineSegError
from napari_spine_seg.model.config import PRESET_SIZES, TrainConfig


@pytest.fixture
def data(tmp_path):
    folder = tmp_path / "data set"
    folder.mkdir()
    return folder


def test_a_config_round_trips_through_json_exactly(data, tmp_path):
    config = TrainConfig(
        data,
        tmp_path / "m.keras",
        preset="unet",
        size="64x32",
        epochs=7,
        batch_size=3,
        learning_rate=2.5e-4,
        lr_schedule="cosine",
        loss="ce",
        val_fraction=0.2,
        seed=11,
        patience=0,
        fit="resize",
        options={"depth": 2, "filters": 8, "norm": None},
        augment=False,
        cache=tmp_path / "cache",
        mixed_precision=False,
        workers=2,
        max_minutes=2.5,
    )
    text = config.to_json()
    again = TrainConfig.from_json(text)
    assert again == config
    assert again.to_json() == text
    assert again.size == (64, 32) and again.patience is None and again.cache == tmp_path / "cache"
    # every field is written, so a job on another machine gets all of them
    assert set(config.to_dict()) == {f for f in TrainConfig.__dataclass_fields__}
    with pytest.raises(SpineSegError, match="unknown training setting"):
        TrainConfig.from_json(text.replace('"seed"', '"sead"'))


def test_the_preset_decides_the_default_size(data, tmp_path):
    unet = TrainConfig(data, tmp_path / "m.keras")
    pets = replace(unet, preset="pets")
    assert unet.size is None and unet.input_size == PRESET_SIZES["unet"] == (384, 144)
    assert pets.input_size == PRESET_SIZES["pets"] == (160, 160) and pets.channels == 3


@pytest.mark.parametrize(
    ("settings", "words"),
    [
        ({"size": "tall"}, "size must be ROWSxCOLS like 384x144, got 'tall'"),
        ({"size": "0x32"}, "size must be positive"),
        ({"size": "100x32"}, "needs rows and columns divisible by 16, got 100x32"),
        ({"size": "64x36", "options": {"depth": 3}}, "divisible by 8, got 64x36"),
        ({"preset": "pets", "size": "72x64"}, "divisible by 16"),
        ({"epochs": 0}, "must be positive"),
        ({"learning_rate": -1.0}, "must be positive"),
        ({"val_fraction": 1.0}, "validation fraction"),
        ({"loss": "focal"}, "unknown loss"),
        (
            {"lr_schedule": "step"},
            "unknown learning-rate schedule 'step'; choose one of plateau, cosine",
        ),
        ({"max_minutes": 0}, "max minutes must be positive"),
        ({"max_minutes": float("nan")}, "max minutes must be positive"),
        ({"workers": 0}, "workers must be 1 or more"),
        ({"init_from": "gone.keras"}, "gone.keras: does not exist"),
    ],
)
def test_every_setting_is_checked_when_made(data, tmp_path, settings, words):
    with pytest.raises(SpineSegError, match=words.replace("(", r"\(").replace(")", r"\)")) as info:
        TrainConfig(data, tmp_path / "m.keras", **settings)
    assert "\n" not in str(info.value)


def test_paths_are_checked_when_made(data, tmp_path):
    with pytest.raises(SpineSegError, match="does not exist"):
        TrainConfig(tmp_path / "missing", tmp_path / "m.keras")
    folder = tmp_path / "m.keras"
    folder.mkdir()
    with pytest.raises(SpineSegError, match="is a folder"):
        TrainConfig(data, folder)
    with pytest.raises(SpineSegError, match="must end in .keras"):
        TrainConfig(data, tmp_path / "m.h5")


def test_the_config_imports_without_keras():
    code = (
        "import sys; import napari_spine_seg.model.config, napari_spine_seg.cli.train; "
        "print(sorted(m for m in ('keras', 'tensorflow', 'jax') if m in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_an_open_dataset_is_not_written_as_json(tmp_path):
    from _files import write_aasce_layout
    from napari_spine_seg.data.dataset import open_dataset

    dataset = open_dataset(write_aasce_layout(tmp_path / "aasce", n_train=2, n_test=1))
    config = TrainConfig(dataset, Path(tmp_path / "m.keras"))
    with pytest.raises(SpineSegError, match="open dataset cannot be written as JSON"):
        config.to_json()


def test_the_learning_rate_schedule_reaches_the_config_from_the_command_line(data, tmp_path):
    from napari_spine_seg.cli import build_parser
    from napari_spine_seg.cli import train as train_cli

    out = str(tmp_path / "m.keras")
    args = build_parser().parse_args(["train", str(data), "--out", out, "--lr-schedule", "cosine"])
    assert train_cli.config_from_args(args).lr_schedule == "cosine"
    plain = build_parser().parse_args(["train", str(data), "--out", out])
    assert train_cli.config_from_args(plain).lr_schedule == TrainConfig(data, out).lr_schedule
    with pytest.raises(SystemExit):
        build_parser().parse_args(["train", str(data), "--out", out, "--lr-schedule", "step"])
