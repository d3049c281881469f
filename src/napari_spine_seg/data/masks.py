"""Trimap PNGs and colour masks on disk.

A trimap PNG (see :mod:`napari_spine_seg.trimap`) is a single-channel 8-bit PNG with the
values ``1`` spine, ``2`` background, ``3`` border, at the size of its image and named
after it (:func:`trimap_name`). ``0`` (napari's eraser) is accepted when reading and
written as ``2``.

A colour mask is an RGB image painted by hand, one colour per class; it is read by
nearest colour (:func:`colour_mask_to_trimap`).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ..atomic import atomic_output
from ..errors import SpineSegError
from ..trimap import BACKGROUND, BORDER, SPINE, validate_trimap
from .images import IMAGE_SUFFIXES, describe_error, open_pillow

#: RGB colour → trimap value of a hand-painted colour mask: red (255, 0, 0) is spine (1),
#: green (0, 255, 0) background (2), blue (0, 0, 255) border (3); black (0, 0, 0), the
#: unpainted canvas, is background too.
DEFAULT_COLOUR_MAP: dict[tuple[int, int, int], int] = {
    (255, 0, 0): SPINE,
    (0, 255, 0): BACKGROUND,
    (0, 0, 255): BORDER,
    (0, 0, 0): BACKGROUND,
}

#: PNG text key saying what drew a trimap, and its value for a network's prediction
DRAWN_BY_KEY = "napari-spine-seg:drawn-by"
PREDICTED = "predicted"

_SINGLE_CHANNEL_MODES = ("L", "P", "1", "I", "I;16", "I;16B", "I;16L")


def trimap_name(image_name: str | os.PathLike) -> str:
    """The trimap PNG's file name for an image: its extension replaced by ``.png``.

    Only a known image extension (:data:`~napari_spine_seg.data.images.IMAGE_SUFFIXES`)
    is replaced; any other name gets ``.png`` appended, so that DICOM files named by UID
    (``1.2.840.5``) do not collide.

    Parameters
    ----------
    image_name : str or path-like
        The image's file name (a path is reduced to its name).

    Returns
    -------
    str

    Examples
    --------
    >>> trimap_name("sunhl-1th-02-Jan-2017-162 A AP.jpg")
    'sunhl-1th-02-Jan-2017-162 A AP.png'
    >>> trimap_name("1.2.840.5")
    '1.2.840.5.png'
    """
    name = Path(image_name).name
    suffix = Path(name).suffix
    if suffix.lower() in IMAGE_SUFFIXES:
        name = name[: -len(suffix)]
    return name + ".png"


def _open_png_array(path: Path) -> tuple[np.ndarray, str]:
    """Decode an image with Pillow; return its array and mode (palette indices kept)."""
    with open_pillow(path) as im:
        try:
            im.load()
            return np.asarray(im), im.mode
        except Exception as exc:  # Pillow's decoders raise many types for damaged data
            raise SpineSegError(path, f"is truncated or corrupt ({describe_error(exc)})") from exc


def read_trimap_png(path: str | os.PathLike) -> np.ndarray:
    """Read a trimap PNG as a ``uint8`` array with values 1, 2, 3 (0 becomes 2).

    A palette PNG is read by its palette indices, which is what trimap writers store.
    Returns the ``(H, W)`` array.

    Raises
    ------
    SpineSegError
        When the file is not a single-channel image or holds values other than 0–3.
    """
    path = Path(path)
    arr, mode = _open_png_array(path)
    if mode not in _SINGLE_CHANNEL_MODES:
        raise SpineSegError(
            path, f"is not a trimap: a {mode} colour image, expected one channel with values 1/2/3"
        )
    return validate_trimap(arr, path)


def _single_channel_values(path: str | os.PathLike, *, strict: bool = False) -> np.ndarray | None:
    """The pixels of a single-channel PNG; None for anything else.

    An unreadable file is None too, unless `strict`: then it is a SpineSegError naming it.
    """
    try:
        with open_pillow(path) as im:
            if im.format != "PNG" or im.mode not in _SINGLE_CHANNEL_MODES:
                return None  # decided by the header: no need to decode
            im.load()
            return np.asarray(im)
    except SpineSegError:
        if strict:
            raise
        return None
    except Exception as exc:  # a damaged file is not a trimap; reading it says what is wrong
        if strict:
            raise SpineSegError(path, f"cannot be read ({describe_error(exc)})") from None
        return None


def is_trimap_image(path: str | os.PathLike) -> bool:
    """Whether a file is a trimap by its content: a single-channel PNG with values in 0–3.

    The name does not matter. A file that cannot be read is not a trimap.
    """
    arr = _single_channel_values(path)
    return arr is not None and arr.size > 0 and int(arr.min()) >= 0 and int(arr.max()) <= 3


def looks_like_trimap(path: str | os.PathLike, *, strict: bool = False) -> bool:
    """Whether a file is meant as a trimap, even one holding stray values.

    A single-channel PNG with at most 8 distinct values and at least half of its pixels
    1, 2 or 3: a trimap with a few wrong pixels (a 7 painted by mistake) is one, a
    grayscale X-ray (hundreds of grey levels) is not. Reading it with
    :func:`read_trimap_png` then names the stray values.

    Parameters
    ----------
    path : path-like
    strict : bool
        A file that cannot be read (damaged, or a header claiming a huge size) raises
        SpineSegError naming it, instead of counting as no trimap.

    Returns
    -------
    bool
    """
    arr = _single_channel_values(path, strict=strict)
    if arr is None or arr.size == 0:
        return False
    values, counts = np.unique(arr, return_counts=True)
    if len(values) > 8:
        return False
    in_range = counts[(values >= 1) & (values <= 3)].sum()
    return bool(in_range * 2 >= arr.size)


def write_trimap_png(
    path: str | os.PathLike, trimap: np.ndarray, *, predicted: bool = False
) -> Path:
    """Write a trimap as a single-channel 8-bit PNG, atomically.

    Parameters
    ----------
    path : path-like
        Output file.
    trimap : (H, W) array
        Values 1, 2, 3; 0 (napari's eraser) is written as 2.
    predicted : bool
        Mark the file as a network's prediction (a PNG text chunk, see
        :func:`is_predicted_trimap`): its Cobb angles are then measured as a
        network's outline.

    Returns
    -------
    pathlib.Path
        `path`.

    Raises
    ------
    SpineSegError
        When `trimap` is not 2-D or holds other values, or `path` cannot be written.
    """
    from PIL import Image
    from PIL.PngImagePlugin import PngInfo

    path = Path(path)
    arr = validate_trimap(trimap, path)
    info = PngInfo()
    if predicted:
        info.add_text(DRAWN_BY_KEY, PREDICTED)
    with atomic_output(path) as tmp:
        Image.fromarray(arr, mode="L").save(tmp, format="PNG", pnginfo=info)
    return path


def write_vertebrae_png(path: str | os.PathLike, labels: np.ndarray) -> Path:
    """Write a vertebra instance map (0 background, 1 = T1 … 17 = L5) as an 8-bit PNG,
    atomically.

    Parameters
    ----------
    path : path-like
        Output file.
    labels : (H, W) array of int
        One number per vertebral body; 0–255 (a count that is not 17 may number more).

    Returns
    -------
    pathlib.Path
        `path`.

    Raises
    ------
    SpineSegError
        When `labels` is not 2-D or holds values outside 0–255, or `path` cannot be
        written.
    """
    from PIL import Image

    path = Path(path)
    arr = np.asarray(labels)
    if arr.ndim != 2:
        raise SpineSegError(path, f"a vertebra map must be 2-D, got shape {arr.shape}")
    if arr.size and (not np.issubdtype(arr.dtype, np.integer) or arr.min() < 0 or arr.max() > 255):
        raise SpineSegError(path, "a vertebra map must hold whole numbers 0-255 (0 background)")
    with atomic_output(path) as tmp:
        Image.fromarray(arr.astype(np.uint8), mode="L").save(tmp, format="PNG")
    return path


def is_predicted_trimap(path: str | os.PathLike) -> bool:
    """Whether a trimap PNG is marked as a network's prediction.

    ``spine-seg predict`` marks the trimaps it writes (:func:`write_trimap_png`); a
    trimap drawn from landmarks, painted, or saved after review is not marked; a file
    that cannot be read is not either.
    """
    try:
        with open_pillow(path) as im:  # text chunks before the pixels are read by open()
            return im.info.get(DRAWN_BY_KEY) == PREDICTED
    except SpineSegError:
        return False


def colour_mask_to_trimap(
    rgb: np.ndarray,
    colour_map: dict[tuple[int, int, int], int] | None = None,
    source: str | os.PathLike | None = None,
) -> np.ndarray:
    """Trimap from a hand-painted colour mask, each pixel taking its nearest colour's class.

    Parameters
    ----------
    rgb : (H, W, 3) or (H, W, 4) array of uint8
        The colour mask; alpha is ignored.
    colour_map : dict, optional
        ``{(r, g, b): trimap value}``; default :data:`DEFAULT_COLOUR_MAP`.
    source : path-like, optional
        The file the mask came from, named in errors.

    Returns
    -------
    (H, W) ndarray of uint8
        Values from `colour_map` (1, 2, 3 for the default).

    Raises
    ------
    SpineSegError
        When `rgb` is not a colour image or `colour_map` is empty.

    Examples
    --------
    >>> import numpy as np
    >>> rgb = np.array([[[250, 10, 5], [0, 0, 0], [20, 30, 240]]], dtype=np.uint8)
    >>> colour_mask_to_trimap(rgb).tolist()
    [[1, 2, 3]]
    """
    colour_map = DEFAULT_COLOUR_MAP if colour_map is None else colour_map
    arr = np.asarray(rgb)
    if arr.ndim != 3 or arr.shape[-1] not in (3, 4):
        raise SpineSegError(source, f"is not a colour mask: expected RGB, got shape {arr.shape}")
    if not colour_map:
        raise SpineSegError(source, "no colours given to read the colour mask with")
    colours = np.array(list(colour_map), dtype=np.int32).reshape(-1, 3)
    values = np.array(list(colour_map.values()), dtype=np.uint8)
    pixels = arr[..., :3].astype(np.int32)
    best = np.zeros(arr.shape[:2], dtype=np.intp)
    best_dist = np.full(arr.shape[:2], np.iinfo(np.int32).max, dtype=np.int32)
    for i, colour in enumerate(colours):  # one colour at a time: no (H, W, K) temporary
        dist = ((pixels - colour) ** 2).sum(axis=-1, dtype=np.int32)
        closer = dist < best_dist
        best[closer] = i
        best_dist[closer] = dist[closer]
    return values[best]


def read_colour_mask(
    path: str | os.PathLike, colour_map: dict[tuple[int, int, int], int] | None = None
) -> np.ndarray:
    """Read a hand-painted colour mask file (PNG, JPEG, …) as a trimap.

    Parameters
    ----------
    path : path-like
    colour_map : dict, optional
        ``{(r, g, b): trimap value}``; default :data:`DEFAULT_COLOUR_MAP`.

    Returns
    -------
    (H, W) ndarray of uint8

    Raises
    ------
    SpineSegError
        When the file cannot be read or is not a colour image.
    """
    path = Path(path)
    arr, mode = _open_png_array(path)
    if mode in _SINGLE_CHANNEL_MODES and mode != "P":
        raise SpineSegError(path, f"is not a colour mask: a single-channel ({mode}) image")
    if mode not in ("RGB", "RGBA"):
        with open_pillow(path) as im:
            try:
                arr = np.asarray(im.convert("RGB"))
            except Exception as exc:  # a mode Pillow cannot turn into RGB
                raise SpineSegError(
                    path, f"is not a colour mask: a {mode} image ({describe_error(exc)})"
                ) from exc
    if arr.dtype != np.uint8:
        raise SpineSegError(path, f"is not a colour mask: {arr.dtype} pixels, expected 8-bit RGB")
    return colour_mask_to_trimap(arr, colour_map, source=path)


def read_mask(path: str | os.PathLike) -> np.ndarray:
    """Read a trimap PNG or a colour mask, whichever the file is, as a trimap.

    Single-channel files are trimaps (:func:`read_trimap_png`); colour files are colour
    masks painted in :data:`DEFAULT_COLOUR_MAP` (:func:`read_colour_mask`). A palette
    image is a trimap (by its indices) when the colours its pixels use are all grey, and
    a colour mask otherwise. Returns the ``(H, W)`` ``uint8`` trimap (values 1, 2, 3).
    """
    path = Path(path)
    arr, mode = _open_png_array(path)
    if mode == "P" and _palette_is_colour(path, arr):
        return read_colour_mask(path)
    if mode in _SINGLE_CHANNEL_MODES:
        return validate_trimap(arr, path)
    return read_colour_mask(path)


def _palette_is_colour(path: Path, indices: np.ndarray) -> bool:
    with open_pillow(path) as im:
        palette = np.array(im.getpalette() or [], dtype=np.int32).reshape(-1, 3)
    used = np.unique(indices)
    used = used[used < len(palette)]
    rgb = palette[used]
    return bool(np.any(rgb != rgb[:, :1]))
