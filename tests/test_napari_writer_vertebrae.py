"""Saving the vertebra layers (File > Save, a real viewer): the vertebrae Labels layer as a
PNG of its instance numbers, the landmarks Points layer as the data set's ``.mat`` with
``p2``; never over an input file, never into the data set."""

from __future__ import annotations

import os

import numpy as np
import pytest
from PIL import Image
from scipy.io import loadmat

from _files import write_aasce_layout
from _widget_helpers import tree_checksums
from napari_spine_seg._napari._widgets._vertebra_layers import VertebraOutputs, vertebra_layers
from napari_spine_seg._napari._writer import write_landmarks
from napari_spine_seg.data.aasce import read_landmarks_mat
from napari_spine_seg.errors import SpineSegError
from napari_spine_seg.spine.vertebra_labels import vertebra_labels
from napari_spine_seg.trimap import rowcol_to_xy, sort_landmarks

pytestmark = pytest.mark.gui
PLUGIN = "napari-spine-seg"
SIZE = (240, 96)


def _save(viewer, layer, path):
    viewer.layers.selection = {layer}
    return viewer.layers.save(os.fspath(path), selected=True, plugin=PLUGIN)


@pytest.fixture
def predicted(make_napari_viewer, tmp_path):
    """A viewer with an X-ray opened from a data set and its vertebra layers, made as the
    Predict widget makes them (from the image's own landmarks, one corner moved)."""
    from napari.layers import Layer

    root = write_aasce_layout(tmp_path / "set", n_train=1, n_test=0, size=SIZE)
    (image_file,) = sorted((root / "data" / "training").iterdir())
    viewer = make_napari_viewer()
    image, *_ = viewer.open(os.fspath(image_file), plugin=PLUGIN)
    landmarks = sort_landmarks(
        read_landmarks_mat(root / "labels" / "training" / f"{image_file.name}.mat")
    )
    outputs = VertebraOutputs(vertebra_labels(landmarks, SIZE), landmarks)
    meta = {**image.metadata["spine_seg"], "image_shape": list(SIZE), "prediction": "p"}
    layers = {
        role: viewer.add_layer(Layer.create(*t))
        for t, role in vertebra_layers(image.name, [outputs], None, metadata=meta)
    }
    return viewer, root, image_file, layers


def test_vertebra_layers_save_as_instance_png_and_landmark_mat(predicted, tmp_path):
    viewer, root, image_file, layers = predicted
    vertebrae, points = layers["vertebrae"], layers["landmarks"]
    vertebrae.data[5:8, 5:8] = 17  # an edit
    out = tmp_path / "out" / "v.png"
    assert _save(viewer, vertebrae, out) == [os.fspath(out)]
    with Image.open(out) as im:
        assert im.mode == "L"
        saved = np.asarray(im)
    np.testing.assert_array_equal(saved, vertebrae.data)
    assert set(np.unique(saved)) == set(range(18))

    moved = points.data.copy()
    moved[9] += (1.5, -2.25)  # (row, col) of one corner
    points.data = moved
    mat = tmp_path / "out" / f"{image_file.name}.mat"
    assert _save(viewer, points, mat) == [os.fspath(mat)]
    p2 = loadmat(mat)["p2"]
    assert p2.shape == (68, 2)
    np.testing.assert_allclose(p2, rowcol_to_xy(moved))  # x then y
    assert p2[9, 1] == pytest.approx(moved[9, 0]) and p2[9, 0] == pytest.approx(moved[9, 1])


def test_vertebra_layers_are_never_saved_over_or_into_the_data_set(predicted, tmp_path):
    viewer, root, image_file, layers = predicted
    before = tree_checksums(root)
    refused = r"(is a file this layer was opened|is inside the data set|is the data set folder)"
    own_mat = root / "labels" / "training" / f"{image_file.name}.mat"
    for target in (own_mat, root / "mine.mat", root / "data" / "training" / "x.mat"):
        with pytest.raises(SpineSegError, match=refused):
            _save(viewer, layers["landmarks"], target)
    with pytest.raises(SpineSegError, match=refused):
        _save(viewer, layers["vertebrae"], root / "labels" / "training" / "v.png")
    # a layer of other than 68 points is no landmark file: one line naming the layer
    layers["landmarks"].data = layers["landmarks"].data[:67]
    with pytest.raises(SpineSegError, match="has 67 points; a landmark file holds 68"):
        _save(viewer, layers["landmarks"], tmp_path / "l.mat")
    assert tree_checksums(root) == before
    assert not (tmp_path / "l.mat").exists()


def test_a_stack_of_landmarks_saves_one_file_per_image(tmp_path):
    xy = [np.column_stack([np.linspace(10, 50, 68), np.linspace(5, 200, 68) + k]) for k in (0, 3)]
    rowcol = [np.column_stack([p[:, 1], p[:, 0]]) for p in xy]
    data = np.vstack(
        [np.column_stack([np.full(68, i), rc]) for i, rc in zip((0, 2), rowcol, strict=True)]
        + [[[1, 4.0, 4.0]]]  # one stray point on slice 1: no file for it
    )
    meta = {
        "name": "s landmarks",
        "metadata": {"spine_seg": {"names": ["a.jpg", "b.jpg", "c.jpg"]}},
    }
    written = write_landmarks(os.fspath(tmp_path / "marks.mat"), data, meta)
    assert written == [os.fspath(tmp_path / "marks" / n) for n in ("a.jpg.mat", "c.jpg.mat")]
    for path, expected in zip(written, xy, strict=True):
        np.testing.assert_allclose(loadmat(path)["p2"], expected)
