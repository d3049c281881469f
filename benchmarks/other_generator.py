"""A second, deliberately different X-ray-like generator, to test generalisation.

The model must segment spines in images it was not tuned on. This generator shares no
code with ``napari_spine_seg.data.phantom`` and looks different on purpose:

* taller, larger images (900–1500 rows, height 2.2–3.2 × width), 8-bit JPEG at a lower
  quality;
* vertebrae as rounded trapezoids with a bright cortical rim, a darker core and two
  pedicle "eyes", of varying size, with a wedge tilt that follows the curve; discs
  darker than in the phantoms;
* the curve is a sum of two random sines (not knots), with lateral shift of the whole
  column, and sometimes a slight overall rotation;
* body as a soft ellipse, lungs as two dark blobs, a few straight rib-like bars, a
  bright "marker letter" block in a corner, vertical exposure gradient, film grain,
  Poisson-like noise, vignetting, random inversion of the background level.

It writes the AASCE layout (``data/<split>/*.jpg``, ``labels/<split>/*.jpg.mat`` with
``p2`` and the three CSV files) with scipy and Pillow directly. Its ``angles.csv`` holds
:func:`napari_spine_seg.spine.cobb.cobb_angles` of the written landmarks (the challenge's
reference computation, the only code it shares with the package), so that
``spine-seg evaluate`` scores Cobb angles on it too.

Run ``python benchmarks/other_generator.py OUT [--train 40] [--test 16] [--seed 7]
[--vertebra-tilt DEG]``.
"""

from __future__ import annotations

import argparse
import io
import os
from pathlib import Path

import numpy as np
import scipy.io
from PIL import Image
from scipy import ndimage

from fine_drawing import FINENESS, FineLayers, add_antialias_option
from napari_spine_seg.spine.cobb import cobb_angles

N_VERT = 17
#: seed of the test set every benchmark scores on (the defaults were measured on it)
TEST_SEED = 7


def spine_landmarks(
    rng: np.random.Generator, h: int, w: int, vertebra_tilt: float | None = None
) -> np.ndarray:
    """(68, 2) x, y corners: TL, TR, BL, BR per vertebra, top to bottom.

    Each vertebra is tilted by 60–100 % of the curve's slope and wedged by up to ±15 %
    of its half height (about ±4° of tilt of its own); with `vertebra_tilt` (degrees)
    it is tilted like the curve plus a tilt of its own drawn from N(0, vertebra_tilt),
    and not wedged, as a little independent tilt of real vertebrae.
    """
    top = rng.uniform(0.07, 0.14) * h
    bottom = rng.uniform(0.70, 0.80) * h
    # vertebra heights grow down the column; discs between them
    rel = np.linspace(0.75, 1.35, N_VERT) * rng.uniform(0.9, 1.1, N_VERT)
    disc = rng.uniform(0.22, 0.38)
    unit = (bottom - top) / (rel.sum() + disc * rel[:-1].sum())
    heights = rel * unit
    discs = disc * rel[:-1] * unit
    centres_y = []
    y = top
    for i in range(N_VERT):
        centres_y.append(y + heights[i] / 2)
        y += heights[i] + (discs[i] if i < N_VERT - 1 else 0)
    centres_y = np.array(centres_y)
    u = (centres_y - top) / (bottom - top)
    amp1, amp2 = rng.uniform(-0.09, 0.09) * w, rng.uniform(-0.05, 0.05) * w
    ph1, ph2 = rng.uniform(0, 2 * np.pi, 2)
    f2 = rng.uniform(1.2, 2.2)
    cx = w / 2 + rng.uniform(-0.04, 0.04) * w
    xs = (
        cx
        + amp1 * np.sin(np.pi * u + ph1)
        - amp1 * np.sin(ph1)
        + amp2 * np.sin(f2 * np.pi * u + ph2)
    )
    dx = np.gradient(xs, centres_y)
    widths = np.linspace(0.095, 0.16, N_VERT) * w * rng.uniform(0.85, 1.15)
    pts = []
    # drawn from their own stream, so that without the option nothing changes
    own = None
    if vertebra_tilt is not None:
        own = np.random.default_rng(rng.integers(2**32)).normal(0.0, vertebra_tilt, N_VERT)
    for i in range(N_VERT):
        theta = np.arctan(dx[i]) * rng.uniform(0.6, 1.0)
        hw, hh = widths[i] / 2, heights[i] / 2
        wedge = rng.uniform(-0.15, 0.15) * hh
        if own is not None:
            theta, wedge = np.arctan(dx[i]) + np.deg2rad(own[i]), 0.0
        c, s = np.cos(theta), np.sin(theta)
        right = np.array([c, s])  # along the endplate
        down = np.array([-s, c])
        centre = np.array([xs[i], centres_y[i]])
        tl = centre - hw * right - (hh + wedge) * down
        tr = centre + hw * right - (hh - wedge) * down
        bl = centre - hw * right + (hh - wedge) * down
        br = centre + hw * right + (hh + wedge) * down
        pts.extend([tl, tr, bl, br])
    return np.array(pts, dtype=np.float64)


def _render(
    rng: np.random.Generator,
    h: int,
    w: int,
    pts: np.ndarray,
    grain: bool = True,
    antialias: int = FINENESS,
) -> np.ndarray:
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    # body: soft ellipse
    body = np.exp(-(((xx - w / 2) / (0.42 * w)) ** 6) - (((yy - 0.55 * h) / (0.7 * h)) ** 8))
    img = 0.15 + 0.35 * body
    # lungs: two dark blobs
    for side in (-1, 1):
        lx, ly = w / 2 + side * 0.2 * w, 0.33 * h
        img -= 0.18 * np.exp(-(((xx - lx) / (0.13 * w)) ** 2) - (((yy - ly) / (0.16 * h)) ** 2))
    # at the image's own pixels each pixel is in or out of a shape (Pillow floors a
    # vertex to a whole pixel), and an edge steps by whole pixels; `antialias` draws the
    # shapes that many times finer as well and averages them down. The coarse drawing
    # still sets the counting noise: Poisson draws take a varying share of the random
    # stream, and a set drawn either way must hold the same spines and noise
    fine = int(antialias)
    draw = FineLayers(h, w, [1] if fine == 1 else [1, fine])
    # straight rib-like bars
    for k in range(rng.integers(6, 11)):
        y0 = 0.12 * h + k * 0.04 * h
        for side in (-1, 1):
            x0 = w / 2 + side * 0.05 * w
            x1 = w / 2 + side * rng.uniform(0.3, 0.4) * w
            draw.line(
                [(x0, y0), (x1, y0 + rng.uniform(0.02, 0.06) * h)], fill=0.12, width=max(2, w // 80)
            )
    # vertebrae: rim + core + pedicles
    groups = pts.reshape(N_VERT, 4, 2)
    for g in groups:
        poly = [tuple(g[0]), tuple(g[1]), tuple(g[3]), tuple(g[2])]
        draw.polygon(poly, fill=rng.uniform(0.35, 0.5))
        centre = g.mean(axis=0)
        inner = [tuple(centre + 0.72 * (p - centre)) for p in np.array(poly)]
        draw.polygon(inner, fill=rng.uniform(0.22, 0.32))
        eye = 0.09 * np.linalg.norm(g[1] - g[0])
        for f in (0.28, 0.72):
            e = g[0] + f * (g[1] - g[0]) + 0.35 * (g[2] - g[0])
            draw.ellipse([e[0] - eye, e[1] - eye * 1.3, e[0] + eye, e[1] + eye * 1.3], fill=0.5)
        # spinous process, a faint blob below the body centre
        sp = centre + 0.1 * (g[2] - g[0])
        draw.ellipse([sp[0] - eye, sp[1] - eye, sp[0] + eye, sp[1] + eye], fill=0.4)
    # a marker letter block
    cx = rng.choice([0.08, 0.8]) * w
    draw.rectangle([cx, 0.03 * h, cx + 0.1 * w, 0.03 * h + 0.05 * w], fill=0.9)
    blur = rng.uniform(0.6, 2.0)
    imgs = [img + ndimage.gaussian_filter(shapes, blur) for shapes in draw.images()]
    # exposure gradient, vignetting, noise, grain
    exposure = 1 + rng.uniform(-0.35, 0.35) * (yy / h - 0.5)
    vignette = 1 - rng.uniform(0.0, 0.4) * (((xx - w / 2) / w) ** 2 + ((yy - h / 2) / h) ** 2)
    for i, one in enumerate(imgs):
        one *= exposure
        one *= vignette
        imgs[i] = np.clip(one, 0, None)
    img = imgs[-1]
    counts = rng.uniform(40, 200)
    # drawn either way, so that an image without grain is the same image otherwise
    counted = rng.poisson(imgs[0] * counts) / counts
    if fine != 1:  # the same noise, on the finer drawing
        counted = img + (counted - imgs[0])
    film = np.asarray(
        Image.fromarray(rng.normal(0, 1, (h // 4, w // 4)).astype(np.float32), mode="F").resize(
            (w, h)
        )
    )
    film_amount = rng.uniform(0.0, 0.05)
    if grain:
        img = counted + film_amount * film
    gamma = rng.uniform(0.6, 1.5)
    img = np.clip(img / max(np.percentile(img, 99.5), 1e-6), 0, 1) ** gamma
    lo = rng.uniform(0.0, 0.2)
    img = lo + (rng.uniform(0.7, 1.0) - lo) * img
    return (np.clip(img, 0, 1) * 255).astype(np.uint8)


def image_size(rng: np.random.Generator) -> tuple[int, int]:
    """The ``(H, W)`` of one image: 900–1500 rows, 2.2–3.2 times as tall as wide."""
    h = int(rng.integers(900, 1501))
    return h, int(round(h / rng.uniform(2.2, 3.2)))


def other_xray(
    rng: np.random.Generator,
    vertebra_tilt: float | None = None,
    scale: float = 1.0,
    grain: bool = True,
    antialias: int = FINENESS,
) -> tuple[np.ndarray, np.ndarray]:
    """One image ``(H, W) uint8`` and its ``(68, 2)`` landmarks (`vertebra_tilt`: see
    :func:`spine_landmarks`; `scale`, `grain` and `antialias`: :func:`write_other_set`)."""
    h, w = image_size(rng)
    h, w = int(round(h * scale)), int(round(w * scale))
    pts = spine_landmarks(rng, h, w, vertebra_tilt)
    return _render(rng, h, w, pts, grain, antialias), pts


def write_other_set(
    out: str | os.PathLike,
    n_train: int = 40,
    n_test: int = 16,
    seed: int = TEST_SEED,
    vertebra_tilt: float | None = None,
    scale: float = 1.0,
    grain: bool = True,
    antialias: int = FINENESS,
) -> Path:
    """Write an AASCE-layout set of :func:`other_xray` images and return its root.

    `vertebra_tilt` (degrees): each vertebra tilted like the curve plus N(0, it) of its
    own instead of the default 60–100 % of the slope and a wedge (:func:`spine_landmarks`).
    `scale`: each image drawn with `scale` times the rows and columns, the same spines
    and the same random draws otherwise (the grain per pixel is the same): what the
    number of pixels across a body is worth. `grain` False: no photon counting noise and
    no film grain, the same images otherwise (what the grain is worth). `antialias` k:
    the bodies, ribs and markers drawn k times finer and averaged down, so that a body
    lies where its landmarks say to a k-th of a pixel (an X-ray's edges are not
    stepped); 1 draws them at the image's pixels, every corner floored to a whole pixel,
    as every set was drawn until 2026-12-01 (the same spines and noise otherwise).
    """
    root = Path(out)
    rng = np.random.default_rng(seed)
    for split, n in (("training", n_train), ("test", n_test)):
        data, labels = root / "data" / split, root / "labels" / split
        data.mkdir(parents=True, exist_ok=True)
        labels.mkdir(parents=True, exist_ok=True)
        names, rows, angles = [], [], []
        for k in range(n):
            image, pts = other_xray(rng, vertebra_tilt, scale, grain, antialias)
            name = f"other {split} {k:04d} PA.jpg"
            buf = io.BytesIO()
            Image.fromarray(image).save(buf, format="JPEG", quality=int(rng.integers(70, 90)))
            (data / name).write_bytes(buf.getvalue())
            scipy.io.savemat(labels / f"{name}.mat", {"p2": pts})
            h, w = image.shape
            names.append(name)
            rows.append(np.concatenate([pts[:, 0] / w, pts[:, 1] / h]))
            angles.append(cobb_angles(pts, h))
        (labels / "filenames.csv").write_text("".join(f"{n}\n" for n in names))
        (labels / "landmarks.csv").write_text(
            "".join(",".join(f"{v:.6f}" for v in r) + "\n" for r in rows)
        )
        (labels / "angles.csv").write_text(
            "".join(",".join(f"{v:.6f}" for v in a) + "\n" for a in angles)
        )
    return root


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out")
    parser.add_argument("--train", type=int, default=40)
    parser.add_argument("--test", type=int, default=16)
    parser.add_argument("--seed", type=int, default=TEST_SEED)
    parser.add_argument(
        "--vertebra-tilt",
        type=float,
        default=None,
        metavar="DEG",
        help="tilt each vertebra like the curve plus N(0, DEG) degrees of its own, unwedged",
    )
    parser.add_argument(
        "--scale", type=float, default=1.0, help="draw each image with SCALE times the pixels"
    )
    parser.add_argument(
        "--no-grain", dest="grain", action="store_false", help="no counting noise, no film grain"
    )
    add_antialias_option(parser)
    args = parser.parse_args(argv)
    write_other_set(
        args.out,
        args.train,
        args.test,
        args.seed,
        args.vertebra_tilt,
        args.scale,
        args.grain,
        args.antialias,
    )
    print(args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
