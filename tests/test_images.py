"""Reading X-ray files: JPEG, PNG, TIFF and DICOM, written for real in tmp_path."""

from __future__ import annotations

import numpy as np
import pytest

from _files import (
    truncate_file,
    write_dicom,
    write_jpeg,
    write_png,
    write_tiff,
)
from napari_spine_seg.data.images import (
    IMAGE_SUFFIXES,
    XRay,
    image_shape,
    is_image_file,
    read_xray,
)
from napari_spine_seg.data.pixels import to_grayscale, to_uint8
from napari_spine_seg.errors import SpineSegError


def ramp(shape=(40, 24), dtype=np.uint8, top=255):
    """A smooth image (JPEG keeps it almost exactly) spanning 0..top."""
    rows = np.linspace(0, top, shape[0])[:, None] * np.ones((1, shape[1]))
    return np.rint(rows).astype(dtype)


def test_gray_jpeg_with_spaces_in_name(tmp_path):
    path = write_jpeg(tmp_path / "sunhl-1th-02-Jan-2017-162 A AP.jpg", ramp())
    xray = read_xray(path)
    assert isinstance(xray, XRay)
    assert xray.pixels.dtype == np.uint8 and xray.pixels.shape == (40, 24)
    assert np.abs(xray.pixels.astype(int) - ramp()).max() <= 3
    assert xray.path == path and xray.spacing is None and xray.photometric == "L"
    assert xray.shape == (40, 24)


def test_three_channel_jpeg_becomes_gray(tmp_path):
    rgb = np.repeat(ramp()[..., None], 3, axis=2)
    xray = read_xray(write_jpeg(tmp_path / "rgb.jpg", rgb))
    assert xray.pixels.ndim == 2 and xray.pixels.dtype == np.uint8
    assert np.abs(xray.pixels.astype(int) - ramp()).max() <= 4
    assert xray.photometric == "RGB"


def test_colour_png_is_luminance(tmp_path):
    rgb = np.zeros((4, 5, 3), np.uint8)
    rgb[..., 0] = 200  # pure red: luminance 0.299 * 200
    xray = read_xray(write_png(tmp_path / "red.png", rgb))
    assert np.all(xray.pixels == round(0.299 * 200))


def test_sixteen_bit_png_keeps_range(tmp_path):
    pixels = ramp(dtype=np.uint16, top=60000)
    xray = read_xray(write_png(tmp_path / "deep.png", pixels))
    assert xray.pixels.dtype == np.uint16
    np.testing.assert_array_equal(xray.pixels, pixels)


@pytest.mark.parametrize("dtype, top", [(np.uint8, 255), (np.uint16, 4095), (np.uint16, 65535)])
def test_tiff_keeps_dtype_and_intensity(tmp_path, dtype, top):
    pixels = ramp(dtype=dtype, top=top)
    xray = read_xray(write_tiff(tmp_path / "x.tif", pixels))
    assert xray.pixels.dtype == dtype
    np.testing.assert_array_equal(xray.pixels, pixels)
    assert xray.photometric == "MINISBLACK"


def test_rgb_tiff_16bit_stays_16bit(tmp_path):
    rgb = np.zeros((6, 7, 3), np.uint16)
    rgb[..., 1] = 50000
    xray = read_xray(write_tiff(tmp_path / "rgb.tiff", rgb, photometric="rgb"))
    assert xray.pixels.dtype == np.uint16 and xray.pixels.shape == (6, 7)
    assert np.all(xray.pixels == round(0.587 * 50000))


def test_planar_rgb_tiff_with_equal_channels_keeps_values(tmp_path):
    gray = ramp((10, 8), np.uint16, 40000)
    planar = np.stack([gray, gray, gray])
    path = write_tiff(tmp_path / "p.tif", planar, photometric="rgb", planarconfig="separate")
    np.testing.assert_array_equal(read_xray(path).pixels, gray)


def test_miniswhite_tiff_is_inverted(tmp_path):
    pixels = ramp(dtype=np.uint8)
    xray = read_xray(write_tiff(tmp_path / "w.tif", pixels, photometric="miniswhite"))
    np.testing.assert_array_equal(xray.pixels, 255 - pixels)


def test_dicom_rescale_and_spacing(tmp_path):
    stored = ramp((12, 10), np.uint16, 4000)
    path = write_dicom(tmp_path / "a.dcm", stored, slope=2, intercept=-1000, spacing=(0.2, 0.15))
    xray = read_xray(path)
    assert xray.pixels.dtype == np.float32
    np.testing.assert_allclose(xray.pixels, stored * 2.0 - 1000)
    assert xray.spacing == (0.2, 0.15)
    assert xray.photometric == "MONOCHROME2"


def test_dicom_monochrome1_is_inverted(tmp_path):
    stored = ramp((12, 10), np.uint16, 4000)
    mono2 = read_xray(write_dicom(tmp_path / "m2.dcm", stored, bits_stored=12)).pixels
    mono1 = read_xray(write_dicom(tmp_path / "m1.dcm", stored, monochrome1=True, bits_stored=12))
    # the brightest stored value is displayed darkest; within the 12-bit range
    np.testing.assert_allclose(mono1.pixels, 4095 - mono2)
    assert mono1.photometric == "MONOCHROME1"
    np.testing.assert_array_equal(to_uint8(mono1.pixels), 255 - to_uint8(mono2))


def test_dicom_monochrome1_with_rescale(tmp_path):
    stored = np.array([[0, 255]], np.uint8)
    xray = read_xray(
        write_dicom(tmp_path / "m.dcm", stored, monochrome1=True, slope=2, intercept=10)
    )
    # values 10..520 possible; stored 0 -> 10 -> shown as 520
    np.testing.assert_allclose(xray.pixels, [[520, 10]])


def test_dicom_found_by_magic_without_suffix(tmp_path):
    path = write_dicom(tmp_path / "IM0001", ramp((8, 6), np.uint16, 1000))
    assert is_image_file(path)
    assert read_xray(path).pixels.shape == (8, 6)
    assert image_shape(path) == (8, 6)


def test_dicom_without_preamble_read_by_suffix(tmp_path):
    path = write_dicom(tmp_path / "old.dcm", ramp((8, 6), np.uint16, 1000), preamble=False)
    assert path.read_bytes()[128:132] != b"DICM"
    assert read_xray(path).pixels.shape == (8, 6)


@pytest.mark.parametrize(
    "write, name",
    [
        (lambda p: write_jpeg(p, ramp((50, 30))), "a b.jpg"),
        (lambda p: write_png(p, ramp((50, 30))), "a.png"),
        (lambda p: write_tiff(p, ramp((50, 30), np.uint16, 999)), "a.tif"),
        (lambda p: write_tiff(p, np.zeros((3, 50, 30), np.uint8), photometric="rgb"), "p.tif"),
        (lambda p: write_dicom(p, ramp((50, 30), np.uint16, 999)), "a.dcm"),
    ],
)
def test_image_shape_from_header(tmp_path, write, name):
    path = write(tmp_path / name)
    assert image_shape(path) == (50, 30)


def test_truncated_jpeg_names_file(tmp_path):
    rng = np.random.default_rng(0)
    path = write_jpeg(tmp_path / "cut short.jpg", rng.integers(0, 255, (200, 100), np.uint8))
    truncate_file(path, 0.6)
    with pytest.raises(SpineSegError, match="truncated") as info:
        read_xray(path)
    assert str(info.value).startswith(str(path))
    assert "\n" not in str(info.value)


def test_truncated_jpeg_detected_even_when_pillow_allows_it(tmp_path, monkeypatch):
    from PIL import ImageFile

    # another library may switch Pillow to loading truncated files silently
    monkeypatch.setattr(ImageFile, "LOAD_TRUNCATED_IMAGES", True)
    rng = np.random.default_rng(1)
    path = write_jpeg(tmp_path / "t.jpg", rng.integers(0, 255, (200, 100), np.uint8))
    truncate_file(path, 0.9)
    with pytest.raises(SpineSegError, match="truncated"):
        read_xray(path)


def test_corrupt_jpeg_names_file(tmp_path):
    path = write_jpeg(tmp_path / "bad.jpg", ramp((64, 32)))
    data = bytearray(path.read_bytes())
    data[2:40] = b"\x00" * 38  # wreck the header segments
    path.write_bytes(bytes(data))
    with pytest.raises(SpineSegError, match="bad.jpg: ") as info:
        read_xray(path)
    assert "corrupt" in str(info.value) or "not an image" in str(info.value)


def test_not_an_image(tmp_path):
    path = tmp_path / "notes.jpg"
    path.write_text("just text, not a JPEG")
    with pytest.raises(SpineSegError, match="notes.jpg: is not an image file"):
        read_xray(path)
    with pytest.raises(SpineSegError, match="notes.jpg: is not an image file"):
        image_shape(path)


def test_missing_and_empty_files(tmp_path):
    with pytest.raises(SpineSegError, match="gone.jpg: does not exist"):
        read_xray(tmp_path / "gone.jpg")
    (tmp_path / "empty.png").write_bytes(b"")
    with pytest.raises(SpineSegError, match=r"empty.png: is empty \(0 bytes\)"):
        read_xray(tmp_path / "empty.png")


def test_truncated_dicom_and_tiff(tmp_path):
    dcm = truncate_file(write_dicom(tmp_path / "d.dcm", ramp((64, 64), np.uint16, 999)), 0.5)
    with pytest.raises(SpineSegError, match="d.dcm: "):
        read_xray(dcm)
    tif = truncate_file(write_tiff(tmp_path / "t.tif", ramp((64, 64), np.uint16, 999)), 0.02)
    with pytest.raises(SpineSegError, match="t.tif: "):
        read_xray(tif)


def test_is_image_file(tmp_path):
    assert {".jpg", ".jpeg", ".png", ".tif", ".tiff", ".dcm"} <= IMAGE_SUFFIXES
    assert is_image_file(tmp_path / "A B.JPG")
    assert not is_image_file(tmp_path / "a.jpg.mat")
    assert not is_image_file(tmp_path / "._a.png")
    (tmp_path / "readme").write_text("x" * 200)
    assert not is_image_file(tmp_path / "readme")


def test_to_uint8_rule():
    u8 = np.array([[3, 200]], np.uint8)
    assert to_uint8(u8) is u8
    np.testing.assert_array_equal(
        to_uint8(np.array([[0, 257 * 100, 65535]], np.uint16)), [[0, 100, 255]]
    )
    np.testing.assert_array_equal(to_uint8(np.array([[-5.0, 5.0, np.nan]])), [[0, 255, 0]])
    np.testing.assert_array_equal(to_uint8(np.full((2, 2), 7.0)), np.zeros((2, 2)))
    np.testing.assert_array_equal(to_uint8(np.array([True, False])), [255, 0])


def test_to_grayscale_rejects_odd_shapes():
    with pytest.raises(ValueError, match="shape"):
        to_grayscale(np.zeros((2, 3, 7)))


def _png_claiming(path, rows, cols):
    import struct
    import zlib

    write_png(path, np.zeros((8, 8), np.uint8))
    data = bytearray(path.read_bytes())
    data[16:24] = struct.pack(">II", cols, rows)
    data[29:33] = struct.pack(">I", zlib.crc32(bytes(data[12:29])))
    path.write_bytes(bytes(data))
    return path


@pytest.mark.parametrize("rows, cols", [(60000, 60000), (10000, 9000)])
def test_a_header_claiming_too_many_pixels_is_refused_without_a_warning(tmp_path, rows, cols):
    """Above Pillow's limit it errs, below twice it only warns: both are one error here."""
    import warnings

    from napari_spine_seg.data.images import MAX_PIXELS, image_shape

    assert rows * cols > MAX_PIXELS
    path = _png_claiming(tmp_path / "big.png", rows, cols)
    for read in (read_xray, image_shape):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            with pytest.raises(SpineSegError, match=f"{rows * cols:,} pixels.*decompression bomb"):
                read(path)
        assert not caught, [str(w.message) for w in caught]


def test_an_image_at_the_limit_is_read(tmp_path):
    from napari_spine_seg.data.images import MAX_PIXELS, check_size

    check_size("x.png", 1, MAX_PIXELS)  # exactly the limit: no error
    with pytest.raises(SpineSegError, match="x.png: claims to be 1 x"):
        check_size("x.png", 1, MAX_PIXELS + 1)


def test_a_multi_frame_dicom_is_refused_not_read_as_its_first_frame(tmp_path):
    import pydicom

    from napari_spine_seg.data.images import image_shape

    path = write_dicom(tmp_path / "cine.dcm", np.arange(3 * 64, dtype=np.uint16).reshape(24, 8))
    ds = pydicom.dcmread(path)
    ds.Rows, ds.NumberOfFrames = 8, 3
    ds.save_as(path)
    for read in (read_xray, image_shape):
        with pytest.raises(SpineSegError, match=r"cine.dcm: is a multi-frame DICOM \(3 frames\)"):
            read(path)


def test_a_multi_page_tiff_is_refused_but_a_single_page_one_is_read(tmp_path):
    stack = write_tiff(tmp_path / "stack.tif", np.zeros((3, 5, 16, 16), np.uint8))
    with pytest.raises(SpineSegError, match=r"stack.tif: is a multi-page TIFF \(15 images\)"):
        read_xray(stack)
    one = write_tiff(tmp_path / "one.tif", np.zeros((16, 16), np.uint8))
    assert read_xray(one).shape == (16, 16)


def test_a_damaged_png_header_says_it_is_a_damaged_png(tmp_path):
    path = write_png(tmp_path / "crc.png", np.zeros((8, 8), np.uint8))
    data = bytearray(path.read_bytes())
    data[20] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(SpineSegError, match="crc.png: is a damaged PNG file"):
        read_xray(path)
