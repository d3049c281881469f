"""An independent generator of AASCE-layout spine sets with known Cobb angles.

``napari_spine_seg.data.phantom`` draws the phantoms the model is trained and tuned on;
measuring the Cobb angles on those alone would test the method on the very shapes it was
tuned with. This module draws spines another way and shares no code with the phantoms
(only the reference Cobb computation and the ``.mat`` writer of the package):

* **curve**: the column's centre line is a natural cubic spline through 3–5 random
  control points (C, S and three-curve spines, the larger curve thoracic or lumbar), plus
  a small overall lean; its amplitude is scaled, by a secant search, until the
  reference Cobb angle of the landmarks hits a target drawn from a realistic mix of
  severities (:data:`SEVERITIES`: mostly 10–60°, a few near-straight spines);
* **vertebrae**: trapezoids (end plates of different widths) with a thoracic/lumbar
  step in height (L1–L5 clearly taller than T1–T12), wedged on the concave side of the
  curve, each tilted like the curve plus a little jitter (as a reader's annotation
  wobbles); discs a growing fraction of the bodies;
* **image**: white-bone-on-grey radiograph: a soft-tissue band, ribs as polylines from
  each thoracic vertebra, iliac crests, bodies with a bright cortical rim and two
  pedicle ovals, then blur, a horizontal exposure band, Gaussian and salt noise and JPEG
  at quality 80–95.

The angles in ``angles.csv`` are :func:`napari_spine_seg.spine.cobb.cobb_angles` of the
written landmarks, so they are what the challenge's reference would report.

Run ``python benchmarks/other_spines.py OUT [--test 16] [--train 0] [--seed 2024]
[--strong | --main-range LO HI]``: ``--strong`` writes only strongly curved spines (main
Cobb angle 30–75°, :data:`STRONG`) instead of the severity mix.
"""

from __future__ import annotations

import argparse
import io
import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image
from scipy import ndimage
from scipy.interpolate import CubicSpline

from fine_drawing import FINENESS, FineLayers, add_antialias_option
from napari_spine_seg.atomic import write_bytes_atomic, write_text_atomic
from napari_spine_seg.data.aasce import write_landmarks_mat
from napari_spine_seg.spine.cobb import cobb_angles

N_VERT = 17

#: severity classes: (name, main Cobb range in degrees, share of a set). Roughly the real
#: set's mix: most spines have a 10-60 deg main curve, a few are nearly straight
SEVERITIES = (
    ("near-straight", (1.0, 6.0), 1 / 16),
    ("mild", (8.0, 16.0), 3 / 16),
    ("moderate", (16.0, 40.0), 8 / 16),
    ("severe", (40.0, 65.0), 4 / 16),
)
#: main Cobb range (degrees) of a strongly curved set (``--strong``)
STRONG = (30.0, 75.0)
#: seed of the strongly curved test set of ``bench_bending.py`` and ``bench_vertebrae.py``
#: (the Cobb benchmark's mixed set is seed 2024)
STRONG_SEED = 31
#: curve families and their shares
SHAPES = (("C", 0.4), ("S", 0.45), ("triple", 0.15))
#: standard deviation of each vertebra's tilt about the curve's, degrees
TILT_JITTER = 0.8
#: most change of tilt between neighbouring vertebrae, degrees (a 60 deg curve spreads
#: over six or more vertebrae)
MAX_BEND = 12.0


@dataclass(frozen=True)
class Spine:
    """One generated spine X-ray.

    Attributes
    ----------
    image : (H, W) uint8 ndarray
    landmarks : (68, 2) ndarray
        ``(x, y)``, corners TL, TR, BL, BR per vertebra, top to bottom.
    angles : (3,) ndarray
        Reference Cobb angles of `landmarks`, degrees, ``angles.csv`` order.
    meta : dict
        Shape, severity class and the targeted main angle.
    """

    image: np.ndarray
    landmarks: np.ndarray
    angles: np.ndarray
    meta: dict


# ----------------------------------------------------------------------------------------
# geometry
# ----------------------------------------------------------------------------------------


def _profile(rng: np.random.Generator, shape: str) -> CubicSpline:
    """Unit lateral profile g(v), v in [0, 1] down the column, through random knots."""
    if shape == "C":
        apex = rng.uniform(0.3, 0.7)
        v = [0.0, apex, 1.0]
        g = [0.0, 1.0, rng.uniform(-0.3, 0.3)]
    elif shape == "S":
        a = rng.uniform(0.2, 0.4)
        b = rng.uniform(0.6, 0.8)
        v = [0.0, a, b, 1.0]
        g = [0.0, 1.0, -rng.uniform(0.5, 1.4), rng.uniform(-0.2, 0.2)]
    else:
        v = [0.0, *np.sort(rng.uniform([0.1, 0.4, 0.7], [0.3, 0.6, 0.9])), 1.0]
        g = [0.0, 1.0, -rng.uniform(0.6, 1.2), rng.uniform(0.4, 0.9), 0.0]
    if rng.random() < 0.5:
        g = [-x for x in g]
    return CubicSpline(v, g, bc_type="natural")


def _sizes(rng: np.random.Generator, length: float) -> tuple[np.ndarray, np.ndarray]:
    """Vertebra heights and disc heights (px) filling `length` along the column."""
    thoracic = np.linspace(1.0, 1.3, 12)
    lumbar = np.linspace(1.55, 1.75, 5)
    rel = np.concatenate([thoracic, lumbar]) * rng.uniform(0.96, 1.04, N_VERT)
    disc = rng.uniform(0.18, 0.3) * np.linspace(0.8, 1.3, N_VERT - 1)
    discs = disc * (rel[:-1] + rel[1:]) / 2
    scale = length / (rel.sum() + discs.sum())
    return rel * scale, discs * scale


def _centre_curve(
    profile: CubicSpline, amp: float, lean: float, top: float, cx: float, length: float
):
    """Dense ``(x, y)`` of the centre line whose arc length from `top` is `length`."""
    span = length
    for _ in range(3):  # the curve's length exceeds its height: shrink the height to fit
        y = np.linspace(top, top + span, 2001)
        v = (y - top) / span
        x = cx + lean * (y - top) + amp * profile(v)
        arc = np.concatenate([[0.0], np.cumsum(np.hypot(np.diff(x), np.diff(y)))])
        span *= length / arc[-1]
    y = np.linspace(top, top + span, 2001)
    v = (y - top) / span
    x = cx + lean * (y - top) + amp * profile(v)
    slope = lean + amp * profile(v, 1) / span
    arc = np.concatenate([[0.0], np.cumsum(np.hypot(np.diff(x), np.diff(y)))])
    return x, y, slope, arc


def _landmarks(p: dict, amp: float, jitter: np.ndarray) -> np.ndarray:
    """(68, 2) trapezoid corners along the curve of amplitude `amp` (px) with `p`'s sizes."""
    heights, discs = p["heights"], p["discs"]
    x, y, slope, arc = _centre_curve(
        p["profile"], amp, p["lean"], p["top"], p["cx"], heights.sum() + discs.sum()
    )
    starts = np.concatenate([[0.0], np.cumsum(heights[:-1] + discs)])
    centres_s = starts + heights / 2
    cx = np.interp(centres_s, arc, x)
    cy = np.interp(centres_s, arc, y)
    m = np.interp(centres_s, arc, slope)
    # curvature: change of tilt per unit length, for the wedge on the concave side
    tilt_all = np.arctan(slope)
    bend = np.interp(centres_s, arc, np.gradient(tilt_all, arc))
    tilt = np.arctan(m) + np.deg2rad(jitter)
    pts = []
    for i in range(N_VERT):
        c, s = np.cos(tilt[i]), np.sin(tilt[i])
        across = np.array([c, -s])  # to the vertebra's right (image +x when level)
        down = np.array([s, c])
        w = p["widths"][i]
        top_w, bottom_w = w * (1 - p["taper"] / 2), w * (1 + p["taper"] / 2)
        # the concave side of the curve is the shorter one
        wedge = np.clip(0.5 * bend[i] * w, -0.25, 0.25)
        h_left, h_right = heights[i] * (1 + wedge), heights[i] * (1 - wedge)
        centre = np.array([cx[i], cy[i]])
        pts += [
            centre - across * top_w / 2 - down * h_left / 2,
            centre + across * top_w / 2 - down * h_right / 2,
            centre - across * bottom_w / 2 + down * h_left / 2,
            centre + across * bottom_w / 2 + down * h_right / 2,
        ]
    return np.array(pts)


def _severity(index: int, seed: int) -> tuple[str, tuple[float, float]]:
    """Severity class of image `index`: every 16 consecutive images have the full mix."""
    schedule = [name for name, _, share in SEVERITIES for _ in range(round(16 * share))]
    order = np.random.default_rng([seed, 16, index // 16]).permutation(len(schedule))
    name = schedule[order[index % 16]]
    return name, dict((n, r) for n, r, _ in SEVERITIES)[name]


def spine_geometry(
    rng: np.random.Generator, height: int, width: int, shape: str, target: float
) -> tuple[np.ndarray, np.ndarray, float]:
    """Landmarks of a `shape` spine whose reference main Cobb angle is about `target` deg.

    Parameters
    ----------
    rng : numpy.random.Generator
    height, width : int
        Image size in pixels.
    shape : {"C", "S", "triple"}
    target : float
        Main (first) Cobb angle to aim at, degrees.

    Returns
    -------
    landmarks : (68, 2) ndarray
    angles : (3,) ndarray
        Reference Cobb angles of `landmarks`.
    amp : float
        Lateral amplitude of the curve in pixels.
    """
    length = rng.uniform(0.68, 0.8) * height
    heights, discs = _sizes(rng, length)
    params = {
        "lean": np.tan(np.deg2rad(rng.uniform(-3.0, 3.0))),
        "top": rng.uniform(0.05, 0.12) * height,
        "cx": width / 2 + rng.uniform(-0.05, 0.05) * width,
        "heights": heights,
        "discs": discs,
        "widths": np.linspace(0.085, 0.15, N_VERT) * width * rng.uniform(0.9, 1.1),
        "taper": rng.uniform(-0.08, 0.12),
    }
    jitter = rng.normal(0.0, TILT_JITTER, N_VERT)

    def main_angle(amp: float) -> tuple[float, np.ndarray, np.ndarray]:
        lm = _landmarks(params, amp, jitter)
        angles = cobb_angles(lm, height)
        return float(angles[0]), lm, angles

    # a real curve spreads over several vertebrae: a profile that bends the column by
    # more than MAX_BEND between neighbours is drawn again, and after a few tries the
    # target is lowered
    for attempt in range(10):
        params["profile"] = _profile(rng, shape)
        # secant search on the amplitude; the jitter alone already gives a few degrees
        a0, a1 = 0.0, 0.1 * length
        f0, f1 = main_angle(a0)[0] - target, main_angle(a1)[0] - target
        for _ in range(12):
            if abs(f1) < 0.5 or f1 == f0:
                break
            a0, a1, f0 = a1, max(a1 - f1 * (a1 - a0) / (f1 - f0), 0.0), f1
            f1 = main_angle(a1)[0] - target
        _, lm, angles = main_angle(a1)
        if _max_bend(lm) <= MAX_BEND:
            break
        if attempt >= 4:
            target *= 0.9
    # keep the column inside the image: shift it sideways if a large curve leaves it
    margin = 0.04 * width
    lo, hi = lm[:, 0].min(), lm[:, 0].max()
    if hi - lo < width - 2 * margin:
        lm[:, 0] += max(0.0, margin - lo) - max(0.0, hi - (width - margin))
    return lm, angles, a1


def _max_bend(landmarks: np.ndarray) -> float:
    """Largest change of tilt between neighbouring vertebrae, degrees."""
    g = landmarks.reshape(N_VERT, 4, 2)
    v = (g[:, 1] + g[:, 3] - g[:, 0] - g[:, 2]) / 2
    return float(np.abs(np.diff(np.degrees(np.arctan2(v[:, 1], v[:, 0])))).max())


# ----------------------------------------------------------------------------------------
# rendering
# ----------------------------------------------------------------------------------------


def _render(
    rng: np.random.Generator,
    landmarks: np.ndarray,
    height: int,
    width: int,
    antialias: int = FINENESS,
):
    """A radiograph-like 8-bit image of the spine `landmarks` (`antialias`: the shapes
    drawn that many times finer and averaged down, ``fine_drawing.py``)."""
    g = landmarks.reshape(N_VERT, 4, 2)
    centres = g.mean(axis=1)
    cols = np.arange(width, dtype=np.float32)
    rows = np.arange(height, dtype=np.float32)
    # soft-tissue band following the spine, flat-topped across
    trunk_x = np.interp(rows, centres[:, 1], centres[:, 0])
    half = rng.uniform(0.36, 0.46) * width
    tissue = 1.0 / (1.0 + ((cols[None, :] - trunk_x[:, None]) / half) ** 8)
    base = rng.uniform(0.08, 0.18) + rng.uniform(0.18, 0.3) * tissue
    fine = int(antialias)
    draw = FineLayers(height, width, [fine])  # fine 1: exactly as Pillow draws
    line_w = max(2, int(width * 0.012))
    # ribs: from each thoracic vertebra outwards and down, as polylines
    for i in range(1, 12):
        tl, tr = g[i, 0], g[i, 1]
        for side, start in ((-1, tl), (1, tr)):
            reach = rng.uniform(0.28, 0.4) * width
            t = np.linspace(0.0, 1.0, 12)
            xs = start[0] + side * reach * np.sin(t * np.pi / 2)
            ys = start[1] - 0.02 * height * np.sin(t * np.pi) + t**2 * (0.06 + 0.006 * i) * height
            draw.line(list(zip(xs.tolist(), ys.tolist(), strict=True)), fill=0.14, width=line_w)
    # iliac crests below L5
    bottom = g[-1, 2:].mean(axis=0)
    for side in (-1, 1):
        box = [
            bottom[0] + (0.05 if side > 0 else -0.45) * width,
            bottom[1] - 0.01 * height,
            bottom[0] + (0.45 if side > 0 else -0.05) * width,
            bottom[1] + 0.12 * height,
        ]
        draw.chord(box, 180, 360, fill=0.12)
    # vertebral bodies: cortical rim, lighter core, two pedicles
    for i in range(N_VERT):
        quad = g[i][[0, 1, 3, 2]]
        draw.polygon([tuple(p) for p in quad.tolist()], fill=rng.uniform(0.42, 0.55))
        inner = centres[i] + 0.78 * (quad - centres[i])
        draw.polygon([tuple(p) for p in inner.tolist()], fill=rng.uniform(0.3, 0.38))
        across = g[i, 1] - g[i, 0]
        r = 0.08 * np.hypot(*across)
        for f in (0.22, 0.78):
            e = g[i, 0] + f * across + 0.3 * (g[i, 2] - g[i, 0])
            draw.ellipse([e[0] - r, e[1] - 1.4 * r, e[0] + r, e[1] + 1.4 * r], fill=0.5)
    (shapes,) = draw.images()
    bones = ndimage.gaussian_filter(shapes, rng.uniform(0.8, 1.8))
    img = base + bones
    # a horizontal band of over- or under-exposure
    band_y = rng.uniform(0.2, 0.8) * height
    img *= (
        1 + rng.uniform(-0.25, 0.25) * np.exp(-(((rows - band_y) / (0.15 * height)) ** 2))[:, None]
    )
    img += rng.normal(0.0, rng.uniform(0.01, 0.04), img.shape)
    salt = rng.random(img.shape) < rng.uniform(0.0, 0.002)
    img[salt] = 1.0
    img = np.clip(img, 0.0, 1.0) ** rng.uniform(0.8, 1.25)
    return (img * 255 + 0.5).astype(np.uint8)


def image_size(rng: np.random.Generator) -> tuple[int, int]:
    """The ``(height, width)`` of one image: 640–960 rows, 2.1–2.8 times as tall as wide."""
    height = int(rng.integers(640, 961))
    return height, int(round(height / rng.uniform(2.1, 2.8)))


def make_spine(
    rng: np.random.Generator,
    *,
    severity: str | None = None,
    main_range: tuple[float, float] | None = None,
    antialias: int = FINENESS,
) -> Spine:
    """One spine X-ray with landmarks and reference angles.

    Parameters
    ----------
    rng : numpy.random.Generator
    severity : str, optional
        A class of :data:`SEVERITIES`; drawn by its share when None.
    main_range : (low, high), optional
        Instead of a severity class: the main Cobb angle's range in degrees. A spine
        whose measured main angle falls outside it (a too sharp curve is drawn
        smaller) is drawn again, up to 20 times.
    antialias : int, optional
        Draw the shapes this many times finer and average them down, so that a body lies
        where its landmarks say (``fine_drawing.py``); 1: at the image's pixels, every
        corner floored to a whole pixel, as until 2026-12-01 (the same image otherwise).

    Returns
    -------
    Spine
    """
    names = [n for n, _, _ in SEVERITIES]
    if main_range is not None:
        severity, bounds = f"{main_range[0]:g}-{main_range[1]:g}", tuple(main_range)
    else:
        if severity is None:
            severity = str(rng.choice(names, p=[s for _, _, s in SEVERITIES]))
        bounds = dict((n, r) for n, r, _ in SEVERITIES)[severity]
    for _ in range(20 if main_range is not None else 1):
        shape = str(rng.choice([s for s, _ in SHAPES], p=[p for _, p in SHAPES]))
        target = float(rng.uniform(*bounds))
        height, width = image_size(rng)
        landmarks, angles, amp = spine_geometry(rng, height, width, shape, target)
        if main_range is None or bounds[0] <= angles[0] <= bounds[1]:
            break
    image = _render(rng, landmarks, height, width, antialias)
    meta = {"shape": shape, "severity": severity, "target": round(target, 2), "amp": amp}
    return Spine(image, landmarks, angles, meta)


def _jpeg(image: np.ndarray, quality: int) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(image, mode="L").save(buf, format="JPEG", quality=quality)
    return buf.getvalue()


def _csv(rows) -> str:
    return "".join(",".join(repr(float(v)) for v in row) + "\n" for row in rows)


def write_spine_set(
    out: str | os.PathLike,
    *,
    n_test: int = 16,
    n_train: int = 0,
    seed: int = 2024,
    main_range: tuple[float, float] | None = None,
    antialias: int = FINENESS,
) -> Path:
    """Write an AASCE-layout set (``data/<split>``, ``labels/<split>``) of generated spines.

    Every 16 consecutive images of a split have the severity mix of :data:`SEVERITIES`
    (1 near-straight, 3 mild, 8 moderate, 4 severe), in a seeded order; with
    `main_range` (degrees, e.g. :data:`STRONG`) every main Cobb angle lies in that
    range instead.

    Parameters
    ----------
    out : path-like
        Root folder (created).
    n_test, n_train : int
        Images in the ``test`` and ``training`` splits (a split with none is not written).
    seed : int
    antialias : int, optional
        :func:`make_spine`'s: the same images, their shapes drawn finer.

    Returns
    -------
    pathlib.Path
        `out`.
    """
    root = Path(out)
    summary = {"generator": "benchmarks/other_spines.py", "seed": seed, "images": {}}
    if main_range is not None:
        summary["main_range"] = [float(v) for v in main_range]
    if antialias != 1:  # a set drawn as before 2026-12-01 keeps its old summary
        summary["antialias"] = int(antialias)
    for split, n in (("training", n_train), ("test", n_test)):
        if n <= 0:
            continue
        names, norm, angles = [], [], []
        for k in range(n):
            rng = np.random.default_rng([seed, 0 if split == "training" else 1, k])
            severity, _ = _severity(k, seed + (0 if split == "training" else 1))
            spine = make_spine(rng, severity=severity, main_range=main_range, antialias=antialias)
            name = f"other-{split}-{k + 1:03d} {spine.meta['shape']} PA.jpg"
            write_bytes_atomic(
                root / "data" / split / name, _jpeg(spine.image, int(rng.integers(80, 96)))
            )
            write_landmarks_mat(root / "labels" / split / f"{name}.mat", spine.landmarks)
            h, w = spine.image.shape
            names.append(name)
            norm.append(np.concatenate([spine.landmarks[:, 0] / w, spine.landmarks[:, 1] / h]))
            angles.append(spine.angles)
            summary["images"][f"{split}/{name}"] = {
                **spine.meta,
                "angles": [round(float(a), 3) for a in spine.angles],
            }
        labels = root / "labels" / split
        write_text_atomic(labels / "filenames.csv", "".join(f"{n}\n" for n in names))
        write_text_atomic(labels / "landmarks.csv", _csv(norm))
        write_text_atomic(labels / "angles.csv", _csv(angles))
    write_text_atomic(root / "other-spines.json", json.dumps(summary, indent=1) + "\n")
    return root


def write_strong_set(
    out: str | os.PathLike, *, n_test: int = 16, antialias: int = FINENESS
) -> Path:
    """:func:`write_spine_set` of the strongly curved test set: main curves in
    :data:`STRONG`, seed :data:`STRONG_SEED` (``bench_bending.py``, ``bench_vertebrae.py``)."""
    return write_spine_set(
        out, n_test=n_test, seed=STRONG_SEED, main_range=STRONG, antialias=antialias
    )


def main(argv=None) -> int:
    """Command line: write a set and print its root."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", help="root folder of the set")
    parser.add_argument("--test", type=int, default=16, help="test images (default 16)")
    parser.add_argument("--train", type=int, default=0, help="training images (default 0)")
    parser.add_argument("--seed", type=int, default=2024)
    curves = parser.add_mutually_exclusive_group()
    curves.add_argument(
        "--strong",
        action="store_true",
        help=f"only strongly curved spines (main Cobb {STRONG[0]:g}-{STRONG[1]:g} deg)",
    )
    curves.add_argument(
        "--main-range",
        nargs=2,
        type=float,
        metavar=("LO", "HI"),
        help="only spines with the main Cobb angle in LO-HI degrees",
    )
    add_antialias_option(parser)
    args = parser.parse_args(argv)
    main_range = STRONG if args.strong else args.main_range
    root = write_spine_set(
        args.out,
        n_test=args.test,
        n_train=args.train,
        seed=args.seed,
        main_range=main_range,
        antialias=args.antialias,
    )
    print(root)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
