"""Bending augmentation: the spine column is bent along a smooth random curve.

A plain sideways shift per row would shear the vertebral bodies (their end plates stay
level while the column tilts). Here the neighbourhood of the column *rotates* with the
new curve: the column's centre at row ``y`` moves sideways by ``c(y)`` and everything
around it turns by the curve's tangent angle ``theta(y) = atan(c'(y))``, so that an
end plate where the curve has slope ``s`` ends up tilted by about ``atan(s)`` (its
right end higher for ``s > 0``: the body's downward axis turns towards +x, the tilt
convention of :mod:`napari_spine_seg.data.phantom_geometry`).

For an output pixel ``(y, x)`` at ``dx = x - x0(y) - c(y)`` across from the bent
column, the source pixel is (exact where the curve is locally straight)::

    y_s = y + dx · sin(theta) · cos(theta)
    x_s = x0(y_s) + dx · cos(theta)

``x0`` is the column's own centre line in the source (from the labels), so that the
bodies turn about their own centres. Far from the column the rotation fades out (a
Gaussian of :data:`FALLOFF` × the width), so that ribs and soft tissue far out do not
fold over where the curve bends sharply; there they are only shifted. Image and labels
are sampled at the same points (labels nearest-neighbour, so they keep their values).
The column's length along the curve grows by ``1 / cos(theta)`` (its rows stay rows);
the scale augmentation covers that.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

#: the rotation fades with the distance from the column: a Gaussian of this × the width
FALLOFF = 0.4
#: the bent column moves sideways by at most this × the width
MAX_SHIFT = 0.2
#: cycles over the image height of the first and of the optional second sine of the
#: tilt profile (1 cycle: an S, 0.5: a C)
FREQUENCIES = ((0.5, 1.2), (1.0, 1.75))


def random_curve(rng: np.random.Generator, rows: int, cols: int, max_tilt_deg: float) -> np.ndarray:
    """A smooth random lateral curve ``c(y)`` (px per row) adding up to `max_tilt_deg` of tilt.

    The tilt profile is a sum of one or two low-frequency sines of random phase,
    scaled so that its largest tilt is drawn uniformly in ``[0, max_tilt_deg]``; the
    curve is its integral, centred, and shrunk when it would move the column by more
    than :data:`MAX_SHIFT` × `cols` (which lowers the tilt with it).

    Returns
    -------
    (rows,) float ndarray
    """
    v = np.arange(rows) / rows
    profile = np.zeros(rows)
    for k in range(int(rng.integers(1, 3))):
        f = rng.uniform(*FREQUENCIES[k])
        profile += rng.uniform(0.5, 1.0) * np.sin(2 * np.pi * f * v + rng.uniform(0, 2 * np.pi))
    peak = np.abs(profile).max()
    tilt = np.deg2rad(rng.uniform(0.0, max_tilt_deg)) * profile / (peak if peak > 0 else 1.0)
    curve = np.cumsum(np.tan(tilt))
    curve -= (curve.max() + curve.min()) / 2
    reach = np.abs(curve).max()
    limit = MAX_SHIFT * cols
    return curve * (limit / reach) if reach > limit else curve


def column_centre(labels: np.ndarray, background: int | None) -> np.ndarray:
    """The column's centre ``x0(y)`` per row: the mean column of the non-`background`
    labels, smoothed, carried on above and below the column; the image's centre column
    when there is no column (or `background` is None)."""
    rows, cols = labels.shape
    centre = np.full(rows, (cols - 1) / 2.0)
    if background is None:
        return centre
    inside = labels != background
    count = inside.sum(axis=1)
    have = count > 0
    if not have.any():
        return centre
    xs = (inside * np.arange(cols)).sum(axis=1)[have] / count[have]
    centre = np.interp(np.arange(rows), np.flatnonzero(have), xs)
    return ndimage.gaussian_filter1d(centre, max(1.0, rows / 48), mode="nearest")


def bend(
    image: np.ndarray, labels: np.ndarray, curve: np.ndarray, centre: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Bend `image` and `labels` so that the column at ``centre`` follows ``centre + curve``.

    Parameters
    ----------
    image : (rows, cols) float ndarray
    labels : (rows, cols) integer ndarray
    curve : (rows,) ndarray
        Sideways move ``c(y)`` of the column per row, px.
    centre : (rows,) ndarray
        The column's centre ``x0(y)`` in the source (:func:`column_centre`).

    Returns
    -------
    image : float32 (rows, cols)
    labels : (rows, cols), same dtype, only values `labels` holds
    """
    rows, cols = image.shape
    theta = np.arctan(np.gradient(np.asarray(curve, dtype=np.float64)))[:, None]
    yy, xx = np.mgrid[0:rows, 0:cols].astype(np.float64)
    dx = xx - (np.asarray(centre, dtype=np.float64) + curve)[:, None]
    turn = theta * np.exp(-0.5 * (dx / (FALLOFF * cols)) ** 2)
    ys = yy + dx * np.sin(turn) * np.cos(turn)
    xs = np.interp(ys, np.arange(rows), centre) + dx * np.cos(turn)
    return sample_both(image, labels, np.stack([ys, xs]))


def sample_both(
    image: np.ndarray, labels: np.ndarray, where: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """`image` (linear) and `labels` (nearest, so they keep their values) at the source
    points ``where`` ``(2, rows, cols)`` (row, column), reflected at the edges."""
    out = ndimage.map_coordinates(image, where, order=1, mode="reflect")
    lab = ndimage.map_coordinates(labels, where, order=0, mode="reflect")
    return out.astype(np.float32), lab.astype(labels.dtype)
