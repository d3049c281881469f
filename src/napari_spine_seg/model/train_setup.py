"""Training, step one: open the data, split it, check every file's header and build the
input pipeline, all before Keras loads (see :func:`~napari_spine_seg.model.train.train`)."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np

from ..data.dataset import open_dataset
from ..data.images import check_image_headers
from ..errors import SpineSegError
from . import events as ev
from .config import TrainConfig
from .files import ModelInfo
from .pipeline import ArrayCache, Augmentation, BatchSource, InputSpec, default_cache_dir
from .preprocess import NORMALISATION
from .targets import MODEL_OUTPUTS, VERTEBRA_CLASSES, VERTEBRAE, resolve_target
from .train_start import Start
from .zoom import tile_settings

TRAIN_SPLITS = ("training", "train", "trainval")
VAL_SPLITS = ("validation", "val")
TEST_SPLITS = ("test", "testing")


def split_samples(dataset, val_fraction: float, seed: int) -> tuple[list, list]:
    """Choose training and validation samples from a dataset.

    An AASCE root's ``training``/``train`` split trains and its ``validation``/``val``
    split validates when it has them; test splits are never used. Otherwise a seeded
    random `val_fraction` of the training samples validates (at least one sample when
    `val_fraction` > 0 and there are two or more).

    Returns
    -------
    train, val : list of Sample
    """
    samples = list(dataset.samples)
    by_split: dict = {}
    for s in samples:
        by_split.setdefault(s.split, []).append(s)
    train = next((by_split[n] for n in TRAIN_SPLITS if n in by_split), None)
    val = next((by_split[n] for n in VAL_SPLITS if n in by_split), None)
    if train is None:
        excluded = set(TEST_SPLITS) | set(VAL_SPLITS if val is not None else ())
        train = [s for s in samples if s.split not in excluded] or samples
    if val is not None:
        return list(train), list(val)
    n = len(train)
    n_val = 0
    if val_fraction > 0 and n >= 2:
        n_val = min(n - 1, max(1, int(round(val_fraction * n))))
    order = np.random.default_rng(seed).permutation(n)
    val_idx = set(order[:n_val].tolist())
    return [s for i, s in enumerate(train) if i not in val_idx], [train[i] for i in sorted(val_idx)]


def fingerprint(samples: Sequence) -> str:
    """SHA-256 of the sorted sample names and their image and label file sizes.

    Stable under copying (no paths or times), changed by adding, removing, renaming
    or re-encoding an image or label.
    """
    lines = []
    for s in samples:
        sizes = []
        for p in (
            s.image_path,
            getattr(s, "trimap_path", None),
            getattr(s, "landmarks_path", None),
        ):
            sizes.append(str(os.path.getsize(p)) if p is not None and os.path.exists(p) else "-")
        lines.append(f"{s.name}|{'|'.join(sizes)}")
    return hashlib.sha256("\n".join(sorted(lines)).encode()).hexdigest()


def check_headers(samples) -> None:
    """Read every image's header, trimap header and landmarks, so that a bad file fails
    at once rather than after Keras has loaded."""
    check_image_headers(s.image_path for s in samples)
    check_image_headers(s.trimap_path for s in samples if s.trimap_path is not None)
    for sample in samples:
        if sample.trimap_path is None:
            sample.load_landmarks()


@dataclass
class TrainData:
    """The samples of a training and the batches made from them."""

    dataset: object
    train_samples: list
    val_samples: list
    train_source: BatchSource
    val_source: BatchSource | None
    augmented: bool
    target: str = "trimap"

    @property
    def monitor(self) -> str:
        """The metric that chooses the best epoch (and stops early), on validation if any.

        A trimap model: spine Dice. A vertebrae model: its 3-class pixel accuracy, which
        scores the bodies and spaces, not only the column (with patience 12, a 60-phantom
        run would have stopped at epoch 74 on it, at 68 on the column's Dice).
        """
        name = "accuracy" if self.target == VERTEBRAE else "spine_dice"
        return f"val_{name}" if self.val_source is not None else name


def open_samples(c: TrainConfig) -> tuple[object, list, list]:
    """``(dataset, train samples, validation samples)``, every file's header checked."""
    dataset = c.dataset if hasattr(c.dataset, "samples") else open_dataset(c.dataset)
    train_samples, val_samples = split_samples(dataset, c.val_fraction, c.seed)
    if not train_samples:
        raise SpineSegError(getattr(dataset, "root", None), "has no training samples")
    check_headers([*train_samples, *val_samples])  # bad images fail before Keras loads
    return dataset, train_samples, val_samples


def training_data(
    c: TrainConfig, start: Start, augment: Augmentation | None, progress
) -> TrainData:
    """Open, split and check the data of `c`, and decode it into the batch cache.

    `start` gives the input size, channels and fit (a resumed or fine-tuned model keeps
    its own). Emits :class:`~napari_spine_seg.model.events.Preparing` events.
    """
    dataset, train_samples, val_samples = open_samples(c)
    target = start.target or resolve_target(c.outputs, [*train_samples, *val_samples])
    spec = InputSpec(
        size=tuple(start.input_size),
        channels=start.channels,
        fit=start.fit,
        target=target,
        zoom=c.zoom_pass is not False and target == VERTEBRAE,
    )
    cache = ArrayCache(default_cache_dir() if c.cache == "auto" else c.cache)
    augmentation = None
    if c.augment:  # the config's bending over `augment`'s
        augmentation = replace(augment or Augmentation(), bend_deg=c.bend_deg)
    train_source = BatchSource(
        train_samples,
        spec,
        batch_size=c.batch_size,
        cache=cache,
        augmentation=augmentation,
        shuffle=True,
        seed=c.seed,
    )
    val_source = None
    if val_samples:
        val_source = BatchSource(val_samples, spec, batch_size=c.batch_size, cache=cache)
    total = len(train_samples) + len(val_samples)

    def _prepared(done, _total, offset=0):
        if progress is not None:
            progress(ev.Preparing(done + offset, total))

    train_source.prepare(_prepared)
    if val_source is not None:
        val_source.prepare(lambda d, t: _prepared(d, t, len(train_samples)))
    return TrainData(
        dataset,
        train_samples,
        val_samples,
        train_source,
        val_source,
        augmentation is not None,
        target,
    )


def training_info(c: TrainConfig, start: Start, data: TrainData, mixed_precision: bool):
    """The :class:`~napari_spine_seg.model.files.ModelInfo` saved with every checkpoint."""
    settings = {
        "epochs": c.epochs,
        "batch_size": c.batch_size,
        "learning_rate": c.learning_rate,
        "lr_schedule": c.lr_schedule,
        "loss": c.loss,
        "val_fraction": c.val_fraction,
        "seed": c.seed,
        "patience": c.patience,
        "max_minutes": c.max_minutes,
        "init_from": str(c.init_from) if c.init_from is not None else None,
        "augment": data.augmented,
        "bend_deg": c.bend_deg if data.augmented else 0.0,
        "mixed_precision": bool(mixed_precision),
        "monitor": data.monitor,
    }
    samples = data.train_samples + data.val_samples
    extra = {}
    if data.target == VERTEBRAE:
        extra = {"classes": [dict(k) for k in VERTEBRA_CLASSES]}
        settings["zoom_pass"] = data.train_source.spec.zoom
        if settings["zoom_pass"]:
            settings.update(tile_settings())  # predicted with these, whatever zoom.py says later
        # bodies are sheared in column tiles only (BatchSource): none without the zoom pass
        shear = data.train_source.augmentation
        sheared = shear is not None and settings["zoom_pass"]
        settings["body_shear_deg"] = shear.body_shear_deg if sheared else 0.0
    return ModelInfo(
        preset=start.preset,
        options=dict(start.options),
        input_size=tuple(start.input_size),
        channels=start.channels,
        fit=start.fit,
        normalisation=NORMALISATION,
        training_set={
            "root": str(getattr(data.dataset, "root", "")),
            "kind": getattr(data.dataset, "kind", None),
            "n_train": len(data.train_samples),
            "n_val": len(data.val_samples),
            "fingerprint": fingerprint(samples),
        },
        training=settings,
        outputs=list(MODEL_OUTPUTS[data.target]),
        **extra,
    )
