"""Geometry of a phantom spine: image size, curve, and the 17 vertebrae with their corners.

The column is built along its arc length: a tilt profile ``theta(u)`` (``u`` from 0 at
the top of T1 to 1 at the bottom of L5) gives the direction of the centre line, whose
integral places the vertebra centres. Each vertebra is a rectangle perpendicular to the
centre line at its centre, so its tilt follows the curve's slope and the Cobb angle of
the phantom is, to within a little jitter, the range of the tilt profile.

Angles are in radians inside this module; (x, y) are image pixels, y downwards.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..trimap import N_VERTEBRAE

#: the curve kinds a phantom spine can have
CURVE_KINDS = ("straight", "C", "S")
#: largest Cobb angle (degrees) a phantom is drawn with; beyond ~90 deg the corner
#: order (left/right by x) of a strongly tilted vertebra would no longer hold
MAX_AMPLITUDE = 85.0


@dataclass(frozen=True)
class SpineGeometry:
    """The drawn spine of one phantom.

    Attributes
    ----------
    centres : (17, 2) ndarray
        Vertebra body centres ``(x, y)``.
    tilts : (17,) ndarray
        Vertebra tilts in radians; 0 is level, positive turns the body's downward
        axis towards +x.
    heights, widths : (17,) ndarray
        Body sizes in pixels.
    landmarks : (68, 2) ndarray
        Corners ``(x, y)``: top-left, top-right, bottom-left, bottom-right per vertebra.
    kind : str
        One of :data:`CURVE_KINDS`.
    amplitude : float
        The Cobb angle the curve was drawn with, degrees (before the per-vertebra jitter).
    """

    centres: np.ndarray
    tilts: np.ndarray
    heights: np.ndarray
    widths: np.ndarray
    landmarks: np.ndarray
    kind: str
    amplitude: float

    def axes(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        """Unit vectors ``(n, t)`` of vertebra `i`: across to its right, and down the column."""
        return frame(self.tilts[i])


def frame(tilt: float) -> tuple[np.ndarray, np.ndarray]:
    """Unit vectors across (to the right) and down a body tilted by `tilt` radians."""
    c, s = np.cos(tilt), np.sin(tilt)
    return np.array([c, -s]), np.array([s, c])


def vertebra_corners(centre: np.ndarray, tilt: float, width: float, height: float) -> np.ndarray:
    """Corners (TL, TR, BL, BR) ``(x, y)`` of a rectangle centred at `centre`, tilted by `tilt`."""
    n, t = frame(tilt)
    hw, hh = width / 2.0, height / 2.0
    return np.array(
        [
            centre - hw * n - hh * t,
            centre + hw * n - hh * t,
            centre - hw * n + hh * t,
            centre + hw * n + hh * t,
        ]
    )


def image_size(rng: np.random.Generator, height: int | None, width: int | None) -> tuple[int, int]:
    """Pick ``(height, width)``: tall, height 2–3x width, by default 500–900 x 200–400."""
    ratio = rng.uniform(2.0, 3.0)
    if height is None and width is None:
        height = int(rng.integers(500, 901))
        width = int(np.clip(round(height / ratio), 200, 400))
    elif height is None:
        height = int(round(width * ratio))
    elif width is None:
        width = int(round(height / ratio))
    height, width = int(height), int(width)
    if height < 128 or width < 48:
        raise ValueError(f"a phantom must be at least 128 x 48 pixels, not {height} x {width}")
    return height, width


def _cosine_knots(knots_u: np.ndarray, values: np.ndarray, u: np.ndarray) -> np.ndarray:
    """Interpolate `values` at `knots_u` with half-cosine steps (flat at every knot)."""
    u = np.clip(u, knots_u[0], knots_u[-1])
    k = np.clip(np.searchsorted(knots_u, u, side="right") - 1, 0, len(knots_u) - 2)
    span = knots_u[k + 1] - knots_u[k]
    frac = (u - knots_u[k]) / np.where(span > 0, span, 1.0)
    w = 0.5 - 0.5 * np.cos(np.pi * frac)
    return values[k] * (1 - w) + values[k + 1] * w


def tilt_knots(
    rng: np.random.Generator, kind: str, amplitude: float
) -> tuple[np.ndarray, np.ndarray]:
    """Knots ``(u, theta)`` of the tilt profile of a `kind` curve of `amplitude` degrees.

    The range of theta over the knots is the amplitude (the Cobb angle of the main curve).
    """
    a = np.deg2rad(amplitude)
    if kind == "straight":
        u = np.array([0.0, 0.35, 0.7, 1.0])
        theta = rng.uniform(-0.5, 0.5, 4) * a
    elif kind == "C":
        u0, u1 = rng.uniform(0.0, 0.3), rng.uniform(0.7, 1.0)
        u = np.array([0.0, u0, u1, 1.0])
        theta = np.array([rng.uniform(0.3, 1.0), 1.0, -1.0, -rng.uniform(0.3, 1.0)]) * a / 2
        if u0 < 0.05:
            theta[0] = theta[1]
        if u1 > 0.95:
            theta[3] = theta[2]
    elif kind == "S":
        u0, um, u1 = rng.uniform(0.0, 0.15), rng.uniform(0.4, 0.6), rng.uniform(0.85, 1.0)
        mid = rng.uniform(0.4, 0.6) * a
        first = a - mid  # the main curve: first + mid = a
        second = max(rng.uniform(0.55, 1.0) * a - mid, 0.15 * a)
        u = np.array([0.0, u0, um, u1, 1.0])
        theta = np.array(
            [first * rng.uniform(0.4, 1.0), first, -mid, second, second * rng.uniform(0.4, 1.0)]
        )
        if rng.random() < 0.5:  # the larger curve lumbar instead of thoracic
            u, theta = 1.0 - u[::-1], theta[::-1].copy()
    else:
        raise ValueError(f"unknown curve kind {kind!r}; expected one of {', '.join(CURVE_KINDS)}")
    if rng.random() < 0.5:
        theta = -theta
    return u, theta


def _place(
    knots: tuple[np.ndarray, np.ndarray],
    heights: np.ndarray,
    discs: np.ndarray,
    widths: np.ndarray,
    jitter: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Centres (from an origin at the top of T1) and tilts of the bodies along the curve."""
    length = heights.sum() + discs.sum()
    s_grid = np.linspace(0.0, 1.3 * length, 1301)
    theta_grid = _cosine_knots(*knots, s_grid / length)
    ds = s_grid[1] - s_grid[0]
    step = np.stack([np.sin(theta_grid), np.cos(theta_grid)], axis=1) * ds
    path = np.concatenate([[[0.0, 0.0]], np.cumsum((step[1:] + step[:-1]) / 2, axis=0)])
    centres, tilts = np.empty((N_VERTEBRAE, 2)), np.empty(N_VERTEBRAE)
    s = 0.0
    for i in range(N_VERTEBRAE):
        sc = s + heights[i] / 2
        tilts[i] = float(np.interp(sc, s_grid, theta_grid)) + jitter[i]
        centres[i] = [np.interp(sc, s_grid, path[:, 0]), np.interp(sc, s_grid, path[:, 1])]
        if i + 1 < N_VERTEBRAE:
            nxt = sc + heights[i] / 2 + discs[i] + heights[i + 1] / 2
            dtheta = abs(float(np.interp(nxt, s_grid, theta_grid)) + jitter[i + 1] - tilts[i])
            # on the concave side the bodies close up; keep at least 40% of the disc open
            squeeze = 0.5 * max(widths[i], widths[i + 1]) * np.tan(dtheta)
            s = sc + heights[i] / 2 + discs[i] + max(0.0, squeeze - 0.6 * discs[i])
    return centres, tilts


def _lean_less(centres: np.ndarray, tilts: np.ndarray, keep: float):
    """Turn the column so that it leans little overall, as a standing patient's does:
    only the fraction `keep` of the line from first to last centre's lean is left."""
    lean = np.arctan2(*(centres[-1] - centres[0]))
    phi = -lean * (1.0 - keep)
    c, s = np.cos(phi), np.sin(phi)
    return centres @ np.array([[c, -s], [s, c]]), tilts + phi


def spine_geometry(
    rng: np.random.Generator, height: int, width: int, kind: str, amplitude: float
) -> SpineGeometry:
    """Lay out 17 vertebrae with a `kind` curve of about `amplitude` degrees Cobb.

    The spine spans roughly 10 % to 75 % of the image height, is centred in the width and
    is kept inside the image: when a large curve would leave it, the amplitude is
    reduced step by step (the returned `amplitude` is what was drawn).

    Parameters
    ----------
    rng : numpy.random.Generator
    height, width : int
        Image size in pixels.
    kind : {"straight", "C", "S"}
    amplitude : float
        Cobb angle of the main curve in degrees, at most :data:`MAX_AMPLITUDE`.

    Returns
    -------
    SpineGeometry
    """
    if kind not in CURVE_KINDS:
        raise ValueError(f"unknown curve kind {kind!r}; expected one of {', '.join(CURVE_KINDS)}")
    amplitude = float(np.clip(amplitude, 0.0, MAX_AMPLITUDE))
    t = np.arange(N_VERTEBRAE) / (N_VERTEBRAE - 1)
    rel_h = (1.0 + 0.8 * t**1.1) * rng.uniform(0.95, 1.05, N_VERTEBRAE)
    rel_d = (
        0.24
        * (rel_h[:-1] + rel_h[1:])
        / 2
        * (0.8 + 0.5 * t[:-1])
        * rng.uniform(0.85, 1.15, N_VERTEBRAE - 1)
    )
    aspect = np.linspace(1.35, 1.55, N_VERTEBRAE) * rng.uniform(0.92, 1.08)
    y_top, y_bottom = height * rng.uniform(0.09, 0.14), height * rng.uniform(0.70, 0.77)
    jitter_deg = rng.normal(0.0, 0.7, N_VERTEBRAE)
    knot_rng_state = rng.bit_generator.state
    lean_keep, x_off = rng.uniform(0.0, 0.4), rng.normal(0.0, 0.015)
    for _ in range(30):
        rng.bit_generator.state = knot_rng_state  # the same curve shape, only smaller
        knots = tilt_knots(rng, kind, amplitude)
        mean_cos = float(np.mean(np.cos(_cosine_knots(*knots, np.linspace(0, 1, 65)))))
        scale = (y_bottom - y_top) / mean_cos / (rel_h.sum() + rel_d.sum())
        heights, discs = rel_h * scale, rel_d * scale
        widths = heights * aspect
        centres, tilts = _place(knots, heights, discs, widths, np.deg2rad(jitter_deg))
        centres, tilts = _lean_less(centres, tilts, lean_keep)
        corners = np.stack(
            [
                vertebra_corners(centres[i], tilts[i], widths[i], heights[i])
                for i in range(N_VERTEBRAE)
            ]
        )
        shift = np.array(
            [
                width * (0.5 + x_off) - (centres[0, 0] + centres[-1, 0]) / 2,
                y_top - corners[0, :2, 1].min(),
            ]
        )
        corners += shift
        x = corners[..., 0]
        margin = 0.06 * width
        if x.min() >= margin and x.max() <= width - margin or amplitude < 1.0:
            break
        amplitude *= 0.9
    return SpineGeometry(
        centres=centres + shift,
        tilts=tilts,
        heights=heights,
        widths=widths,
        landmarks=corners.reshape(-1, 2),
        kind=kind,
        amplitude=amplitude,
    )
