"""Read X-ray image files as 2-D grayscale arrays: JPEG, PNG, TIFF and DICOM.

Every reader returns an :class:`XRay`: the pixels as a 2-D array that keeps the file's
intensity range (``uint8`` stays ``uint8``, 16-bit stays ``uint16``; DICOM becomes
``float32`` after its rescale), the pixel spacing when the file states one, and where it
came from. Colour files become grayscale by luminance without changing the dtype's range.

The format is told by the file's first bytes (DICOM by ``DICM`` at byte 128), and by its
suffix only when the content says nothing. Every problem with a file is raised as
:class:`~napari_spine_seg.errors.SpineSegError` naming the file. A file must hold one
image: a multi-frame DICOM or a multi-page TIFF is refused (which frame is the X-ray is
for the user to say), and so is a header claiming more than :data:`MAX_PIXELS` (a
decompression bomb), before anything is decoded.

:func:`image_shape` reads headers only, so that a stack of hundreds of X-rays can be
opened lazily. The pixel conversions (grayscale, 8 bits) are in :mod:`.pixels`.
"""

from __future__ import annotations

import contextlib
import os
import re
import warnings
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import SpineSegError
from .pixels import invert, to_grayscale

#: lower-case suffixes read as X-rays; files with the DICOM magic are read whatever their name
IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".tif", ".tiff", ".dcm", ".dicom"})

# Suffixes that are certainly not images: no need to look for the DICOM magic in them.
_NOT_IMAGE_SUFFIXES = frozenset(
    ".mat .csv .txt .json .xml .md .yaml .yml .h5 .keras .zip .py".split()
)
_JPEG_MAGIC = b"\xff\xd8\xff"
_JPEG_EOI = b"\xff\xd9"
_PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
_TIFF_MAGICS = (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+")
_DICOM_MAGIC_OFFSET = 128
#: the most pixels (rows x columns) an image may have: Pillow's default limit, which a
#: full-length 16-bit radiograph is far below; a header claiming more is a corrupt file
#: or a decompression bomb, refused before any pixel is decoded
MAX_PIXELS = 89_478_485


@dataclass(frozen=True)
class XRay:
    """One X-ray image as read from a file.

    Attributes
    ----------
    pixels : ndarray
        2-D grayscale image ``(rows, cols)``; ``uint8`` or ``uint16`` as stored, ``float32``
        for DICOM (after RescaleSlope/Intercept and MONOCHROME1 inversion).
    spacing : tuple of float or None
        Pixel spacing ``(row, col)`` in millimetres when the file states it (DICOM).
    path : pathlib.Path
        The file read.
    photometric : str or None
        The colour model the file states: the DICOM PhotometricInterpretation, the TIFF
        photometric tag's name, or the Pillow mode for JPEG and PNG.
    """

    pixels: np.ndarray
    spacing: tuple[float, float] | None
    path: Path
    photometric: str | None = None

    @property
    def shape(self) -> tuple[int, int]:
        """``(rows, cols)`` of the image."""
        return (int(self.pixels.shape[0]), int(self.pixels.shape[1]))


def describe_error(exc: BaseException) -> str:
    """A library's exception as one short line, to end an error message with."""
    text = " ".join(str(exc).split())
    return text[:200] if text else type(exc).__name__


def _too_large(rows: int, cols: int) -> str:
    return (
        f"claims to be {rows} x {cols} pixels, more than the {MAX_PIXELS:,} this program "
        "reads (a corrupt header or a decompression bomb)"
    )


def check_size(path: str | os.PathLike, rows: int, cols: int) -> None:
    """Raise SpineSegError when a header's size is empty or above :data:`MAX_PIXELS`."""
    if rows < 1 or cols < 1:
        raise SpineSegError(path, f"claims to be {rows} x {cols} pixels: an empty image")
    if rows * cols > MAX_PIXELS:
        raise SpineSegError(path, _too_large(rows, cols))


@contextlib.contextmanager
def open_pillow(path: str | os.PathLike) -> Iterator:
    """``PIL.Image.open`` that turns every failure into one SpineSegError line.

    Pillow's decompression-bomb warning and error (a header claiming more than
    :data:`MAX_PIXELS`) become an error here, so no warning reaches the terminal.
    Only the header is read; call ``load()`` on the image for the pixels.

    Yields
    ------
    PIL.Image.Image
    """
    from PIL import Image, UnidentifiedImageError

    path = Path(path)
    try:
        with warnings.catch_warnings():  # held only while the header is read
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            im = Image.open(path)
    except FileNotFoundError:
        raise SpineSegError(path, "does not exist") from None
    except IsADirectoryError:
        raise SpineSegError(path, "is a folder, not an image file") from None
    except UnidentifiedImageError:
        kind = _sniff(path)
        if kind in ("jpeg", "png", "tiff"):
            raise SpineSegError(
                path, f"is a damaged {kind.upper()} file (its header cannot be read)"
            ) from None
        raise SpineSegError(path, "is not an image file (not JPEG, PNG, TIFF or DICOM)") from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise SpineSegError(path, _too_large_from_header(path, exc)) from None
    except Exception as exc:  # Pillow raises many types for a damaged header
        raise SpineSegError(path, f"is truncated or corrupt ({describe_error(exc)})") from exc
    with im:
        width, height = im.size
        check_size(path, int(height), int(width))
        yield im


def _too_large_from_header(path: Path, exc: Exception) -> str:
    """The refusal of an image Pillow calls a bomb, with the pixel count Pillow read."""
    found = re.search(r"\((\d+) pixels\)", str(exc))
    count = f"{int(found.group(1)):,} pixels" if found else "more pixels than Pillow allows"
    return (
        f"claims to be {count}, more than the {MAX_PIXELS:,} this program reads "
        "(a corrupt header or a decompression bomb)"
    )


def _head(path: Path, n: int = 132) -> bytes:
    try:
        with open(path, "rb") as f:
            return f.read(n)
    except FileNotFoundError:
        raise SpineSegError(path, "does not exist") from None
    except IsADirectoryError:
        raise SpineSegError(path, "is a folder, not an image file") from None
    except OSError as exc:
        raise SpineSegError(path, f"cannot be read ({exc.strerror or exc})") from exc


def _sniff(path: Path) -> str:
    """The file's format from its first bytes, else from its suffix: jpeg/png/tiff/dicom/other."""
    head = _head(path)
    if not head:
        raise SpineSegError(path, "is empty (0 bytes)")
    if head[_DICOM_MAGIC_OFFSET : _DICOM_MAGIC_OFFSET + 4] == b"DICM":
        return "dicom"
    if head.startswith(_JPEG_MAGIC):
        return "jpeg"
    if head.startswith(_PNG_MAGIC):
        return "png"
    if head[:4] in _TIFF_MAGICS:
        return "tiff"
    suffix = path.suffix.lower()
    # DICOM files without the 128-byte preamble exist; only their suffix says what they are
    return "dicom" if suffix in (".dcm", ".dicom") else "other"


def is_dicom(path: str | os.PathLike) -> bool:
    """Whether the file has the DICOM magic ``DICM`` at byte 128 (False if unreadable)."""
    try:
        with open(path, "rb") as f:
            f.seek(_DICOM_MAGIC_OFFSET)
            return f.read(4) == b"DICM"
    except OSError:
        return False


def is_image_file(path: str | os.PathLike) -> bool:
    """Whether `path` is a file this module reads as an X-ray.

    Decided by the suffix (:data:`IMAGE_SUFFIXES`), and for files with another suffix
    (DICOM files are often named without one) by the DICOM magic. Hidden files (name
    starting with ``.``) are never images. Only opens files whose suffix says nothing.
    """
    path = Path(path)
    if path.name.startswith("."):
        return False
    suffix = path.suffix.lower()
    if suffix in IMAGE_SUFFIXES:
        return True
    if suffix in _NOT_IMAGE_SUFFIXES:
        return False
    return path.is_file() and is_dicom(path)


def read_xray(path: str | os.PathLike) -> XRay:
    """Read an X-ray file as a 2-D grayscale image keeping its intensity range.

    Parameters
    ----------
    path : path-like
        A JPEG, PNG or TIFF (8 or 16 bit; 1, 3 or 4 channels) or DICOM file.

    Returns
    -------
    XRay

    Raises
    ------
    SpineSegError
        When the file is missing, truncated, corrupt or not an image.
    """
    path = Path(path)
    kind = _sniff(path)
    if kind == "dicom":
        return _read_dicom(path)
    if kind == "tiff":
        return _read_tiff(path)
    return _read_pillow(path, kind)


def _jpeg_is_complete(path: Path) -> bool:
    # The end-of-image marker cannot occur inside entropy-coded data, so a file without
    # it near its end was cut short. Pillow detects this too, unless some other code has
    # set ImageFile.LOAD_TRUNCATED_IMAGES, and then loads the rest of the image as grey.
    with open(path, "rb") as f:
        f.seek(0, os.SEEK_END)
        f.seek(max(f.tell() - 4096, 0))
        return _JPEG_EOI in f.read()


def _read_pillow(path: Path, kind: str) -> XRay:
    if kind == "jpeg" and not _jpeg_is_complete(path):
        raise SpineSegError(path, "JPEG file is truncated (no end-of-image marker)")
    with open_pillow(path) as im:
        try:
            im.load()
            mode = im.mode
            pixels = _pillow_to_array(im)
        except Exception as exc:  # Pillow's decoders raise many types for damaged data
            raise SpineSegError(path, f"is truncated or corrupt ({describe_error(exc)})") from exc
    if pixels.ndim == 3 and pixels.shape[-1] not in (1, 2, 3, 4):
        raise SpineSegError(path, f"is not a grayscale or colour image (mode {mode})")
    return XRay(pixels=to_grayscale(pixels), spacing=None, path=path, photometric=mode)


def _pillow_to_array(im) -> np.ndarray:
    if im.mode == "1":
        return np.asarray(im, dtype=np.uint8) * np.uint8(255)
    if im.mode == "P":
        im = im.convert("RGBA" if "transparency" in im.info else "RGB")
    elif im.mode in ("CMYK", "YCbCr", "LAB", "HSV"):
        im = im.convert("RGB")
    arr = np.asarray(im)
    if im.mode == "I" and arr.size and arr.min() >= 0 and arr.max() <= 65535:
        arr = arr.astype(np.uint16)  # 16-bit PNGs may come as 32-bit "I"
    return arr


def _read_tiff(path: Path) -> XRay:
    import tifffile

    try:
        with tifffile.TiffFile(path) as tif:
            page = _tiff_page(tif, path)
            arr = page.asarray()
            axes = page.axes
            photometric = page.photometric.name
    except SpineSegError:
        raise
    except MemoryError:
        raise SpineSegError(path, "is too large to decode in this computer's memory") from None
    except Exception as exc:  # tifffile raises many types for a damaged file
        raise SpineSegError(path, f"is truncated or corrupt TIFF ({describe_error(exc)})") from exc
    if "S" in axes and axes.index("S") != len(axes) - 1:
        arr = np.moveaxis(arr, axes.index("S"), -1)
    if arr.ndim > 3 or (arr.ndim == 3 and arr.shape[-1] not in (1, 2, 3, 4)) or arr.ndim < 2:
        raise SpineSegError(path, f"is not a 2-D image (a TIFF of shape {arr.shape})")
    if arr.dtype == bool:
        arr = arr.astype(np.uint8) * np.uint8(255)
    elif arr.dtype == np.float64:
        arr = arr.astype(np.float32)
    elif arr.dtype.kind not in "uif":
        raise SpineSegError(path, f"is not a grayscale or colour image (TIFF of {arr.dtype})")
    if photometric == "MINISWHITE":
        arr = invert(arr)
    return XRay(pixels=to_grayscale(arr), spacing=None, path=path, photometric=photometric)


def _read_dicom(path: Path) -> XRay:
    import pydicom

    try:
        ds = pydicom.dcmread(path, force=True)
    except Exception as exc:  # pydicom raises many types for a damaged file
        raise SpineSegError(path, f"is truncated or corrupt DICOM ({describe_error(exc)})") from exc
    _check_dicom_header(ds, path)
    try:
        stored = ds.pixel_array
        photometric = str(ds.get("PhotometricInterpretation", "MONOCHROME2")).strip()
        # pydicom has already turned YBR colour into RGB; grayscale by luminance like any RGB
        pixels = _dicom_rescale(ds, to_grayscale(stored))
        if photometric == "MONOCHROME1":
            lo, hi = _dicom_value_range(ds)
            pixels = (np.float32(lo) + np.float32(hi)) - pixels
        spacing = _dicom_spacing(ds)
    except MemoryError:
        raise SpineSegError(path, "is too large to decode in this computer's memory") from None
    except Exception as exc:  # pydicom and its decoders raise many types
        raise SpineSegError(
            path, f"has no pixel data that can be decoded ({describe_error(exc)})"
        ) from exc
    if pixels.ndim != 2:
        raise SpineSegError(path, f"is not a 2-D image (DICOM pixel data of shape {pixels.shape})")
    return XRay(pixels=pixels, spacing=spacing, path=path, photometric=photometric)


def _check_dicom_header(ds, path: Path, *, pixels: bool = True) -> tuple[int, int]:
    """Refuse a DICOM file without one 2-D image of a sane size, before decoding it.

    Returns ``(rows, cols)``; `pixels` False skips the check for pixel data (for a
    header read with ``stop_before_pixels``).
    """
    try:
        rows, cols = int(ds.Rows), int(ds.Columns)
        frames = int(ds.get("NumberOfFrames", 1) or 1)
        has_pixels = "PixelData" in ds or "FloatPixelData" in ds or "DoubleFloatPixelData" in ds
    except AttributeError:
        raise SpineSegError(path, "is a DICOM file without an image (no Rows/Columns)") from None
    except Exception as exc:
        raise SpineSegError(path, f"has a corrupt DICOM header ({describe_error(exc)})") from exc
    if frames > 1:
        # which frame is the X-ray is for the user to say: never silently the first
        raise SpineSegError(
            path,
            f"is a multi-frame DICOM ({frames} frames); save the frame to use as a "
            "single-frame file",
        )
    check_size(path, rows, cols)
    if pixels and not has_pixels:
        raise SpineSegError(path, "is a DICOM file without pixel data")
    return rows, cols


def _dicom_rescale(ds, pixels: np.ndarray) -> np.ndarray:
    slope = float(ds.get("RescaleSlope", 1) or 1)
    intercept = float(ds.get("RescaleIntercept", 0) or 0)
    return pixels.astype(np.float32) * np.float32(slope) + np.float32(intercept)


def _dicom_value_range(ds) -> tuple[float, float]:
    """The range of values the stored bits allow, after the rescale (for MONOCHROME1)."""
    bits = int(ds.get("BitsStored", ds.get("BitsAllocated", 16)))
    if int(ds.get("PixelRepresentation", 0)) == 1:
        lo, hi = -(2 ** (bits - 1)), 2 ** (bits - 1) - 1
    else:
        lo, hi = 0, 2**bits - 1
    slope = float(ds.get("RescaleSlope", 1) or 1)
    intercept = float(ds.get("RescaleIntercept", 0) or 0)
    ends = sorted((lo * slope + intercept, hi * slope + intercept))
    return ends[0], ends[1]


def _dicom_spacing(ds) -> tuple[float, float] | None:
    # PixelSpacing is at the patient; projection X-rays often state only the detector's
    for keyword in ("PixelSpacing", "ImagerPixelSpacing"):
        value = ds.get(keyword)
        if value is not None and len(value) == 2:
            row, col = float(value[0]), float(value[1])
            if row > 0 and col > 0:
                return (row, col)
    return None


def image_shape(path: str | os.PathLike) -> tuple[int, int]:
    """``(rows, cols)`` of an X-ray file, read from its header without decoding pixels.

    Parameters
    ----------
    path : path-like

    Returns
    -------
    tuple of int

    Raises
    ------
    SpineSegError
        When the file is missing or its header cannot be read.
    """
    path = Path(path)
    kind = _sniff(path)
    try:
        if kind == "dicom":
            return _dicom_shape(path)
        if kind == "tiff":
            return _tiff_shape(path)
        return _pillow_shape(path)
    except SpineSegError:
        raise
    except Exception as exc:  # any reader's failure on a bad header is the file's problem
        raise SpineSegError(
            path, f"has an unreadable image header ({describe_error(exc)})"
        ) from exc


def _pillow_shape(path: Path) -> tuple[int, int]:
    with open_pillow(path) as im:  # lazy: reads the header only
        width, height = im.size
    return (int(height), int(width))


def _tiff_shape(path: Path) -> tuple[int, int]:
    import tifffile

    with tifffile.TiffFile(path) as tif:
        page = _tiff_page(tif, path)
        return (int(page.imagelength), int(page.imagewidth))


def _tiff_page(tif, path: Path):
    """The one image of a TIFF file; a stack of images is refused, never its first page.

    A reduced-resolution copy (a thumbnail) is a series of its own and does not count.
    """
    page = tif.pages.first
    check_size(path, int(page.imagelength), int(page.imagewidth))
    series = tif.series[0] if tif.series else None
    count = len(series.pages) if series is not None else 1
    if count > 1:
        raise SpineSegError(
            path,
            f"is a multi-page TIFF ({count} images); save the image to use as a single-image file",
        )
    return page


def _dicom_shape(path: Path) -> tuple[int, int]:
    import pydicom

    ds = pydicom.dcmread(path, stop_before_pixels=True, force=True)
    return _check_dicom_header(ds, path, pixels=False)


def check_image_headers(paths: Iterable[str | os.PathLike]) -> None:
    """Read the header of every image file, so that a bad one fails before long work starts.

    Parameters
    ----------
    paths : iterable of path-like

    Raises
    ------
    SpineSegError
        Naming the first file that is missing, unreadable or whose header is bad
        (see :func:`image_shape`).
    """
    for path in paths:
        image_shape(path)
