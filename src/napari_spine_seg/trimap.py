"""The trimap convention: landmarks → spine-column polygon → mask → trimap.

A trimap (the Oxford-IIIT Pets convention the seed used) is a 2-D ``uint8`` array with
``1`` spine, ``2`` background and ``3`` border. In napari a trimap is a Labels layer
with the same values; label ``0`` (what the eraser writes) also means background and
is written back as ``2``.

The spine column is the polygon through the left corners of the 17 vertebrae from top
to bottom and back up through their right corners (discs lie inside). The border band
holds every pixel within ``b`` pixels of the column's outline, inside or outside, with
``b = max(2, round(0.01 * width))`` unless told otherwise.

Landmarks are ``(68, 2)`` arrays of ``(x, y)`` pixel coordinates, as the data set
stores them; :func:`xy_to_rowcol` is the one place that converts them for napari.
"""

from __future__ import annotations

import os

import numpy as np
from scipy import ndimage

from .errors import SpineSegError

SPINE = 1
BACKGROUND = 2
BORDER = 3
#: what napari's eraser writes; means background
UNLABELLED = 0
TRIMAP_VALUES = (SPINE, BACKGROUND, BORDER)
CLASS_NAMES = {SPINE: "spine", BACKGROUND: "background", BORDER: "border"}

N_VERTEBRAE = 17
N_LANDMARKS = 4 * N_VERTEBRAE

#: colours for the Labels layer (RGBA, 0–1): background and the eraser's 0 transparent
LABEL_COLORS = {
    UNLABELLED: (0.0, 0.0, 0.0, 0.0),
    SPINE: (1.0, 0.85, 0.1, 0.6),
    BACKGROUND: (0.0, 0.0, 0.0, 0.0),
    BORDER: (0.1, 0.6, 1.0, 0.6),
}


def default_border(width: int) -> int:
    """Border band half-width in pixels for an image `width` pixels wide.

    Examples
    --------
    >>> default_border(100), default_border(1000)
    (2, 10)
    """
    return max(2, int(round(0.01 * width)))


def check_landmarks(landmarks: np.ndarray, source: str | os.PathLike | None = None) -> np.ndarray:
    """Return `landmarks` as a float64 ``(68, 2)`` array, or raise a one-line error.

    Parameters
    ----------
    landmarks : array_like
        ``(68, 2)`` landmark coordinates ``(x, y)``.
    source : path-like, optional
        File the landmarks came from, named in the error.

    Raises
    ------
    SpineSegError
        When the shape is not 68 × 2 or a value is not finite.
    """
    arr = np.asarray(landmarks, dtype=np.float64)
    if arr.shape != (N_LANDMARKS, 2):
        raise SpineSegError(
            source,
            f"landmarks must be {N_LANDMARKS} x 2, got {' x '.join(map(str, arr.shape)) or 'a scalar'}",
        )
    if not np.all(np.isfinite(arr)):
        raise SpineSegError(source, "landmarks contain NaN or infinite values")
    return arr


#: how far (a fraction of the image's width or height) a landmark may lie outside the
#: image: annotators place corners of a vertebra cut by the image's edge a little beyond it
LANDMARK_MARGIN = 0.02


def check_landmarks_inside(
    landmarks: np.ndarray,
    shape: tuple[int, int],
    source: str | os.PathLike | None = None,
    *,
    row_of: str | None = None,
) -> None:
    """Raise a one-line error when landmarks lie outside an image of `shape` (rows, cols).

    A landmark may lie up to :data:`LANDMARK_MARGIN` of the image's size beyond its edge;
    further out, the landmarks belong to another image (or another scale) and would
    draw a trimap that is all background.

    Parameters
    ----------
    landmarks : (68, 2) array
        ``(x, y)`` pixels.
    shape : (rows, cols)
    source : path-like, optional
        The landmark file, named in the error.
    row_of : str, optional
        The image whose row of a CSV the landmarks are, named in the error.

    Raises
    ------
    SpineSegError
    """
    arr = np.asarray(landmarks, dtype=np.float64)
    rows, cols = int(shape[0]), int(shape[1])
    mx, my = LANDMARK_MARGIN * cols, LANDMARK_MARGIN * rows
    x, y = arr[:, 0], arr[:, 1]
    outside = (x < -mx) | (x > cols - 1 + mx) | (y < -my) | (y > rows - 1 + my)
    if not outside.any():
        return
    first = int(np.flatnonzero(outside)[0])
    where = f" for {row_of}" if row_of else ""
    howmany = "all 68" if outside.all() else f"{int(outside.sum())} of 68"
    raise SpineSegError(
        source,
        f"{howmany} landmarks{where} lie outside the {rows} x {cols} image (landmark "
        f"{first + 1} at x={x[first]:.1f}, y={y[first]:.1f})",
    )


def sort_landmarks(landmarks: np.ndarray) -> np.ndarray:
    """Put each vertebra's corners in the order TL, TR, BL, BR and vertebrae top to bottom.

    The data set already stores them so; some redistributions do not, and re-sorting
    a correctly ordered set changes nothing.

    Parameters
    ----------
    landmarks : (68, 2) array
        ``(x, y)`` coordinates.

    Returns
    -------
    (68, 2) ndarray
    """
    groups = np.asarray(landmarks, dtype=np.float64).reshape(N_VERTEBRAE, 4, 2)
    out = np.stack([sort_corners(corners) for corners in groups])
    order = np.argsort(out[:, :, 1].mean(axis=1), kind="stable")
    return out[order].reshape(N_LANDMARKS, 2)


def sort_corners(corners: np.ndarray) -> np.ndarray:
    """One vertebra's four ``(x, y)`` corners in the order TL, TR, BL, BR.

    Examples
    --------
    >>> sort_corners([[9, 5], [1, 1], [1, 5], [9, 1]]).tolist()
    [[1.0, 1.0], [9.0, 1.0], [1.0, 5.0], [9.0, 5.0]]
    """
    corners = np.asarray(corners, dtype=np.float64).reshape(4, 2)
    by_x = corners[np.argsort(corners[:, 0], kind="stable")]
    left = by_x[:2][np.argsort(by_x[:2, 1], kind="stable")]
    right = by_x[2:][np.argsort(by_x[2:, 1], kind="stable")]
    return np.array([left[0], right[0], left[1], right[1]])


def column_polygon(landmarks: np.ndarray) -> np.ndarray:
    """The spine column's outline as an ``(68, 2)`` ``(x, y)`` polygon.

    Down the left corners (top-left, bottom-left of vertebra 1, …, 17), then up the
    right corners (bottom-right, top-right of vertebra 17, …, 1).
    """
    groups = np.asarray(landmarks, dtype=np.float64).reshape(N_VERTEBRAE, 4, 2)
    left = groups[:, [0, 2]].reshape(-1, 2)
    right = groups[::-1, [3, 1]].reshape(-1, 2)
    return np.concatenate([left, right])


def polygon_mask(polygon_xy: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Rasterise an ``(x, y)`` polygon into a boolean mask of `shape` (rows, cols).

    A pixel is inside when its centre (integer coordinates) is inside the polygon
    (even-odd rule). A scan-line fill: one crossing per edge and row, so a full-size
    X-ray costs milliseconds rather than a point-in-polygon test per pixel.
    """
    poly = np.asarray(polygon_xy, dtype=np.float64)
    h, w = int(shape[0]), int(shape[1])
    mask = np.zeros((h, w), dtype=bool)
    x0, y0 = poly[:, 0], poly[:, 1]
    x1, y1 = np.roll(x0, -1), np.roll(y0, -1)
    rows_all, xs_all = [], []
    for xa, ya, xb, yb in zip(x0, y0, x1, y1, strict=True):
        if ya == yb:
            continue
        lo, hi = min(ya, yb), max(ya, yb)
        # half-open in y, so a vertex shared by two edges is counted once
        rows = np.arange(max(int(np.ceil(lo)), 0), min(int(np.ceil(hi)), h))
        if rows.size:
            rows_all.append(rows)
            xs_all.append(xa + (rows - ya) * (xb - xa) / (yb - ya))
    if not rows_all:
        return mask
    rows = np.concatenate(rows_all)
    xs = np.concatenate(xs_all)
    order = np.lexsort((xs, rows))
    rows, xs = rows[order], xs[order]
    start = np.clip(np.ceil(xs[0::2]).astype(np.int64), 0, w)
    stop = np.clip(np.floor(xs[1::2]).astype(np.int64) + 1, 0, w)
    keep = stop > start
    if not keep.any():
        return mask
    rows, start, stop = rows[0::2][keep], start[keep], stop[keep]
    r0, c0, c1 = rows.min(), start.min(), stop.max()
    diff = np.zeros((rows.max() - r0 + 1, c1 - c0 + 1), dtype=np.int32)
    np.add.at(diff, (rows - r0, start - c0), 1)
    np.add.at(diff, (rows - r0, stop - c0), -1)
    mask[r0 : r0 + diff.shape[0], c0:c1] = np.cumsum(diff[:, :-1], axis=1) > 0
    return mask


def column_mask(landmarks: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Boolean mask of the spine column drawn from 68 landmarks."""
    return polygon_mask(column_polygon(sort_landmarks(landmarks)), shape)


def border_band(mask: np.ndarray, border: int) -> np.ndarray:
    """Pixels within `border` pixels of the outline of `mask`, inside or outside.

    Only the bounding box of the mask (grown by the band) is transformed, which keeps
    full-size X-rays fast.
    """
    mask = np.asarray(mask, dtype=bool)
    band = np.zeros(mask.shape, dtype=bool)
    if border <= 0 or not mask.any():
        return band
    rows = np.flatnonzero(mask.any(axis=1))
    cols = np.flatnonzero(mask.any(axis=0))
    pad = border + 2
    r0, r1 = max(rows[0] - pad, 0), min(rows[-1] + pad + 1, mask.shape[0])
    c0, c1 = max(cols[0] - pad, 0), min(cols[-1] + pad + 1, mask.shape[1])
    sub = mask[r0:r1, c0:c1]
    # distance_transform_edt measures to the nearest zero; pad so that a mask touching
    # the image edge has no outline there (the edge is not the column's outline).
    padded = np.pad(sub, 1, mode="edge")
    inside = ndimage.distance_transform_edt(padded)[1:-1, 1:-1]
    outside = ndimage.distance_transform_edt(~padded)[1:-1, 1:-1]
    band[r0:r1, c0:c1] = np.where(sub, inside <= border, outside <= border)
    return band


def trimap_from_mask(mask: np.ndarray, border: int | None = None) -> np.ndarray:
    """Trimap (1 spine, 2 background, 3 border) from a boolean spine mask.

    Parameters
    ----------
    mask : (H, W) bool array
    border : int, optional
        Band half-width in pixels; default :func:`default_border` of the width.
    """
    mask = np.asarray(mask, dtype=bool)
    if border is None:
        border = default_border(mask.shape[1])
    trimap = np.where(mask, SPINE, BACKGROUND).astype(np.uint8)
    trimap[border_band(mask, border)] = BORDER
    return trimap


def trimap_from_landmarks(
    landmarks: np.ndarray, shape: tuple[int, int], border: int | None = None
) -> np.ndarray:
    """Trimap of an image of `shape` (rows, cols) from its 68 ``(x, y)`` landmarks.

    Examples
    --------
    >>> import numpy as np
    >>> v = np.array([[[10, 10 + 10 * i], [30, 10 + 10 * i], [10, 18 + 10 * i], [30, 18 + 10 * i]]
    ...               for i in range(17)], float).reshape(68, 2)
    >>> t = trimap_from_landmarks(v, (200, 40), border=2)
    >>> t.dtype, sorted(np.unique(t).tolist()), int(t[100, 20])
    (dtype('uint8'), [1, 2, 3], 1)
    """
    landmarks = check_landmarks(landmarks)
    return trimap_from_mask(column_mask(landmarks, tuple(shape[:2])), border)


def validate_trimap(
    trimap: np.ndarray, source: str | os.PathLike | None = None, *, allow_unlabelled: bool = True
) -> np.ndarray:
    """Check that `trimap` is a 2-D trimap and return it as ``uint8`` with 0 mapped to 2.

    Parameters
    ----------
    trimap : array_like
        2-D array with values in {1, 2, 3} (and 0 when `allow_unlabelled`).
    source : path-like, optional
        File it came from, named in the error.
    allow_unlabelled : bool
        Accept 0 (napari's eraser) as background.

    Raises
    ------
    SpineSegError
        When the array is not 2-D or holds other values.
    """
    arr = np.asarray(trimap)
    if arr.ndim != 2:
        raise SpineSegError(
            source, f"a trimap must be a 2-D single-channel image, got shape {arr.shape}"
        )
    allowed = (UNLABELLED, *TRIMAP_VALUES) if allow_unlabelled else TRIMAP_VALUES
    values = np.unique(arr)
    stray = [v for v in values.tolist() if v not in allowed]
    if stray:
        shown = ", ".join(str(v) for v in stray[:5]) + (", …" if len(stray) > 5 else "")
        raise SpineSegError(
            source, f"is not a trimap: values must be {'/'.join(map(str, allowed))}, found {shown}"
        )
    return labels_to_trimap(arr)


def labels_to_trimap(labels: np.ndarray) -> np.ndarray:
    """Trimap from Labels-layer data: 0 (eraser) becomes 2 (background)."""
    out = np.asarray(labels).astype(np.uint8, copy=True)
    out[out == UNLABELLED] = BACKGROUND
    return out


def xy_to_rowcol(landmarks_xy: np.ndarray) -> np.ndarray:
    """Landmarks ``(x, y)`` as in the files → napari Points ``(row, col)``."""
    return np.asarray(landmarks_xy, dtype=np.float64)[..., ::-1].copy()


def rowcol_to_xy(points_rowcol: np.ndarray) -> np.ndarray:
    """napari Points ``(row, col)`` → landmarks ``(x, y)`` as in the files."""
    return np.asarray(points_rowcol, dtype=np.float64)[..., ::-1].copy()
