"""Tell an image file's kind by its content: X-ray, trimap PNG or hand-painted colour mask.

npe2 matches a file against the readers' filename patterns as an unordered set, so
the order of readers in the manifest cannot decide between readers of the same
suffix. The file readers decide by content instead, each taking only its own kind
(:func:`file_kind`), so exactly one of them opens a file:

- **trimap**: a single-channel PNG whose values are all 0–3
  (:func:`~napari_spine_seg.data.masks.is_trimap_image`), unless it is a palette PNG
  whose used colours are not grey (a colour mask stored with a palette);
- **colour**: a colour image (RGB, RGBA or coloured palette) in which at least 95 % of
  the pixels lie near a colour of the mask's colour mapping and at least 1 % are
  strongly coloured (so an X-ray stored as RGB is not one);
- **xray**: any other file with an X-ray suffix or the DICOM magic.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ..data.colour_map import colour_map_for
from ..data.images import is_image_file
from ..data.masks import DEFAULT_COLOUR_MAP, is_trimap_image
from ..errors import SpineSegError

#: a pixel is "near" a mapped colour within this Euclidean RGB distance
NEAR_COLOUR = 80.0
#: share of pixels near a mapped colour for a colour mask
MIN_NEAR_SHARE = 0.95
#: share of strongly coloured pixels (channel spread > 64) for a colour mask
MIN_CHROMA_SHARE = 0.01
#: the content test looks at a copy reduced to at most this many pixels per side
_SNIFF_SIDE = 512


def _reduced_rgb(im) -> np.ndarray:
    factor = max(1, int(np.ceil(max(im.size) / _SNIFF_SIDE)))
    if im.format == "JPEG":
        im.draft("RGB", (max(1, im.size[0] // factor), max(1, im.size[1] // factor)))
    rgb = im.convert("RGB")
    factor = max(1, int(np.ceil(max(rgb.size) / _SNIFF_SIDE)))
    if factor > 1:
        rgb = rgb.reduce(factor)
    return np.asarray(rgb, dtype=np.int32)


def looks_like_colour_mask(rgb: np.ndarray, colours) -> bool:
    """Whether an ``(H, W, 3)`` image is a colour mask painted in `colours`.

    Parameters
    ----------
    rgb : (H, W, 3) array
    colours : iterable of (r, g, b)
        The mapping's colours.

    Examples
    --------
    >>> import numpy as np
    >>> mask = np.zeros((4, 4, 3), np.uint8); mask[..., 1] = 255; mask[1:3, 1:3] = (255, 0, 0)
    >>> looks_like_colour_mask(mask, [(255, 0, 0), (0, 255, 0), (0, 0, 255)])
    True
    >>> looks_like_colour_mask(np.full((4, 4, 3), 128, np.uint8), [(255, 0, 0), (0, 255, 0)])
    False
    """
    px = np.asarray(rgb, dtype=np.int32)[..., :3].reshape(-1, 3)
    if px.size == 0:
        return False
    chroma = (px.max(axis=1) - px.min(axis=1)) > 64
    if chroma.mean() < MIN_CHROMA_SHARE:
        return False
    near = np.zeros(len(px), dtype=bool)
    for colour in colours:
        near |= ((px - np.asarray(colour, dtype=np.int32)) ** 2).sum(axis=1) <= NEAR_COLOUR**2
    return bool(near.mean() >= MIN_NEAR_SHARE)


def _palette_is_colour(im) -> bool:
    palette = np.array(im.getpalette() or [], dtype=np.int32).reshape(-1, 3)
    used = np.unique(np.asarray(im))
    rgb = palette[used[used < len(palette)]]
    return bool(np.any(rgb != rgb[:, :1]))


def file_kind(path: str | os.PathLike) -> str | None:
    """``"trimap"``, ``"colour"``, ``"xray"``, or None when `path` is no image file.

    Never raises: a file that cannot be decoded is an ``"xray"`` when its name says
    image (the X-ray reader then reports what is wrong with it), else None.
    """
    from PIL import Image

    path = Path(path)
    if not path.is_file():
        return None
    is_image = is_image_file(path)
    try:
        with Image.open(path) as im:
            mode, fmt = im.mode, im.format
            if mode == "P":
                im.load()
                if _palette_is_colour(im):
                    return "colour" if _is_colour_mask(path, im) else ("xray" if is_image else None)
            if fmt == "PNG" and mode in ("L", "P", "1", "I", "I;16", "I;16B", "I;16L"):
                return "trimap" if is_trimap_image(path) else "xray"
            if mode in ("RGB", "RGBA"):
                return "colour" if _is_colour_mask(path, im) else ("xray" if is_image else None)
    except Exception:  # a sniff: whatever fails here is the X-ray reader's to report
        return "xray" if is_image else None
    return "xray" if is_image else None


def _is_colour_mask(path: Path, im) -> bool:

    try:
        colour_map, _ = colour_map_for(path)
    except SpineSegError:
        colour_map = DEFAULT_COLOUR_MAP  # the colour reader reports the broken mapping file
    return looks_like_colour_mask(_reduced_rgb(im), colour_map)
