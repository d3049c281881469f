"""Cobb angles from a segmentation: the spine column's centre line and virtual vertebrae.

From a trimap's spine label (1):

1. the column is the largest connected piece, plus the pieces that continue it up or
   down (a broken column); pieces off to the side are ignored, with a warning when
   they are big enough to matter. Beyond the column's ends only a piece close for its
   size, as big as a fair part of a vertebra and on the line continuing the end is
   taken: a network's stray specks there would otherwise bend the end of the line;
2. on every row from the column's top to its bottom, the centre and width of the
   widest run of spine pixels; rows where the column vanishes are filled by linear
   interpolation and reported (a gap taller than ``max_gap`` of the column's height is
   a warning: the angles may be wrong there);
3. the centre x(y) is smoothed by local quadratic fits (a Savitzky-Golay filter: it
   keeps the peaks of the tilt that a Gaussian flattens, and fits the ends by the same
   polynomial) over a window set by the outline's roughness (``smoothing="auto"``): a
   clean outline, drawn from landmarks, gets 12 % of the column's height; a rough one,
   as a network's, up to three times more. Its slope gives the tilt along the spine;
4. 17 virtual vertebrae are placed along the smoothed line by arc length, each one's
   share of the length growing from the top to the bottom (lumbar vertebrae and discs
   are taller than upper thoracic ones), each perpendicular to the line and as wide as
   the column there: 68 landmarks in the data set's order. A clean outline (a trimap
   drawn from landmarks, or corrected by hand) ends in the top plate of its first
   vertebra and the bottom plate of its last: where those edges are straight and
   nearly square to the line, the first and last virtual vertebrae take their tilt, as
   the reference takes the annotated end vertebrae's (a centre line cannot see how an
   end vertebra sits on the curve). A network's rounded ends are not used;
5. :func:`napari_spine_seg.spine.cobb.cobb_details` turns them into the three angles
   exactly as the challenge's reference computation does for real landmarks.

A network's outline (``outline="predicted"``) is read with two differences: its ends
are never taken for end plates (a network rounds and flattens them), and its smoothing
is at least :data:`PREDICTED_SMOOTHING`; its wobble is a few network pixels long, so it
looks as clean as a drawn outline at the image's pixel scale.

The top and bottom few rows of a column are cut by the tilted end plates of the first
and last vertebrae, so their centres lean towards the higher corner; those rows, recognised
by a width that grows steadily from nothing, are left out of the fit and the line is
continued straight from its last reliable stretch.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

import numpy as np

from ..errors import SpineSegError
from ..trimap import N_VERTEBRAE, SPINE
from .cobb import ORDER_MARGIN, CobbResult, cobb_details, order_warning
from .column import column_pieces, fit_range, roughness, smooth, widest_runs

#: smoothing of a clean centre line, as a fraction of the column's height (the
#: Savitzky-Golay window is :data:`~napari_spine_seg.spine.column.WINDOW_PER_SMOOTHING` times it)
DEFAULT_SMOOTHING = 0.02
#: roughness (px) of the raw centre of a clean outline: drawn from landmarks, it is
#: about 0.2-0.45 px; a rougher outline gets proportionally more smoothing
_CLEAN_NOISE = 0.3
#: the most smoothing "auto" applies, as a fraction of the column's height
_MAX_SMOOTHING = 0.06
#: the least smoothing "auto" applies to a network's outline (``outline="predicted"``):
#: its wobble is a few network pixels long, smooth at the image's pixel scale, so the
#: roughness does not show it (measured in ``docs/cobb.md``)
PREDICTED_SMOOTHING = 0.03
#: a network's outline measures a curve to within about 5° (2-3° on average), a drawn
#: one to about 1°: two curves closer than this on a prediction get the order warning
#: (:func:`~napari_spine_seg.spine.cobb.order_warning`; 3° on other outlines)
PREDICTED_ORDER_MARGIN = 5.0
#: what a trimap's outline may be: anything (told apart by its roughness and its end
#: plates), or a network's prediction
OUTLINES = ("auto", "predicted")
#: end plates: measured across this fraction of the column's width, over at least
#: this many pixel columns, straight to within this rms (px) and square to the centre
#: line within this many degrees
_USE_PLATES = True
_PLATE_SPAN = 0.8
_MIN_PLATE_COLUMNS = 8
_PLATE_RESIDUAL = 0.5
_PLATE_AGREEMENT = 5.0
#: ... and only on an outline smoother than this (px): drawn from landmarks, outlines
#: measure up to about 0.58 px on severe curves (disc notches); a rougher one is a
#: network's or a hand's, whose ends are not end plates
_PLATES_ROUGHNESS = 0.6
#: a gap in the column taller than this fraction of its height is reported as a warning
DEFAULT_MAX_GAP = 0.02
#: a piece off the column this big (fraction of the column) is worth a warning
_SIZEABLE_PIECE = 0.005
#: each virtual vertebra's height, as a fraction of its share of the column's length
_VERTEBRA_FILL = 0.8
#: bottom (L5) to top (T1) ratio of the vertebrae's shares of the column in "graded" placement
_GRADING = 1.6


@dataclass(frozen=True)
class CentreLine:
    """The centre line of a spine column, one sample per image row.

    Attributes
    ----------
    rows : (N,) int ndarray
        Image rows from the column's top to its bottom.
    x_raw : (N,) float ndarray
        Centre of the widest run of spine pixels on each row (interpolated where the
        column vanishes).
    x : (N,) float ndarray
        Smoothed centre.
    width : (N,) float ndarray
        Horizontal width of the widest run (interpolated where the column vanishes).
    slope : (N,) float ndarray
        ``dx/dy`` of the smoothed line.
    missing : (N,) bool ndarray
        Rows where the column vanished and the values are interpolated.
    plates : (float or None, float or None)
        Slopes ``dy/dx`` of the column's top and bottom edges when they are straight
        (the end plates of its first and last vertebrae, as in a trimap drawn from
        landmarks), else None.
    """

    rows: np.ndarray
    x_raw: np.ndarray
    x: np.ndarray
    width: np.ndarray
    slope: np.ndarray
    missing: np.ndarray
    plates: tuple[float | None, float | None] = (None, None)

    @property
    def tilt(self) -> np.ndarray:
        """Angle of the line from the vertical in degrees (positive: leaning right going down)."""
        return np.degrees(np.arctan(self.slope))

    @property
    def xy(self) -> np.ndarray:
        """The smoothed line as ``(N, 2)`` ``(x, y)`` points."""
        return np.column_stack([self.x, self.rows.astype(np.float64)])

    def arc_length(self) -> np.ndarray:
        """Cumulative length along the smoothed line from its top, in pixels."""
        steps = np.hypot(np.diff(self.x), np.diff(self.rows.astype(np.float64)))
        return np.concatenate([[0.0], np.cumsum(steps)])


@dataclass(frozen=True)
class CobbFromMask:
    """Cobb angles measured on a segmentation, with what they were measured on.

    Attributes
    ----------
    angles : (3,) ndarray
        Degrees, in ``angles.csv`` order (PT, MT, TL/L).
    centreline : (N, 2) ndarray
        The smoothed centre line, ``(x, y)``, one point per row top to bottom.
    landmarks : (68, 2) ndarray
        The virtual vertebrae's corners, ``(x, y)``, in the data set's order.
    warnings : list of str
        Everything that makes the angles doubtful (a broken column, ignored pieces,
        a column cut by the image's edge, two curves close enough to change the
        angles' order: :func:`~napari_spine_seg.spine.cobb.order_warning`); empty when
        nothing is.
    details : CobbResult
        Vertebra pairs of each angle and the S-shape flag, for drawing.
    line : CentreLine
        The full centre line (raw and smoothed centre, width, tilt, missing rows).
    order_doubtful : bool
        Whether the warnings hold the order warning: two curves close enough that the
        reference could name the other one PT.
    """

    angles: np.ndarray
    centreline: np.ndarray
    landmarks: np.ndarray
    warnings: list[str] = field(default_factory=list)
    details: CobbResult | None = None
    line: CentreLine | None = None
    order_doubtful: bool = False


def _scale(rough: float, n_rows: int, smoothing: float | str, floor: float = 0.0) -> float:
    """Smoothing scale in rows: fixed, or from the outline's `rough`-ness (``"auto"``).

    ``"auto"`` never goes below `floor` (a fraction of the column's height).
    """
    if smoothing != "auto":
        if isinstance(smoothing, str) or not smoothing >= 0:
            raise ValueError(f"smoothing must be 'auto' or a number >= 0, not {smoothing!r}")
        return float(smoothing) * n_rows
    factor = np.clip(rough / _CLEAN_NOISE, 1.0, _MAX_SMOOTHING / DEFAULT_SMOOTHING)
    return float(max(DEFAULT_SMOOTHING * factor, floor) * n_rows)


def centre_line(
    trimap: np.ndarray,
    *,
    smoothing: float | str = "auto",
    outline: str = "auto",
    source: str | os.PathLike | None = None,
) -> tuple[CentreLine, list[str]]:
    """The spine column's centre line on a trimap.

    Parameters
    ----------
    trimap : (H, W) array_like
        A trimap (1 spine, 2 background, 3 border; 0 counts as background).
    smoothing : float or "auto"
        Scale of the smoothing as a fraction of the column's height (the line is
        fitted by local quadratics over windows 6 times as tall), or ``"auto"``:
        :data:`DEFAULT_SMOOTHING` for a clean outline, up to three times more as the
        outline's :func:`roughness` grows.
    outline : {"auto", "predicted"}
        What drew the trimap. ``"auto"``: anything; a smooth outline's straight ends
        are taken for end plates. ``"predicted"``: a network; its ends are never taken
        for end plates (a network flattens them) and ``"auto"`` smoothing is at least
        :data:`PREDICTED_SMOOTHING`.
    source : path-like, optional
        File the trimap came from, named in errors.

    Returns
    -------
    line : CentreLine
    warnings : list of str
        Broken column (gaps taller than :data:`DEFAULT_MAX_GAP` of its height) and
        ignored pieces.

    Raises
    ------
    SpineSegError
        When the trimap has no spine, or the spine is too short to measure.
    """
    if outline not in OUTLINES:
        raise ValueError(f"outline must be one of {', '.join(OUTLINES)}, not {outline!r}")
    predicted = outline == "predicted"
    arr = np.asarray(trimap)
    if arr.ndim != 2:
        raise SpineSegError(source, f"a trimap must be 2-D, got shape {arr.shape}")
    mask = arr == SPINE
    if not mask.any():
        raise SpineSegError(source, "has no spine (label 1): no Cobb angle can be measured")
    column, extras = column_pieces(mask)
    warnings = []
    # specks do not matter; a piece that could have been part of the column does
    sizeable = [p for p in extras if p.size >= _SIZEABLE_PIECE * column.sum()]
    if sizeable:
        warnings.append(f"ignored {len(sizeable)} spine piece(s) away from the column")
    present = np.flatnonzero(column.any(axis=1))
    rows = np.arange(present[0], present[-1] + 1)
    if rows.size < 2 * N_VERTEBRAE:
        raise SpineSegError(
            source, f"the spine is only {rows.size} rows tall: too short to measure"
        )
    raw, width = widest_runs(column, rows)
    missing = np.isnan(raw)
    if missing.any():
        raw = np.interp(rows, rows[~missing], raw[~missing])
        width = np.interp(rows, rows[~missing], width[~missing])
        warnings.extend(_gap_warnings(rows, missing))
    lo, hi = fit_range(width)
    x = np.empty(rows.size)
    rough = roughness(raw[lo : hi + 1], DEFAULT_SMOOTHING * rows.size)
    floor = PREDICTED_SMOOTHING if predicted else 0.0
    x[lo : hi + 1] = smooth(raw[lo : hi + 1], _scale(rough, rows.size, smoothing, floor))
    slope = np.gradient(x[lo : hi + 1]) if hi > lo else np.zeros(1)
    full_slope = np.empty(rows.size)
    full_slope[lo : hi + 1] = slope
    full_slope[:lo], full_slope[hi + 1 :] = slope[0], slope[-1]
    x[:lo] = x[lo] - slope[0] * (lo - np.arange(lo))
    x[hi + 1 :] = x[hi] + slope[-1] * (np.arange(hi + 1, rows.size) - hi)
    plates = (None, None)
    if not predicted and rough <= _PLATES_ROUGHNESS:  # a drawn outline: its ends are end plates
        # ... unless the image's edge cuts the column there
        plates = (
            None
            if rows[0] == 0
            else _end_plate(column, raw[lo], width[lo], full_slope[lo], top=True),
            None
            if rows[-1] == column.shape[0] - 1
            else _end_plate(column, raw[hi], width[hi], full_slope[hi], top=False),
        )
    return CentreLine(rows, raw, x, width, full_slope, missing, plates), warnings


def _end_plate(
    column: np.ndarray, centre: float, width: float, slope: float, *, top: bool
) -> float | None:
    """Slope ``dy/dx`` of the column's top (bottom) edge where it is a straight plate.

    The edge is the first (last) spine pixel of each image column across the middle
    of the column; it counts as an end plate when a straight line fits it to within
    :data:`_PLATE_RESIDUAL` px and it is square to the centre line within
    :data:`_PLATE_AGREEMENT` degrees. A network's rounded or ragged end is not.
    """
    if not _USE_PLATES:
        return None
    half = _PLATE_SPAN * width / 2
    xs = np.arange(int(np.ceil(centre - half)), int(np.floor(centre + half)) + 1)
    xs = xs[(xs >= 0) & (xs < column.shape[1])]
    if xs.size < _MIN_PLATE_COLUMNS:
        return None
    sub = column[:, xs]
    if not sub.any(axis=0).all():
        return None
    ys = np.argmax(sub, axis=0) if top else column.shape[0] - 1 - np.argmax(sub[::-1], axis=0)
    b, a = np.polyfit(xs.astype(np.float64), ys.astype(np.float64), 1)
    residual = np.sqrt(np.mean((ys - (a + b * xs)) ** 2))
    # square to the line: the plate's slope dy/dx is minus the line's dx/dy
    disagreement = abs(np.degrees(np.arctan(b) - np.arctan(-slope)))
    if residual > _PLATE_RESIDUAL or disagreement > _PLATE_AGREEMENT:
        return None
    return float(b)


def _gap_warnings(
    rows: np.ndarray, missing: np.ndarray, max_gap: float = DEFAULT_MAX_GAP
) -> list[str]:
    """One warning per run of missing rows taller than `max_gap` of the column."""
    edges = np.diff(np.concatenate([[0], missing.astype(np.int8), [0]]))
    starts, stops = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)
    out = []
    for a, b in zip(starts, stops, strict=True):
        if b - a > max_gap * rows.size:
            out.append(
                f"broken column: no spine on rows {rows[a]}-{rows[b - 1]} "
                f"({100 * (b - a) / rows.size:.0f}% of its height); angles may be wrong"
            )
    return out


def virtual_landmarks(line: CentreLine, *, placement: str = "graded") -> np.ndarray:
    """68 landmarks of 17 virtual vertebrae placed along a centre line.

    Parameters
    ----------
    line : CentreLine
    placement : {"arc", "graded", "row"}
        Space the vertebrae evenly along the line's length ("arc"), along its length
        with each vertebra's share growing linearly from top to bottom by
        :data:`_GRADING` ("graded": lumbar vertebrae and discs are taller than upper
        thoracic ones), or evenly in image rows ("row").

    Returns
    -------
    (68, 2) ndarray
        ``(x, y)`` corners (top-left, top-right, bottom-left, bottom-right), top to
        bottom. Each vertebra is perpendicular to the line (the first and last lie
        along the column's end plates instead when ``line.plates`` has them), as wide
        as the column there (measured across the line) and fills 80 % of its share of
        the length.
    """
    y = line.rows.astype(np.float64)
    if placement in ("arc", "graded"):
        s = line.arc_length()
    elif placement == "row":
        s = y - y[0]
    else:
        raise ValueError(f"placement must be 'arc', 'graded' or 'row', not {placement!r}")
    growth = _GRADING if placement == "graded" else 1.0
    shares = np.linspace(1.0, growth, N_VERTEBRAE)
    shares *= s[-1] / shares.sum()
    targets = np.cumsum(shares) - shares / 2
    cy = np.interp(targets, s, y)
    cx = np.interp(cy, y, line.x)
    m = np.interp(cy, y, line.slope)
    w = np.interp(cy, y, line.width)
    # the first and last vertebrae lie along the column's end plates where it has them
    for k, plate in ((0, line.plates[0]), (-1, line.plates[1])):
        if plate is not None:
            m[k] = -plate
    norm = np.hypot(m, 1.0)
    down = np.column_stack([m, np.ones_like(m)]) / norm[:, None]
    across = np.column_stack([np.ones_like(m), -m]) / norm[:, None]
    half_w = (w / norm / 2.0)[:, None]
    half_h = (_VERTEBRA_FILL * shares / 2.0)[:, None]
    centre = np.column_stack([cx, cy])
    corners = [
        centre - across * half_w - down * half_h,  # top-left
        centre + across * half_w - down * half_h,  # top-right
        centre - across * half_w + down * half_h,  # bottom-left
        centre + across * half_w + down * half_h,  # bottom-right
    ]
    return np.stack(corners, axis=1).reshape(4 * N_VERTEBRAE, 2)


def cobb_from_trimap(
    trimap: np.ndarray,
    *,
    smoothing: float | str = "auto",
    placement: str = "graded",
    outline: str = "auto",
    source: str | os.PathLike | None = None,
) -> CobbFromMask:
    """Cobb angles of the spine segmented in a trimap.

    Parameters
    ----------
    trimap : (H, W) array_like
        A trimap (1 spine, 2 background, 3 border; 0 counts as background).
    smoothing : float or "auto"
        As for :func:`centre_line`; ``"auto"`` measured best on ground-truth and
        predicted trimaps (``docs/cobb.md``).
    placement : {"graded", "arc", "row"}
        How the virtual vertebrae are spaced (see :func:`virtual_landmarks`); "graded"
        measured best on synthetic spines.
    outline : {"auto", "predicted"}
        As for :func:`centre_line`: ``"predicted"`` when a network drew the trimap
        (``spine-seg predict`` marks its files, see
        :func:`napari_spine_seg.data.masks.is_predicted_trimap`).
    source : path-like, optional
        File the trimap came from, named in errors.

    Returns
    -------
    CobbFromMask
        Angles in ``angles.csv`` order, the centre line, the virtual landmarks and the
        warnings (never a silent doubtful number: a broken column is a warning).

    Raises
    ------
    SpineSegError
        When the trimap is not 2-D, has no spine, or a spine too short to measure.

    Examples
    --------
    >>> import numpy as np
    >>> t = np.full((400, 150), 2, np.uint8); t[40:360, 60:90] = 1
    >>> r = cobb_from_trimap(t)
    >>> np.round(r.angles, 3).tolist(), r.warnings
    ([0.0, 0.0, 0.0], [])
    """
    arr = np.asarray(trimap)
    line, warnings = centre_line(arr, smoothing=smoothing, outline=outline, source=source)
    if line.rows[0] == 0 or line.rows[-1] == arr.shape[0] - 1:
        warnings.append("the spine runs off the image's top or bottom edge")
    landmarks = virtual_landmarks(line, placement=placement)
    details = cobb_details(landmarks, arr.shape[0], source=source)
    order = order_warning(
        details.angles, PREDICTED_ORDER_MARGIN if outline == "predicted" else ORDER_MARGIN
    )
    if order:
        warnings.append(order)
    return CobbFromMask(
        details.angles, line.xy, landmarks, warnings, details, line, order_doubtful=bool(order)
    )
