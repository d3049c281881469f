"""The demo end to end (quick), its overlays and its training-curve figure."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from napari_spine_seg.cli import main
from napari_spine_seg.model.curves import plot_history
from napari_spine_seg.overlay import interlace, write_overlay
from napari_spine_seg.trimap import LABEL_COLORS


def test_interlace_colours_alternate_bands_of_the_mask_only():
    image = np.full((8, 6), 100, np.uint8)
    trimap = np.full((8, 6), 2, np.uint8)
    trimap[:, 2:4] = 1
    trimap[:, 4] = 3
    rgb = interlace(image, trimap, stripe=2, alpha=1.0)
    assert rgb.shape == (8, 6, 3) and rgb.dtype == np.uint8
    spine = np.round(np.array(LABEL_COLORS[1][:3]) * 255)
    border = np.round(np.array(LABEL_COLORS[3][:3]) * 255)
    # rows 2-3 and 6-7 carry the trimap's colours, rows 0-1 and 4-5 the image
    np.testing.assert_array_equal(rgb[2, 2], spine)
    np.testing.assert_array_equal(rgb[3, 4], border)
    np.testing.assert_array_equal(rgb[0, 2], [100, 100, 100])
    np.testing.assert_array_equal(rgb[5, 4], [100, 100, 100])
    # background is the image everywhere
    assert np.all(rgb[:, [0, 1, 5]] == 100)
    plain = interlace(image, trimap, stripe=0, alpha=1.0)
    np.testing.assert_array_equal(plain[0, 2], spine)


def test_overlay_of_a_16_bit_image_and_a_size_mismatch(tmp_path):
    image = (np.arange(40 * 20, dtype=np.uint16).reshape(40, 20) * 50).astype(np.uint16)
    trimap = np.full((40, 20), 2, np.uint8)
    path = write_overlay(tmp_path / "o.png", image, trimap)
    with Image.open(path) as im:
        assert im.mode == "RGB" and im.size == (20, 40)
    with pytest.raises(ValueError, match="differ in size"):
        interlace(image, trimap[:10])


def test_curves_figure_is_a_png(tmp_path):
    history = [
        {
            "epoch": e,
            "loss": 1 / e,
            "val_loss": 1.2 / e,
            "accuracy": 1 - 0.1 / e,
            "val_accuracy": 1 - 0.2 / e,
            "spine_dice": 0.5 + e / 20,
        }
        for e in range(1, 6)
    ]
    path = plot_history(history, tmp_path / "curves.png", title="t")
    with Image.open(path) as im:
        assert im.format == "PNG" and im.size[0] > 600
        pixels = np.asarray(im.convert("L"))
    assert pixels.min() < 100  # something is drawn


def test_curves_without_matplotlib_are_drawn_with_pillow(tmp_path, monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "matplotlib", None)  # as on an install without it
    path = plot_history([{"epoch": 1, "loss": 1.0}, {"epoch": 2, "loss": 0.5}], tmp_path / "c.png")
    with Image.open(path) as im:
        assert im.format == "PNG" and im.size == (1140, 330)


def test_quick_demo_end_to_end(tmp_path, capsys):
    out = tmp_path / "demo"
    assert main(["demo", "--quick", "--out", str(out)]) == 0
    printed = capsys.readouterr()
    assert "report:" in printed.out and "spine Dice" in printed.out
    assert "demo: training the default U-Net" in printed.err
    for name in (
        "model.keras",
        "model.last.keras",
        "model.history.csv",
        "curves.png",
        "evaluation.json",
        "report.md",
    ):
        assert (out / name).is_file(), name
    tests = sorted(p.name for p in (out / "phantoms" / "data" / "test").iterdir())
    predicted = sorted(p.name for p in (out / "predictions").iterdir())
    # a vertebrae model (phantoms have landmarks) also writes each image's vertebra count,
    # and landmarks/ when it found 17 vertebrae on at least one image
    assert [n for n in predicted if n.endswith(".png")] == [
        t.replace(".jpg", ".png") for t in tests
    ]
    assert "vertebrae.json" in predicted
    assert set(predicted) - {n for n in predicted if n.endswith(".png")} <= {
        "vertebrae.json",
        "landmarks",
    }
    assert sorted(p.name for p in (out / "overlays").iterdir()) == [
        t.replace(".jpg", ".png") for t in tests
    ]
    scores = json.loads((out / "evaluation.json").read_text())
    assert scores["n_images"] == 2 and 0.0 <= scores["mean"]["pixel_accuracy"] <= 1.0
    report = (out / "report.md").read_text()
    assert "![training curves](curves.png)" in report and "| **mean** |" in report
    assert 'src="overlays/' in report and tests[0] in report
    assert "## Cobb angles" in report and "Cobb-angle SMAPE from the predicted trimaps" in report
    assert scores["cobb"]["n_images"] == 2
