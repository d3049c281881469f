"""Cobb angles from 68 vertebra landmarks: the AASCE 2019 challenge's reference computation.

The three angles come out in the order of the challenge's ``angles.csv`` (commonly
labelled PT, MT and TL/L). The computation follows ``docs/aasce-format.md`` step by step:

1. each vertebra's vector runs from the mean of its left corners to the mean of its
   right corners;
2. ``angles[i, j]`` is the angle between vectors ``i`` and ``j`` (the arccos of their
   cosine clipped to [0, 1]); the first Cobb angle is the largest of them, between
   vertebrae ``pos2`` and ``pos1[pos2]``;
3. the spine is S-shaped when the top-endplate and bottom-endplate mid-points do not
   all lie on one side of the chord from the first to the last of them;
4. the second and third angles are then chosen as the reference does.

Degenerate input
----------------
The S-shape test divides by ``x_0 - x_last`` and ``y_0 - y_last`` (first and last
endplate mid-points). For a spine whose chord is exactly vertical the first is zero
and the reference's arithmetic yields NaN (which it would count as "S-shaped"). Here,
when ``|x_0 - x_last| < 1e-9`` px, the test asks what the formula means: whether the
mid-points (all but the last two, as in the formula) lie strictly on both sides of
the vertical chord ``x = x_last``; points on it are ignored. (Likewise with the
horizontal line ``y = y_last`` when ``|y_0 - y_last| < 1e-9``, which only a broken
annotation has.) A perfectly straight vertical spine is therefore not S-shaped, and no
NaN or floating-point warning escapes. For a straight spine every vector is parallel,
so all three angles are 0 whichever branch is taken; only the vertebra pairs reported
by :func:`cobb_details` depend on the choice.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np

from ..errors import SpineSegError
from ..trimap import N_VERTEBRAE, check_landmarks

#: column names of the three angles, in ``angles.csv`` order
ANGLE_NAMES = ("pt", "mt", "tl")

#: the reference's tolerance on the S-shape test
_S_TOLERANCE = 1e-4
#: a chord shorter than this (px) along x or y is treated as exactly vertical or horizontal
_MIN_DENOMINATOR = 1e-9
#: measured angles whose two largest are closer than this (degrees) may come out in
#: another order than the reference's; for a drawn or corrected outline, whose curves
#: the centre line measures to about 1° (a network's outline has its own, wider margin:
#: ``centreline.PREDICTED_ORDER_MARGIN``; ``docs/cobb.md``)
ORDER_MARGIN = 3.0
#: ... when the largest is at least this (degrees); below it a spine is not scoliotic and
#: every angle is within measuring error of zero anyway
ORDER_MIN_CURVE = 10.0


@dataclass(frozen=True)
class CobbResult:
    """Cobb angles of one spine and the vertebrae that make them, for drawing.

    Attributes
    ----------
    angles : (3,) ndarray
        Degrees, in ``angles.csv`` order (PT, MT, TL/L).
    pairs : tuple of three (int, int)
        For each angle, the indices (0 = top vertebra, 16 = bottom) of the two
        vertebrae whose lines make it, upper one first.
    s_shaped : bool
        Whether the reference's S-shape test found an S-shaped spine.
    left, right : (17, 2) ndarray
        ``(x, y)`` mid-points of each vertebra's left and right sides: the line of
        vertebra ``i`` runs from ``left[i]`` to ``right[i]``.
    """

    angles: np.ndarray
    pairs: tuple[tuple[int, int], tuple[int, int], tuple[int, int]]
    s_shaped: bool
    left: np.ndarray
    right: np.ndarray


def cobb_angles(
    landmarks_xy: np.ndarray, image_height: float, *, source: str | os.PathLike | None = None
) -> np.ndarray:
    """The three Cobb angles of a spine, as the AASCE reference computes them.

    Parameters
    ----------
    landmarks_xy : (68, 2) array_like
        ``(x, y)`` pixel coordinates, 4 corners per vertebra (top-left, top-right,
        bottom-left, bottom-right), vertebrae top to bottom, as the data set stores them.
    image_height : float
        Height of the image in pixels (the reference uses it to tell an upper from a
        lower S-curve).
    source : path-like, optional
        File the landmarks came from, named in errors.

    Returns
    -------
    (3,) ndarray
        Degrees, in ``angles.csv`` order (PT, MT, TL/L).

    Raises
    ------
    SpineSegError
        When the landmarks are not 68 finite ``(x, y)`` pairs, or a vertebra's left and
        right sides coincide (its line has no direction).

    Examples
    --------
    >>> import numpy as np
    >>> rows = []
    >>> for i in range(17):
    ...     tilt = np.deg2rad(10.0 if i == 8 else 0.0)
    ...     c, s, y = np.cos(tilt), np.sin(tilt), 40.0 * i
    ...     rows += [[-10 * c, y - 10 * s], [10 * c, y + 10 * s],
    ...              [-10 * c, y + 20 - 10 * s], [10 * c, y + 20 + 10 * s]]
    >>> np.round(cobb_angles(np.array(rows) + 50, 800), 6)
    array([10.,  0., 10.])
    """
    return cobb_details(landmarks_xy, image_height, source=source).angles


def cobb_details(
    landmarks_xy: np.ndarray, image_height: float, *, source: str | os.PathLike | None = None
) -> CobbResult:
    """Cobb angles plus the vertebra pairs that make them and the S-shape flag.

    Parameters
    ----------
    landmarks_xy : (68, 2) array_like
        As for :func:`cobb_angles`.
    image_height : float
        Height of the image in pixels.
    source : path-like, optional
        File the landmarks came from, named in errors.

    Returns
    -------
    CobbResult
    """
    pts = check_landmarks(landmarks_xy, source)
    left, right = vertebra_sides(pts)
    angles = _angle_matrix(right - left, source)
    pos1 = np.argmax(angles, axis=1)
    maxt = angles[np.arange(N_VERTEBRAE), pos1]
    pos2 = int(np.argmax(maxt))
    partner = int(pos1[pos2])
    first = (pos2, partner)
    mid_v = (pts[0::2] + pts[1::2]) / 2.0
    s_shaped = is_s_shaped(mid_v)
    last = N_VERTEBRAE - 1
    if not s_shaped:
        second, third = (0, pos2), (last, partner)
    elif mid_v[2 * pos2, 1] + mid_v[2 * partner, 1] < image_height:
        second = (pos2, int(np.argmax(angles[pos2, : pos2 + 1])))
        third = (partner, partner + int(np.argmax(angles[partner, partner:])))
    else:
        k = int(np.argmax(angles[pos2, : pos2 + 1]))
        second = (pos2, k)
        third = (k, int(np.argmax(angles[k, : k + 1])))
    pairs = (first, second, third)
    values = np.degrees([angles[i, j] for i, j in pairs])
    ordered = tuple((min(i, j), max(i, j)) for i, j in pairs)
    return CobbResult(np.asarray(values), ordered, s_shaped, left, right)


def vertebra_sides(landmarks_xy: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Left and right side mid-points of the 17 vertebrae.

    Parameters
    ----------
    landmarks_xy : (68, 2) array_like
        Corners in the data set's order (top-left, top-right, bottom-left, bottom-right).

    Returns
    -------
    left, right : (17, 2) ndarray
        ``(x, y)``: the mean of each vertebra's left (right) corners.
    """
    corners = np.asarray(landmarks_xy, dtype=np.float64).reshape(N_VERTEBRAE, 4, 2)
    left = (corners[:, 0] + corners[:, 2]) / 2.0
    right = (corners[:, 1] + corners[:, 3]) / 2.0
    return left, right


def vertebra_tilts(landmarks_xy: np.ndarray) -> np.ndarray:
    """Each vertebra's tilt as the reference measures it, in degrees.

    Parameters
    ----------
    landmarks_xy : (68, 2) array_like
        Corners in the data set's order.

    Returns
    -------
    (17,) ndarray
        The angle of the line from the middle of each body's left side to that of its
        right (:func:`vertebra_sides`), against the image's rows, in [-90, 90);
        positive turns the body's right side down (image ``y`` grows downward).

    Examples
    --------
    >>> level = np.array([[0, 0], [10, 0], [0, 4], [10, 4]] * 17, dtype=float)
    >>> tilted = level.copy()
    >>> tilted[1::4, 1] += 10.0
    >>> tilted[3::4, 1] += 10.0
    >>> np.round(vertebra_tilts(tilted)[:2], 1)
    array([45., 45.])
    """
    left, right = vertebra_sides(landmarks_xy)
    d = right - left
    return (np.degrees(np.arctan2(d[:, 1], d[:, 0])) + 90.0) % 180.0 - 90.0


def _angle_matrix(vectors: np.ndarray, source: str | os.PathLike | None) -> np.ndarray:
    """Angles (radians) between every pair of vectors, cosine clipped to [0, 1].

    Built element-wise so that the matrix is exactly symmetric: the reference breaks
    ties by taking the first maximum, and an asymmetric rounding would move them.
    """
    norms = np.hypot(vectors[:, 0], vectors[:, 1])
    flat = np.flatnonzero(norms == 0)
    if flat.size:
        raise SpineSegError(
            source, f"vertebra {flat[0] + 1} has its left and right sides at the same point"
        )
    vx, vy = vectors[:, 0], vectors[:, 1]
    dot = vx[:, None] * vx[None, :] + vy[:, None] * vy[None, :]
    cosine = np.clip(dot / (norms[:, None] * norms[None, :]), 0.0, 1.0)
    return np.arccos(cosine)


def is_s_shaped(mid_v: np.ndarray) -> bool:
    """The reference's S-shape test on the 34 endplate mid-points.

    Parameters
    ----------
    mid_v : (34, 2) ndarray
        ``(x, y)`` mid-points of the top and bottom endplates, top to bottom:
        ``mid_v[k] = (p[2k] + p[2k+1]) / 2`` of the landmarks ``p``.

    Returns
    -------
    bool
        True when the signed offsets ``ll`` of the mid-points from the chord (first to
        last) do not all share one sign, i.e. ``|Σ ll_i ll_j − Σ |ll_i ll_j|| ≥ 1e-4``.
        Near-zero denominators are handled as the module docstring describes.
    """
    mid_v = np.asarray(mid_v, dtype=np.float64)
    x, y = mid_v[:-2, 0], mid_v[:-2, 1]
    x_last, y_last = mid_v[-1]
    dx, dy = mid_v[0, 0] - x_last, mid_v[0, 1] - y_last
    if abs(dx) < _MIN_DENOMINATOR or abs(dy) < _MIN_DENOMINATOR:
        offset = x - x_last if abs(dx) < _MIN_DENOMINATOR else y - y_last
        return bool((offset > 0).any() and (offset < 0).any())
    ll = (y - y_last) / dy - (x - x_last) / dx
    products = np.outer(ll, ll)
    return bool(abs(products.sum() - np.abs(products).sum()) >= _S_TOLERANCE)


def order_warning(angles: np.ndarray, margin: float = ORDER_MARGIN) -> str | None:
    """A warning when measured angles are close enough to change their order.

    The reference names the largest curve PT and picks MT and TL/L by where that curve
    lies. When a second curve measures within `margin` of the largest, an error that
    size can make the other one PT: MT and TL/L then swap, or one of them becomes a
    small end curve, and two of the three angles are wrong by the size of a curve.

    Parameters
    ----------
    angles : (3,) array_like
        Degrees in ``angles.csv`` order (PT, MT, TL/L), PT the largest.
    margin : float
        Degrees.

    Returns
    -------
    str or None
        The warning, or None when PT stands clear of the others or is under
        :data:`ORDER_MIN_CURVE`.

    Examples
    --------
    >>> order_warning([21.5, 21.4, 1.2])
    'PT 21.5° and MT 21.4° are within 3°: an error that small can make the other curve PT, and then MT and TL/L measure other curves'
    >>> order_warning([52.6, 0.0, 44.2]) is None, order_warning([2.9, 0.0, 2.9]) is None
    (True, True)
    """
    pt, mt, tl = (float(a) for a in np.asarray(angles, dtype=np.float64).reshape(3))
    name, other = ("MT", mt) if mt >= tl else ("TL/L", tl)
    if pt < ORDER_MIN_CURVE or pt - other >= margin:
        return None
    return (
        f"PT {pt:.1f}° and {name} {other:.1f}° are within {margin:g}°: an error that small "
        "can make the other curve PT, and then MT and TL/L measure other curves"
    )


def smape(gt: np.ndarray, pred: np.ndarray) -> float:
    """Symmetric mean absolute percentage error, as the AASCE challenge scores.

    ``mean over images of Σ|gt − pred| / Σ(gt + pred) × 100``, the sums over each
    image's three angles.

    Parameters
    ----------
    gt, pred : (N, 3) or (3,) array_like
        Cobb angles in degrees, one row per image.

    Returns
    -------
    float
        Percent. An image whose angles are all zero in both counts as 0 % (perfect
        agreement) rather than 0/0.

    Raises
    ------
    ValueError
        When the shapes differ, there is no image, or a value is not finite.

    Examples
    --------
    >>> smape([[10, 20, 30]], [[10, 20, 30]])
    0.0
    >>> round(smape([[10, 20, 30], [10, 10, 10]], [[20, 20, 30], [10, 10, 10]]), 4)
    3.8462
    """
    gt_arr = np.atleast_2d(np.asarray(gt, dtype=np.float64))
    pred_arr = np.atleast_2d(np.asarray(pred, dtype=np.float64))
    if gt_arr.shape != pred_arr.shape or gt_arr.ndim != 2 or gt_arr.shape[0] == 0:
        raise ValueError(
            f"smape needs two (N, 3) arrays of the same shape, got {gt_arr.shape} and "
            f"{pred_arr.shape}"
        )
    if not (np.isfinite(gt_arr).all() and np.isfinite(pred_arr).all()):
        raise ValueError("smape needs finite angles")
    num = np.abs(gt_arr - pred_arr).sum(axis=1)
    den = (gt_arr + pred_arr).sum(axis=1)
    safe = np.where(den == 0, 1.0, den)
    per_image = np.where(den == 0, 0.0, num / safe)
    return float(per_image.mean() * 100.0)
