"""End plates read from the X-ray's own edges, averaged with the network's.

A network draws each end plate partly along its neighbours' plates where a plate shows
little (the *neighbour pull*, ``docs/performance.md``). The X-ray's own edge has no
such prior, but its grain and the few pixels a plate spans make it noisier. Averaged,
the two lines err less than either alone, on each of the test sets measured.
:func:`image_plates` finds, across each end plate of fitted landmarks, where the
smoothed X-ray rises fastest into the body, fits a line to those points robustly, and
moves the plate's two corners half-way to where that line meets the body's sides.

Every length is a fraction of the plate's length, so the same spine at twice the pixels
is read the same way. The fractions were chosen on the second generator's images
(median plate 56 px: smoothing 1.5 px, a search 3 px either side, a move of at most
2.5 px) and checked on three other sets (``docs/performance.md``).
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from .body_edges import _fit_line, _intersect

#: the middle share of a plate where its edge is looked for (a body's corners are round)
_SPAN = 0.8
#: Gaussian smoothing of the X-ray before its edges are found, per plate length
_SMOOTH = 1.0 / 37.0
#: how far either side of the network's plate its edge is looked for, per plate length
_REACH = 3.0 / 56.0
#: an edge line that moves either end of the plate further than this (per plate length)
#: is another structure's edge (a rib, a neighbour's plate), and the plate is kept
_MOST_MOVE = 2.5 / 56.0
#: the image's line's share of the plate by default (the network's line keeps the rest)
_SHARE = 0.5
#: a profile whose inner third lies less than this many times the smoothed image's
#: noise per pixel above its outer third crosses no edge (a plate behind a dense organ,
#: a flat image)
_LEAST_STEP = 4.0
_STEP = 0.25  # px along each profile across a plate
_LEAST_POINTS = 5
#: px; a plate shorter than this (corners that nearly coincide) has no edge to read
_LEAST_LENGTH = 5.0


def image_plates(image: np.ndarray, landmarks: np.ndarray, *, share: float = _SHARE) -> np.ndarray:
    """Landmarks whose end plates are averaged with the X-ray's own edges.

    Parameters
    ----------
    image : (rows, cols) array_like
        The X-ray the landmarks were fitted on, at their scale. Bone may be bright or
        dark: the side the bodies lie on is measured.
    landmarks : (4 N, 2) array_like
        ``x, y`` corners, four per vertebra in AASCE order (top left, top right,
        bottom left, bottom right), vertebrae top to bottom.
    share : float, optional
        How far each plate's corners move towards the image's line: ½ (the default)
        half-way, 1 onto it (the image's line alone, as ``bench_set_draws.py`` reads
        the true plates).

    Returns
    -------
    (4 N, 2) float array
        The same corners, each plate's moved `share` of the way to the line of the
        image's edge where one was found within reach of it; the sides keep their lines.

    Examples
    --------
    A body whose top plate the network drew 1.5 px low at its left end:

    >>> image = np.zeros((60, 80))
    >>> image[20:40, 20:60] = 1.0
    >>> body = np.array([[20.0, 21.5], [60, 20], [20, 40], [60, 40]]) - 0.5
    >>> refined = image_plates(image, body)
    >>> float(np.round(refined[0, 1] - body[0, 1], 1))  # half-way to the edge
    -0.7
    """
    img = np.asarray(image)
    corners = np.asarray(landmarks, dtype=np.float64).reshape(-1, 4, 2)
    if img.ndim != 2:
        raise ValueError(f"image must be 2-D, not of shape {img.shape}")
    if not corners.size or not np.isfinite(corners).all():
        return corners.reshape(-1, 2).copy()
    plate = float(np.median(np.linalg.norm(corners[:, 1] - corners[:, 0], axis=1)))
    if plate < 1.0:
        return corners.reshape(-1, 2).copy()
    reach, most_move = _REACH * plate, _MOST_MOVE * plate
    smooth, origin, noise = _smoothed_box(img, corners, _SMOOTH * plate, reach)
    local = corners - origin
    sign = _polarity(smooth, local)
    least_step = _LEAST_STEP * noise
    out = corners.copy()
    for k, (tl, tr, bl, br) in enumerate(local):
        centre = (tl + tr + bl + br) / 4.0
        left, right = (tl, bl - tl), (tr, br - tr)
        top = _edge_line(smooth, tl, tr, centre, reach, sign, most_move, least_step)
        bottom = _edge_line(smooth, bl, br, centre, reach, sign, most_move, least_step)
        for line, ends in ((top, (0, 1)), (bottom, (2, 3))):
            if line is None:
                continue
            try:
                met = [_intersect(line, side) for side in (left, right)]
            except np.linalg.LinAlgError:  # the edge runs along a side: not this plate
                continue
            for i, m in zip(ends, met, strict=True):
                out[k, i] = (1.0 - share) * corners[k, i] + share * (m + origin)
    return out.reshape(-1, 2)


def _smoothed_box(
    image: np.ndarray, corners: np.ndarray, sigma: float, reach: float
) -> tuple[np.ndarray, np.ndarray, float]:
    """The image around the landmarks, Gaussian-smoothed, its ``(x, y)`` origin, and
    the noise per pixel left in it.

    The margin keeps every sample at least the filter's reach from the box's edge, so
    the box reads as the whole image smoothed would. The noise is the raw pixels' (from
    neighbours' differences, robustly: edges are few among them), as much of it as a
    Gaussian of `sigma` lets through.
    """
    margin = reach + 4.0 * sigma + 2.0
    lo = np.floor(corners.reshape(-1, 2).min(axis=0) - margin).astype(int)
    hi = np.ceil(corners.reshape(-1, 2).max(axis=0) + margin).astype(int) + 1
    lo = np.maximum(lo, 0)
    hi = np.minimum(hi, [image.shape[1], image.shape[0]])
    box = image[lo[1] : hi[1], lo[0] : hi[0]].astype(np.float64)
    diffs = np.diff(box, axis=1)
    noise = (
        1.4826 * np.median(np.abs(diffs - np.median(diffs))) / np.sqrt(2.0) if diffs.size else 0.0
    )
    passed = min(1.0, 1.0 / (np.sqrt(2.0 * np.pi) * sigma))
    return ndimage.gaussian_filter(box, sigma), lo.astype(np.float64), float(noise * passed)


def _polarity(smooth: np.ndarray, corners: np.ndarray) -> float:
    """+1 where the bodies are brighter than the discs between them, -1 where darker."""
    bodies = corners.mean(axis=1)
    discs = (corners[:-1, 2:].mean(axis=1) + corners[1:, :2].mean(axis=1)) / 2.0
    if not len(discs):
        return 1.0

    def mean_at(points):
        return float(
            ndimage.map_coordinates(
                smooth, [points[:, 1], points[:, 0]], order=1, mode="nearest"
            ).mean()
        )

    return 1.0 if mean_at(bodies) >= mean_at(discs) else -1.0


def _edge_line(
    smooth: np.ndarray,
    a: np.ndarray,
    b: np.ndarray,
    centre: np.ndarray,
    reach: float,
    sign: float,
    most_move: float,
    least_step: float,
) -> tuple[np.ndarray, np.ndarray] | None:
    """The line of the image's edge along plate ``a → b``, or None if none is near it.

    Along profiles across the plate's middle :data:`_SPAN`, each point is where the
    image rises fastest towards the body's `centre` (`sign`: which way bone is bright),
    to a fraction of a step: the centroid of the rise within a third of `reach` of its
    largest. A profile whose largest rise lies at its end, or that rises by less than
    `least_step` from its outer third to its inner third, found no edge.
    """
    along = b - a
    length = float(np.hypot(*along))
    if length < _LEAST_LENGTH:
        return None
    direction = along / length
    inward = np.array([-direction[1], direction[0]])
    if (centre - a) @ inward < 0:
        inward = -inward
    offsets = np.arange(-reach, reach + 1e-9, _STEP)
    fractions = np.linspace(
        (1 - _SPAN) / 2, (1 + _SPAN) / 2, max(int(length * _SPAN), _LEAST_POINTS)
    )
    bases = a + fractions[:, None] * along  # (profiles, 2)
    xy = bases[:, None, :] + offsets[None, :, None] * inward  # (profiles, offsets, 2)
    values = ndimage.map_coordinates(
        smooth, [xy[..., 1].ravel(), xy[..., 0].ravel()], order=1, mode="nearest"
    ).reshape(xy.shape[:2])
    rise = np.gradient(values, axis=1) * sign
    third = max(len(offsets) // 3, 1)
    steps = sign * (values[:, -third:].mean(axis=1) - values[:, :third].mean(axis=1))
    near = max(1, int(round(reach / 3.0 / _STEP)))
    points = []
    for base, slope, step in zip(bases, rise, steps, strict=True):
        k = int(np.argmax(slope))
        if step < least_step or slope[k] <= 0 or k == 0 or k == len(slope) - 1:
            continue
        around = slice(max(k - near, 0), k + near + 1)
        weight = np.clip(slope[around], 0.0, None)
        points.append(base + float(offsets[around] @ weight / weight.sum()) * inward)
    if len(points) < _LEAST_POINTS:
        return None
    line = _fit_line(np.array(points))
    if line is None:
        return None
    point, heading = line
    normal = np.array([-heading[1], heading[0]])
    if max(abs(float((end - point) @ normal)) for end in (a, b)) > most_move:
        return None
    return line
