"""The npe2 readers, driven through a real napari viewer (Xvfb) on real files."""

from __future__ import annotations

import json
import os
import time

import numpy as np
import pytest

from _files import (
    synthetic_landmarks,
    synthetic_xray,
    truncate_file,
    write_aasce_layout,
    write_dicom,
    write_jpeg,
    write_mat,
    write_pets_layout,
    write_png,
    write_tiff,
    write_trimap,
)
from napari_spine_seg._napari import _reader
from napari_spine_seg.data.masks import read_trimap_png
from napari_spine_seg.trimap import LABEL_COLORS, trimap_from_landmarks, xy_to_rowcol

pytestmark = pytest.mark.gui
PLUGIN = "napari-spine-seg"


def _open(viewer, path):
    return viewer.open(os.fspath(path), plugin=PLUGIN)


def _errors(notes):
    return [str(n.message) for n in notes if n.severity.name in ("ERROR", "WARNING")]


def _labels_rgba(layer, value):
    return np.asarray(layer.colormap.map(np.array([value])))[0]


# --------------------------------------------------------------------------- single files


@pytest.mark.parametrize(
    ("suffix", "pixels"),
    [
        (".jpg", "gray8"),
        (".png", "gray16"),
        (".tif", "rgb8"),
        (".tif", "gray16"),
    ],
)
def test_xray_file_opens_as_grayscale_image(make_napari_viewer, tmp_path, suffix, pixels):
    lm = synthetic_landmarks(120, 48)
    gray = synthetic_xray(lm, (120, 48))
    if pixels == "gray16":
        data = gray.astype(np.uint16) * 257
    elif pixels == "rgb8":
        data = np.stack([gray] * 3, axis=-1)
    else:
        data = gray
    path = tmp_path / f"an x-ray{suffix}"
    {".jpg": write_jpeg, ".png": write_png, ".tif": write_tiff}[suffix](path, data)

    viewer = make_napari_viewer()
    layers = _open(viewer, path)
    assert [layer._type_string for layer in layers] == ["image"]
    image = layers[0]
    assert image.data.shape == (120, 48)
    assert image.name == "an x-ray"
    if suffix != ".jpg":  # lossless: the pixels are the file's, dtype kept
        expected = data[..., 0] if data.ndim == 3 else data
        np.testing.assert_array_equal(image.data, expected)
        assert image.data.dtype == expected.dtype


def test_dicom_pixel_spacing_is_the_layer_scale(make_napari_viewer, tmp_path):
    pixels = (np.arange(60 * 40).reshape(60, 40) % 4096).astype(np.uint16)
    path = write_dicom(tmp_path / "chest.dcm", pixels, spacing=(0.2, 0.15))
    viewer = make_napari_viewer()
    (image,) = _open(viewer, path)
    np.testing.assert_allclose(image.scale, (0.2, 0.15))
    np.testing.assert_allclose(image.data, pixels)


def test_xray_in_aasce_layout_opens_with_landmarks_and_trimap(make_napari_viewer, tmp_path):
    root = write_aasce_layout(tmp_path / "set", n_train=1, n_test=0, size=(200, 80))
    image_path = next((root / "data" / "training").glob("*.jpg"))
    viewer = make_napari_viewer()
    image, labels, points = _open(viewer, image_path)
    assert (image._type_string, points._type_string, labels._type_string) == (
        "image",
        "points",
        "labels",
    )
    lm = synthetic_landmarks(200, 80, 0.0)
    np.testing.assert_allclose(points.data, xy_to_rowcol(lm))
    np.testing.assert_array_equal(labels.data, trimap_from_landmarks(lm, (200, 80)))
    assert labels.data.shape == image.data.shape


def test_xray_in_pets_layout_opens_with_its_trimap(make_napari_viewer, tmp_path):
    root = write_pets_layout(tmp_path / "pets", n=2, size=(48, 64))
    viewer = make_napari_viewer()
    image, labels = _open(viewer, root / "images" / "Abyssinian_1.jpg")
    assert (image._type_string, labels._type_string) == ("image", "labels")
    expected = read_trimap_png(root / "annotations" / "trimaps" / "Abyssinian_1.png")
    np.testing.assert_array_equal(labels.data, expected)


def test_trimap_png_opens_as_labels_by_content(make_napari_viewer, tmp_path):
    trimap = trimap_from_landmarks(synthetic_landmarks(120, 48), (120, 48))
    trimap[:5, :5] = 0  # the eraser's value is a trimap value too
    # named like an X-ray: the content, not the name, makes it a trimap
    path = write_trimap(tmp_path / "scan 7.png", trimap)
    viewer = make_napari_viewer()
    (labels,) = _open(viewer, path)
    assert labels._type_string == "labels"
    np.testing.assert_array_equal(labels.data, np.where(trimap == 0, 2, trimap))


def test_trimap_colours_are_fixed_background_transparent(make_napari_viewer, tmp_path):
    trimap = trimap_from_landmarks(synthetic_landmarks(120, 48), (120, 48))
    viewer = make_napari_viewer()
    (labels,) = _open(viewer, write_trimap(tmp_path / "t.png", trimap))
    assert _labels_rgba(labels, 0)[3] == 0
    assert _labels_rgba(labels, 2)[3] == 0
    spine, border = _labels_rgba(labels, 1), _labels_rgba(labels, 3)
    np.testing.assert_allclose(spine, LABEL_COLORS[1], atol=1e-6)
    np.testing.assert_allclose(border, LABEL_COLORS[3], atol=1e-6)
    assert spine[3] > 0 and border[3] > 0 and not np.allclose(spine, border)


def _colour_mask(trimap, colours):
    rgb = np.zeros((*trimap.shape, 3), dtype=np.uint8)
    for value, colour in colours.items():
        rgb[trimap == value] = colour
    return rgb


def test_colour_mask_opens_as_trimap(make_napari_viewer, tmp_path):
    trimap = trimap_from_landmarks(synthetic_landmarks(120, 48), (120, 48))
    rgb = _colour_mask(trimap, {1: (255, 0, 0), 2: (0, 255, 0), 3: (0, 0, 255)})
    path = write_png(tmp_path / "painted.png", rgb)
    viewer = make_napari_viewer()
    (labels,) = _open(viewer, path)
    assert labels._type_string == "labels"
    np.testing.assert_array_equal(labels.data, trimap)


def test_colour_mapping_from_sidecar_json(make_napari_viewer, tmp_path):
    trimap = trimap_from_landmarks(synthetic_landmarks(120, 48), (120, 48))
    # painted the other way round: green spine, blue background, red border
    rgb = _colour_mask(trimap, {1: (0, 255, 0), 2: (0, 0, 255), 3: (255, 0, 0)})
    path = write_png(tmp_path / "painted.png", rgb)
    (tmp_path / "colours.json").write_text(
        json.dumps({"spine": "#00ff00", "background": [0, 0, 255], "border": [[255, 0, 0]]})
    )
    viewer = make_napari_viewer()
    (labels,) = _open(viewer, path)
    np.testing.assert_array_equal(labels.data, trimap)


def test_colour_mapping_from_environment(make_napari_viewer, tmp_path, monkeypatch):
    trimap = trimap_from_landmarks(synthetic_landmarks(120, 48), (120, 48))
    rgb = _colour_mask(trimap, {1: (255, 255, 0), 2: (0, 0, 255), 3: (255, 0, 255)})
    path = write_png(tmp_path / "masks" / "painted.png", rgb)
    mapping = tmp_path / "my colours.json"
    mapping.write_text(
        json.dumps({"spine": "#ffff00", "background": "#0000ff", "border": "#ff00ff"})
    )
    monkeypatch.setenv("SPINE_SEG_COLOURS", os.fspath(mapping))
    viewer = make_napari_viewer()
    (labels,) = _open(viewer, path)
    np.testing.assert_array_equal(labels.data, trimap)


def test_broken_colour_mapping_is_a_notification(
    make_napari_viewer, tmp_path, napari_notifications
):
    trimap = trimap_from_landmarks(synthetic_landmarks(120, 48), (120, 48))
    path = write_png(
        tmp_path / "painted.png", _colour_mask(trimap, {1: (255, 0, 0), 2: (0, 255, 0)})
    )
    (tmp_path / "colours.json").write_text('{"spine": "#ff0000", "bone": "#ffffff"}')
    viewer = make_napari_viewer()
    assert _open(viewer, path) == []
    assert len(viewer.layers) == 0
    (message,) = _errors(napari_notifications)
    assert "colours.json" in message and "bone" in message


# --------------------------------------------------------------------------- bad files


def test_truncated_jpeg_is_a_notification_not_an_exception(
    make_napari_viewer, tmp_path, napari_notifications
):
    path = write_jpeg(
        tmp_path / "broken x-ray.jpg", synthetic_xray(synthetic_landmarks(120, 48), (120, 48))
    )
    truncate_file(path, 0.5)
    viewer = make_napari_viewer()
    assert _open(viewer, path) == []
    assert len(viewer.layers) == 0
    (message,) = _errors(napari_notifications)
    assert "broken x-ray.jpg" in message and "truncated" in message


def test_xray_with_a_damaged_landmark_file_opens_alone_and_says_so(
    make_napari_viewer, tmp_path, napari_notifications
):
    root = write_aasce_layout(tmp_path / "set", n_train=1, n_test=0, size=(120, 48))
    image_path = next((root / "data" / "training").glob("*.jpg"))
    mat = next((root / "labels" / "training").glob("*.mat"))
    truncate_file(mat, 0.3)
    viewer = make_napari_viewer()
    (image,) = _open(viewer, image_path)
    assert image._type_string == "image" and image.data.shape == (120, 48)
    (message,) = _errors(napari_notifications)
    assert mat.name in message and "opens without its landmarks" in message


def test_xray_with_a_damaged_companion_trimap_opens_alone_and_says_so(
    make_napari_viewer, tmp_path, napari_notifications
):
    root = write_pets_layout(tmp_path / "pets", n=1, size=(48, 64))
    trimap = root / "annotations" / "trimaps" / "Abyssinian_1.png"
    trimap.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 40)
    viewer = make_napari_viewer()
    (image,) = _open(viewer, root / "images" / "Abyssinian_1.jpg")
    assert image._type_string == "image"
    (message,) = _errors(napari_notifications)
    assert trimap.name in message and "opens without its trimap" in message


def test_corrupt_png_is_a_notification(make_napari_viewer, tmp_path, napari_notifications):
    path = tmp_path / "junk.png"
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 40)
    viewer = make_napari_viewer()
    assert _open(viewer, path) == []
    (message,) = _errors(napari_notifications)
    assert "junk.png" in message


def test_readers_decline_what_they_do_not_handle(tmp_path):
    text = tmp_path / "notes.txt"
    text.write_text("not an image")
    folder = tmp_path / "some folder"
    folder.mkdir()
    trimap = write_trimap(tmp_path / "t.png", np.full((8, 8), 2, np.uint8))
    xray = write_png(tmp_path / "x.png", np.arange(64, dtype=np.uint8).reshape(8, 8) * 4)
    for get in (_reader.get_xray_reader, _reader.get_trimap_reader, _reader.get_colour_mask_reader):
        assert get(os.fspath(text)) is None
        assert get(os.fspath(folder)) is None
    assert _reader.get_aasce_reader(os.fspath(folder)) is None
    assert _reader.get_pets_reader(os.fspath(folder)) is None
    assert _reader.get_aasce_reader(os.fspath(xray)) is None
    # exactly one file reader takes each file
    assert _reader.get_trimap_reader(os.fspath(trimap)) is not None
    assert _reader.get_xray_reader(os.fspath(trimap)) is None
    assert _reader.get_xray_reader(os.fspath(xray)) is not None
    assert _reader.get_trimap_reader(os.fspath(xray)) is None
    assert _reader.get_colour_mask_reader(os.fspath(xray)) is None


# --------------------------------------------------------------------------- data sets


def _write_split_of_mixed_sizes(root):
    """An AASCE split of three images of different sizes."""
    sizes = [(200, 80), (160, 96), (240, 64)]
    data, labels = root / "data" / "training", root / "labels" / "training"
    names = []
    for i, size in enumerate(sizes):
        lm = synthetic_landmarks(*size, curve=0.05 * i)
        name = f"img {i} A AP.jpg"
        write_jpeg(data / name, synthetic_xray(lm, size, seed=i))
        write_mat(labels / f"{name}.mat", p2=lm)
        names.append(name)
    return sizes, names


def test_aasce_split_opens_as_three_aligned_lazy_layers(make_napari_viewer, tmp_path):
    import dask.array as da

    sizes, names = _write_split_of_mixed_sizes(tmp_path / "set")
    viewer = make_napari_viewer()
    image, labels, points = _open(viewer, tmp_path / "set" / "data" / "training")
    assert (image._type_string, points._type_string, labels._type_string) == (
        "image",
        "points",
        "labels",
    )
    assert isinstance(image.data, da.Array) and isinstance(labels.data, da.Array)
    # padded to the largest height and width, top-left aligned
    assert image.data.shape == labels.data.shape == (3, 240, 96)
    assert image.metadata["spine_seg"]["names"] == sorted(names)
    assert points.data.shape == (3 * 68, 3)
    for i, (h, w) in enumerate(sizes):
        lm = synthetic_landmarks(h, w, curve=0.05 * i)
        slice_points = points.data[points.data[:, 0] == i]
        np.testing.assert_allclose(slice_points[:, 1:], xy_to_rowcol(lm))
        trimap = np.asarray(labels.data[i])
        np.testing.assert_array_equal(trimap[:h, :w], trimap_from_landmarks(lm, (h, w)))
        assert not trimap[h:, :].any() and not trimap[:, w:].any()
        pixels = np.asarray(image.data[i])
        assert pixels[:h, :w].mean() > 20 and not pixels[h:, :].any()

    # browsing: each slice shows its own image, trimap and 68 landmarks
    for i in range(len(sizes)):
        viewer.dims.set_current_step(0, i)
        shown = np.asarray(labels._slice.image.raw)
        assert shown.shape == (240, 96)
        np.testing.assert_array_equal(shown, np.asarray(labels.data[i]))
        np.testing.assert_array_equal(np.asarray(image._slice.image.raw), np.asarray(image.data[i]))
        assert len(points._view_indices) == 68
        assert (points.data[points._view_indices, 0] == i).all()


def test_aasce_root_opens_training_split_and_says_so(
    make_napari_viewer, tmp_path, napari_notifications
):
    root = write_aasce_layout(tmp_path / "boostnet_labeldata", n_train=3, n_test=2, size=(120, 48))
    viewer = make_napari_viewer()
    layers = _open(viewer, root)
    assert [layer.name for layer in layers] == ["training", "training trimap", "training landmarks"]
    assert layers[0].data.shape[0] == 3
    info = [str(n.message) for n in napari_notifications if n.severity.name == "INFO"]
    assert any("'training'" in m and os.fspath(root / "data" / "test") in m for m in info)


def test_aasce_split_with_a_bad_mat_opens_and_warns(
    make_napari_viewer, tmp_path, napari_notifications
):
    root = write_aasce_layout(tmp_path / "set", n_train=3, n_test=0, size=(120, 48))
    bad = sorted((root / "labels" / "training").glob("*.mat"))[1]
    truncate_file(bad, 0.3)
    viewer = make_napari_viewer()
    image, labels, points = _open(viewer, root / "data" / "training")
    assert image.data.shape[0] == 3
    assert sorted(set(points.data[:, 0].astype(int))) == [0, 2]
    assert not np.asarray(labels.data[1]).any()  # no landmarks: an empty trimap slice
    assert any(bad.name in m for m in _errors(napari_notifications))


def test_unreadable_image_in_a_split_is_shown_empty_with_a_warning(
    make_napari_viewer, tmp_path, napari_notifications
):
    root = write_aasce_layout(tmp_path / "set", n_train=2, n_test=0, size=(120, 48))
    bad = sorted((root / "data" / "training").glob("*.jpg"))[0]
    truncate_file(bad, 0.6)  # the header survives: the stack opens, the slice cannot decode
    viewer = make_napari_viewer()
    image, _, _ = _open(viewer, root / "data" / "training")
    viewer.dims.set_current_step(0, 0)
    assert not np.asarray(image.data[0]).any()
    assert np.asarray(image.data[1]).any()
    assert any(bad.name in m for m in _errors(napari_notifications))


def test_pets_layout_opens_as_image_and_trimap_stacks(make_napari_viewer, tmp_path):
    root = write_pets_layout(tmp_path / "pets", n=3, size=(48, 64))
    viewer = make_napari_viewer()
    image, labels = _open(viewer, root)
    assert (image._type_string, labels._type_string) == ("image", "labels")
    assert image.data.shape == labels.data.shape == (3, 48, 64)
    assert set(np.unique(np.asarray(labels.data[0]))) == {1, 2, 3}


def _rss_bytes() -> int:
    import psutil

    return psutil.Process().memory_info().rss


def _write_big_split(root, n, size):
    """An AASCE split of `n` X-ray-sized images (one smooth JPEG and one .mat, copied)."""
    data, labels = root / "data" / "training", root / "labels" / "training"
    rows = np.linspace(0, 200, size[0], dtype=np.float64)[:, None]
    jpeg = write_jpeg(root / "one.jpg", (rows + np.zeros(size)).astype(np.uint8)).read_bytes()
    mat = write_mat(root / "one.mat", p2=synthetic_landmarks(*size)).read_bytes()
    data.mkdir(parents=True)
    labels.mkdir(parents=True)
    for i in range(n):
        name = f"sunhl-1th-{i:03d} A AP.jpg"
        (data / name).write_bytes(jpeg)
        (labels / f"{name}.mat").write_bytes(mat)
    return data


def test_481_image_split_opens_fast_and_small(make_napari_viewer, tmp_path):
    # full-size X-rays: decoding them all (or their trimaps) would take gigabytes
    split = os.fspath(_write_big_split(tmp_path / "big", 481, (2000, 800)))
    viewer = make_napari_viewer()
    # this process's CPU time, not wall time: other processes on a shared machine stretch
    # the wall clock, never the work done here (decoding 481 full-size X-rays would take
    # a minute of CPU; reading the names and landmarks and adding lazy layers, well under 3 s)
    rss0, t0, wall0 = _rss_bytes(), time.process_time(), time.perf_counter()
    layers = _reader.get_aasce_reader(split)(split)
    for data, kwargs, layer_type in layers:
        getattr(viewer, f"add_{layer_type}")(data, **kwargs)
    elapsed, grown = time.process_time() - t0, _rss_bytes() - rss0
    print(
        f"481 images: {elapsed:.2f} s CPU ({time.perf_counter() - wall0:.2f} s wall), "
        f"{grown / 1e6:.0f} MB"
    )
    image, labels, points = viewer.layers
    assert image.data.shape == labels.data.shape == (481, 2000, 800)
    assert len(points.data) == 481 * 68
    assert elapsed < 3.0, f"opening 481 images took {elapsed:.2f} s of CPU time"
    assert grown < 500e6, f"opening 481 images took {grown / 1e6:.0f} MB"
