"""Overlays: an X-ray interlaced with its trimap, done natively with numpy and Pillow.

The seed paper interlaced each test image with its predicted trimap using ImageMagick.
Here the same picture is made without it: the image is drawn in gray, and in every
other band of `stripe` rows the trimap's spine and border pixels are blended with their
colours (the napari Labels colours of :data:`napari_spine_seg.trimap.LABEL_COLORS`),
so both the bone under the mask and the mask itself stay visible. Background pixels are
left as the image.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from .atomic import atomic_output
from .data.pixels import to_uint8
from .trimap import BORDER, LABEL_COLORS, SPINE


def _display_gray(image: np.ndarray) -> np.ndarray:
    arr = np.asarray(image)
    if arr.ndim == 3:  # colour: the mean of the colour channels, rescaled
        arr = arr[..., :3].astype(np.float32).mean(axis=-1)
    return to_uint8(arr)


def interlace(
    image: np.ndarray,
    trimap: np.ndarray,
    *,
    stripe: int = 2,
    alpha: float = 0.7,
    colours: dict | None = None,
) -> np.ndarray:
    """Interlace an image with its trimap.

    Parameters
    ----------
    image : (H, W) or (H, W, C) array
        Any dtype (scaled for display by :func:`~napari_spine_seg.data.pixels.to_uint8`).
    trimap : (H, W) array
        1 spine, 2 background, 3 border (0 counts as background).
    stripe : int
        Height in rows of each band; bands alternate image and image + trimap colour.
        0 blends every row (a plain overlay).
    alpha : float
        Opacity of the trimap colours in the coloured bands.
    colours : dict, optional
        Trimap value → RGB(A) in 0–1; default the napari Labels colours.

    Returns
    -------
    (H, W, 3) uint8
    """
    gray = _display_gray(image)
    trimap = np.asarray(trimap)
    if gray.shape != trimap.shape:
        raise ValueError(f"image {gray.shape} and trimap {trimap.shape} differ in size")
    colours = colours or {SPINE: LABEL_COLORS[SPINE], BORDER: LABEL_COLORS[BORDER]}
    rgb = np.repeat(gray[..., None], 3, axis=-1).astype(np.float32)
    if stripe > 0:
        rows = (np.arange(gray.shape[0]) // stripe) % 2 == 1
    else:
        rows = np.ones(gray.shape[0], dtype=bool)
    for value, colour in colours.items():
        where = (trimap == value) & rows[:, None]
        c = np.asarray(colour[:3], dtype=np.float32) * 255.0
        rgb[where] = (1 - alpha) * rgb[where] + alpha * c
    return np.clip(np.rint(rgb), 0, 255).astype(np.uint8)


def write_overlay(path: str | os.PathLike, image: np.ndarray, trimap: np.ndarray, **kwargs) -> Path:
    """Write :func:`interlace` of `image` and `trimap` as a PNG (atomically)."""
    from PIL import Image

    rgb = interlace(image, trimap, **kwargs)
    path = Path(path)
    with atomic_output(path) as tmp:
        Image.fromarray(rgb, mode="RGB").save(tmp, format="PNG")
    return path
