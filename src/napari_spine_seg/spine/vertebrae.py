"""The 17 vertebrae: a body / space target from landmarks, and landmarks from bodies.

Two directions, both plain arrays in and out:

- :func:`body_space_target` draws, from a data set's 68 landmarks, each vertebra's
  body (its TL–TR–BR–BL quadrilateral) and the intervertebral spaces between them
  inside the spine column: the target a network learns so that it can tell one
  vertebra from the next.
- :func:`fit_vertebrae` goes back: from a map of body probability (or a body mask) it
  finds the bodies as ordered instances, top to bottom, and fits each with four
  corners, from whole edges rather than single pixels: every end plate and side is a
  line fitted robustly to the sub-pixel points where the probability crosses one
  half along many rays from the body's centre. An image whose bodies are not exactly
  17 gets no landmarks and a fault that says why; nothing is guessed.

Landmarks are ``(x, y)`` in image pixels, corners in the data set's order (TL, TR, BL,
BR), vertebrae top to bottom (``docs/formats.md``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy import ndimage

from ..trimap import N_LANDMARKS, N_VERTEBRAE, column_mask, polygon_mask, sort_landmarks

#: classes of the vertebra target
OUTSIDE, BODY, SPACE = 0, 1, 2

#: names of the 17 vertebrae, top to bottom
VERTEBRA_NAMES = tuple([f"T{i}" for i in range(1, 13)] + [f"L{i}" for i in range(1, 6)])

#: corner names in the data set's order
CORNER_NAMES = ("TL", "TR", "BL", "BR")

#: a body whose area is under this fraction of the median body's is noise, not a body
MIN_AREA_FRACTION = 0.2

#: rays cast across a body's middle, per edge, as a fraction of the edge's length
_RAY_SPAN = 0.7
_RAYS_PER_EDGE = 15
_RAY_STEP = 0.25  # px along each ray


def body_quadrilaterals(landmarks: np.ndarray) -> np.ndarray:
    """Each vertebra's body as a polygon ``(17, 4, 2)``: TL, TR, BR, BL, in ``(x, y)``."""
    groups = np.asarray(landmarks, dtype=np.float64).reshape(N_VERTEBRAE, 4, 2)
    return groups[:, [0, 1, 3, 2]]


def body_space_target(landmarks: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """The vertebra target of one image: bodies, the spaces between them, the rest.

    Parameters
    ----------
    landmarks : (68, 2) array_like
        ``(x, y)`` corners as the data set stores them (re-sorted first, as for trimaps).
    shape : (rows, cols)
        The image's size.

    Returns
    -------
    (rows, cols) uint8
        :data:`BODY` inside a vertebra's quadrilateral, :data:`SPACE` elsewhere inside
        the spine column (the intervertebral spaces), :data:`OUTSIDE` outside it. Body
        ∪ space is exactly the column of the trimap convention.

    Examples
    --------
    >>> v = np.array([[10 + 40 * (i % 2), 10 + 10 * k + 5 * (i // 2)]
    ...               for k in range(17) for i in range(4)], dtype=float)
    >>> t = body_space_target(v, (200, 60))
    >>> int(t[12, 30]), int(t[17, 30]), int(t[12, 5])
    (1, 2, 0)
    """
    landmarks = sort_landmarks(landmarks)
    shape = (int(shape[0]), int(shape[1]))
    column = column_mask(landmarks, shape)
    bodies = np.zeros(shape, dtype=bool)
    for quad in body_quadrilaterals(landmarks):
        bodies |= polygon_mask(quad, shape)
    target = np.full(shape, OUTSIDE, dtype=np.uint8)
    target[column] = SPACE
    target[bodies] = BODY
    return target


@dataclass(frozen=True)
class VertebraeFit:
    """Vertebrae found in one prediction.

    Attributes
    ----------
    landmarks : (68, 2) ndarray or None
        The fitted corners, ``(x, y)``, data set order, vertebrae top to bottom; None
        unless exactly 17 bodies were found and every one could be fitted.
    instances : (rows, cols) int32
        The bodies found, numbered 1…n top to bottom (0 elsewhere).
    count : int
        How many bodies were found.
    faults : list of str
        Why there are no landmarks, or what is doubtful about them (one sentence each).
    """

    landmarks: np.ndarray | None
    instances: np.ndarray
    count: int
    faults: list[str] = field(default_factory=list)


def spine_column(column: np.ndarray) -> np.ndarray:
    """The spine column of a column mask: its largest piece, and any piece beside it.

    A piece whose centre lies outside the columns (x range) of the largest piece is not
    spine: a marker letter in a corner, a bright artefact. A piece above or below the
    largest (a vertebra cut off from the others by a wide space) stays.

    Parameters
    ----------
    column : (rows, cols) bool array
        Body ∪ space (the trimap's spine), as a network predicted it.

    Returns
    -------
    (rows, cols) bool array
    """
    column = np.asarray(column, dtype=bool)
    labels, n = ndimage.label(column)
    if n <= 1:
        return column
    index = np.arange(1, n + 1)
    largest = int(index[np.argmax(ndimage.sum_labels(column, labels, index))])
    cols = np.flatnonzero((labels == largest).any(axis=0))
    centres = ndimage.center_of_mass(column, labels, index)
    keep = [i for i, c in zip(index, centres, strict=True) if cols[0] <= c[1] <= cols[-1]]
    return np.isin(labels, keep)


def body_instances(body: np.ndarray, *, threshold: float = 0.5) -> tuple[np.ndarray, int]:
    """Number the bodies of a body-probability map or mask, top to bottom.

    Parameters
    ----------
    body : (rows, cols) array_like
        Probability that a pixel is a vertebral body, or a boolean mask.
    threshold : float
        Pixels above it are body.

    Returns
    -------
    instances : (rows, cols) int32
        0 outside the bodies, then 1…n ordered by the bodies' centre rows. Pieces under
        :data:`MIN_AREA_FRACTION` of the median body's area are dropped as noise.
    n : int
    """
    mask = np.asarray(body, dtype=np.float64) > threshold
    labels, n = ndimage.label(mask)
    if n == 0:
        return labels.astype(np.int32), 0
    index = np.arange(1, n + 1)
    areas = ndimage.sum_labels(mask, labels, index)
    keep = areas >= MIN_AREA_FRACTION * np.median(areas)
    rows = np.array([c[0] for c in ndimage.center_of_mass(mask, labels, index)])
    kept = index[keep][np.argsort(rows[keep], kind="stable")]
    lookup = np.zeros(n + 1, dtype=np.int32)
    lookup[kept] = np.arange(1, kept.size + 1)
    return lookup[labels], int(kept.size)


def _axes(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, float, float]:
    """Centre ``(x, y)``, unit axes across (u) and along (v) the spine, half sizes."""
    rows, cols = np.nonzero(mask)
    pts = np.column_stack([cols, rows]).astype(np.float64)
    centre = pts.mean(axis=0)
    cov = np.cov((pts - centre).T)
    evals, evecs = np.linalg.eigh(cov)
    u = evecs[:, 1]  # the long axis: a vertebral body is wider than it is tall
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
    """A line through `points` (a point and a unit direction), outliers dropped twice."""
    if len(points) < 3:
        return None
    keep = np.ones(len(points), dtype=bool)
    for _ in range(3):
        p = points[keep]
        mean = p.mean(axis=0)
        _, _, vt = np.linalg.svd(p - mean, full_matrices=False)
        direction, normal = vt[0], vt[1]
        residual = np.abs((points - mean) @ normal)
        mad = np.median(residual[keep])
        new = residual <= max(3.0 * 1.4826 * mad, 0.35)
        if new.sum() < 3 or np.array_equal(new, keep):
            break
        keep = new
    return mean, direction


def _intersect(a: tuple[np.ndarray, np.ndarray], b: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
    (p, d), (q, e) = a, b
    matrix = np.column_stack([d, -e])
    s, _ = np.linalg.solve(matrix, q - p)
    return p + s * d


def fit_body_corners(
    prob: np.ndarray, instance: np.ndarray, *, threshold: float = 0.5
) -> np.ndarray | None:
    """Fit one body's four corners from the probability edges around it.

    Parameters
    ----------
    prob : (rows, cols) float array
        Body probability (or a 0/1 mask as floats), the whole image.
    instance : (rows, cols) bool array
        This body's pixels, as :func:`body_instances` found them.
    threshold : float
        The probability at which an edge is drawn.

    Returns
    -------
    (4, 2) ndarray or None
        ``(x, y)`` corners TL, TR, BL, BR; None when an edge has too few points.
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
    corners = _fit_in_box(np.asarray(prob, dtype=np.float64)[box], instance[box], threshold)
    return None if corners is None else corners + np.array([c0, r0], dtype=np.float64)


def _fit_in_box(prob: np.ndarray, instance: np.ndarray, threshold: float) -> np.ndarray | None:
    """:func:`fit_body_corners` inside a box that holds the body and its rays."""
    centre, u, v, half_u, half_v = _axes(instance)
    # only this body: its neighbours' probability would pull the edges outward
    reach_px = max(2, int(round(half_v)))
    # as binary_dilation with `reach_px` iterations of the cross (taxicab distance), faster
    near = ndimage.distance_transform_cdt(~instance, metric="taxicab") <= reach_px
    local = np.where(near, prob, 0.0)
    # a hole inside the body (a pedicle or a spinous process the network doubts) would
    # stop a ray from the middle long before the body's edge
    local[ndimage.binary_fill_holes(instance) & ~instance] = 1.0
    lines = {}
    for name, across, out, half_across, reach in (
        ("top", u, -v, half_u, 2.0 * half_v),
        ("bottom", u, v, half_u, 2.0 * half_v),
        ("left", v, -u, half_v, 2.0 * half_u),
        ("right", v, u, half_v, 2.0 * half_u),
    ):
        line = _fit_line(_edge_points(local, centre, across, out, half_across, reach, threshold))
        if line is None:
            return None
        lines[name] = line
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


def fit_vertebrae(
    body: np.ndarray, *, threshold: float = 0.5, column: np.ndarray | None = None
) -> VertebraeFit:
    """Find the vertebral bodies of one image and fit their 68 corners.

    Parameters
    ----------
    body : (rows, cols) array_like
        Body probability in [0, 1] (a network's output at the image's size) or a
        boolean body mask.
    threshold : float
        The probability at which a body's edge is drawn.
    column : (rows, cols) bool array, optional
        The spine column (:func:`spine_column`): bodies whose centre lies outside it
        are not vertebrae and are not counted.

    Returns
    -------
    VertebraeFit
        Landmarks only when exactly 17 bodies were found, none touching the image's
        edge, and each could be fitted; otherwise ``landmarks`` is None and ``faults``
        says why.

    Examples
    --------
    >>> from napari_spine_seg.spine.vertebrae import body_space_target
    >>> v = np.array([[20 + 40 * (i % 2), 12 + 14 * k + 8 * (i // 2)]
    ...               for k in range(17) for i in range(4)], dtype=float)
    >>> fit = fit_vertebrae(body_space_target(v, (260, 80)) == 1)
    >>> fit.count, fit.faults, bool(np.abs(fit.landmarks - v).max() < 1.0)
    (17, [], True)
    """
    prob = np.asarray(body, dtype=np.float64)
    instances, n = body_instances(prob, threshold=threshold)
    if column is not None and n:
        instances, n = _inside(instances, n, np.asarray(column, dtype=bool))
    faults: list[str] = []
    if n != N_VERTEBRAE:
        faults.append(
            f"found {n} vertebral bodies, not {N_VERTEBRAE} (bodies merged, split, missing "
            "or cut off by the image)"
        )
    edge = np.unique(
        np.concatenate([instances[0], instances[-1], instances[:, 0], instances[:, -1]])
    )
    cut = [int(i) for i in edge if i]
    if cut:
        faults.append(f"{len(cut)} body(ies) touch the image's edge: cut off")
    if faults:
        return VertebraeFit(None, instances, n, faults)
    corners = np.empty((N_VERTEBRAE, 4, 2))
    for k in range(N_VERTEBRAE):
        fitted = fit_body_corners(prob, instances == k + 1, threshold=threshold)
        if fitted is None:
            faults.append(f"{VERTEBRA_NAMES[k]}: its edges could not be fitted")
            return VertebraeFit(None, instances, n, faults)
        corners[k] = fitted
    return VertebraeFit(corners.reshape(N_LANDMARKS, 2), instances, n, faults)


def _inside(instances: np.ndarray, n: int, column: np.ndarray) -> tuple[np.ndarray, int]:
    """`instances` without those whose centre lies outside `column`, renumbered."""
    index = np.arange(1, n + 1)
    centres = ndimage.center_of_mass(instances > 0, instances, index)
    keep = [
        i
        for i, (r, c) in zip(index, centres, strict=True)
        if column[min(int(round(r)), column.shape[0] - 1), min(int(round(c)), column.shape[1] - 1)]
    ]
    lookup = np.zeros(n + 1, dtype=np.int32)
    lookup[keep] = np.arange(1, len(keep) + 1)
    return lookup[instances], len(keep)


def corner_error(pred: np.ndarray, truth: np.ndarray) -> float:
    """Mean Euclidean distance between corresponding corners, in pixels."""
    diff = np.asarray(pred, dtype=np.float64) - np.asarray(truth, dtype=np.float64)
    return float(np.linalg.norm(diff.reshape(-1, 2), axis=1).mean())
