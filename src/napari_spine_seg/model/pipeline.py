"""The training input pipeline: stream samples from disk, decode once, augment.

Each :class:`~napari_spine_seg.data.dataset.Sample` (AASCE with trimaps drawn from the
landmarks on the fly, image + trimap folders, the Pets layout) is decoded, fitted to
the network input (:mod:`.preprocess`) and, with a cache folder, stored as one small
``.npy`` file keyed by the image and label files' path, size and modification time and
by the input size and fit. Later epochs and later runs read that file instead of
decoding a full-size X-ray again. Nothing holds the whole set: a batch is read when it
is asked for, so memory stays flat as the set grows.

Augmentation (training batches only; numpy/scipy, so every Keras backend gets it):

* geometry: rotation (±10°), scale (0.85–1.15, plus ±8 % between rows and columns),
  shift (±8 %), applied to image and trimap together (nearest for the trimap);
* bending (``TrainConfig.bend_deg``, on by default in training; ``Augmentation``'s own
  default is off): the column bent along a smooth random curve, its neighbourhood
  turning with it so that the bodies tilt with the new curve (:mod:`.bend`), before
  the affine map;
* body shear (the column tiles of a vertebrae target, half of them): each body's end
  plates tilted against its sides by angles of their own, N(0, 4°) per body
  (:mod:`.body_shear`), after bending;
* left–right flip (a trimap stays true under it); never up–down (a spine has a top);
* intensity: gamma, contrast, brightness, a smooth illumination gradient, blur and
  noise, so that the network learns the spine's shape, not one generator's grey levels.

:func:`batches` wraps it all in a ``keras.utils.PyDataset`` (backend-neutral; Keras
feeds it to ``tf.data`` itself on the TensorFlow backend).
"""

from __future__ import annotations

import functools
import hashlib
import math
import os
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy import ndimage

from ..atomic import atomic_output
from ..trimap import BACKGROUND
from .bend import bend, column_centre, random_curve
from .body_shear import body_slopes, column_width, shear_bodies
from .preprocess import fit_image, fit_labels, fit_trimap
from .targets import (
    LABEL_VOTES,
    TRIMAP,
    V_BACKGROUND,
    V_BODY,
    V_IGNORE,
    VERTEBRAE,
    has_vertebrae,
    vertebra_labels,
)
from .zoom import TILES, ZOOM_PROBABILITY, landmark_tiles

#: bump when what is cached changes, so old cache files are not reused
CACHE_VERSION = 1


@dataclass(frozen=True)
class InputSpec:
    """How samples are fitted to the network input.

    Attributes
    ----------
    size : (rows, cols)
    channels : int
        1, or 3 (gray repeated) for the seed's RGB model.
    fit : {"resize", "letterbox"}
    target : {"trimap", "vertebrae"}
        What the label row holds (:mod:`.targets`).
    zoom : bool
        Training batches also hold column tiles (:mod:`.zoom`) of the samples with
        landmarks.
    """

    size: tuple[int, int]
    channels: int = 1
    fit: str = "resize"
    target: str = TRIMAP
    zoom: bool = False


def default_cache_dir() -> Path:
    """Where fitted arrays are cached by default.

    ``$SPINE_SEG_CACHE`` when set, else ``$XDG_CACHE_HOME/napari-spine-seg/arrays``
    (``~/.cache/...`` when that is unset).
    """
    env = os.environ.get("SPINE_SEG_CACHE")
    if env:
        return Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "napari-spine-seg" / "arrays"


def _file_stamp(path: Path | None) -> str:
    if path is None:
        return "-"
    st = os.stat(path)
    return f"{os.path.abspath(path)}|{st.st_size}|{st.st_mtime_ns}"


def cache_key(sample, spec: InputSpec, tile: int | None = None) -> str:
    """Cache file stem for `sample` (or its column `tile`) fitted by `spec`.

    It changes when a file changes.
    """
    parts = [
        f"v{CACHE_VERSION}",
        _file_stamp(Path(sample.image_path)),
        _file_stamp(getattr(sample, "trimap_path", None)),
        _file_stamp(getattr(sample, "landmarks_path", None)),
        f"{spec.size[0]}x{spec.size[1]}",
        spec.fit,
    ]
    if spec.target != TRIMAP:  # trimap keys stay as they were, so old caches still count
        parts.append(spec.target)
    if tile is not None:
        parts.append(f"tile {tile} of {TILES}")
    return hashlib.sha1("\n".join(parts).encode()).hexdigest()


def decode_sample(sample, spec: InputSpec, tile: int | None = None) -> np.ndarray:
    """Read one sample and fit it to the input: a ``(2, rows, cols)`` uint8 array.

    Row 0 is the normalised image × 255, row 1 the labels: the trimap (values 1, 2, 3),
    or for ``spec.target == "vertebrae"`` the vertebrae target (:mod:`.targets`).
    With `tile` (a vertebrae sample with landmarks), that column tile of the image and
    its labels (:func:`~.zoom.landmark_tiles`) instead of the whole image.
    """
    pixels = sample.load_image().pixels
    box = None
    if tile is not None:
        boxes = landmark_tiles(sample.load_landmarks(), pixels.shape[:2], spec.size)
        box = boxes[tile] if tile < len(boxes) else None
    cut = (slice(box[0], box[2]), slice(box[1], box[3])) if box else (slice(None),) * 2
    image = fit_image(pixels[cut], spec.size, spec.fit)
    if spec.target == VERTEBRAE:
        values = tuple(range(1, V_IGNORE + 1))
        labels = vertebra_labels(sample)[cut]
        small = fit_labels(labels, spec.size, spec.fit, values, V_BACKGROUND, LABEL_VOTES)
    else:
        small = fit_trimap(sample.load_trimap()[cut], spec.size, spec.fit)
    return np.stack([np.round(image * 255.0).astype(np.uint8), small])


class ArrayCache:
    """Fitted samples on disk, one ``.npy`` file each (or no caching when folder is None).

    Parameters
    ----------
    folder : path-like or None
        Cache folder; created when needed. When it cannot be written, the cache is
        switched off with one warning and samples are decoded every time.
    """

    def __init__(self, folder: str | os.PathLike | None):
        self.folder = None if folder is None else Path(folder)
        self.hits = 0
        self.misses = 0

    def get(self, sample, spec: InputSpec, tile: int | None = None) -> np.ndarray:
        """The fitted ``(2, rows, cols)`` uint8 array of `sample` (or of its column `tile`)."""
        if self.folder is None:
            self.misses += 1
            return decode_sample(sample, spec, tile)
        path = self.folder / f"{cache_key(sample, spec, tile)}.npy"
        try:
            arr = np.load(path)
            if arr.shape == (2, *spec.size) and arr.dtype == np.uint8:
                self.hits += 1
                return arr
        except (OSError, ValueError, EOFError):
            pass
        self.misses += 1
        arr = decode_sample(sample, spec, tile)
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            with atomic_output(path) as tmp, open(tmp, "wb") as fh:
                np.save(fh, arr)
        except Exception as exc:  # a cache that cannot be written must not stop training
            warnings.warn(
                f"{self.folder}: cannot write the cache ({exc}); not caching", stacklevel=2
            )
            self.folder = None
        return arr


@dataclass(frozen=True)
class Augmentation:
    """Ranges of the random augmentation (see the module docstring).

    ``bend_deg`` is the largest tilt (degrees) bending adds to the column, drawn per
    sample in ``[0, bend_deg]`` and applied with probability ``bend_probability``; 0 is off.
    """

    rotate_deg: float = 10.0
    scale: float = 0.15
    aspect: float = 0.08
    shift: float = 0.08
    flip_lr: bool = True
    gamma: float = 0.5
    contrast: float = 0.4
    brightness: float = 0.15
    illumination: float = 0.2
    blur_sigma: float = 1.2
    noise: float = 0.06
    bend_deg: float = 0.0
    bend_probability: float = 0.6
    body_shear_deg: float = 4.0
    body_shear_probability: float = 0.5

    @classmethod
    def off(cls) -> Augmentation:
        """No random change at all: every range 0, no flip, no bending."""
        return cls(
            rotate_deg=0.0,
            scale=0.0,
            aspect=0.0,
            shift=0.0,
            flip_lr=False,
            gamma=0.0,
            contrast=0.0,
            brightness=0.0,
            illumination=0.0,
            blur_sigma=0.0,
            noise=0.0,
            bend_deg=0.0,
            body_shear_deg=0.0,
        )


def augment(
    image: np.ndarray,
    trimap: np.ndarray,
    rng: np.random.Generator,
    aug: Augmentation = Augmentation(),
    background: int | None = BACKGROUND,
    body: int | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Augment one fitted image (float32 in [0, 1]) and its labels together.

    `trimap` may hold any labels (a trimap, or the vertebrae target): they are moved by
    the same geometry as the image, nearest-neighbour, and flipped with it. `background`
    is its background value: bending turns the column (the other labels) about its own
    centre line (None: about the image's centre column). `body` is the label of a
    vertebral body, if the labels have one: each body's plates are then tilted on their
    own (:mod:`.body_shear`).

    Returns
    -------
    image : float32 (rows, cols) in [0, 1]
    trimap : uint8 (rows, cols)
    """
    rows, cols = image.shape
    if aug.bend_deg and rng.random() < aug.bend_probability:
        curve = random_curve(rng, rows, cols, aug.bend_deg)
        image, trimap = bend(image, trimap, curve, column_centre(trimap, background))
    if (
        body is not None
        and background is not None
        and aug.body_shear_deg
        and rng.random() < aug.body_shear_probability
    ):
        width = column_width(trimap, background)
        if width:
            slopes = body_slopes(trimap, body, rng, aug.body_shear_deg)
            centre = column_centre(trimap, background)
            image, trimap = shear_bodies(image, trimap, slopes, centre, width)
    # geometry: one affine map for both (output pixel → input pixel)
    angle = np.deg2rad(rng.uniform(-aug.rotate_deg, aug.rotate_deg))
    s = rng.uniform(1 - aug.scale, 1 + aug.scale)
    a = rng.uniform(-aug.aspect, aug.aspect)
    sy, sx = s * (1 + a), s * (1 - a)
    cos, sin = np.cos(angle), np.sin(angle)
    forward = np.array([[cos * sy, -sin * sx], [sin * sy, cos * sx]])
    inverse = np.linalg.inv(forward)
    centre = np.array([(rows - 1) / 2, (cols - 1) / 2])
    shift = np.array(
        [rng.uniform(-aug.shift, aug.shift) * rows, rng.uniform(-aug.shift, aug.shift) * cols]
    )
    offset = centre - inverse @ (centre + shift)
    image = ndimage.affine_transform(image, inverse, offset, order=1, mode="reflect")
    trimap = ndimage.affine_transform(trimap, inverse, offset, order=0, mode="reflect")
    if aug.flip_lr and rng.random() < 0.5:
        image, trimap = image[:, ::-1], trimap[:, ::-1]

    # intensity
    img = np.clip(image, 0.0, 1.0) ** np.exp(rng.uniform(-aug.gamma, aug.gamma))
    mean = img.mean()
    img = (img - mean) * rng.uniform(1 - aug.contrast, 1 + aug.contrast) + mean
    img = img + rng.uniform(-aug.brightness, aug.brightness)
    if aug.illumination and rng.random() < 0.5:
        yy, xx = np.mgrid[0:rows, 0:cols].astype(np.float32)
        theta = rng.uniform(0, 2 * np.pi)
        ramp = (np.cos(theta) * yy / rows + np.sin(theta) * xx / cols) * 2 - 1
        img = img + rng.uniform(-aug.illumination, aug.illumination) * ramp
    if aug.blur_sigma and rng.random() < 0.3:
        img = ndimage.gaussian_filter(img, rng.uniform(0.3, aug.blur_sigma))
    if aug.noise and rng.random() < 0.5:
        img = img + rng.normal(0.0, rng.uniform(0.0, aug.noise), img.shape)
    return np.clip(img, 0.0, 1.0).astype(np.float32), np.ascontiguousarray(trimap, dtype=np.uint8)


class BatchSource:
    """Batches of fitted (and optionally augmented) samples, read from disk on demand.

    Parameters
    ----------
    samples : sequence of Sample
    spec : InputSpec
    batch_size : int
    cache : ArrayCache
    augmentation : Augmentation or None
        None for validation batches.
    shuffle : bool
        A new order every epoch (seeded).
    seed : int
    """

    def __init__(
        self,
        samples: Sequence,
        spec: InputSpec,
        *,
        batch_size: int,
        cache: ArrayCache,
        augmentation: Augmentation | None = None,
        shuffle: bool = False,
        seed: int = 0,
    ):
        self.samples = list(samples)
        self.spec = spec
        self.batch_size = int(batch_size)
        self.cache = cache
        self.augmentation = augmentation
        self.shuffle = shuffle
        self.seed = int(seed)
        self.epoch = 0

    def __len__(self) -> int:
        return math.ceil(len(self.samples) / self.batch_size)

    def order(self) -> np.ndarray:
        """Sample indices in this epoch's order."""
        n = len(self.samples)
        if not self.shuffle:
            return np.arange(n)
        return np.random.default_rng([self.seed, self.epoch]).permutation(n)

    def batch(self, idx: int) -> tuple[np.ndarray, np.ndarray]:
        """Batch `idx` of this epoch: ``x`` (B, rows, cols, C) float32, ``y`` (B, rows, cols) int32.

        ``y`` holds class indices (stored label value − 1: trimap value − 1, or the
        vertebrae target's, :mod:`.targets`).
        """
        order = self.order()
        picks = order[idx * self.batch_size : (idx + 1) * self.batch_size]
        xs, ys = [], []
        for i in picks:
            tile = self._tile(int(i))
            arr = self.cache.get(self.samples[i], self.spec, tile)
            image = arr[0].astype(np.float32) / 255.0
            trimap = arr[1]
            if self.augmentation is not None:
                rng = np.random.default_rng([self.seed, self.epoch, int(i)])
                vertebrae = self.spec.target == VERTEBRAE
                background = V_BACKGROUND if vertebrae else BACKGROUND
                # bodies are sheared in column tiles only: at the whole image's scale a
                # body is some 9 px tall, the shear hardly turns its plates, and a small
                # network learned to split bodies (docs/performance.md)
                body = V_BODY if vertebrae and tile is not None else None
                image, trimap = augment(image, trimap, rng, self.augmentation, background, body)
            xs.append(image)
            ys.append(trimap)
        x = np.stack(xs)[..., None]
        if self.spec.channels == 3:
            x = np.repeat(x, 3, axis=-1)
        y = np.stack(ys).astype(np.int32) - 1
        return x, y

    def _zooms(self, sample) -> bool:
        return (
            self.spec.zoom
            and self.augmentation is not None
            and self.spec.target == VERTEBRAE
            and has_vertebrae(sample)
        )

    def _tile(self, i: int) -> int | None:
        """The column tile sample `i` is drawn as this epoch, or None for the whole image."""
        if not self._zooms(self.samples[i]):
            return None
        rng = np.random.default_rng([self.seed, self.epoch, i, 1])
        return int(rng.integers(TILES)) if rng.random() < ZOOM_PROBABILITY else None

    def next_epoch(self) -> None:
        """Move on to the next epoch (new order and augmentation)."""
        self.epoch += 1

    def prepare(self, progress=None) -> None:
        """Decode and cache every sample once (calls ``progress(done, total)``)."""
        total = len(self.samples)
        for k, sample in enumerate(self.samples):
            self.cache.get(sample, self.spec)
            if self._zooms(sample):
                for tile in range(TILES):
                    self.cache.get(sample, self.spec, tile)
            if progress is not None:
                progress(k + 1, total)


@functools.cache
def _py_dataset_class():
    import keras

    class SampleBatches(keras.utils.PyDataset):
        """A :class:`BatchSource` as a Keras ``PyDataset``."""

        def __init__(self, source: BatchSource, **kwargs):
            super().__init__(**kwargs)
            self.source = source

        def __len__(self):
            return len(self.source)

        def __getitem__(self, idx):
            return self.source.batch(idx)

        def on_epoch_end(self):
            self.source.next_epoch()

    return SampleBatches


def as_py_dataset(source: BatchSource, *, workers: int = 1):
    """Wrap a :class:`BatchSource` in a ``keras.utils.PyDataset``.

    Parameters
    ----------
    source : BatchSource
    workers : int
        Threads reading batches ahead (1 reads them in the training loop).
    """
    return _py_dataset_class()(source, workers=workers, use_multiprocessing=False, max_queue_size=4)
