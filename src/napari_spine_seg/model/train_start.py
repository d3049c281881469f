"""Training, step two: the model a training starts from. A new one built from the
config, the weights of ``init_from`` (fine-tuning), or a checkpoint resumed with its
optimizer state, epoch and history (see :func:`~napari_spine_seg.model.train.train`)."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import SpineSegError
from .builders import build_model
from .config import TrainConfig
from .files import ModelInfo, load_model, read_metadata
from .objects import make_loss, make_metrics
from .targets import TRIMAP, VERTEBRAE


@dataclass
class Start:
    """Where a training starts: the architecture, and the file it comes from if any.

    Attributes
    ----------
    resume : Path or None
        The checkpoint resumed (its epoch, history and optimizer state carry on).
    init_from : Path or None
        The model whose weights start a fine-tune (ignored when resuming: a resumed
        fine-tune already has its own weights).
    info : ModelInfo or None
        The metadata of `resume` or `init_from`.
    preset, fit, input_size, channels, options
        The architecture: the file's when there is one, else the config's.
    target : {"trimap", "vertebrae"} or None
        What the file's model learned (it keeps learning that); None for a new model
        (the config's ``outputs`` and the samples decide).
    """

    preset: str
    fit: str
    input_size: tuple
    channels: int
    options: dict = field(default_factory=dict)
    resume: Path | None = None
    init_from: Path | None = None
    info: ModelInfo | None = None
    target: str | None = None


def read_start(c: TrainConfig) -> Start:
    """Read the metadata of the model `c` starts from (no Keras needed)."""
    if c.resume is not None:
        info = read_metadata(c.resume)
        resume, init_from = c.resume, None
    elif c.init_from is not None:
        info = read_metadata(c.init_from)
        resume, init_from = None, c.init_from
    else:
        return Start(c.preset, c.fit, tuple(c.input_size), c.channels, dict(c.options))
    return Start(
        info.preset,
        info.fit,
        tuple(info.input_size),
        info.channels,
        dict(info.options),
        resume,
        init_from,
        info,
        VERTEBRAE if info.has_vertebrae else TRIMAP,
    )


@contextlib.contextmanager
def dtype_policy(mixed_precision: bool):
    """Use Keras' ``mixed_bfloat16`` policy inside the block and restore the old one."""
    import keras

    old = keras.config.dtype_policy()
    if mixed_precision:
        keras.config.set_dtype_policy("mixed_bfloat16")
    try:
        yield
    finally:
        keras.config.set_dtype_policy(old)


def accelerator_present() -> bool:
    """True when the Keras backend sees a GPU (or TPU)."""
    import keras

    backend = keras.backend.backend()
    try:
        if backend == "jax":
            import jax

            return any(d.platform in ("gpu", "tpu") for d in jax.devices())
        if backend == "tensorflow":
            import tensorflow as tf

            return bool(tf.config.list_physical_devices("GPU"))
    except Exception:
        return False
    return False


def build_or_resume(c: TrainConfig, start: Start, target: str = TRIMAP):
    """The compiled Keras model to train, the epoch it has reached and its history.

    Call inside :func:`dtype_policy`: a built model takes the policy in force.
    `target` ("trimap" or "vertebrae") chooses the loss and metrics of a new model.

    Returns
    -------
    model : keras.Model
    initial_epoch : int
        0 unless resuming.
    history : list of dict
        The resumed checkpoint's rows (a fine-tune has a history of its own).
    """
    import keras

    initial_epoch, history = 0, []
    if start.resume is not None:
        model = load_model(start.resume, compile=True).keras_model
        if model.optimizer is None:
            raise SpineSegError(start.resume, "holds no optimizer state to resume from")
        initial_epoch = int(start.info.training.get("epoch", 0))
        history = [dict(r) for r in start.info.history]
    elif start.init_from is not None:
        model = load_model(start.init_from, compile=True).keras_model
    else:
        shape = (*start.input_size, start.channels)
        model = build_model(start.preset, shape, 3, **start.options)
    if getattr(model, "optimizer", None) is None:
        model.compile(
            optimizer=keras.optimizers.Adam(learning_rate=c.learning_rate),
            loss=make_loss(c.loss, target),
            metrics=make_metrics(target),
        )
    return model, initial_epoch, history


def previous_best(start: Start, history: list, monitor: str, fingerprint: str):
    """``(value, epoch, row)`` of the best epoch in a resumed `history`, or None.

    The best score carries over only on the same data (same `fingerprint`): on other
    validation images the old score is no bar to beat, so a fine-tune starts afresh.
    """
    if start.info is None or start.resume is None:
        return None
    if start.info.training_set.get("fingerprint") != fingerprint:
        return None
    previous = [r[monitor] for r in history if isinstance(r.get(monitor), int | float)]
    if not previous:
        return None
    best_i = int(np.argmax(previous))
    return float(previous[best_i]), int(history[best_i]["epoch"]), dict(history[best_i])
