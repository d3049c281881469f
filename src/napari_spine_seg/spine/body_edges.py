"""One vertebral body's edges: four lines fitted to where its probability crosses a half.

Each end plate and side is a line fitted robustly to the sub-pixel points where the
body probability crosses the threshold along many rays from the body's centre (whole
edges, not single pixels). :func:`reconcile_plates` then refits an end plate (or a side) that a
notch or a neighbour pulled off, from the plates beside it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

#: rays cast across a body's middle, per edge, as a fraction of the edge's length
_RAY_SPAN = 0.7
_RAYS_PER_EDGE = 15
_RAY_STEP = 0.25  # px along each ray
#: an edge point within this (px) of the line is never an outlier: the edge of a hard
#: mask steps by whole pixels, and a tighter cut from the robust start's line (level
#: with the longest step) dropped the other steps and fitted a 2° plate level
_LEAST_SPREAD = 1.0


#: orientations tried, either side of square to the column, for a body's axes (degrees)
_TURNS = np.deg2rad(np.arange(-45.0, 45.5, 1.0))
#: a body's principal axis turned further than this (degrees) from square to the column
#: is not believed: the body is nearly square, and its axes are those of the smallest
#: rectangle around it (at 30° no body of the two mild test sets changed; at 45° a
#: diamond was kept)
_MOST_TURN = 30.0
#: nor is the principal axis of a body whose variance along it is under this many times
#: that across it (a rectangle under 1.22 times as wide as tall): four bodies of two
#: strongly curved spines came out 19–29° turned, within :data:`_MOST_TURN`
_SQUARE_RATIO = 1.5


def _rectangle_axis(local: np.ndarray, square: np.ndarray) -> np.ndarray:
    """The u axis of the smallest rectangle around `local` points within 45° of `square`."""
    base = np.arctan2(square[1], square[0])
    angles = base + _TURNS
    us = np.column_stack([np.cos(angles), np.sin(angles)])
    vs = np.column_stack([-us[:, 1], us[:, 0]])
    area = np.ptp(local @ us.T, axis=0) * np.ptp(local @ vs.T, axis=0)
    # the middle of the orientations that tie (a pixelated edge leaves a few)
    best = np.flatnonzero(area <= area.min() * (1.0 + 1e-9))
    return us[best[len(best) // 2]]


def _axes(
    mask: np.ndarray, down: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray, float, float]:
    """Centre ``(x, y)``, unit axes across (u) and along (v) the spine, half sizes.

    The principal axes: a vertebral body is wider than it is tall. But a nearly square
    body (a lumbar one, a wedged one) has no long axis to speak of, and its principal
    axes can turn by 45° or 90° (bodies fitted as diamonds in strongly curved spines,
    docs/performance.md). So, given `down`, the column's direction at the body,
    principal axes more than :data:`_MOST_TURN` from square to it, or those of a body
    nearly square (:data:`_SQUARE_RATIO`), give way to the axes of the smallest
    rectangle around the body within 45° of square to the column.
    """
    rows, cols = np.nonzero(mask)
    pts = np.column_stack([cols, rows]).astype(np.float64)
    centre = pts.mean(axis=0)
    evals, evecs = np.linalg.eigh(np.cov((pts - centre).T))
    u = evecs[:, 1]
    if down is not None:
        square = np.array([down[1], -down[0]])  # u of a body square to `down`
        ratio = float(evals[1] / max(evals[0], 1e-12))
        if abs(float(u @ square)) < np.cos(np.deg2rad(_MOST_TURN)) or ratio < _SQUARE_RATIO:
            u = _rectangle_axis(pts - centre, square)
    if u[0] < 0:
        u = -u
    v = np.array([-u[1], u[0]])  # u turned a quarter: pointing down the image
    if v[1] < 0:
        v = -v
    local = (pts - centre) @ np.column_stack([u, v])
    half_u = float(np.abs(local[:, 0]).max()) + 1.0
    half_v = float(np.abs(local[:, 1]).max()) + 1.0
    return centre, u, v, half_u, half_v


def _edge_points(
    prob: np.ndarray,
    centre: np.ndarray,
    across: np.ndarray,
    out: np.ndarray,
    half_across: float,
    reach: float,
    threshold: float,
) -> np.ndarray:
    """Sub-pixel points where `prob` falls below `threshold`, on rays from the middle.

    Rays start on the line through `centre` along `across` (within ``_RAY_SPAN`` of
    `half_across`) and run in direction `out` up to `reach` pixels; each gives the
    first crossing, linearly interpolated.
    """
    offsets = np.linspace(-_RAY_SPAN, _RAY_SPAN, _RAYS_PER_EDGE) * half_across
    steps = np.arange(0.0, reach, _RAY_STEP)
    starts = centre + offsets[:, None] * across  # (rays, 2)
    xy = starts[:, None, :] + steps[None, :, None] * out  # (rays, steps, 2)
    values = ndimage.map_coordinates(
        prob, [xy[..., 1].ravel(), xy[..., 0].ravel()], order=1, mode="constant", cval=0.0
    ).reshape(xy.shape[:2])
    points = []
    for ray, vals in zip(xy, values, strict=True):
        below = np.nonzero(vals < threshold)[0]
        if below.size == 0 or below[0] == 0:
            continue
        i = below[0]
        a, b = vals[i - 1], vals[i]
        t = (a - threshold) / (a - b) if a != b else 0.5
        points.append(ray[i - 1] + t * (ray[i] - ray[i - 1]))
    return np.array(points).reshape(-1, 2)


def _fit_line(points: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """A line through `points` (a point and a unit direction), robust to a notch.

    The start is robust (:func:`_median_line`); a least-squares start is not: two points
    of fifteen stopped 8 px short by a notch tilted it by 10°, and then the points the
    notch did not touch looked like the outliers (an end plate 11° off, in 1 of 64
    images of the second generator). From there, least squares on the points within
    three robust standard deviations, until that set stops changing.
    """
    if len(points) < 3:
        return None
    mean, direction = _median_line(points)
    keep = None
    for _ in range(4):
        normal = np.array([-direction[1], direction[0]])
        residual = np.abs((points - mean) @ normal)
        mad = np.median(residual if keep is None else residual[keep])
        new = residual <= max(3.0 * 1.4826 * mad, _LEAST_SPREAD)
        if new.sum() < 3 or (keep is not None and np.array_equal(new, keep)):
            break
        keep = new
        mean, direction = _least_squares_line(points[keep])
    return mean, direction


def _least_squares_line(points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The total-least-squares line of `points`: their mean and principal direction."""
    mean = points.mean(axis=0)
    _, _, vt = np.linalg.svd(points - mean, full_matrices=False)
    return mean, vt[0]


def _median_line(points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The Theil–Sen line of `points`: the median direction of all pairs, the median offset.

    Directions are measured from the line through the first and last points (the ends
    of an edge's rays), so that they do not wrap round.
    """
    chord = points[-1] - points[0]
    chord = chord / max(float(np.hypot(*chord)), 1e-12)
    across = np.array([-chord[1], chord[0]])
    i, j = np.triu_indices(len(points), 1)
    pairs = points[j] - points[i]
    angles = np.arctan2(pairs @ across, pairs @ chord)
    turn = float(np.median((angles + np.pi / 2) % np.pi - np.pi / 2))
    direction = np.cos(turn) * chord + np.sin(turn) * across
    normal = np.array([-direction[1], direction[0]])
    offset = float(np.median(points @ normal))
    along = float(np.median(points @ direction))
    return offset * normal + along * direction, direction


def _intersect(a: tuple[np.ndarray, np.ndarray], b: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
    (p, d), (q, e) = a, b
    matrix = np.column_stack([d, -e])
    s, _ = np.linalg.solve(matrix, q - p)
    return p + s * d


#: most angle, degrees, between a body's two end plates (or its two sides) that a fit
#: believes without asking its neighbours: most vertebrae are wedged by a few degrees,
#: so a pair further apart may have one line pulled off by a notch or a neighbour in the
#: probability (:func:`reconcile_plates`)
MAX_WEDGE = 8.0
#: but a body between two others is wedged, not pulled off, unless one of its plates is
#: further than this (degrees) from the neighbours' facing plates than the other is: a
#: wedged apical body (the other generators draw them to 15°) has each plate lying along
#: the plate across its disc (within 7°, within 4° in 99 of 100), and both plates sit
#: equally far from the pair of them; a plate pulled off sits alone
WEDGE_MARGIN = 4.0

_EDGES = ("top", "bottom", "left", "right")


@dataclass(frozen=True)
class BodyEdges:
    """The four edge lines of one body and the edge points each was fitted to.

    Attributes
    ----------
    lines : dict
        ``{"top" | "bottom" | "left" | "right": (point, unit direction)}``, ``(x, y)``
        in the image's pixels.
    points : dict
        The same keys: ``(n, 2)`` sub-pixel edge points.
    """

    lines: dict
    points: dict

    def corners(self) -> np.ndarray | None:
        """``(4, 2)`` corners TL, TR, BL, BR where the lines meet; None if two are parallel."""
        lines = self.lines
        try:
            return np.array(
                [
                    _intersect(lines["top"], lines["left"]),
                    _intersect(lines["top"], lines["right"]),
                    _intersect(lines["bottom"], lines["left"]),
                    _intersect(lines["bottom"], lines["right"]),
                ]
            )
        except np.linalg.LinAlgError:
            return None


def body_edges(
    prob: np.ndarray,
    instance: np.ndarray,
    *,
    threshold: float = 0.5,
    down: np.ndarray | None = None,
) -> BodyEdges | None:
    """Fit one body's four edge lines from the probability edges around it.

    Parameters
    ----------
    prob : (rows, cols) float array
        Body probability (or a 0/1 mask as floats), the whole image.
    instance : (rows, cols) bool array
        This body's pixels, as :func:`body_instances` found them.
    threshold : float
        The probability at which an edge is drawn.
    down : (2,) array, optional
        The column's direction at this body, ``(x, y)`` (from the body above to the one
        below): which way is "top" for a body nearly as tall as it is wide.

    Returns
    -------
    BodyEdges or None
        None when an edge has too few points.
    """
    # work in a box around the body that holds its neighbourhood (below): rays leaving
    # the box read 0 there as they did outside the neighbourhood, and a full-size X-ray
    # is not searched 17 times
    rows, cols = np.nonzero(instance)
    if rows.size == 0:
        return None
    pad = int(np.ceil(0.5 * np.hypot(np.ptp(rows), np.ptp(cols)))) + 4
    r0, c0 = max(rows.min() - pad, 0), max(cols.min() - pad, 0)
    box = (slice(r0, rows.max() + pad + 1), slice(c0, cols.max() + pad + 1))
    found = _edges_in_box(np.asarray(prob, dtype=np.float64)[box], instance[box], threshold, down)
    if found is None:
        return None
    shift = np.array([c0, r0], dtype=np.float64)
    return BodyEdges(
        {k: (p + shift, d) for k, (p, d) in found.lines.items()},
        {k: p + shift for k, p in found.points.items()},
    )


def _edges_in_box(
    prob: np.ndarray, instance: np.ndarray, threshold: float, down: np.ndarray | None
) -> BodyEdges | None:
    """:func:`body_edges` inside a box that holds the body and its rays."""
    centre, u, v, half_u, half_v = _axes(instance, down)
    # only this body: its neighbours' probability would pull the edges outward
    reach_px = max(2, int(round(half_v)))
    # as binary_dilation with `reach_px` iterations of the cross (taxicab distance), faster
    near = ndimage.distance_transform_cdt(~instance, metric="taxicab") <= reach_px
    local = np.where(near, prob, 0.0)
    # a hole inside the body (a pedicle or a spinous process the network doubts) would
    # stop a ray from the middle long before the body's edge
    local[ndimage.binary_fill_holes(instance) & ~instance] = 1.0
    lines, points = {}, {}
    for name, across, out, half_across, reach in (
        ("top", u, -v, half_u, 2.0 * half_v),
        ("bottom", u, v, half_u, 2.0 * half_v),
        ("left", v, -u, half_v, 2.0 * half_u),
        ("right", v, u, half_v, 2.0 * half_u),
    ):
        points[name] = _edge_points(local, centre, across, out, half_across, reach, threshold)
        line = _fit_line(points[name])
        if line is None:
            return None
        lines[name] = line
    return BodyEdges(lines, points)


def _angle_between(a: np.ndarray, b: np.ndarray) -> float:
    """Angle, degrees in [0, 90], between two undirected lines' directions."""
    cosine = abs(float(np.dot(a, b))) / max(float(np.linalg.norm(a) * np.linalg.norm(b)), 1e-12)
    return float(np.degrees(np.arccos(min(cosine, 1.0))))


def _line_along(points: np.ndarray, direction: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The line of `direction` through the median offset of `points` (robust to a notch)."""
    normal = np.array([-direction[1], direction[0]])
    point = np.median(points @ normal) * normal + np.median(points @ direction) * direction
    return point, direction


def reconcile_plates(edges: list[BodyEdges]) -> list[BodyEdges]:
    """Refit an edge that disagrees with its body's opposite edge and its neighbours.

    A body's two end plates are nearly parallel (most vertebrae are wedged by a few
    degrees), and so are its two sides. When two opposite edges differ by more than
    :data:`MAX_WEDGE`, one of them may have been pulled off (by a notch in the
    probability, or a neighbour's edge); it is refitted to its own points with the
    other's direction. Of the end plates, the one further from the plates across the
    discs beside it (the bottom plate of the body above, the top plate of the body
    below) is refitted, unless it is no more than :data:`WEDGE_MARGIN` further than the
    other (a wedged body, kept); of the sides, the one further from square to the end
    plates. On the zoom-pass model's predictions of 16 test images of the second
    generator this took the landmark Cobb MAE from 3.3° to 2.0° and the worst tilt error
    of a single vertebra from 12° to 6° (docs/performance.md, "The end plates").

    Parameters
    ----------
    edges : list of BodyEdges
        The bodies, top to bottom.

    Returns
    -------
    list of BodyEdges
        The same bodies, an outlying edge replaced.
    """
    out = []
    for k, body in enumerate(edges):
        lines = dict(body.lines)
        beside = []
        if k > 0:
            beside.append(edges[k - 1].lines["bottom"][1])
        if k + 1 < len(edges):
            beside.append(edges[k + 1].lines["top"][1])
        if beside:
            _refit_outlier(lines, body.points, ("top", "bottom"), beside, square=False)
        plates = (
            lines["top"][1]
            + np.sign(np.dot(lines["top"][1], lines["bottom"][1])) * (lines["bottom"][1])
        )
        _refit_outlier(lines, body.points, ("left", "right"), [plates], square=True)
        out.append(BodyEdges(lines, body.points))
    return out


def _refit_outlier(lines: dict, points: dict, pair, references, *, square: bool) -> None:
    """Refit the edge of `pair` further from `references` when the two disagree.

    With two references (a body between two others) and the two edges about equally far
    from them (:data:`WEDGE_MARGIN`), the body is wedged and nothing is refitted.
    """
    a, b = pair
    if _angle_between(lines[a][1], lines[b][1]) <= MAX_WEDGE:
        return

    def off(name):
        angles = [_angle_between(lines[name][1], d) for d in references]
        return np.mean([90.0 - x for x in angles] if square else angles)

    worse, other = (a, b) if off(a) > off(b) else (b, a)
    if len(references) > 1 and off(worse) - off(other) < WEDGE_MARGIN:
        return
    lines[worse] = _line_along(points[worse], lines[other][1])
