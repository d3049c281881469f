"""Drawing a phantom X-ray: soft tissue, lungs, bones, metal, and the film's response.

Everything is drawn as attenuation (how much a structure darkens the beam; bone and
metal high, air low) and turned into the displayed brightness at the end, so that
overlapping structures add up as they do on a radiograph. Smooth structures (body,
lungs, heart, gas) are drawn at a quarter of the resolution and scaled up; thin ones
(ribs, pelvis, metal) with PIL at full resolution; the vertebrae as exact
anti-aliased rounded rectangles from the geometry, so that the landmarks sit on the
corners of the drawn bodies.
"""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw
from scipy import ndimage

from .phantom_geometry import SpineGeometry, frame

#: low-resolution factor for the smooth structures
LOW = 4


def _pts(points, scale: float = 1.0) -> list[float]:
    """Points as the flat ``[x0, y0, x1, y1, ...]`` list PIL draws from."""
    return (np.asarray(points, dtype=np.float64).reshape(-1) / scale).tolist()


def _stroke(draw: ImageDraw.ImageDraw, path: np.ndarray, width: float, fill: float) -> None:
    """A smooth thick line along `path` as one polygon (PIL's curved joints are slow)."""
    path = np.asarray(path, dtype=np.float64)
    if width < 1.5 or len(path) < 2:
        draw.line(_pts(path), fill=fill, width=max(1, int(round(width))))
        return
    tangent = np.empty_like(path)
    tangent[1:-1] = path[2:] - path[:-2]
    tangent[0], tangent[-1] = path[1] - path[0], path[-1] - path[-2]
    normal = np.stack([-tangent[:, 1], tangent[:, 0]], 1)
    normal /= np.maximum(np.hypot(normal[:, 0], normal[:, 1]), 1e-9)[:, None]
    half = width / 2.0
    draw.polygon(
        _pts(np.concatenate([path + half * normal, (path - half * normal)[::-1]])), fill=fill
    )


class _Body:
    """The patient's outline and the spine's centre line, shared by the drawing steps."""

    def __init__(self, rng: np.random.Generator, geo: SpineGeometry, height: int, width: int):
        self.h, self.w, self.geo = height, width, geo
        self.y_t1 = float(geo.landmarks[:2, 1].min())
        self.y_l5 = float(geo.landmarks[-2:, 1].max())
        self.cx = float(geo.centres[[0, -1], 0].mean()) + rng.normal(0, 0.01) * width
        scale = rng.uniform(0.92, 1.08)
        # half-width of the body (fraction of the image width) at heights relative to T1..L5
        self._eta = np.array([-0.4, -0.12, -0.03, 0.08, 0.5, 0.78, 0.95, 1.2, 1.6])
        self._hw = np.array([0.16, 0.17, 0.40, 0.46, 0.45, 0.39, 0.42, 0.48, 0.50]) * scale
        self._hw[:2] *= rng.uniform(0.85, 1.15)
        self._thick = np.array(
            [0.28, 0.30, 0.36, 0.38, 0.40, 0.42, 0.44, 0.48, 0.50]
        ) * rng.uniform(0.9, 1.1)
        order = np.argsort(geo.centres[:, 1])
        self._sy, self._sx = geo.centres[order, 1], geo.centres[order, 0]
        self._sw = geo.widths[order]

    def eta(self, y):
        return (np.asarray(y, dtype=float) - self.y_t1) / (self.y_l5 - self.y_t1)

    def half_width(self, y):
        """Half-width of the body in pixels at rows `y`."""
        return np.interp(self.eta(y), self._eta, self._hw) * self.w

    def thickness(self, y):
        return np.interp(self.eta(y), self._eta, self._thick)

    def spine_x(self, y):
        return np.interp(y, self._sy, self._sx)

    def spine_half_width(self, y):
        return np.interp(y, self._sy, self._sw) / 2

    def level_y(self, i: float) -> float:
        """Row of the centre of vertebra `i` (fractional: between two centres)."""
        return float(np.interp(i, np.arange(len(self._sy)), self._sy))


def _low_grid(h: int, w: int) -> tuple[np.ndarray, np.ndarray, tuple[int, int]]:
    hl, wl = -(-h // LOW), -(-w // LOW)
    yy = ((np.arange(hl) + 0.5) * LOW - 0.5)[:, None]
    xx = ((np.arange(wl) + 0.5) * LOW - 0.5)[None, :]
    return yy, xx, (hl, wl)


def _low_mask(shape: tuple[int, int], sigma: float, draw_fn) -> np.ndarray:
    """A soft [0, 1] mask at low resolution from shapes drawn by `draw_fn(ImageDraw)`."""
    img = Image.new("L", (shape[1], shape[0]), 0)
    draw_fn(ImageDraw.Draw(img))
    mask = np.asarray(img, dtype=np.float32) / 255.0
    return ndimage.gaussian_filter(mask, sigma) if sigma > 0 else mask


def _lung_outline(body: _Body, rng: np.random.Generator, side: int) -> np.ndarray:
    h, w = body.h, body.w
    y_apex = body.y_t1 - rng.uniform(0.0, 0.03) * h
    y_dm = body.level_y(9.0 + rng.uniform(-0.6, 0.6)) + (0.02 * h if side > 0 else 0.0)
    y_dl = y_dm + rng.uniform(0.04, 0.07) * h
    top_m, top_l = y_apex + 0.04 * h, y_apex + 0.05 * h
    ys = np.linspace(top_m, y_dm, 8)
    medial = np.stack([body.spine_x(ys) + side * (body.spine_half_width(ys) + 0.02 * w), ys], 1)

    def lateral_x(y):
        return body.cx + side * (body.half_width(y) - 0.05 * w)

    xi = np.linspace(0, 1, 9)[1:]
    x_end = lateral_x(y_dl)
    dome = np.stack(
        [
            medial[-1, 0] + (x_end - medial[-1, 0]) * xi,
            y_dm + (y_dl - y_dm) * xi**2 - 0.02 * h * np.sin(np.pi * xi),
        ],
        1,
    )
    ys = np.linspace(y_dl, top_l, 8)[1:]
    lateral = np.stack([lateral_x(ys), ys], 1)
    xi = np.linspace(0, 1, 9)[1:-1]
    x_l, x_m = lateral[-1, 0], medial[0, 0]
    apex = np.stack(
        [x_l + (x_m - x_l) * xi, top_l + (top_m - top_l) * xi - 0.05 * h * np.sin(np.pi * xi)], 1
    )
    return np.concatenate([medial, dome, lateral, apex])


def soft_tissue(
    rng: np.random.Generator, body: _Body, organs: np.random.Generator | None = None
) -> np.ndarray:
    """Low-resolution attenuation of the body, lungs, heart and gas.

    With a generator `organs`, organ shadows (:func:`organ_shadows`) drawn from it too.
    """
    h, w = body.h, body.w
    yy, xx, shape = _low_grid(h, w)
    hw = body.half_width(yy)
    prof = np.sqrt(np.clip(1.0 - ((xx - body.cx) / hw) ** 2, 0.0, 1.0))
    soft = (body.thickness(yy) * prof).astype(np.float32)

    lungs = _low_mask(
        shape,
        1.3,
        lambda d: [d.polygon(_pts(_lung_outline(body, rng, s), LOW), fill=255) for s in (-1, 1)],
    )
    side_heart = 1 if rng.random() < 0.9 else -1
    hc = np.array([body.spine_x(body.level_y(8)) + side_heart * 0.07 * w, body.level_y(8.5)])
    hr = np.array([rng.uniform(0.14, 0.2) * w, rng.uniform(0.06, 0.08) * h])
    heart = _low_mask(shape, 2.0, lambda d: d.ellipse(_pts([hc - hr, hc + hr], LOW), fill=255))
    texture = ndimage.gaussian_filter(rng.standard_normal(shape).astype(np.float32), 1.0)
    lungs = lungs * (1.0 - 0.9 * heart) * (1.0 + 0.25 * texture)
    soft *= 1.0 - rng.uniform(0.7, 0.85) * np.clip(lungs, 0.0, 1.0)

    # mottled bowel gas over the abdomen, and sometimes the stomach's gas bubble
    eta = body.eta(yy)
    abdomen = np.clip((eta - 0.7) * 4, 0, 1) * np.clip((1.5 - eta) * 4, 0, 1)
    gas = ndimage.gaussian_filter(rng.standard_normal(shape).astype(np.float32), 2.0)
    gas = np.clip(gas / (gas.std() + 1e-6) - 0.8, 0, None)
    soft -= (rng.uniform(0.03, 0.09) * abdomen * gas * prof).astype(np.float32)
    if rng.random() < 0.5:
        c = np.array([body.cx + 0.2 * w * side_heart, body.level_y(10.5) + 0.03 * h])
        r = np.array([rng.uniform(0.05, 0.09) * w, rng.uniform(0.025, 0.04) * h])
        bubble = _low_mask(
            shape, 1.0, lambda d: d.pieslice(_pts([c - r, c + r], LOW), 180, 360, fill=255)
        )
        soft *= 1.0 - rng.uniform(0.3, 0.6) * bubble
    if organs is not None:
        soft += organ_shadows(organs, body, yy, xx)
    return soft


def organ_shadows(
    rng: np.random.Generator, body: _Body, yy: np.ndarray, xx: np.ndarray
) -> np.ndarray:
    """Smooth bright (heart, masses) and dark (gas) blobs lying over the spinal column."""
    geo = body.geo
    out = np.zeros((yy.shape[0], xx.shape[1]), np.float32)
    for _ in range(int(rng.integers(1, 4))):
        kind = rng.choice(["heart", "gas", "mass"], p=[0.35, 0.45, 0.2])
        i = rng.uniform(4, 11) if kind == "heart" else rng.uniform(10, 16)
        y = body.level_y(i)
        x = body.spine_x(y) + rng.uniform(-0.6, 0.6) * geo.widths[int(i)]
        if kind == "heart":
            r, amp = rng.uniform(0.12, 0.22, 2) * body.w, rng.uniform(0.12, 0.25)
        elif kind == "gas":
            r, amp = rng.uniform(0.05, 0.14, 2) * body.w, -rng.uniform(0.12, 0.3)
        else:
            r, amp = rng.uniform(0.05, 0.1, 2) * body.w, rng.uniform(0.15, 0.3)
        e2 = ((xx - x) / r[0]) ** 2 + ((yy - y) / r[1]) ** 2
        sharp = 4.0 if kind == "gas" else 1.5
        out += (amp / (1.0 + e2**sharp)).astype(np.float32)
    return out


def _arc(
    start: np.ndarray, e: np.ndarray, dn: np.ndarray, beta: np.ndarray, length: float
) -> np.ndarray:
    """A path from `start` whose heading (radians from `e` towards `dn`) runs through `beta`."""
    step = (np.cos(beta)[:, None] * e + np.sin(beta)[:, None] * dn) * (length / len(beta))
    return np.concatenate([[start], start + np.cumsum(step, axis=0)])


def draw_ribs_and_clavicles(
    rng: np.random.Generator,
    body: _Body,
    post: ImageDraw.ImageDraw,
    ant: ImageDraw.ImageDraw,
    clavicles: bool,
) -> None:
    """Posterior ribs from T1–T12, faint anterior ribs, and the clavicles."""
    geo, w = body.geo, body.w
    reach_prof = np.array([0.42, 0.62, 0.78, 0.88, 0.94, 0.97, 0.98, 0.97, 0.93, 0.85, 0.6, 0.4])
    density = rng.uniform(0.12, 0.2)
    tau = np.linspace(0.0, 1.0, 16)
    for k in range(12):
        n, t = geo.axes(k)
        phi = 0.6 * geo.tilts[k]
        thick = max(2.0, 0.42 * geo.heights[k])
        for side in (-1, 1):
            e = side * np.array([np.cos(phi), -np.sin(phi)])
            dn = np.array([np.sin(phi), np.cos(phi)])
            o = geo.centres[k] + side * 0.6 * geo.widths[k] * n - 0.2 * geo.heights[k] * t
            wall = body.cx + side * (body.half_width(o[1]) - 0.04 * w)
            reach = max(0.12 * w, reach_prof[k] * side * (wall - o[0])) * rng.uniform(0.95, 1.05)
            # heading from slightly upwards at the spine to steeply down at the chest wall
            b0, b1 = -0.3 + 0.04 * k + rng.normal(0, 0.04), 1.0 + 0.04 * k
            beta = b0 + (b1 - b0) * tau**1.8
            path = _arc(o, e, dn, beta, reach * len(beta) / np.cos(beta).sum())
            _stroke(post, path, thick, density)
            _stroke(post, path[2:-1], 0.45 * thick, 0.6 * density)
            if k < 9:  # anterior rib: the turn at the chest wall, then down and in, faint
                front = _arc(path[-1], e, dn, b1 + (2.6 - b1) * tau[:10] ** 0.6, 0.7 * reach)
                _stroke(ant, front, 0.7 * thick, 0.25 * density)
    if clavicles:
        n, t = geo.axes(0)
        for side in (-1, 1):
            m = (
                geo.centres[0]
                + side * 0.7 * geo.widths[0] * n
                + rng.uniform(0.3, 1.5) * geo.heights[0] * t
            )
            a = np.array(
                [
                    body.cx + side * rng.uniform(0.36, 0.44) * w,
                    m[1] - rng.uniform(0.5, 2.0) * geo.heights[0],
                ]
            )
            tau12 = np.linspace(0, 1, 12)[:, None]
            path = (
                m
                + (a - m) * tau12
                + np.array([0.0, 0.35 * geo.heights[0]]) * np.sin(2 * np.pi * tau12)
            )
            thick = max(2.0, 0.75 * geo.heights[0])
            _stroke(ant, path, thick, 0.25)
            _stroke(ant, path[1:-1], thick / 2, 0.17)


def draw_pelvis(rng: np.random.Generator, body: _Body, draw: ImageDraw.ImageDraw) -> None:
    """Sacrum, iliac wings with their crests, obturator rings and femoral heads."""
    geo, w = body.geo, body.w
    w5, h5 = geo.widths[-1], geo.heights[-1]
    ep, dp = frame(0.3 * geo.tilts[-1] + rng.normal(0, 0.03))
    t5 = geo.axes(len(geo.widths) - 1)[1]
    s0 = geo.centres[-1] + t5 * (0.5 * h5 + rng.uniform(0.15, 0.3) * h5)
    dens = rng.uniform(0.12, 0.18)
    tau = np.linspace(0, 1, 10)[:, None]
    for side in (-1, 1):
        u = s0 + ep * side * 0.5 * w5 + dp * 0.2 * h5
        b = s0 + ep * side * 0.3 * w5 + dp * 1.3 * h5
        crest_top = s0 + ep * side * (0.5 * w5 + 0.12 * w) - dp * rng.uniform(1.0, 1.8) * h5
        asis = s0 + ep * side * (0.5 * w5 + 0.24 * w) - dp * 0.1 * h5
        acet = s0 + ep * side * (0.5 * w5 + 0.16 * w) + dp * 2.8 * h5
        ctrl = crest_top + (crest_top - (u + asis) / 2) * 0.6
        crest = (1 - tau) ** 2 * u + 2 * tau * (1 - tau) * ctrl + tau**2 * asis
        lateral = asis + (acet - asis) * tau + ep * side * 0.04 * w * np.sin(np.pi * tau)
        brim = acet + (b - acet) * tau - ep * side * 0.05 * w * np.sin(np.pi * tau)
        wing = np.concatenate([crest, lateral[1:], brim[1:]])
        centroid = wing.mean(axis=0)
        draw.polygon(_pts(wing), fill=dens)
        draw.polygon(_pts(centroid + 0.8 * (wing - centroid)), fill=0.6 * dens)
        _stroke(draw, crest, max(2.0, 0.01 * w), 2.0 * dens)
        _stroke(draw, brim, max(2.0, 0.008 * w), 1.6 * dens)
        fh = acet + dp * 0.04 * w + ep * side * 0.01 * w
        r = rng.uniform(0.045, 0.055) * w
        draw.line(
            _pts([fh, fh + np.array([side * 0.12 * w, 0.3 * body.h])]),
            fill=1.3 * dens,
            width=int(1.3 * r),
        )
        draw.ellipse(
            _pts([fh - r, fh + r]),
            fill=1.5 * dens,
            outline=1.9 * dens,
            width=max(1, int(0.008 * w)),
        )
        obt = s0 + ep * side * 0.1 * w + dp * 3.9 * h5
        ro = np.array([0.045 * w, 0.035 * body.h])
        draw.ellipse(_pts([obt - ro, obt + ro]), outline=1.2 * dens, width=max(2, int(0.015 * w)))
    sacrum = [
        s0 - ep * 0.5 * w5,
        s0 + ep * 0.5 * w5,
        s0 + ep * 0.13 * w5 + dp * 2.2 * h5,
        s0 - ep * 0.13 * w5 + dp * 2.2 * h5,
    ]
    draw.polygon(_pts(sacrum), fill=1.2 * dens)
    for k in range(4):  # sacral foramina
        for side in (-1, 1):
            c = s0 + dp * (0.45 + 0.42 * k) * h5 + ep * side * (0.27 - 0.04 * k) * w5
            r = max(1.0, 0.05 * w5)
            draw.ellipse(_pts([c - r, c + r]), fill=0.8 * dens)


def add_vertebrae(rng: np.random.Generator, out: np.ndarray, geo: SpineGeometry) -> None:
    """Add the 17 vertebrae (bodies, pedicles, processes) to the attenuation `out` in place."""
    hgt, wid = out.shape
    base = rng.uniform(0.5, 0.65)
    n_v = len(geo.widths)
    for i in range(n_v):
        (n0, n1), (t0, t1) = (v.tolist() for v in geo.axes(i))
        cx, cy = geo.centres[i].tolist()
        w, h = float(geo.widths[i]), float(geo.heights[i])
        dens = base * (0.9 + 0.25 * i / (n_v - 1)) * rng.uniform(0.93, 1.07)
        proc = (0.2 if i < 12 else 0.38) * w
        ext_u, ext_v = 0.5 * w + proc + 2, 0.9 * h + 2
        bx = abs(n0) * ext_u + abs(t0) * ext_v
        by = abs(n1) * ext_u + abs(t1) * ext_v
        c0, c1 = max(int(cx - bx), 0), min(int(cx + bx) + 2, wid)
        r0, r1 = max(int(cy - by), 0), min(int(cy + by) + 2, hgt)
        if c1 <= c0 or r1 <= r0:
            continue
        dx = (np.arange(c0, c1, dtype=np.float32) - np.float32(cx))[None, :]
        dy = (np.arange(r0, r1, dtype=np.float32) - np.float32(cy))[:, None]
        u = dx * n0 + dy * n1
        v = dx * t0 + dy * t1
        # the body: an anti-aliased rounded rectangle with a brighter cortical rim
        r = 0.12 * min(w, h)
        qx, qy = np.abs(u) - (w / 2 - r), np.abs(v) - (h / 2 - r)
        ox, oy = np.maximum(qx, 0), np.maximum(qy, 0)
        d = np.sqrt(ox * ox + oy * oy) + np.minimum(np.maximum(qx, qy), 0) - r
        cover = np.minimum(np.maximum(0.5 - d, 0.0), 1.0)
        rw = max(1.0, 0.07 * h)
        patch = cover * (0.75 + 0.3 * np.exp(-(((d + rw) / rw) ** 2)))
        band = np.exp(-(((v + 0.05 * h) / (0.12 * h)) ** 2))
        for side in (-1, 1):
            # pedicle: an oval near an upper corner, a bright ring round a fainter core
            e2 = ((u - side * 0.3 * w) / (0.085 * w)) ** 2 + ((v + 0.12 * h) / (0.17 * h)) ** 2
            patch += 0.45 * np.exp(-(((e2 - 1) / 0.6) ** 2)) + np.float32(0.15) * (e2 < 1)
            # transverse process, tapering away from the body
            along = np.minimum(np.maximum((side * u - 0.45 * w) / (0.05 * w + proc), 0.0), 1.0)
            patch += 0.9 * np.sqrt(along) * (1.0 - along) * band
        # spinous process, over the lower body and the disc below it
        patch += 0.3 * np.exp(-2 * ((u / (0.06 * w)) ** 2 + ((v - 0.25 * h) / (0.3 * h)) ** 2))
        out[r0:r1, c0:c1] += dens * patch


def draw_necklace(rng: np.random.Generator, body: _Body, draw: ImageDraw.ImageDraw) -> None:
    """A chain of beads hanging across the neck and upper chest."""
    w = body.w
    y_end = max(0.0, body.y_t1 - rng.uniform(0.02, 0.08) * body.h)
    half = body.half_width(y_end) * rng.uniform(0.6, 0.9) if y_end > 0 else 0.12 * w
    depth = body.level_y(rng.uniform(0.5, 4)) - y_end
    cx = body.cx + rng.normal(0, 0.02) * w
    r = rng.uniform(1.2, 4.0) * w / 300
    alpha = np.linspace(0, np.pi, 200)
    curve = np.stack([cx + half * np.cos(alpha), y_end + depth * np.sin(alpha)], 1)
    seg = np.hypot(*np.diff(curve, axis=0).T)
    arc = np.concatenate([[0], np.cumsum(seg)])
    val = rng.uniform(1.5, 2.5)
    draw.line(_pts(curve), fill=0.4 * val, width=1)
    for s in np.arange(0, arc[-1], 2.8 * r):
        c = np.array([np.interp(s, arc, curve[:, 0]), np.interp(s, arc, curve[:, 1])])
        draw.ellipse(_pts([c - r, c + r]), fill=val)
    if rng.random() < 0.5:
        c = curve[100] + np.array([0, 2.5 * r])
        draw.ellipse(_pts([c - 2.2 * r, c + 2.2 * r]), fill=val)


def draw_rods(
    rng: np.random.Generator, geo: SpineGeometry, draw: ImageDraw.ImageDraw, width: int
) -> None:
    """Harrington rods: very bright thin rods along the column, with hooks and screws."""
    n_v = len(geo.widths)
    k1 = int(rng.integers(0, 6))
    k2 = int(rng.integers(min(k1 + 6, n_v - 1), n_v))
    sides = [-1, 1] if rng.random() < 0.5 else [int(rng.choice([-1, 1]))]
    thick = max(2, int(round(rng.uniform(0.01, 0.016) * width)))
    val = rng.uniform(2.5, 3.5)
    rods = {}
    for side in sides:
        idx = np.arange(k1, k2 + 1)
        pts = np.array([geo.centres[i] + side * 0.28 * geo.widths[i] * geo.axes(i)[0] for i in idx])
        top = pts[0] - geo.axes(k1)[1] * 0.8 * geo.heights[k1]
        bottom = pts[-1] + geo.axes(k2)[1] * 0.8 * geo.heights[k2]
        pts = np.concatenate([[top], pts, [bottom]])
        coef = np.polyfit(pts[:, 1], pts[:, 0], 2)  # rods are bent only gently
        ys = np.linspace(top[1], bottom[1], 24)
        path = np.stack([np.polyval(coef, ys), ys], 1)
        rods[side] = (coef, ys)
        _stroke(draw, path, thick, val)
        levels = sorted({k1, k2, *rng.choice(idx, size=min(3, len(idx)), replace=False).tolist()})
        for i in levels:
            n, t = geo.axes(i)
            y = geo.centres[i][1] - 0.1 * geo.heights[i]
            p = np.array([np.polyval(coef, y), y])
            tip = p - side * n * 0.3 * geo.widths[i]
            draw.line(
                _pts([p + side * n * 0.08 * geo.widths[i], tip]), fill=val, width=int(thick * 1.6)
            )
            hr = 1.3 * thick
            draw.ellipse(_pts([p - hr, p + hr]), fill=val)
    if len(rods) == 2:
        y = geo.centres[(k1 + k2) // 2][1]
        xs = [np.polyval(rods[s][0], y) for s in (-1, 1)]
        draw.line([(xs[0], y), (xs[1], y)], fill=val, width=thick)


#: standard normal quantiles of the 256 byte values: Gaussian noise from random bytes,
#: several times cheaper than drawing normals
_NORMAL_BYTES = None


def _noise(rng: np.random.Generator, shape: tuple[int, int], sigma: float) -> np.ndarray:
    """Zero-mean noise of standard deviation about `sigma`, drawn from random bytes."""
    global _NORMAL_BYTES
    if _NORMAL_BYTES is None:
        from scipy.special import ndtri

        q = ndtri((np.arange(256) + 0.5) / 256)
        _NORMAL_BYTES = (q / q.std()).astype(np.float32)
    raw = np.frombuffer(rng.bytes(shape[0] * shape[1]), dtype=np.uint8).reshape(shape)
    return (_NORMAL_BYTES * np.float32(sigma))[raw]


#: attenuation covered by the film's look-up table (metal beyond it is white anyway)
_ATT_MAX = 6.0


def film(rng: np.random.Generator, att: np.ndarray, artefacts: set[str]) -> np.ndarray:
    """Attenuation → 8-bit brightness, with the film's response, blur, noise and contrast.

    The response and any contrast change are applied through look-up tables: a
    phantom must cost milliseconds. Every parameter is drawn whether or not its
    artefact is asked for, so that the artefacts change nothing else.
    """
    h, w = att.shape
    heel, unsharp = rng.uniform(-0.1, 0.1), rng.uniform(0.6, 0.9)
    bg, gain, gamma = rng.uniform(0.02, 0.07), rng.uniform(0.9, 1.3), rng.uniform(0.85, 1.2)
    blur = rng.uniform(1.2, 3.0) * max(w, 200) / 300
    sigma = rng.uniform(0.025, 0.06) if "noise" in artefacts else rng.uniform(0.004, 0.01)
    c_gamma = rng.uniform(0.5, 0.8) if rng.random() < 0.5 else rng.uniform(1.3, 1.9)
    c_gain, c_offset = rng.uniform(0.55, 1.35), rng.uniform(-0.08, 0.12)

    att *= (1.0 + heel * (np.arange(h, dtype=np.float32) / h - 0.5))[:, None]
    # the system's unsharpness: a 3-tap Gaussian each way (also smooths PIL's hard edges)
    tap = np.exp(-0.5 / unsharp**2)
    weights = np.array([tap, 1.0, tap]) / (1.0 + 2.0 * tap)
    att = ndimage.correlate1d(ndimage.correlate1d(att, weights, axis=0), weights, axis=1)
    grid = np.linspace(0.0, _ATT_MAX, 2048)
    lut = (bg + (1.0 - bg) * (1.0 - np.exp(-gain * grid))) ** gamma
    idx = np.clip(att * (2047 / _ATT_MAX), 0, 2047).astype(np.int32)
    img = lut.astype(np.float32)[idx]
    if "blur" in artefacts:
        img = ndimage.gaussian_filter(img, blur)
    img += _noise(rng, img.shape, sigma)
    levels = np.linspace(0.0, 1.0, 1024)
    if "contrast" in artefacts:
        levels = (levels**c_gamma - 0.5) * c_gain + 0.5 + c_offset
    out_lut = np.clip(np.rint(levels * 255.0), 0, 255).astype(np.uint8)
    return out_lut[np.clip(img * 1023.0 + 0.5, 0, 1023).astype(np.int32)]
