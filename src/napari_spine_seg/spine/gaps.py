"""Find the places in a segmented spine that a reviewer should look at.

:func:`find_gaps` walks a trimap's spine column (label 1) from its top to its bottom
and reports:

``"break"``
    rows between the column's top and bottom where the spine label vanishes;
``"extra-component"``
    a piece of spine label away from the column (off to its side);
``"hole"``
    background or border enclosed by the column;
``"narrowing"``
    rows where the column is less than half as wide as it is around them (the
    column's two ends, cut by the end plates, are not counted);
``"low-confidence"``
    stretches of the centre line where the spine probability is below 0.5 (only
    when a probability map is given);
``"vertebrae"``
    a prediction whose count of vertebrae is not 17 (bodies merged or split, one cut
    off at the image's edge): not found here but from the prediction's counts
    (:func:`~napari_spine_seg.spine.vertebra_count.count_gap`).

Each is a :class:`Gap` with the row and column to show (the stretch's middle row and
the centre line there, or a piece's centroid) and the number of rows it spans.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np
from scipy import ndimage

from ..atomic import atomic_output
from ..errors import SpineSegError
from ..trimap import SPINE
from .column import column_pieces, end_trim, smooth, widest_runs
from .image_json import read_image_entries

KINDS = ("break", "extra-component", "hole", "narrowing", "low-confidence", "vertebrae")

#: a column narrower than this fraction of its local median width is narrowed
_NARROW_FRACTION = 0.5
#: the local median width is taken over this fraction of the column's height
_MEDIAN_WINDOW = 0.1
#: probability below which the centre line is of low confidence
_LOW_PROBABILITY = 0.5
#: pieces and holes smaller than this fraction of the column (and 10 px) are specks
_MIN_AREA_FRACTION = 0.0005
_MIN_AREA = 10


@dataclass(frozen=True)
class Gap:
    """One place in a segmentation to look at.

    Attributes
    ----------
    row : int
        Image row to show: the middle row of the stretch (it spans rows
        ``row - height // 2`` to ``row - height // 2 + height - 1``), or a piece's
        or hole's centroid row.
    col : int
        Image column to show: the centre line on `row`, or the centroid's column.
    height : int
        Number of rows the problem spans.
    kind : str
        One of :data:`KINDS`.
    """

    row: int
    col: int
    height: int
    kind: str

    def to_dict(self) -> dict[str, int | str]:
        """``{"row", "col", "height", "kind"}`` with plain ``int``/``str`` values (for JSON)."""
        return {k: (v if isinstance(v, str) else int(v)) for k, v in asdict(self).items()}


def find_gaps(
    trimap: np.ndarray,
    probability: np.ndarray | None = None,
    *,
    min_gap_rows: int | None = None,
) -> list[Gap]:
    """Breaks, stray pieces, holes, narrowings and uncertain stretches of a spine column.

    Parameters
    ----------
    trimap : (H, W) array_like
        A trimap (1 spine, 2 background, 3 border; 0 counts as background).
    probability : (H, W) array_like, optional
        The model's spine probability in [0, 1] (an integer image is read as 0–255).
        Enables ``"low-confidence"`` gaps.
    min_gap_rows : int, optional
        Shortest break, narrowing or low-confidence stretch reported, in rows.
        Default: 0.5 % of the column's height, at least 1.

    Returns
    -------
    list of Gap
        Sorted by row. A trimap with no spine at all gets one ``"break"`` covering the
        whole image, so it is never reported as flawless.

    Raises
    ------
    SpineSegError
        When `trimap` is not 2-D or `probability` does not match its shape.
    """
    arr = np.asarray(trimap)
    if arr.ndim != 2:
        raise SpineSegError(None, f"a trimap must be 2-D, got shape {arr.shape}")
    prob = _probability(probability, arr.shape)
    mask = arr == SPINE
    if not mask.any():
        return [Gap(arr.shape[0] // 2, arr.shape[1] // 2, arr.shape[0], "break")]
    column, extras = column_pieces(mask)
    present = np.flatnonzero(column.any(axis=1))
    rows = np.arange(present[0], present[-1] + 1)
    if min_gap_rows is None:
        min_gap_rows = max(1, int(round(0.005 * rows.size)))
    centres, widths = widest_runs(column, rows)
    missing = np.isnan(centres)
    centres = np.interp(rows, rows[~missing], centres[~missing])
    widths = np.interp(rows, rows[~missing], widths[~missing])
    line = smooth(centres, 0.01 * rows.size)
    min_area = max(_MIN_AREA, _MIN_AREA_FRACTION * column.sum())

    gaps = _stretches(rows, line, missing, min_gap_rows, "break")
    gaps += [Gap(p.row, p.col, p.height, "extra-component") for p in extras if p.size >= min_area]
    gaps += _holes(column, mask, min_area)
    gaps += _stretches(rows, line, _narrow(widths, missing), max(min_gap_rows, 2), "narrowing")
    if prob is not None:
        low = _low_confidence(prob, rows, line)
        breaks = [g for g in gaps if g.kind == "break"]
        gaps += [
            g
            for g in _stretches(rows, line, low, min_gap_rows, "low-confidence")
            if not any(_inside(g, b) for b in breaks)
        ]
    return sorted(gaps, key=lambda g: (g.row, g.col, KINDS.index(g.kind)))


def _probability(probability: np.ndarray | None, shape: tuple[int, ...]) -> np.ndarray | None:
    if probability is None:
        return None
    prob = np.asarray(probability)
    if prob.shape != shape:
        raise SpineSegError(
            None, f"the probability map is {prob.shape}, the trimap {shape}: they must match"
        )
    if np.issubdtype(prob.dtype, np.integer):
        return prob.astype(np.float64) / 255.0
    return prob.astype(np.float64)


def _runs(flags: np.ndarray) -> list[tuple[int, int]]:
    """``(start, stop)`` of each run of True in a 1-D boolean array."""
    edges = np.diff(np.concatenate([[0], flags.astype(np.int8), [0]]))
    return list(zip(np.flatnonzero(edges == 1), np.flatnonzero(edges == -1), strict=True))


def _stretches(
    rows: np.ndarray, line: np.ndarray, flags: np.ndarray, min_rows: int, kind: str
) -> list[Gap]:
    out = []
    for a, b in _runs(flags):
        if b - a >= min_rows:
            mid = a + (b - a) // 2
            out.append(Gap(int(rows[mid]), int(math.floor(line[mid] + 0.5)), int(b - a), kind))
    return out


def _inside(gap: Gap, other: Gap) -> bool:
    top, other_top = gap.row - gap.height // 2, other.row - other.height // 2
    return other_top <= top and top + gap.height <= other_top + other.height


def _holes(column: np.ndarray, mask: np.ndarray, min_area: float) -> list[Gap]:
    """Background enclosed by the column (its holes were filled in `column`)."""
    labels, n = ndimage.label(column & ~mask)
    if n == 0:
        return []
    sizes = np.bincount(labels.ravel())[1:]
    out = []
    for lab, box in enumerate(ndimage.find_objects(labels), start=1):
        if sizes[lab - 1] < min_area:
            continue
        rr, cc = np.nonzero(labels[box] == lab)
        out.append(
            Gap(
                int(np.floor(rr.mean() + box[0].start + 0.5)),
                int(np.floor(cc.mean() + box[1].start + 0.5)),
                int(box[0].stop - box[0].start),
                "hole",
            )
        )
    return out


def _narrow(widths: np.ndarray, missing: np.ndarray) -> np.ndarray:
    """Rows (not missing, not in the end-plate zones) much narrower than around them."""
    n = widths.size
    window = max(3, int(_MEDIAN_WINDOW * n) | 1)
    local = ndimage.median_filter(widths, size=window, mode="nearest")
    narrow = (widths < _NARROW_FRACTION * local) & ~missing
    limit = max(int(0.12 * n), 1)
    head = end_trim(widths[: limit + 4])
    tail = end_trim(widths[::-1][: limit + 4])
    narrow[:head] = False
    narrow[n - tail :] = False
    return narrow


def _low_confidence(prob: np.ndarray, rows: np.ndarray, line: np.ndarray) -> np.ndarray:
    """Rows where the probability on the centre line (mean of 3 px across) is low."""
    cols = np.clip(np.floor(line + 0.5).astype(int), 0, prob.shape[1] - 1)
    samples = [prob[rows, np.clip(cols + d, 0, prob.shape[1] - 1)] for d in (-1, 0, 1)]
    return np.mean(samples, axis=0) < _LOW_PROBABILITY


@dataclass(frozen=True)
class ColumnShape:
    """The measures of a trimap's spine that tell a spine from something else.

    Attributes
    ----------
    area : float
        Spine pixels (label 1) as a fraction of the image.
    height : float
        Rows from the column's top to its bottom, as a fraction of the image's rows.
    width : float
        The column's median width over its own height.
    pieces : int
        Pieces of spine label larger than a speck (the column's and the strays).
    """

    area: float
    height: float
    width: float
    pieces: int


#: measure of :class:`ColumnShape` -> (low, high, what it says, what a spine's is).
#: 120 phantoms (40 seeds of each curve, their own sizes) measure area 0.035–0.080,
#: height 0.56–0.66, width 0.050–0.077 and 1 piece; the bounds are about 2.5 times
#: wider, so that real X-rays, framed tighter or looser, pass.
PLAUSIBLE = {
    "area": (0.012, 0.25, "spine area {:.1%} of the image", "1.2%–25%"),
    "height": (0.3, 1.0, "column {:.0%} of the image's height", "at least 30%"),
    "width": (0.02, 0.25, "column {:.2f} times as wide as tall", "0.02–0.25"),
    "pieces": (1, 6, "{} pieces of spine label", "at most 6"),
}


def column_shape(trimap: np.ndarray) -> ColumnShape | None:
    """The :class:`ColumnShape` of a trimap's spine, or None when it has no spine.

    Parameters
    ----------
    trimap : (H, W) array_like
        1 spine, 2 background, 3 border; 0 counts as background.
    """
    arr = np.asarray(trimap)
    mask = arr == SPINE
    if not mask.any():
        return None
    column, extras = column_pieces(mask)
    present = np.flatnonzero(column.any(axis=1))
    rows = np.arange(present[0], present[-1] + 1)
    _, widths = widest_runs(column, rows)
    min_area = max(_MIN_AREA, _MIN_AREA_FRACTION * column.sum())
    labels, n = ndimage.label(column)
    return ColumnShape(
        area=float(mask.mean()),
        height=float(rows.size / arr.shape[0]),
        width=float(np.median(widths[widths > 0]) / rows.size),
        pieces=int(n + sum(p.size >= min_area for p in extras)),
    )


def implausible(shape: ColumnShape | None) -> list[str]:
    """Why a trimap's spine, measured as `shape`, does not look like a spine at all.

    Parameters
    ----------
    shape : ColumnShape or None
        From :func:`column_shape`; None (no spine) is ``["no spine"]``.

    Returns
    -------
    list of str
        One phrase per measure outside :data:`PLAUSIBLE`, e.g.
        ``"column 20% of the image's height (a spine's: at least 30%)"``; empty when it
        could be a spine.
    """
    if shape is None:
        return ["no spine"]
    out = []
    for name, (low, high, says, spine) in PLAUSIBLE.items():
        value = getattr(shape, name)
        if not low <= value <= high:
            out.append(f"{says.format(value)} (a spine's: {spine})")
    return out


def with_corrections(
    probability: np.ndarray, trimap: np.ndarray, painted: np.ndarray | None
) -> np.ndarray:
    """The probability map with a person's corrections in it.

    A pixel the person painted is as certain as they are: spine (label 1) counts as
    probability 1, anything else as 0. The rest keeps the model's probability.

    Parameters
    ----------
    probability : (H, W) array_like
        The model's spine probability (0–1, or 0–255 as integers).
    trimap : (H, W) array_like
        The trimap as it is now.
    painted : (H, W) bool array_like or None
        Pixels the person painted (whatever label); None: none.

    Returns
    -------
    (H, W) float64 ndarray
    """
    prob = _probability(probability, np.shape(trimap))
    if painted is None:
        return prob
    painted = np.asarray(painted, dtype=bool)
    return np.where(painted, (np.asarray(trimap) == SPINE).astype(np.float64), prob)


#: file of the checked gaps in a review folder
CHECKED_FILE = "gaps-checked.json"


def _span(gap: Gap) -> tuple[int, int]:
    top = gap.row - gap.height // 2
    return top, top + max(gap.height, 1)


def same_gap(a: Gap, b: Gap) -> bool:
    """Whether `a` and `b` are one place: the same kind, rows that meet, columns near.

    An edit elsewhere moves a gap's middle row by a few pixels; a check stays with it.
    """
    (a0, a1), (b0, b1) = _span(a), _span(b)
    near = abs(a.col - b.col) <= max(a.height, b.height, 10)
    return a.kind == b.kind and a0 < b1 and b0 < a1 and near


def is_checked(gap: Gap, checked: list[Gap]) -> bool:
    """Whether a person marked `gap` (or the same place, see :func:`same_gap`) checked."""
    return any(same_gap(gap, c) for c in checked)


def read_checked(path) -> dict[str, list[Gap]]:
    """The checked gaps of each image, from a review folder's :data:`CHECKED_FILE`.

    A missing file is no checked gaps.

    Raises
    ------
    SpineSegError
        When the file is not one this package wrote.
    """
    return read_image_entries(
        path,
        lambda gaps: [
            Gap(int(g["row"]), int(g["col"]), int(g["height"]), str(g["kind"])) for g in gaps
        ],
        "checked gaps",
    )


def write_checked(path, checked: dict[str, list[Gap]]) -> None:
    """Write the checked gaps of each image to `path` (atomically)."""
    import json

    images = {key: [g.to_dict() for g in gaps] for key, gaps in checked.items() if gaps}
    with atomic_output(path) as tmp:
        tmp.write_text(json.dumps({"version": 1, "images": images}, indent=1), encoding="utf-8")
