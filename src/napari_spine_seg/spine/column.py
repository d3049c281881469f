"""The spine column's geometry on a mask: its pieces, its widest runs, its smoothing.

Shared by :mod:`napari_spine_seg.spine.centreline` (the centre line and Cobb angles)
and :mod:`napari_spine_seg.spine.gaps` (where a column is broken or thin).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from scipy import ndimage

#: window of the quadratic fits per unit of smoothing (a quadratic fit over 6 sigma
#: smooths about as much as a Gaussian of sigma, and keeps curvature)
WINDOW_PER_SMOOTHING = 6.0

#: at the column's ends, rows whose width grows faster than this (px per row) are not fitted
END_GROWTH = 0.35
#: rows over which that growth is measured
GROWTH_WINDOW = 4
#: at most this fraction of the column's height is trimmed at each end
MAX_END_TRIM = 0.12
#: the direction of a column's end is fitted over this fraction of its rows (at least
#: :data:`MIN_END_STRETCH` rows), to judge whether a piece beyond the end continues it
END_STRETCH = 0.1
MIN_END_STRETCH = 10
#: a piece beyond an end must be at least this many column widths squared (a vertebra
#: is about 0.6) to extend the column: specks there are a network's noise
MIN_END_PIECE = 0.2


class Piece(NamedTuple):
    """A connected piece of spine label that is not part of the column."""

    #: centroid row and column
    row: int
    col: int
    #: first row and number of rows it spans
    top: int
    height: int
    #: pixels
    size: int


def column_pieces(mask: np.ndarray) -> tuple[np.ndarray, list[Piece]]:
    """The spine column: the largest piece of `mask` and the pieces continuing it.

    A piece continues the column when it lies mostly above or below the rows already
    kept and its centre is within reach of the column's nearest centre (one typical
    width, plus a slope allowance of 0.3 px per row of distance); pieces are added
    until none more qualifies, so a column broken several times is kept whole.

    Parameters
    ----------
    mask : (H, W) bool ndarray

    Returns
    -------
    column : (H, W) bool ndarray
        The kept pieces, their holes filled.
    extras : list of Piece
        The pieces left out (off to the side of the column), largest first.
    """
    labels, n = ndimage.label(mask, structure=np.ones((3, 3), dtype=bool))
    if n == 0:
        return np.zeros(mask.shape, dtype=bool), []
    sizes = np.bincount(labels.ravel())[1:]
    order = [int(k) for k in np.argsort(sizes, kind="stable")[::-1] + 1]
    boxes = ndimage.find_objects(labels)
    kept = labels == order[0]
    remaining = order[1:]
    added = True
    while added and remaining:
        added = False
        for lab in list(remaining):
            piece = labels[boxes[lab - 1]] == lab
            if _continues(kept, boxes[lab - 1], piece):
                kept[boxes[lab - 1]] |= piece
                remaining.remove(lab)
                added = True
    extras = [_piece(labels, boxes[lab - 1], lab, int(sizes[lab - 1])) for lab in remaining]
    return ndimage.binary_fill_holes(kept), extras


def _piece(labels: np.ndarray, box: tuple[slice, slice], lab: int, size: int) -> Piece:
    rows, cols = np.nonzero(labels[box] == lab)
    return Piece(
        int(np.floor(rows.mean() + box[0].start + 0.5)),
        int(np.floor(cols.mean() + box[1].start + 0.5)),
        box[0].start,
        box[0].stop - box[0].start,
        size,
    )


def _continues(kept: np.ndarray, box: tuple[slice, slice], piece: np.ndarray) -> bool:
    rows_kept = np.flatnonzero(kept.any(axis=1))
    piece_rows = np.arange(box[0].start, box[0].stop)
    overlap = np.isin(piece_rows, rows_kept).mean()
    if overlap > 0.5:
        return False
    sub_rows, sub_cols = np.nonzero(piece)
    piece_x = sub_cols.mean() + box[1].start
    piece_y = sub_rows.mean() + box[0].start
    centres, widths = widest_runs(kept, rows_kept)
    width = float(np.median(widths))
    top, bottom = rows_kept[0], rows_kept[-1]
    if top < piece_y < bottom:  # in a gap of the column: near the centre on either side
        nearest = int(np.argmin(np.abs(rows_kept - piece_y)))
        distance = abs(rows_kept[nearest] - piece_y)
        return bool(abs(centres[nearest] - piece_x) <= width + 0.3 * distance)
    # beyond an end: a network's stray blob is as likely as a lost vertebra, so the piece
    # must be close for its size and lie on the line continuing the column's end
    below = piece_y > bottom
    gap = piece_rows[0] - bottom if below else top - piece_rows[-1]
    if gap > piece_rows.size or piece.sum() < MIN_END_PIECE * width**2:
        return False
    # compare the piece's facing end with the column's end continued straight across the gap
    span = max(MIN_END_STRETCH, int(END_STRETCH * rows_kept.size))
    end = slice(-span, None) if below else slice(0, span)
    ys, xs = rows_kept[end].astype(np.float64), centres[end]
    slope, intercept = np.polyfit(ys, xs, 1) if ys.size > 1 else (0.0, xs[0])
    facing = np.arange(min(MIN_END_STRETCH, piece.shape[0]))
    facing = facing if below else piece.shape[0] - 1 - facing
    piece_centres, _ = widest_runs(piece, facing)
    y = float(np.mean(facing)) + box[0].start
    x = float(np.nanmean(piece_centres)) + box[1].start
    return bool(abs(intercept + slope * y - x) <= 0.5 * width + 0.3 * gap)


def widest_runs(mask: np.ndarray, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Centre and length of the widest run of True on each of `rows` of `mask`.

    Parameters
    ----------
    mask : (H, W) bool ndarray
    rows : (N,) int ndarray
        Rows to measure.

    Returns
    -------
    centres : (N,) float ndarray
        Column of each run's centre; NaN on rows with no True pixel.
    widths : (N,) float ndarray
        Each run's length in pixels; 0 on rows with no True pixel.
    """
    sub = np.pad(mask[rows], ((0, 0), (1, 1)))
    step = np.diff(sub.astype(np.int8), axis=1)
    start_r, start_c = np.nonzero(step == 1)
    _, stop_c = np.nonzero(step == -1)
    lengths = stop_c - start_c
    centres = np.full(len(rows), np.nan)
    widths = np.zeros(len(rows))
    if lengths.size:
        order = np.lexsort((-lengths, start_r))
        first = order[np.unique(start_r[order], return_index=True)[1]]
        centres[start_r[first]] = (start_c[first] + stop_c[first] - 1) / 2.0
        widths[start_r[first]] = lengths[first]
    return centres, widths


def smooth(values: np.ndarray, scale: float) -> np.ndarray:
    """Savitzky-Golay smoothing: quadratic fits over ``6 scale`` samples.

    A narrow Gaussian (``scale / 3``) goes first: the staircase of a slanted outline's
    pixels has a period of a few rows, which a Savitzky-Golay filter lets through a
    little and its slope magnifies (a straight, slanted column would read 1° of
    curve). At the ends the polynomial fitted to the last window is used
    (``mode="interp"``), so that the slope there follows the data instead of flattening.

    Parameters
    ----------
    values : (N,) array_like
        Samples to smooth, e.g. the column's centre on each row.
    scale : float
        Smoothing scale in samples; the quadratic fits span
        :data:`WINDOW_PER_SMOOTHING` times it (at least 5 samples, at most all).

    Returns
    -------
    (N,) float ndarray
        The smoothed values; `values` unchanged when fewer than 5 samples.
    """
    from scipy.signal import savgol_filter

    values = np.asarray(values, dtype=np.float64)
    window = max(int(WINDOW_PER_SMOOTHING * scale) | 1, 5)
    if window > values.size:
        window = values.size if values.size % 2 else values.size - 1
    if window < 5:
        return values
    values = ndimage.gaussian_filter1d(values, scale / 3.0, mode="nearest")
    return savgol_filter(values, window, 2, mode="interp")


def roughness(raw: np.ndarray, scale: float) -> float:
    """Robust spread (px) of a raw centre line about its smoothed course.

    Parameters
    ----------
    raw : (N,) ndarray
        Centre of the column on each row.
    scale : float
        Smoothing scale in rows (see :func:`napari_spine_seg.spine.centreline.centre_line`).

    Returns
    -------
    float
        1.4826 times the median absolute deviation of the residual: about 0.2-0.45 px
        for an outline drawn from landmarks, more for a network's.
    """
    residual = np.asarray(raw, dtype=np.float64) - smooth(raw, scale)
    return float(1.4826 * np.median(np.abs(residual - np.median(residual))))


def fit_range(width: np.ndarray) -> tuple[int, int]:
    """First and last index of the rows used for the fit.

    At each end the column is cut by a tilted end plate: over those rows the width
    grows steadily from nothing to the column's full width, much faster than a
    column's width changes along its length. Those rows' centres lean towards the
    higher corner, so they are left out (at most :data:`MAX_END_TRIM` of the rows
    at each end).

    Parameters
    ----------
    width : (N,) ndarray
        The column's width on each of its rows, top to bottom.

    Returns
    -------
    lo, hi : int
        First and last row index to fit; ``0, N - 1`` when trimming would leave
        fewer than 4 rows.
    """
    n = width.size
    limit = max(int(MAX_END_TRIM * n), 1)
    lo = end_trim(width[: limit + GROWTH_WINDOW])
    hi = n - 1 - end_trim(width[::-1][: limit + GROWTH_WINDOW])
    if hi - lo < 3:
        return 0, n - 1
    return lo, hi


def end_trim(width_from_end: np.ndarray) -> int:
    """Number of rows at the start of `width_from_end` cut by the end plate.

    Parameters
    ----------
    width_from_end : (N,) ndarray
        The column's width on its rows, starting at one end (reverse it for the
        bottom end).

    Returns
    -------
    int
        Rows whose width still grows faster than :data:`END_GROWTH` px per row
        (over :data:`GROWTH_WINDOW` rows); all measured rows when it never settles.
    """
    g = GROWTH_WINDOW
    growth = width_from_end[g:] - width_from_end[:-g]
    settled = growth <= END_GROWTH * g
    return int(np.argmax(settled)) if settled.any() else growth.size
