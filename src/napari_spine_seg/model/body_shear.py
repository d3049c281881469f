"""Body shear augmentation: each vertebral body's end plates tilted on their own.

Phantom bodies are rectangles whose end plates lie square to their sides, but a real
body seen on a PA radiograph is a quadrilateral: its plates tilt against its sides by a
few degrees (rotation, projection, wedging), and so do the bodies of the other
generators the models are tested on (median 2.1–2.75°, up to 11°). A network that has
only seen rectangles draws their plates squarer than they are, and so flattens the
vertebrae's own tilts (docs/performance.md, "Bodies that are not rectangles").

Here each body found in the labels (one connected piece of the body label) gets its own
slope ``k = tan(a)``, ``a`` drawn from N(0, `sd_deg`), at its middle row, and every
pixel near the column moves along the rows by ``k(y) · dx`` (``dx`` its distance across
from the column's centre, ``k(y)`` linear between the bodies' middles), so that the
body's plates turn while its sides stay where they were. The move fades out beyond the
column (flat out to :data:`REACH` × the column's width from its centre, then a half
cosine of the same length), so that ribs and soft tissue are hardly touched. Image and
labels are sampled at the same points (labels nearest-neighbour). Training shears the
column tiles of a zoom-pass model only (:class:`~.pipeline.BatchSource`), where a body
is large enough for its plates' angle to show.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from .bend import sample_both

#: the shear is full out to this × the column's width either side of its centre
REACH = 0.75


def body_slopes(
    labels: np.ndarray, body: int, rng: np.random.Generator, sd_deg: float
) -> np.ndarray:
    """Per row, the slope ``k(y)`` that turns each body's plates by an angle of its own.

    Parameters
    ----------
    labels : (rows, cols) integer array
    body : int
        The label of a vertebral body.
    rng : numpy.random.Generator
    sd_deg : float
        Standard deviation of each body's angle, degrees.

    Returns
    -------
    (rows,) float ndarray
        ``k_i = tan(a_i)`` at the middle row of body ``i``, linear between the middles
        of two bodies, constant beyond the first and the last; zeros without bodies.
        A body's plates lie between its middle and its neighbours', so they take
        about two thirds of its own angle and a third of the neighbour's: the body
        wedges a little too, as real ones do. Rows of bodies overlap in a tilted column,
        their middles do not: the slope changes slowly enough (over a body's height)
        that the move never folds the image over.
    """
    rows = labels.shape[0]
    pieces, n = ndimage.label(labels == body)
    if n == 0:
        return np.zeros(rows)
    middles = np.array(ndimage.center_of_mass(pieces > 0, pieces, range(1, n + 1)))[:, 0]
    slopes = np.tan(np.deg2rad(rng.normal(0.0, sd_deg, n)))
    order = np.argsort(middles)
    return np.interp(np.arange(rows), middles[order], slopes[order])


def shear_bodies(
    image: np.ndarray,
    labels: np.ndarray,
    slopes: np.ndarray,
    centre: np.ndarray,
    width: float,
) -> tuple[np.ndarray, np.ndarray]:
    """Move each row's pixels along the rows by ``slopes[y] · dx``, faded beyond the column.

    Parameters
    ----------
    image : (rows, cols) float ndarray
    labels : (rows, cols) integer ndarray
    slopes : (rows,) ndarray
        :func:`body_slopes`.
    centre : (rows,) ndarray
        The column's centre per row (:func:`~.bend.column_centre`).
    width : float
        The column's width, px.

    Returns
    -------
    image : float32 (rows, cols)
    labels : (rows, cols), same dtype, only values `labels` holds
    """
    rows, cols = image.shape
    yy, xx = np.mgrid[0:rows, 0:cols].astype(np.float64)
    dx = xx - np.asarray(centre, dtype=np.float64)[:, None]
    reach = max(REACH * float(width), 1.0)
    beyond = np.clip((np.abs(dx) - reach) / reach, 0.0, 1.0)
    fade = 0.5 * (1.0 + np.cos(np.pi * beyond))
    # the source row of output pixel (y, x): the plates there turn by atan(k)
    ys = yy - np.asarray(slopes, dtype=np.float64)[:, None] * dx * fade
    return sample_both(image, labels, np.stack([ys, xx]))


def column_width(labels: np.ndarray, background: int) -> float:
    """The column's median width over its rows, px (0 without a column)."""
    counts = (labels != background).sum(axis=1)
    counts = counts[counts > 0]
    return float(np.median(counts)) if counts.size else 0.0
