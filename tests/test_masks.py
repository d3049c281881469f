"""Trimap PNGs and colour masks, written for real in tmp_path."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from _files import truncate_file, write_jpeg, write_png, write_trimap
from napari_spine_seg.data.masks import (
    DEFAULT_COLOUR_MAP,
    colour_mask_to_trimap,
    is_predicted_trimap,
    is_trimap_image,
    read_colour_mask,
    read_mask,
    read_trimap_png,
    trimap_name,
    write_trimap_png,
)
from napari_spine_seg.errors import SpineSegError
from napari_spine_seg.trimap import BACKGROUND, BORDER, SPINE

TRIMAP = np.array([[1, 2, 3, 0], [2, 2, 1, 3]], dtype=np.uint8)


def test_write_then_read_round_trip(tmp_path):
    path = write_trimap_png(tmp_path / "out" / "a b.png", TRIMAP)
    with Image.open(path) as im:
        assert im.mode == "L" and im.format == "PNG"
    back = read_trimap_png(path)
    assert back.dtype == np.uint8
    np.testing.assert_array_equal(back, np.where(TRIMAP == 0, 2, TRIMAP))
    assert [p.name for p in path.parent.iterdir()] == ["a b.png"]  # no temporary left


def test_write_rejects_stray_values(tmp_path):
    with pytest.raises(SpineSegError, match=r"bad.png: is not a trimap.*found 7"):
        write_trimap_png(tmp_path / "bad.png", np.array([[1, 7]]))
    assert not (tmp_path / "bad.png").exists()


def test_read_trimap_with_stray_values_names_file_and_values(tmp_path):
    path = write_trimap(tmp_path / "stray.png", np.array([[1, 2, 3, 9, 200]]))
    with pytest.raises(SpineSegError, match=r"stray.png: is not a trimap.*9, 200"):
        read_trimap_png(path)


def test_read_trimap_rejects_colour_image(tmp_path):
    path = write_png(tmp_path / "rgb.png", np.ones((3, 4, 3), np.uint8))
    with pytest.raises(SpineSegError, match="rgb.png: is not a trimap: a RGB colour image"):
        read_trimap_png(path)


def test_read_trimap_truncated(tmp_path):
    rng = np.random.default_rng(0)
    path = write_trimap(tmp_path / "cut.png", rng.integers(1, 4, (100, 100)))
    truncate_file(path, 0.5)
    with pytest.raises(SpineSegError, match="cut.png: is truncated or corrupt"):
        read_trimap_png(path)


def test_palette_trimap_read_by_index(tmp_path):
    im = Image.fromarray(TRIMAP, mode="L").convert("P")
    im.putpalette([0, 0, 0, 60, 60, 60, 120, 120, 120, 250, 250, 250])
    im.putdata(TRIMAP.ravel().tolist())
    path = tmp_path / "pal.png"
    im.save(path)
    expected = np.where(TRIMAP == 0, 2, TRIMAP)
    np.testing.assert_array_equal(read_trimap_png(path), expected)
    np.testing.assert_array_equal(read_mask(path), expected)
    assert is_trimap_image(path)


def test_is_trimap_image_by_content(tmp_path):
    assert is_trimap_image(write_trimap(tmp_path / "t.png", TRIMAP))
    assert not is_trimap_image(write_trimap(tmp_path / "x.png", np.array([[0, 4]])))
    assert not is_trimap_image(write_png(tmp_path / "rgb.png", np.ones((2, 2, 3), np.uint8)))
    assert not is_trimap_image(write_jpeg(tmp_path / "t.jpg", np.ones((8, 8), np.uint8)))
    assert not is_trimap_image(tmp_path / "missing.png")


def test_colour_mask_nearest_colour():
    assert DEFAULT_COLOUR_MAP[(255, 0, 0)] == SPINE
    assert DEFAULT_COLOUR_MAP[(0, 255, 0)] == BACKGROUND
    assert DEFAULT_COLOUR_MAP[(0, 0, 255)] == BORDER
    rgb = np.array([[[240, 20, 10], [10, 230, 30], [5, 10, 200], [3, 3, 3]]], np.uint8)
    np.testing.assert_array_equal(colour_mask_to_trimap(rgb), [[1, 2, 3, 2]])
    custom = {(255, 255, 255): 1, (0, 0, 0): 2}
    np.testing.assert_array_equal(colour_mask_to_trimap(rgb, custom), [[2, 2, 2, 2]])


def test_colour_mask_errors():
    with pytest.raises(SpineSegError, match="is not a colour mask"):
        colour_mask_to_trimap(np.zeros((4, 4), np.uint8))
    with pytest.raises(SpineSegError, match="m.png: no colours"):
        colour_mask_to_trimap(np.zeros((4, 4, 3), np.uint8), {}, source="m.png")


def test_read_colour_mask_file(tmp_path):
    rgba = np.zeros((2, 3, 4), np.uint8)
    rgba[0, :, 0] = 255
    rgba[1, :, 2] = 255
    rgba[..., 3] = 255
    path = write_png(tmp_path / "painted.png", rgba)
    np.testing.assert_array_equal(read_colour_mask(path), [[1, 1, 1], [3, 3, 3]])
    np.testing.assert_array_equal(read_mask(path), [[1, 1, 1], [3, 3, 3]])
    gray = write_trimap(tmp_path / "gray.png", TRIMAP)
    with pytest.raises(SpineSegError, match="gray.png: is not a colour mask"):
        read_colour_mask(gray)


def test_palette_colour_mask_read_by_colour(tmp_path):
    rgb = np.array([[[255, 0, 0], [0, 255, 0]], [[0, 0, 255], [0, 0, 0]]], np.uint8)
    path = tmp_path / "pal.png"
    Image.fromarray(rgb).convert("P", palette=Image.Palette.ADAPTIVE, colors=4).save(path)
    np.testing.assert_array_equal(read_mask(path), [[1, 2], [3, 2]])


def test_trimap_name():
    assert trimap_name("sunhl-1th-02-Jan-2017-162 A AP.jpg") == "sunhl-1th-02-Jan-2017-162 A AP.png"
    assert trimap_name("dir/x.TIFF") == "x.png"
    assert trimap_name("scan.dcm") == "scan.png"
    assert trimap_name("1.2.840.5") == "1.2.840.5.png"


def test_a_predicted_trimap_is_marked_in_its_png(tmp_path):
    marked = write_trimap_png(tmp_path / "p.png", TRIMAP, predicted=True)
    plain = write_trimap_png(tmp_path / "t.png", TRIMAP)
    assert is_predicted_trimap(marked) and not is_predicted_trimap(plain)
    np.testing.assert_array_equal(read_trimap_png(marked), read_trimap_png(plain))
    assert is_trimap_image(marked)
    # a copy saved by another program loses the mark; a broken file is not marked
    with Image.open(marked) as im:
        im.save(tmp_path / "copy.png")
    assert not is_predicted_trimap(tmp_path / "copy.png")
    (tmp_path / "junk.png").write_bytes(b"not a png")
    assert not is_predicted_trimap(tmp_path / "junk.png")
    assert not is_predicted_trimap(tmp_path / "missing.png")


def test_looks_like_trimap_tells_a_damaged_trimap_from_an_x_ray(tmp_path):
    from napari_spine_seg.data.masks import looks_like_trimap

    trimap = np.full((40, 20), BACKGROUND, np.uint8)
    trimap[10:30, 5:15] = SPINE
    trimap[0, 0] = 7
    stray = write_trimap(tmp_path / "stray.png", trimap)
    assert looks_like_trimap(stray) and not is_trimap_image(stray)
    with pytest.raises(SpineSegError, match="stray.png: is not a trimap.*found 7"):
        read_trimap_png(stray)
    xray = write_png(tmp_path / "xray.png", np.arange(800, dtype=np.uint16).reshape(40, 20) % 256)
    assert not looks_like_trimap(xray)
    rgb = write_png(tmp_path / "rgb.png", np.zeros((4, 4, 3), np.uint8))
    assert not looks_like_trimap(rgb)
