"""Property-based fuzzing of every reader of user files (hypothesis).

The property, for every reader and every input: it returns a valid result, or it raises
:class:`~napari_spine_seg.errors.SpineSegError`. Any other exception (a traceback for
the user) is a failure. Inputs are real files: written by the libraries that write
these formats (scipy, Pillow, tifffile, pydicom) with random contents, random bytes, and
valid files with random bytes changed.

``derandomize=True`` makes every run try the same examples, so CI is reproducible.
"""

from __future__ import annotations

import io
import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from PIL import Image

from _files import synthetic_landmarks, synthetic_xray, write_dicom, write_label_csvs
from napari_spine_seg.data.aasce import (
    read_angles_csv,
    read_filenames_csv,
    read_landmarks_csv,
    read_landmarks_mat,
)
from napari_spine_seg.data.images import image_shape, read_xray
from napari_spine_seg.data.masks import (
    is_trimap_image,
    looks_like_trimap,
    read_colour_mask,
    read_mask,
    read_trimap_png,
)
from napari_spine_seg.errors import SpineSegError

FUZZ = settings(
    max_examples=60,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    database=None,
)

SIZE = (40, 16)
LANDMARKS = synthetic_landmarks(*SIZE)


def either(read, path):
    """Call ``read(path)``: its result, or None when it raised SpineSegError naming `path`."""
    try:
        return read(path)
    except SpineSegError as exc:
        assert exc.path is not None and Path(exc.path).name == Path(path).name, str(exc)
        assert "\n" not in str(exc)
        return None


@pytest.fixture(scope="module")
def scratch():
    with tempfile.TemporaryDirectory(prefix="fuzz-") as folder:
        yield Path(folder)


def mutate(data: bytes, edits: list[tuple[int, int]], cut: int | None) -> bytes:
    """`data` with bytes at (position mod length) set to values, then cut to `cut` bytes."""
    out = bytearray(data)
    for pos, value in edits:
        out[pos % len(out)] = value
    return bytes(out[:cut] if cut is not None else out)


EDITS = st.lists(st.tuples(st.integers(0, 10**6), st.integers(0, 255)), min_size=1, max_size=8)
HEADER_EDITS = st.lists(st.tuples(st.integers(0, 200), st.integers(0, 255)), min_size=1, max_size=6)
CUT = st.none() | st.integers(0, 4000)

# --------------------------------------------------------------------------- .mat

NUMERIC_DTYPES = st.sampled_from(
    [np.float64, np.float32, np.int8, np.uint8, np.int16, np.uint16, np.int32, np.int64, bool]
)
MAT_VALUES = st.one_of(
    hnp.arrays(NUMERIC_DTYPES, hnp.array_shapes(min_dims=0, max_dims=3, max_side=70)),
    hnp.arrays(np.float64, st.sampled_from([(68, 2), (2, 68), (67, 2), (68, 3), (136,)])),
    st.text(max_size=20),
    st.lists(st.floats(allow_nan=True), max_size=5),
)


def _check_landmarks(result):
    assert result.shape == (68, 2) and result.dtype == np.float64
    assert np.all(np.isfinite(result))


@FUZZ
@given(variables=st.dictionaries(st.sampled_from(["p2", "P2", "pts", "x"]), MAT_VALUES, max_size=3))
def test_mat_written_by_scipy(scratch, variables):
    from scipy.io import savemat

    path = scratch / "a.jpg.mat"
    with open(path, "wb") as f:
        savemat(f, variables)
    result = either(read_landmarks_mat, path)
    if result is not None:
        _check_landmarks(result)


@FUZZ
@given(data=st.binary(max_size=2000))
def test_mat_of_random_bytes(scratch, data):
    path = scratch / "b.jpg.mat"
    path.write_bytes(data)
    result = either(read_landmarks_mat, path)
    if result is not None:
        _check_landmarks(result)


@pytest.fixture(scope="module")
def good_mat(scratch):
    from scipy.io import savemat

    buffer = io.BytesIO()
    savemat(buffer, {"p2": LANDMARKS, "other": np.arange(5)})
    return buffer.getvalue()


@FUZZ
@given(edits=EDITS, cut=CUT)
def test_mat_with_changed_bytes(scratch, good_mat, edits, cut):
    path = scratch / "c.jpg.mat"
    path.write_bytes(mutate(good_mat, edits, cut))
    result = either(read_landmarks_mat, path)
    if result is not None:
        _check_landmarks(result)


# --------------------------------------------------------------------------- CSVs

CELL = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.sampled_from(["", " ", "nan", "0.5", "-1", "1e400", "x", '"', "a,b", "\x00"]),
    st.text(max_size=6),
)
ROWS = st.lists(st.lists(CELL, min_size=0, max_size=140), max_size=4)


def _csv_text(rows: list[list[str]]) -> str:
    return "".join(",".join(row) + "\n" for row in rows)


@pytest.fixture(scope="module")
def split_dir(scratch):
    folder = scratch / "labels"
    names = ["a.jpg", "b.jpg"]
    write_label_csvs(folder, names, [LANDMARKS] * 2, [SIZE] * 2, angles=[[1, 2, 3]] * 2)
    return folder


def _restore(split_dir):
    names = ["a.jpg", "b.jpg"]
    write_label_csvs(split_dir, names, [LANDMARKS] * 2, [SIZE] * 2, angles=[[1, 2, 3]] * 2)


@FUZZ
@given(
    which=st.sampled_from(["landmarks.csv", "angles.csv", "filenames.csv"]),
    content=st.one_of(ROWS.map(_csv_text).map(str.encode), st.binary(max_size=600)),
)
def test_the_three_csvs(split_dir, which, content):
    _restore(split_dir)
    (split_dir / which).write_bytes(content)
    readers = {
        "landmarks.csv": read_landmarks_csv,
        "angles.csv": read_angles_csv,
        "filenames.csv": read_filenames_csv,
    }
    try:
        result = readers[which](split_dir)
    except SpineSegError as exc:
        assert exc.path is not None and Path(exc.path).name.endswith(".csv"), str(exc)
        assert "\n" not in str(exc)
        return
    if which == "filenames.csv":
        assert all(isinstance(n, str) and n and "/" not in n for n in result)
        assert len(set(result)) == len(result)
    else:
        width = 2 if which == "landmarks.csv" else None
        for value in result.values():
            assert np.all(np.isfinite(value))
            if width is not None:
                assert value.shape == (68, 2)
            else:
                assert value.shape == (3,)


# --------------------------------------------------------------------------- trimaps, masks

PNG_MODES = st.sampled_from(["L", "P", "I;16", "RGB", "RGBA", "LA", "1"])


@st.composite
def png_images(draw):
    mode = draw(PNG_MODES)
    rows, cols = draw(st.integers(1, 24)), draw(st.integers(1, 24))
    if mode in ("RGB", "RGBA", "LA"):
        channels = {"RGB": 3, "RGBA": 4, "LA": 2}[mode]
        values = draw(st.sampled_from([4, 256]))
        arr = draw(
            hnp.arrays(np.uint8, (rows, cols, channels), elements=st.integers(0, values - 1))
        )
        return Image.fromarray(arr, mode=mode)
    if mode == "I;16":
        arr = draw(hnp.arrays(np.uint16, (rows, cols), elements=st.integers(0, 400)))
        return Image.fromarray(arr)
    top = draw(st.sampled_from([3, 4, 8, 255]))
    arr = draw(hnp.arrays(np.uint8, (rows, cols), elements=st.integers(0, top)))
    im = Image.fromarray(arr, mode="L")
    if mode == "1":
        return im.convert("1")
    if mode == "P":
        im = im.convert("P")
        palette = draw(st.lists(st.integers(0, 255), min_size=3, max_size=768))
        im.putpalette(palette[: len(palette) // 3 * 3])
    return im


def _check_trimap(result):
    assert result.ndim == 2 and result.dtype == np.uint8
    assert set(np.unique(result).tolist()) <= {1, 2, 3}


@FUZZ
@given(image=png_images())
def test_trimap_and_colour_mask_readers_on_real_pngs(scratch, image):
    path = scratch / "t.png"
    image.save(path, format="PNG")
    for read in (read_trimap_png, read_mask, read_colour_mask):
        result = either(read, path)
        if result is not None:
            _check_trimap(result)
    assert isinstance(is_trimap_image(path), bool)
    assert isinstance(looks_like_trimap(path), bool)


@pytest.fixture(scope="module")
def good_png():
    buffer = io.BytesIO()
    trimap = np.full(SIZE, 2, np.uint8)
    trimap[5:30, 4:12] = 1
    Image.fromarray(trimap, mode="L").save(buffer, format="PNG")
    return buffer.getvalue()


@FUZZ
@given(edits=EDITS, cut=CUT)
def test_trimap_readers_on_changed_bytes(scratch, good_png, edits, cut):
    path = scratch / "m.png"
    path.write_bytes(mutate(good_png, edits, cut))
    for read in (read_trimap_png, read_mask):
        result = either(read, path)
        if result is not None:
            _check_trimap(result)
    assert isinstance(looks_like_trimap(path), bool)


# --------------------------------------------------------------------------- X-ray images


def _check_xray(xray, path):
    assert xray.pixels.ndim == 2 and xray.pixels.size > 0
    assert xray.pixels.dtype.kind in "uif"
    shape = either(image_shape, path)
    assert shape is None or shape == xray.shape


def _encoded(fmt: str) -> bytes:
    pixels = synthetic_xray(LANDMARKS, SIZE)
    buffer = io.BytesIO()
    if fmt == "tiff":
        import tifffile

        tifffile.imwrite(buffer, pixels)
    else:
        Image.fromarray(pixels).save(buffer, format=fmt.upper())
    return buffer.getvalue()


@pytest.fixture(scope="module")
def good_images():
    return {fmt: _encoded(fmt) for fmt in ("jpeg", "png", "tiff")}


@FUZZ
@given(fmt=st.sampled_from(["jpeg", "png", "tiff"]), edits=HEADER_EDITS, cut=CUT)
def test_image_headers_with_changed_bytes(scratch, good_images, fmt, edits, cut):
    path = scratch / f"x.{'jpg' if fmt == 'jpeg' else fmt}"
    path.write_bytes(mutate(good_images[fmt], edits, cut))
    shape = either(image_shape, path)
    xray = either(read_xray, path)
    if xray is not None:
        _check_xray(xray, path)
    assert shape is None or len(shape) == 2


@FUZZ
@given(fmt=st.sampled_from(["jpeg", "png", "tiff"]), edits=EDITS)
def test_image_bodies_with_changed_bytes(scratch, good_images, fmt, edits):
    path = scratch / f"y.{'jpg' if fmt == 'jpeg' else fmt}"
    path.write_bytes(mutate(good_images[fmt], edits, None))
    xray = either(read_xray, path)
    if xray is not None:
        _check_xray(xray, path)


@FUZZ
@given(
    data=st.one_of(
        st.binary(max_size=400),
        st.binary(max_size=300).map(lambda b: bytes(128) + b"DICM" + b),
    ),
    suffix=st.sampled_from([".jpg", ".png", ".tif", ".dcm", ""]),
)
def test_images_of_random_bytes(scratch, data, suffix):
    path = scratch / f"r{suffix}"
    path.write_bytes(data)
    xray = either(read_xray, path)
    if xray is not None:
        _check_xray(xray, path)


DICOM_TAGS = st.fixed_dictionaries(
    {},
    optional={
        "Rows": st.integers(0, 65535),
        "Columns": st.integers(0, 65535),
        "BitsAllocated": st.sampled_from([1, 8, 12, 16, 32, 64]),
        "BitsStored": st.integers(0, 40),
        "HighBit": st.integers(0, 40),
        "SamplesPerPixel": st.integers(0, 4),
        "PixelRepresentation": st.integers(0, 2),
        "PhotometricInterpretation": st.sampled_from(
            ["MONOCHROME1", "MONOCHROME2", "RGB", "YBR_FULL", "PALETTE COLOR", "BOGUS"]
        ),
        "NumberOfFrames": st.integers(0, 4),
        "PlanarConfiguration": st.integers(0, 2),
        "RescaleSlope": st.floats(-1e6, 1e6, allow_nan=False),
        "RescaleIntercept": st.floats(-1e6, 1e6, allow_nan=False),
        "PixelSpacing": st.lists(st.floats(-10, 10, allow_nan=False), min_size=0, max_size=3),
    },
)


@FUZZ
@given(tags=DICOM_TAGS, pixel_bytes=st.none() | st.binary(max_size=600), drop=st.booleans())
def test_dicom_written_by_pydicom(scratch, tags, pixel_bytes, drop):
    import pydicom

    path = scratch / "d.dcm"
    write_dicom(path, np.arange(64, dtype=np.uint16).reshape(8, 8))
    ds = pydicom.dcmread(path)
    for name, value in tags.items():
        setattr(ds, name, value)
    if pixel_bytes is not None:
        ds.PixelData = pixel_bytes + (b"\x00" if len(pixel_bytes) % 2 else b"")
    if drop:
        del ds.PixelData
    ds.save_as(path)
    xray = either(read_xray, path)
    if xray is not None:
        _check_xray(xray, path)


@pytest.fixture(scope="module")
def good_dicom(scratch):
    path = write_dicom(scratch / "good.dcm", np.arange(256, dtype=np.uint16).reshape(16, 16))
    return path.read_bytes()


@FUZZ
@given(edits=EDITS, cut=CUT)
def test_dicom_with_changed_bytes(scratch, good_dicom, edits, cut):
    path = scratch / "e.dcm"
    path.write_bytes(mutate(good_dicom, edits, cut))
    xray = either(read_xray, path)
    if xray is not None:
        _check_xray(xray, path)
