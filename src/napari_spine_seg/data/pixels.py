"""Pixel conversions of X-ray images, whatever file they came from.

:func:`to_grayscale` keeps the dtype's range; :func:`to_uint8` is the one normalisation to
8 bits used for display and for the model.
"""

from __future__ import annotations

import numpy as np

# ITU-R BT.601 luma weights, the same that Pillow's "L" conversion uses
_LUMA = np.array([0.299, 0.587, 0.114])


def to_grayscale(arr: np.ndarray) -> np.ndarray:
    """Turn a ``(H, W)`` or ``(H, W, C)`` image into 2-D grayscale, keeping the dtype.

    One channel is returned as is. With 2 channels (gray + alpha) the first is kept; with
    3 or 4 (RGB, RGBA) alpha is dropped, and when R, G and B are equal one of them is
    returned unchanged, else the ITU-R BT.601 luminance ``0.299 R + 0.587 G + 0.114 B``,
    rounded and cast back to the input's dtype (so a 16-bit RGB TIFF stays 16-bit).

    Parameters
    ----------
    arr : ndarray

    Returns
    -------
    ndarray
        2-D, same dtype as `arr`.
    """
    arr = np.asarray(arr)
    if arr.ndim == 2:
        return arr
    if arr.ndim != 3 or arr.shape[-1] not in (1, 2, 3, 4):
        raise ValueError(f"expected an (H, W) or (H, W, C) image, got shape {arr.shape}")
    if arr.shape[-1] <= 2:
        return np.ascontiguousarray(arr[..., 0])
    rgb = arr[..., :3]
    if np.array_equal(rgb[..., 0], rgb[..., 1]) and np.array_equal(rgb[..., 0], rgb[..., 2]):
        return np.ascontiguousarray(rgb[..., 0])
    luma = rgb.astype(np.float64) @ _LUMA
    if np.issubdtype(arr.dtype, np.integer):
        info = np.iinfo(arr.dtype)
        return np.clip(np.rint(luma), info.min, info.max).astype(arr.dtype)
    return luma.astype(arr.dtype)


def invert(arr: np.ndarray) -> np.ndarray:
    """Invert within the dtype's range (integers) or the data's range (floats)."""
    if np.issubdtype(arr.dtype, np.integer):
        info = np.iinfo(arr.dtype)
        return (int(info.max) + int(info.min) - arr.astype(np.int64)).astype(arr.dtype)
    return (np.nanmax(arr) + np.nanmin(arr) - arr).astype(arr.dtype)


def to_uint8(pixels: np.ndarray) -> np.ndarray:
    """An image as ``uint8`` for display and for the model.

    The rule: ``uint8`` is returned as it is (the same array, not a copy); ``bool`` becomes
    0/255; every other dtype is scaled linearly so that its minimum becomes 0 and its
    maximum 255 (min–max, rounded; NaN becomes 0; a constant image becomes all 0).
    Min–max rather than a percentile stretch so that an 8-bit image stored in 16 bits
    (values × 257) gives exactly the 8-bit image back, and training and prediction see the
    same intensities whatever the file format.

    Parameters
    ----------
    pixels : ndarray
        Image of any shape and numeric dtype.

    Returns
    -------
    ndarray of uint8

    Examples
    --------
    >>> import numpy as np
    >>> to_uint8(np.array([[0, 257, 65535]], dtype=np.uint16)).tolist()
    [[0, 1, 255]]
    """
    arr = np.asarray(pixels)
    if arr.dtype == np.uint8:
        return arr
    if arr.dtype == bool:
        return arr.astype(np.uint8) * np.uint8(255)
    values = arr.astype(np.float64)
    finite = np.isfinite(values)
    if not finite.any():
        return np.zeros(arr.shape, dtype=np.uint8)
    lo, hi = values[finite].min(), values[finite].max()
    if hi <= lo:
        return np.zeros(arr.shape, dtype=np.uint8)
    scaled = (np.where(finite, values, lo) - lo) * (255.0 / (hi - lo))
    return np.clip(np.rint(scaled), 0, 255).astype(np.uint8)
