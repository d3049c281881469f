"""Landmark sets with known faults, for testing and measuring ``spine-seg check``.

Spines come from three sources, so that the check is not tuned to one generator:

``phantom``
    the project's phantom X-rays (:func:`napari_spine_seg.data.phantom.make_phantom`),
    C and S curves up to the ``max_cobb`` asked for;
``other``
    the landmarks of the second generator (``benchmarks/other_generator.py``): sums of
    sines, sheared bodies, sizes growing down the column;
``wedged``
    phantom spines whose vertebrae are wedged: each body's top and bottom end plates
    turned towards each other by up to ``max_wedge`` degrees at the apex of the curve,
    as the vertebrae of a strong scoliosis are.

Every clean corner is scattered by a little noise (:data:`NOISE` of the vertebra's
height), as annotators' clicks are.

:func:`inject` puts one fault of a given kind into clean landmarks and says where;
:func:`write_set` writes clean or faulty images in the AASCE layout (the ``.mat`` files,
the three CSV files and the images) and returns the truth: for each image, the fault
injected (or none) and the clean landmarks. Everything depends only on the seed.
"""

from __future__ import annotations

import io
import os
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))

import other_generator
from napari_spine_seg.data.aasce import write_landmarks_mat
from napari_spine_seg.data.phantom import make_phantom
from napari_spine_seg.spine.cobb import cobb_angles
from napari_spine_seg.spine.landmark_faults import KINDS

SOURCES = ("phantom", "other", "wedged")
#: the kinds :func:`inject` can put into one image's landmarks
LANDMARK_KINDS = KINDS[:7]
N_VERT = 17
#: scatter of the clean corners, as a fraction of the vertebra's height
NOISE = 0.03


@dataclass(frozen=True)
class Injected:
    """One injected fault: its kind, the 0-based vertebra it is at, and whether the
    check should be able to restore the clean corners exactly."""

    kind: str
    vertebra: int
    certain: bool


# --------------------------------------------------------------------------- spines


def clean_spine(
    rng: np.random.Generator,
    source: str,
    *,
    max_cobb: float = 75.0,
    max_wedge: float = 15.0,
    noise: float = NOISE,
    height: int | None = None,
) -> tuple[np.ndarray, tuple[int, int], np.ndarray | None]:
    """Clean landmarks, image shape ``(rows, cols)`` and the image (None for ``other``,
    whose images are slow to draw: a plain image of that size stands in).

    Each corner is moved at random by `noise` times its vertebra's height (standard
    deviation per coordinate), as a person's clicks scatter. `height` (rows) makes
    small images for fast tests; by default each source's own sizes (500–1500 rows).
    """
    if source == "other":
        h = int(rng.integers(900, 1501)) if height is None else int(height)
        w = int(round(h / rng.uniform(2.2, 3.2)))
        landmarks, shape, image = other_generator.spine_landmarks(rng, h, w), (h, w), None
    else:
        kind = str(rng.choice(["C", "S"]))
        amplitude = float(rng.uniform(0.5, 1.0) * max_cobb)
        ph = make_phantom(rng, height=height, curve=(kind, amplitude), artefacts=())
        landmarks, shape, image = ph.landmarks, ph.image.shape, ph.image
        if source == "wedged":
            landmarks = wedge(landmarks, rng, max_wedge)
    g = landmarks.reshape(N_VERT, 4, 2)
    heights = np.linalg.norm((g[:, 2] + g[:, 3] - g[:, 0] - g[:, 1]) / 2, axis=-1)
    scatter = rng.normal(0.0, 1.0, (N_VERT * 4, 2)) * np.repeat(heights, 4)[:, None] * noise
    return landmarks + scatter, shape, image


def wedge(landmarks: np.ndarray, rng: np.random.Generator, max_wedge: float) -> np.ndarray:
    """Turn each vertebra's end plates towards each other, most at the curve's apex.

    The wedge of vertebra ``i`` follows the change of tilt along the spine (bodies are
    wedged where the curve bends most), scaled so that the largest is ``max_wedge``
    degrees times a random factor in [0.7, 1]; each plate turns by half of it about its
    mid-point.
    """
    groups = np.asarray(landmarks, dtype=np.float64).reshape(N_VERT, 4, 2).copy()
    vec = (groups[:, 1] + groups[:, 3] - groups[:, 0] - groups[:, 2]) / 2
    tilt = np.arctan2(vec[:, 1], vec[:, 0])
    bend = np.gradient(tilt)
    peak = np.abs(bend).max()
    if peak == 0:
        return groups.reshape(-1, 2)
    degrees = bend / peak * max_wedge * rng.uniform(0.7, 1.0)
    for i, g in enumerate(groups):
        half = np.deg2rad(degrees[i]) / 2
        for plate, sign in (((0, 1), 1.0), ((2, 3), -1.0)):
            mid = g[list(plate)].mean(axis=0)
            c, s = np.cos(sign * half), np.sin(sign * half)
            rot = np.array([[c, -s], [s, c]])
            g[list(plate)] = (g[list(plate)] - mid) @ rot.T + mid
    return groups.reshape(-1, 2)


# --------------------------------------------------------------------------- faults


def inject(
    rng: np.random.Generator, landmarks: np.ndarray, shape: tuple[int, int], kind: str
) -> tuple[np.ndarray, Injected]:
    """Put one fault of `kind` (one of :data:`LANDMARK_KINDS`) into a copy of `landmarks`."""
    g = np.asarray(landmarks, dtype=np.float64).reshape(N_VERT, 4, 2).copy()
    rows, cols = shape
    i = int(rng.integers(0, N_VERT))
    if kind in ("duplicate_vertebra", "vertebra_order"):
        i = int(rng.integers(0, N_VERT - 1))
    if kind == "outside_image":
        k = int(rng.integers(0, 4))
        side = int(rng.integers(0, 3))
        if side == 0:
            g[i, k, 0] = -rng.uniform(2, 0.1 * cols)
        elif side == 1:
            g[i, k, 0] = cols + rng.uniform(2, 0.1 * cols)
        else:
            g[i, k, 1] = rows + rng.uniform(2, 0.05 * rows)
        return g.reshape(-1, 2), Injected(kind, i, False)
    if kind == "duplicate_vertebra":
        g[i + 1] = g[i] + rng.normal(0, 0.5, (4, 2))
        return g.reshape(-1, 2), Injected(kind, i + 1, False)
    if kind == "vertebra_order":
        if rng.random() < 0.5:
            return np.roll(g, 1, axis=0).reshape(-1, 2), Injected(kind, 0, True)
        g[[i, i + 1]] = g[[i + 1, i]]
        return g.reshape(-1, 2), Injected(kind, i, True)
    if kind == "top_bottom_swapped":
        perm = [(2, 3, 0, 1), (2, 1, 0, 3), (0, 3, 2, 1)][int(rng.integers(0, 3))]
        g[i] = g[i][list(perm)]
        return g.reshape(-1, 2), Injected(kind, i, True)
    if kind == "left_right_swapped":
        perm = [(1, 0, 3, 2), (1, 0, 2, 3), (0, 1, 3, 2)][int(rng.integers(0, 3))]
        g[i] = g[i][list(perm)]
        return g.reshape(-1, 2), Injected(kind, i, True)
    if kind == "misplaced_corner":
        k = int(rng.integers(0, 4))
        height = np.linalg.norm((g[i, 2] + g[i, 3] - g[i, 0] - g[i, 1]) / 2)
        angle = rng.uniform(0, 2 * np.pi)
        g[i, k] += rng.uniform(0.5, 1.0) * height * np.array([np.cos(angle), np.sin(angle)])
        return g.reshape(-1, 2), Injected(kind, i, False)
    if kind == "level_shift":
        pairs = g.reshape(2 * N_VERT, 2, 2)
        p = int(rng.integers(0, 2 * N_VERT - 4))
        if rng.random() < 0.5:  # a pair missing: later pairs move up, the last is made up
            made_up = pairs[-1] + (pairs[-1] - pairs[-3])
            pairs = np.concatenate([pairs[:p], pairs[p + 1 :], made_up[None]])
        else:  # an extra pair half way to the next: later pairs move down, the last drops
            extra = (pairs[p] + pairs[p + 1]) / 2
            pairs = np.concatenate([pairs[: p + 1], extra[None], pairs[p + 1 : -1]])
        return pairs.reshape(-1, 2), Injected(kind, p // 2, False)
    raise ValueError(f"unknown kind {kind!r}")


# --------------------------------------------------------------------------- sets


def _jpeg(image: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(image, mode="L").save(buf, format="JPEG", quality=85)
    return buf.getvalue()


def _row(values) -> str:
    return ",".join(repr(float(v)) for v in values) + "\n"


def write_set(
    out: str | os.PathLike,
    n: int,
    *,
    seed: int = 0,
    source: str = "phantom",
    kinds: tuple[str, ...] = (),
    max_cobb: float = 75.0,
    max_wedge: float = 15.0,
    split: str = "training",
    height: int | None = None,
) -> dict[str, dict]:
    """Write `n` images in the AASCE layout; with `kinds`, image ``j`` gets a fault of
    kind ``kinds[j % len(kinds)]`` (landmark kinds into the ``.mat`` and the CSV alike;
    ``mat_csv_mismatch`` moves one corner of the CSV only; ``angles_mismatch`` changes
    one recorded angle by 6–15 degrees; `height` as for :func:`clean_spine`). ``angles.csv`` holds the angles of the clean
    landmarks, as the annotators measured them on the spine.

    Returns
    -------
    dict
        ``"data/<split>/<name>"`` → ``{"clean": (68, 2) landmarks, "fault": Injected or
        None}``.
    """
    rng = np.random.default_rng(seed)
    root = Path(out)
    data, labels = root / "data" / split, root / "labels" / split
    data.mkdir(parents=True, exist_ok=True)
    truth, names, csv_rows, angle_rows = {}, [], [], []
    for j in range(n):
        clean, shape, image = clean_spine(
            rng, source, max_cobb=max_cobb, max_wedge=max_wedge, height=height
        )
        rows, cols = shape
        name = f"{source} {seed}-{j:04d} A AP.jpg"
        kind = kinds[j % len(kinds)] if kinds else None
        stored, fault = clean, None
        if kind in LANDMARK_KINDS:
            stored, fault = inject(rng, clean, shape, kind)
        csv_landmarks = stored.copy()
        angles = cobb_angles(clean, rows)  # measured on the spine, whatever the labels say
        if kind == "mat_csv_mismatch":
            i, k = int(rng.integers(0, N_VERT)), int(rng.integers(0, 4))
            csv_landmarks[4 * i + k] += rng.uniform(3, 20) * np.sign(rng.normal(size=2))
            fault = Injected(kind, i, False)
        elif kind == "angles_mismatch":
            a = int(rng.integers(0, 3))
            angles = angles.copy()
            angles[a] += rng.uniform(6, 15)
            fault = Injected(kind, -1, False)
        if image is None:
            image = np.full(shape, 60, dtype=np.uint8)
        (data / name).write_bytes(_jpeg(image))
        write_landmarks_mat(labels / f"{name}.mat", stored)
        names.append(name)
        csv_rows.append(
            _row(np.concatenate([csv_landmarks[:, 0] / cols, csv_landmarks[:, 1] / rows]))
        )
        angle_rows.append(_row(angles))
        truth[f"data/{split}/{name}"] = {"clean": clean, "fault": fault}
    (labels / "filenames.csv").write_text("".join(f"{name}\n" for name in names))
    (labels / "landmarks.csv").write_text("".join(csv_rows))
    (labels / "angles.csv").write_text("".join(angle_rows))
    return truth
