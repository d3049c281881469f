"""benchmarks/average_models.py: one model file whose output is the mean of several, and
never written over one of them."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from napari_spine_seg.model.builders import build_model
from napari_spine_seg.model.files import ModelInfo, load_model, save_model

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"
sys.path.insert(0, str(BENCHMARKS))

import average_models  # noqa: E402


def _members(tmp_path: Path) -> list[Path]:
    import keras

    info = ModelInfo(preset="unet", options={"depth": 2, "filters": 4}, input_size=(64, 32))
    paths = []
    for seed in (1, 2):
        keras.utils.set_random_seed(seed)
        model = build_model("unet", (64, 32, 1), depth=2, filters=4)
        paths.append(save_model(model, tmp_path / f"m{seed}.keras", info))
    return paths


def test_the_average_predicts_the_mean_of_its_members(tmp_path):
    members = _members(tmp_path)
    out = tmp_path / "mean.keras"
    assert average_models.main([str(out), *map(str, members)]) == 0
    x = np.random.default_rng(0).random((2, 64, 32, 1), dtype=np.float32)
    each = [np.asarray(load_model(p).keras_model(x)) for p in members]
    assert not np.allclose(each[0], each[1])  # two seeds, two different networks
    averaged = load_model(out)
    assert averaged.info.input_size == (64, 32)
    np.testing.assert_allclose(
        np.asarray(averaged.keras_model(x)), np.mean(each, axis=0), atol=1e-6
    )


def test_refuses_to_write_over_a_member_or_another_kind_of_file(tmp_path, capsys):
    members = _members(tmp_path)
    before = members[0].read_bytes()
    with pytest.raises(SystemExit) as exit_info:
        average_models.main([str(members[0]), *map(str, members)])
    assert exit_info.value.code == 2
    assert members[0].read_bytes() == before
    assert "never written to" in capsys.readouterr().err
    notes = tmp_path / "notes.txt"
    notes.write_text("mine")
    with pytest.raises(SystemExit):
        average_models.main([str(notes), *map(str, members)])
    assert notes.read_text() == "mine"
    assert "not a .keras file" in capsys.readouterr().err
