"""Phantom posteroanterior spine X-rays with exact landmarks, in the AASCE layout.

The real set (SpineWeb Dataset 16) cannot be shipped, so the tests, the demo and the
benchmarks use phantoms: tall 8-bit radiographs of a body with lungs, heart, ribs,
clavicles, 17 vertebrae (T1–L5) and a pelvis, a spine that is straight or curved in a
C or an S up to beyond 60 degrees Cobb, and the artefacts the seed paper names
(necklaces, organ shadows, Harrington rods, blur, noise, contrast). Each comes with the
68 corner landmarks of the bodies actually drawn, and :func:`write_phantom_set` writes
a set of them exactly as the real set is laid out (see ``docs/aasce-format.md``).

Everything is drawn from a :class:`numpy.random.Generator`: the same seed gives the
same images, whatever the number of worker processes.
"""

from __future__ import annotations

import io
import json
import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from ..atomic import check_writable_folder, write_bytes_atomic, write_text_atomic
from ..errors import SpineSegError
from ..parallel import map_in_processes
from ..spine.cobb import cobb_angles
from . import phantom_render as render
from .aasce import write_landmarks_mat
from .phantom_geometry import CURVE_KINDS, MAX_AMPLITUDE, image_size, spine_geometry

__all__ = [
    "ARTEFACTS",
    "CURVE_KINDS",
    "MARKER",
    "Phantom",
    "make_phantom",
    "phantom_name",
    "write_phantom_set",
]

#: the artefacts a phantom can carry
ARTEFACTS = ("necklace", "organs", "rods", "blur", "noise", "contrast")
#: how often each artefact is drawn when they are picked at random
ARTEFACT_RATES = {
    "necklace": 0.15,
    "organs": 0.3,
    "rods": 0.1,
    "blur": 0.2,
    "noise": 0.2,
    "contrast": 0.3,
}
#: chance of each curve kind, and the Cobb range (degrees) it is drawn from
CURVE_RATES = {"straight": 0.15, "C": 0.45, "S": 0.4}
CURVE_RANGES = {"straight": (0.0, 6.0), "C": (10.0, 80.0), "S": (15.0, 80.0)}
#: file at the root of a phantom set: seed, counts and each image's curve and artefacts
MARKER = "phantom-set.json"
SPLITS = ("training", "test")
JPEG_QUALITY = 92
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


@dataclass
class Phantom:
    """One phantom X-ray.

    Attributes
    ----------
    image : (H, W) uint8 ndarray
        The radiograph, bone bright on a dark background.
    landmarks : (68, 2) float64 ndarray
        ``(x, y)`` pixel corners of the 17 vertebral bodies, top to bottom, each as
        top-left, top-right, bottom-left, bottom-right.
    angles : (3,) float64 ndarray
        Cobb angles (degrees) of the landmarks by the challenge's reference computation.
    meta : dict
        ``curve`` (kind), ``amplitude`` (the Cobb angle the curve was drawn with,
        degrees), ``artefacts`` (sorted names), ``clavicles`` (bool) and ``shape``.
    """

    image: np.ndarray
    landmarks: np.ndarray
    angles: np.ndarray
    meta: dict = field(default_factory=dict)


def _check_kind(kind) -> str:
    if kind not in CURVE_KINDS:
        raise ValueError(f"unknown curve kind {kind!r}; expected one of {', '.join(CURVE_KINDS)}")
    return kind


def _pick_curve(rng: np.random.Generator, curve, max_curve=None) -> tuple[str, float]:
    # the same draws whatever is asked for, so that the rest of the phantom stays the same
    random_kind = str(rng.choice(list(CURVE_RATES), p=list(CURVE_RATES.values())))
    fraction = rng.random()
    if curve is None or isinstance(curve, str):
        kind = _check_kind(random_kind if curve is None else curve)
        low, high = CURVE_RANGES[kind]
        if max_curve is not None:
            high = min(high, float(max_curve))
            low = min(low, high)
        return kind, low + fraction * (high - low)
    kind, amplitude = curve
    _check_kind(kind)
    if not 0.0 <= float(amplitude) <= MAX_AMPLITUDE:
        raise ValueError(
            f"curve amplitude must be within 0–{MAX_AMPLITUDE:g} degrees, not {amplitude}"
        )
    return kind, float(amplitude)


def _pick_artefacts(rng: np.random.Generator, artefacts) -> set[str]:
    draws = rng.random(len(ARTEFACT_RATES))
    if artefacts is None:
        return {
            name for (name, rate), u in zip(ARTEFACT_RATES.items(), draws, strict=True) if u < rate
        }
    chosen = {artefacts} if isinstance(artefacts, str) else set(artefacts)
    unknown = chosen - set(ARTEFACTS)
    if unknown:
        raise ValueError(
            f"unknown artefact(s) {', '.join(sorted(unknown))}; expected some of {', '.join(ARTEFACTS)}"
        )
    return chosen


def make_phantom(
    rng: np.random.Generator | int,
    *,
    height: int | None = None,
    width: int | None = None,
    curve: str | tuple[str, float] | None = None,
    artefacts: Iterable[str] | None = None,
    max_curve: float | None = None,
) -> Phantom:
    """Draw one phantom posteroanterior spine X-ray and its 68 landmarks.

    Parameters
    ----------
    rng : numpy.random.Generator or int
        Source of randomness (an int is used as a seed).
    height, width : int, optional
        Image size in pixels. By default 500–900 rows and a width that makes the image
        2–3 times taller than wide (200–400 columns); given one, the other follows.
    curve : str or (str, float), optional
        ``"straight"``, ``"C"`` or ``"S"`` (amplitude drawn at random), or a pair
        ``(kind, degrees)``; by default both are random, from straight to 80 degrees.
        A curve too large for the image is drawn smaller; ``meta["amplitude"]`` says
        what was drawn.
    artefacts : iterable of str, optional
        Names from :data:`ARTEFACTS` to draw (an empty one draws a clean image); by
        default each is drawn at random at its rate in :data:`ARTEFACT_RATES`.
    max_curve : float, optional
        A randomly drawn amplitude is drawn from its kind's range cut at this many
        degrees (mild spines only); the draws stay the same, so the rest of the
        phantom does too.

    Returns
    -------
    Phantom

    Examples
    --------
    >>> p = make_phantom(0, height=600, curve=("S", 40.0), artefacts=())
    >>> p.image.shape[0], p.image.dtype, p.landmarks.shape, p.meta["curve"]
    (600, dtype('uint8'), (68, 2), 'S')
    """
    rng = np.random.default_rng(rng)
    height, width = image_size(rng, height, width)
    kind, amplitude = _pick_curve(rng, curve, max_curve)
    chosen = _pick_artefacts(rng, artefacts)
    clavicles = bool(rng.random() < 0.8)
    # one stream per part: asking for an artefact changes that artefact, not the anatomy
    seeds = rng.integers(0, 2**63, size=len(_STREAMS))
    streams = {part: np.random.default_rng(s) for part, s in zip(_STREAMS, seeds, strict=True)}
    geo = spine_geometry(streams["geo"], height, width, kind, amplitude)
    att = _attenuation(streams, geo, height, width, chosen, clavicles)
    image = render.film(streams["film"], att, chosen)

    landmarks = np.asarray(geo.landmarks, dtype=np.float64)
    meta = {
        "curve": kind,
        "amplitude": round(float(geo.amplitude), 3),
        "artefacts": sorted(chosen),
        "clavicles": clavicles,
        "shape": [height, width],
    }
    return Phantom(
        image=image,
        landmarks=landmarks,
        angles=np.asarray(cobb_angles(landmarks, height), float),
        meta=meta,
    )


#: the random streams of a phantom, one per part, in the order they are drawn
_STREAMS = ("geo", "body", "soft", "organs", "bones", "vert", "metal", "film")


def _attenuation(streams: dict, geo, height: int, width: int, chosen: set, clavicles: bool):
    """The attenuation map of one phantom: soft tissue, bones, vertebrae and metal."""
    body = render._Body(streams["body"], geo, height, width)
    organs = streams["organs"] if "organs" in chosen else None
    low = render.soft_tissue(streams["soft"], body, organs)
    up = Image.fromarray(low).resize(
        (low.shape[1] * render.LOW, low.shape[0] * render.LOW), Image.BILINEAR
    )
    att = np.array(up, dtype=np.float32)[:height, :width]
    # two layers, so that anterior ribs and clavicles add to the posterior ribs they cross
    layers = [Image.new("F", (width, height), 0.0) for _ in range(2)]
    back, front = (ImageDraw.Draw(layer) for layer in layers)
    render.draw_ribs_and_clavicles(streams["bones"], body, back, front, clavicles)
    render.draw_pelvis(streams["bones"], body, back)
    for layer in layers:
        att += np.asarray(layer, dtype=np.float32)
    render.add_vertebrae(streams["vert"], att, geo)
    if chosen & {"necklace", "rods"}:
        metal = Image.new("F", (width, height), 0.0)
        draw = ImageDraw.Draw(metal)
        if "necklace" in chosen:
            render.draw_necklace(streams["metal"], body, draw)
        if "rods" in chosen:
            render.draw_rods(streams["metal"], geo, draw, width)
        att += np.asarray(metal, dtype=np.float32)
    return att


def phantom_name(index: int, rng: np.random.Generator) -> str:
    """A file name in the real set's style, with spaces, unique by `index` (0-based).

    Examples
    --------
    >>> phantom_name(0, np.random.default_rng(0))[:12]
    'phantom-1th-'
    """
    day, month = int(rng.integers(1, 29)), _MONTHS[int(rng.integers(0, 12))]
    year, number = int(rng.integers(2015, 2019)), int(rng.integers(1, 400))
    letter = "ABCD"[int(rng.integers(0, 4))]
    return f"phantom-{index + 1}th-{day:02d}-{month}-{year}-{number} {letter} AP.jpg"


def _jpeg_bytes(image: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(image, mode="L").save(buf, format="JPEG", quality=JPEG_QUALITY)
    return buf.getvalue()


def _write_one(job: tuple) -> tuple[str, list[float], list[float], dict]:
    """Make and write phantom `index` of `split`; return its csv rows and meta."""
    root, seed, index, split, name, max_curve = job
    rng = np.random.default_rng([seed, SPLITS.index(split) if split in SPLITS else 9, index])
    ph = make_phantom(rng, max_curve=max_curve)
    root = Path(root)
    write_bytes_atomic(root / "data" / split / name, _jpeg_bytes(ph.image))
    write_landmarks_mat(root / "labels" / split / f"{name}.mat", ph.landmarks)
    h, w = ph.image.shape
    norm = np.concatenate([ph.landmarks[:, 0] / w, ph.landmarks[:, 1] / h])
    return name, norm.tolist(), ph.angles.tolist(), ph.meta


def _previous_names(root: Path, split: str) -> list[str]:
    csv = root / "labels" / split / "filenames.csv"
    if not csv.is_file():
        return []
    names = (line.strip() for line in csv.read_text(encoding="utf-8").splitlines())
    # only plain file names: a doctored list must not reach outside the set
    return [n for n in names if n and Path(n).name == n and not n.startswith(".")]


def _prepare(root: Path) -> None:
    """Refuse a folder holding another data set; clear the files of an earlier phantom set.

    Only files an earlier phantom set wrote (those its ``filenames.csv`` lists, their
    ``.mat`` files and the three csv files) are removed; anything else is left alone.
    """
    check_writable_folder(root)
    held = any(
        p.is_file()
        for sub in ("data", "labels")
        if (root / sub).is_dir()
        for p in (root / sub).rglob("*")
    )
    if not held:
        return
    if not (root / MARKER).is_file():
        raise SpineSegError(
            root,
            "already holds a data set (data/ or labels/) that is not a phantom set; choose an empty folder",
        )
    for split in SPLITS:
        labels = root / "labels" / split
        stale = [root / "data" / split / name for name in _previous_names(root, split)]
        stale += [labels / f"{path.name}.mat" for path in stale]
        stale += [labels / csv for csv in ("filenames.csv", "landmarks.csv", "angles.csv")]
        for path in stale:
            if path.is_file():
                path.unlink()


def _fmt(values: Sequence[float]) -> str:
    return ",".join(repr(float(v)) for v in values)


def write_phantom_set(
    out: str | os.PathLike,
    *,
    n_train: int = 40,
    n_test: int = 16,
    seed: int = 0,
    progress: Callable[..., Iterator] | None = None,
    jobs: int | None = None,
    max_curve: float | None = None,
) -> Path:
    """Write a phantom set in the AASCE layout (``data/<split>``, ``labels/<split>``).

    Writes, for the splits ``training`` and ``test``: ``data/<split>/<name>.jpg``
    (8-bit grayscale JPEG), ``labels/<split>/<name>.jpg.mat`` (``p2``: 68 x 2 (x, y)),
    ``labels/<split>/filenames.csv``, ``landmarks.csv`` (68 x's then 68 y's normalised
    by width and height) and ``angles.csv`` (three Cobb angles), all without headers;
    and :data:`MARKER` at the root with the seed and each image's curve and artefacts.

    Parameters
    ----------
    out : path-like
        Root folder; created if needed. It must be empty of other data: an earlier
        phantom set there is replaced, anything else is refused.
    n_train, n_test : int
        Number of images per split (a split with none is not written).
    seed : int
        The set's seed; image ``k`` of a split depends only on (seed, split, k).
    progress : callable, optional
        Wraps the iteration over finished images, called as
        ``progress(iterable, total=n, desc="synth", unit="image")`` and iterated, like
        :func:`napari_spine_seg.cli._progress.progress`.
    jobs : int, optional
        Worker processes; default 2 (or 1 for small sets or a single CPU).
    max_curve : float, optional
        Draw curves of at most this many degrees (amplitude, about the main Cobb
        angle): a set of mild spines. By default every curve from straight to 80°.

    Returns
    -------
    pathlib.Path
        The root folder `out`.

    Raises
    ------
    SpineSegError
        When `out` cannot be written or holds files of another data set.
    """
    if n_train < 0 or n_test < 0:
        raise SpineSegError(
            None, f"image counts must not be negative (train {n_train}, test {n_test})"
        )
    root = Path(out)
    _prepare(root)
    names_rng = np.random.default_rng([seed, 99])
    counts = {"training": int(n_train), "test": int(n_test)}
    jobs_list = []
    index = 0
    for split in SPLITS:
        for k in range(counts[split]):
            name = phantom_name(index, names_rng)
            jobs_list.append((str(root), int(seed), k, split, name, max_curve))
            index += 1
    if jobs is None:
        jobs = min(2, os.cpu_count() or 1) if len(jobs_list) >= 16 else 1
    total = len(jobs_list)

    iterator = map_in_processes(_write_one, jobs_list, jobs=jobs, preload=[__name__])
    if progress is not None:
        iterator = progress(iterator, total=total, desc="synth", unit="image")
    rows = list(iterator)

    meta = {"seed": int(seed), "counts": counts, "images": _write_labels(root, rows, counts)}
    if max_curve is not None:
        meta["max_curve"] = float(max_curve)
    write_text_atomic(root / MARKER, json.dumps(meta, indent=1) + "\n")
    return root


def _write_labels(root: Path, rows: list, counts: dict) -> dict:
    """Write each split's ``filenames.csv``, ``landmarks.csv`` and ``angles.csv`` from the
    rows of :func:`_write_one` (in split order); return each image's metadata by key."""
    images = {}
    start = 0
    for split in SPLITS:
        part = rows[start : start + counts[split]]
        start += counts[split]
        if not part:
            continue
        labels = root / "labels" / split
        write_text_atomic(labels / "filenames.csv", "".join(f"{name}\n" for name, *_ in part))
        write_text_atomic(
            labels / "landmarks.csv", "".join(_fmt(norm) + "\n" for _, norm, _, _ in part)
        )
        write_text_atomic(labels / "angles.csv", "".join(_fmt(ang) + "\n" for _, _, ang, _ in part))
        for name, _, _, m in part:
            images[f"{split}/{name}"] = m
    return images
