"""The npe2 trimap writer, through a real napari viewer (Xvfb)."""

from __future__ import annotations

import os

import numpy as np
import pytest
from PIL import Image

from _files import synthetic_landmarks, synthetic_xray, write_jpeg, write_mat, write_trimap
from napari_spine_seg._napari._writer import write_trimap as write_trimap_layer
from napari_spine_seg.data.masks import is_predicted_trimap, read_trimap_png
from napari_spine_seg.errors import SpineSegError
from napari_spine_seg.trimap import trimap_from_landmarks

pytestmark = pytest.mark.gui
PLUGIN = "napari-spine-seg"


def _png(path):
    with Image.open(path) as im:
        return im.mode, np.asarray(im)


def test_labels_layer_saves_as_trimap_png_with_eraser_as_background(make_napari_viewer, tmp_path):
    labels = np.zeros((60, 40), dtype=np.uint8)  # all erased
    labels[10:50, 15:25] = 1
    labels[10:50, 14] = 3
    viewer = make_napari_viewer()
    layer = viewer.add_labels(labels, name="edited")
    out = tmp_path / "edited trimap.png"
    written = viewer.layers.save(os.fspath(out), selected=True, plugin=PLUGIN)
    assert written == [os.fspath(out)]
    mode, saved = _png(out)
    assert mode == "L" and saved.shape == (60, 40)
    np.testing.assert_array_equal(saved, np.where(labels == 0, 2, labels))
    assert layer.data is not None and not list(tmp_path.glob("*.part*"))
    assert not is_predicted_trimap(out)
    # a predicted layer (as the Predict widget makes it) keeps the prediction's mark
    viewer.add_labels(labels, name="p", metadata={"spine_seg": {"predicted": True}})
    out = tmp_path / "predicted trimap.png"
    viewer.layers.save(os.fspath(out), selected=True, plugin=PLUGIN)
    assert is_predicted_trimap(out)


def test_round_trip_open_paint_save_open(make_napari_viewer, tmp_path):
    trimap = trimap_from_landmarks(synthetic_landmarks(120, 48), (120, 48))
    source = write_trimap(tmp_path / "in.png", trimap)
    viewer = make_napari_viewer()
    (layer,) = viewer.open(os.fspath(source), plugin=PLUGIN)
    layer.paint((5, 5), 1)  # a correction with the brush
    layer.data[100:110, 0:5] = 0  # and with the eraser
    out = tmp_path / "out.png"
    viewer.layers.save(os.fspath(out), selected=True, plugin=PLUGIN)
    expected = np.where(layer.data == 0, 2, layer.data)
    assert expected[5, 5] == 1
    np.testing.assert_array_equal(read_trimap_png(out), expected)
    viewer.layers.clear()
    (again,) = viewer.open(os.fspath(out), plugin=PLUGIN)
    np.testing.assert_array_equal(again.data, expected)


def test_stack_saves_one_trimap_per_image_at_its_size(make_napari_viewer, tmp_path):
    sizes = [(200, 80), (160, 96)]
    root = tmp_path / "set"
    for i, size in enumerate(sizes):
        lm = synthetic_landmarks(*size)
        write_jpeg(root / "data" / "training" / f"img {i}.jpg", synthetic_xray(lm, size))
        write_mat(root / "labels" / "training" / f"img {i}.jpg.mat", p2=lm)
    viewer = make_napari_viewer()
    _, labels, _ = viewer.open(os.fspath(root / "data" / "training"), plugin=PLUGIN)
    viewer.layers.selection = {labels}
    viewer.dims.set_current_step(0, 1)
    labels.brush_size = 3
    labels.paint((1, 5, 5), 1)  # a correction on the second image, in the lazy stack
    written = viewer.layers.save(os.fspath(tmp_path / "trimaps.png"), selected=True, plugin=PLUGIN)
    assert written == [os.fspath(tmp_path / "trimaps" / f"img {i}.png") for i in range(2)]
    for i, (path, size) in enumerate(zip(written, sizes, strict=True)):
        saved = read_trimap_png(path)
        expected = trimap_from_landmarks(synthetic_landmarks(*size), size)
        assert saved.shape == size
        if i == 1:
            assert saved[5, 5] == 1 and expected[5, 5] == 2
            expected[3:8, 3:8] = saved[3:8, 3:8]
        np.testing.assert_array_equal(saved, expected)


def test_stray_label_values_are_refused_and_nothing_is_written(tmp_path):
    labels = np.full((20, 20), 2, dtype=np.uint8)
    labels[3, 3] = 7
    out = tmp_path / "t.png"
    with pytest.raises(SpineSegError, match="t.png.*7"):
        write_trimap_layer(os.fspath(out), labels, {"metadata": {}})
    assert list(tmp_path.iterdir()) == []


def test_exported_prediction_reopens_as_image_trimap_and_saves_with_its_mark(
    make_napari_viewer, tmp_path
):
    """Export → File > Open → File > Save keeps the ``drawn-by`` mark; the layer is
    ``<image> trimap`` beside the X-ray's ``<image>`` layer, not ``<image> [1]``."""
    from napari_spine_seg.review.export import export_review
    from napari_spine_seg.review.session import ReviewSession

    size = (160, 64)
    lm = synthetic_landmarks(*size)
    root = tmp_path / "xrays"
    image = write_jpeg(root / "case 1.jpg", synthetic_xray(lm, size))
    write_trimap(root / "trimaps" / "case 1.png", trimap_from_landmarks(lm, size))
    predicted = trimap_from_landmarks(synthetic_landmarks(*size), size)
    with ReviewSession.open(tmp_path / "review", root) as session:
        session.start_edit("case 1.jpg", predicted, predicted=True)
        session.accept("case 1.jpg", predicted)
        (exported,) = export_review(session, tmp_path / "export").trimaps
    assert is_predicted_trimap(exported)
    viewer = make_napari_viewer()
    lone = write_jpeg(tmp_path / "lone" / image.name, synthetic_xray(lm, size))  # no trimap beside
    (xray,) = viewer.open(os.fspath(lone), plugin=PLUGIN)
    (layer,) = viewer.open(os.fspath(exported), plugin=PLUGIN)
    assert (xray.name, layer.name) == ("case 1", "case 1 trimap")
    layer.paint((5, 5), 1)  # a correction keeps the network's outline mark
    saved = tmp_path / "saved" / "case 1.png"
    viewer.layers.selection = {layer}
    viewer.layers.save(os.fspath(saved), selected=True, plugin=PLUGIN)
    assert is_predicted_trimap(saved)
    np.testing.assert_array_equal(read_trimap_png(saved), np.where(layer.data == 0, 2, layer.data))
    # an unmarked trimap stays unmarked through the same round trip
    viewer.layers.clear()
    plain_path = write_trimap(tmp_path / "plain" / "case 2.png", predicted)
    (plain,) = viewer.open(os.fspath(plain_path), plugin=PLUGIN)
    again = tmp_path / "saved" / "case 2.png"
    viewer.layers.save(os.fspath(again), selected=True, plugin=PLUGIN)
    assert plain.name == "case 2 trimap" and not is_predicted_trimap(again)
