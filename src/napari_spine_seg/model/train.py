"""Train a U-Net on a dataset: the one training function the CLI, the GUI and slurm jobs call.

Files written next to ``out`` (``m.keras``):

``m.keras``
    The best model so far (by validation spine Dice), with its metadata; rewritten
    atomically whenever validation improves. A complete, resumable checkpoint.
``m.last.keras``
    The latest weights and optimizer state, to resume from (``TrainConfig.resume``); written at
    the end (also when cancelled or stopped early) and at least once a minute.
``m.history.csv``
    One row per epoch: losses, pixel accuracy, spine Dice (training and validation),
    learning rate and seconds.
"""

from __future__ import annotations

import contextlib
import csv
import hashlib
import io
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from ..atomic import check_writable_folder, write_text_atomic
from ..errors import SpineSegError
from . import events as ev
from .config import TrainConfig, parse_size  # noqa: F401 (parse_size: for callers)
from .defaults import TRAIN_DEFAULTS
from .files import ModelInfo, load_model, read_metadata, save_model
from .pipeline import (
    ArrayCache,
    Augmentation,
    BatchSource,
    InputSpec,
    as_py_dataset,
    default_cache_dir,
)
from .preprocess import NORMALISATION

DEFAULTS = TRAIN_DEFAULTS
#: seconds between "last" checkpoints (one is always written at the end)
LAST_CHECKPOINT_EVERY_S = 60.0
TRAIN_SPLITS = ("training", "train", "trainval")
VAL_SPLITS = ("validation", "val")
TEST_SPLITS = ("test", "testing")
HISTORY_COLUMNS = (
    "epoch",
    "loss",
    "accuracy",
    "spine_dice",
    "val_loss",
    "val_accuracy",
    "val_spine_dice",
    "lr",
    "seconds",
)


@dataclass
class TrainResult:
    """What :func:`train` did.

    Attributes
    ----------
    model_path : Path
        The best model (``out``).
    last_checkpoint : Path
        The latest weights and optimizer state (to resume from).
    history_csv : Path
    history : list of dict
        Per-epoch metrics (``epoch`` counted from 1).
    best_epoch : int or None
    best_metrics : dict
        The metrics of the epoch saved in ``model_path``.
    epochs_run : int
        Epochs completed in total, including those before a resume.
    stopped : {"completed", "early_stopping", "cancelled", "time_budget"}
    seconds : float
        Wall time of this call.
    n_train, n_val : int
        Samples used for training and validation.
    monitor : str
        The metric that chose the best epoch.
    """

    model_path: Path
    last_checkpoint: Path
    history_csv: Path
    history: list = field(default_factory=list)
    best_epoch: int | None = None
    best_metrics: dict = field(default_factory=dict)
    epochs_run: int = 0
    stopped: str = "completed"
    seconds: float = 0.0
    n_train: int = 0
    n_val: int = 0
    monitor: str = "val_spine_dice"


def checkpoint_paths(out: str | os.PathLike) -> tuple[Path, Path, Path]:
    """``(best model, last checkpoint, history CSV)`` paths for a model file `out`."""
    out = Path(out)
    stem = out.name[: -len(".keras")] if out.name.endswith(".keras") else out.stem
    return out, out.with_name(f"{stem}.last.keras"), out.with_name(f"{stem}.history.csv")


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


def _open(dataset):
    if hasattr(dataset, "samples"):
        return dataset
    from ..data.dataset import open_dataset

    return open_dataset(dataset)


@contextlib.contextmanager
def _dtype_policy(mixed_precision: bool):
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


def _make_callback(state: _State):
    import keras

    class _Hook(keras.callbacks.Callback):
        """Progress events, cancel, history CSV and checkpoints."""

        def on_epoch_begin(self, epoch, logs=None):
            state.epoch = epoch + 1
            state.epoch_start = time.perf_counter()
            state.emit(ev.EpochStarted(epoch + 1, state.epochs))

        def on_train_batch_end(self, batch, logs=None):
            logs = _floats(logs)
            state.emit(
                ev.BatchEnded(
                    state.epoch, batch + 1, state.steps, logs.get("loss", float("nan")), logs
                )
            )
            self._check_cancel()

        def on_test_batch_end(self, batch, logs=None):
            # keras validates an epoch cut short by Stop too: skip that, it is not recorded
            self._check_cancel()

        def _check_cancel(self):
            if state.cancelled or (state.cancel is not None and state.cancel.is_set()):
                state.cancelled = True
                self.model.stop_training = True
                self.model.stop_evaluating = True

        def on_epoch_end(self, epoch, logs=None):
            if state.cancelled:  # a partial epoch is not recorded
                return
            logs = _floats(logs)
            logs["lr"] = float(keras.ops.convert_to_numpy(self.model.optimizer.learning_rate))
            seconds = time.perf_counter() - state.epoch_start
            row = {"epoch": epoch + 1, **logs, "seconds": round(seconds, 3)}
            state.history.append(row)
            state.write_history()
            value = logs.get(state.monitor)
            improved = (
                value is not None
                and np.isfinite(value)
                and (state.best_value is None or value > state.best_value)
            )
            if improved:
                state.best_value, state.best_epoch, state.best_metrics = value, epoch + 1, row
                state.save(self.model, state.best_path, epoch + 1, row)
            if time.perf_counter() - state.last_saved > LAST_CHECKPOINT_EVERY_S:
                state.save(self.model, state.last_path, epoch + 1, row)
            if state.deadline is not None and time.perf_counter() >= state.deadline:
                state.out_of_time = True  # this epoch crossed the time budget: the last one
                self.model.stop_training = True
            state.emit(ev.EpochEnded(epoch + 1, state.epochs, row, seconds, bool(improved)))

    return _Hook()


def _floats(logs) -> dict:
    out = {}
    for k, v in (logs or {}).items():
        try:
            out[k] = float(v)
        except (TypeError, ValueError):
            continue
    return out


@dataclass
class _State:
    """Mutable bookkeeping shared by the training callback and :func:`train`."""

    info: ModelInfo
    best_path: Path
    last_path: Path
    history_path: Path
    epochs: int
    steps: int
    monitor: str
    progress: Callable | None
    cancel: object | None
    history: list = field(default_factory=list)
    best_value: float | None = None
    best_epoch: int | None = None
    best_metrics: dict = field(default_factory=dict)
    epoch: int = 0
    epoch_start: float = 0.0
    last_saved: float = field(default_factory=time.perf_counter)
    cancelled: bool = False
    #: perf_counter time after which no new epoch starts (TrainConfig.max_minutes)
    deadline: float | None = None
    out_of_time: bool = False

    def emit(self, event) -> None:
        if self.progress is not None:
            self.progress(event)

    def write_history(self) -> None:
        buf = io.StringIO()
        writer = csv.DictWriter(
            buf, fieldnames=HISTORY_COLUMNS, extrasaction="ignore", lineterminator="\n"
        )
        writer.writeheader()
        for row in self.history:
            writer.writerow({k: row.get(k, "") for k in HISTORY_COLUMNS})
        write_text_atomic(self.history_path, buf.getvalue())

    def save(self, model, path: Path, epoch: int, metrics: dict) -> None:
        training = {**self.info.training, "epoch": epoch, "best_epoch": self.best_epoch}
        info = replace(
            self.info, training=training, metrics=dict(metrics), history=list(self.history)
        )
        save_model(model, path, info)
        if path == self.last_path:
            self.last_saved = time.perf_counter()


def _check_headers(samples) -> None:
    """Read every image's header, trimap header and landmarks, so that a bad file fails
    at once rather than after Keras has loaded."""
    from ..data.images import check_image_headers

    check_image_headers(s.image_path for s in samples)
    check_image_headers(s.trimap_path for s in samples if s.trimap_path is not None)
    for sample in samples:
        if sample.trimap_path is None:
            sample.load_landmarks()


def train(
    config: TrainConfig | object,
    out: str | os.PathLike | None = None,
    *,
    progress: Callable[[object], None] | None = None,
    cancel=None,
    callbacks: Sequence = (),
    augmentation: Augmentation | None = None,
    **settings,
) -> TrainResult:
    """Train a U-Net as `config` says and save the best model to ``config.out``.

    Parameters
    ----------
    config : TrainConfig, or a dataset
        The settings (see :class:`~napari_spine_seg.model.config.TrainConfig`). For
        short calls, a dataset with `out` and the settings as keywords instead:
        ``train(dataset, out, epochs=3)`` is ``train(TrainConfig(dataset, out, epochs=3))``.
        See :func:`split_samples` for which samples train and validate.
    out : path-like, optional
        The model file, when `config` is a dataset.
    progress : callable, optional
        Called with each event of :mod:`napari_spine_seg.model.events`.
    cancel : threading.Event-like, optional
        Checked after every batch; when set, training stops, the best and last
        checkpoints stay on disk and the result says ``stopped="cancelled"``.
    callbacks : sequence of keras.callbacks.Callback
        Extra Keras callbacks.
    augmentation : Augmentation, optional
        Augmentation settings other than the default (when ``config.augment``).
    **settings
        TrainConfig fields, when `config` is a dataset.

    Returns
    -------
    TrainResult
        ``stopped`` says why training ended; it is also the ``stopped`` entry of the
        model's training metadata and of its history's last row.

    Raises
    ------
    SpineSegError
        Bad dataset, output path, resume file or setting.
    """
    if not isinstance(config, TrainConfig):
        if isinstance(settings.get("augment"), Augmentation):
            augmentation = settings.pop("augment")
            settings["augment"] = True
        config = TrainConfig(config, out, **settings)
    elif out is not None or settings:
        raise TypeError("train(config) takes no other settings; use dataclasses.replace")
    return _train(config, progress, cancel, callbacks, augmentation)


def _train(c: TrainConfig, progress, cancel, callbacks, augment) -> TrainResult:
    start = time.perf_counter()
    out, dataset, epochs, preset, fit = c.out, c.dataset, c.epochs, c.preset, c.fit
    batch_size, learning_rate, seed = c.batch_size, c.learning_rate, c.seed
    check_writable_folder(out.parent if str(out.parent) else ".")
    best_path, last_path, history_path = checkpoint_paths(out)

    resume = c.resume
    resumed_info = read_metadata(resume) if resume is not None else None
    init_from = c.init_from if resume is None else None  # a resumed fine-tune has its own
    start_info = read_metadata(init_from) if init_from is not None else resumed_info
    if start_info is not None:
        preset, fit = start_info.preset, start_info.fit
        input_size, channels = tuple(start_info.input_size), start_info.channels
        options = dict(start_info.options)
    else:
        input_size, channels, options = c.input_size, c.channels, dict(c.options)

    dataset = _open(dataset)
    train_samples, val_samples = split_samples(dataset, c.val_fraction, seed)
    if not train_samples:
        raise SpineSegError(getattr(dataset, "root", None), "has no training samples")
    _check_headers([*train_samples, *val_samples])  # bad images fail before Keras loads

    import keras

    from .builders import build_model
    from .objects import make_loss, make_metrics

    keras.utils.set_random_seed(seed)
    mixed_precision = c.mixed_precision
    if mixed_precision is None:
        mixed_precision = accelerator_present()

    spec = InputSpec(size=tuple(input_size), channels=channels, fit=fit)
    cache_dir = default_cache_dir() if c.cache == "auto" else c.cache
    array_cache = ArrayCache(cache_dir)
    augmentation = (augment or Augmentation()) if c.augment else None
    train_source = BatchSource(
        train_samples,
        spec,
        batch_size=batch_size,
        cache=array_cache,
        augmentation=augmentation,
        shuffle=True,
        seed=seed,
    )
    val_source = (
        BatchSource(val_samples, spec, batch_size=batch_size, cache=array_cache)
        if val_samples
        else None
    )

    total = len(train_samples) + len(val_samples)

    def _prepared(done, _total, offset=0):
        if progress is not None:
            progress(ev.Preparing(done + offset, total))

    train_source.prepare(_prepared)
    if val_source is not None:
        val_source.prepare(lambda d, t: _prepared(d, t, len(train_samples)))

    monitor = "val_spine_dice" if val_source is not None else "spine_dice"
    training_settings = {
        "epochs": epochs,
        "batch_size": batch_size,
        "learning_rate": learning_rate,
        "loss": c.loss,
        "val_fraction": c.val_fraction,
        "seed": seed,
        "patience": c.patience,
        "max_minutes": c.max_minutes,
        "init_from": str(c.init_from) if c.init_from is not None else None,
        "augment": augmentation is not None,
        "mixed_precision": bool(mixed_precision),
        "monitor": monitor,
    }
    info = ModelInfo(
        preset=preset,
        options=options,
        input_size=tuple(input_size),
        channels=channels,
        fit=fit,
        normalisation=NORMALISATION,
        training_set={
            "root": str(getattr(dataset, "root", "")),
            "kind": getattr(dataset, "kind", None),
            "n_train": len(train_samples),
            "n_val": len(val_samples),
            "fingerprint": fingerprint(train_samples + val_samples),
        },
        training=training_settings,
    )

    initial_epoch = 0
    history: list = []
    with _dtype_policy(bool(mixed_precision)):
        model = None
        if resumed_info is not None:
            model = load_model(resume, compile=True).keras_model
            initial_epoch = int(resumed_info.training.get("epoch", 0))
            history = [dict(r) for r in resumed_info.history]
            if model.optimizer is None:
                raise SpineSegError(resume, "holds no optimizer state to resume from")
        elif init_from is not None:  # fine-tuning: its weights, a history of its own
            model = load_model(init_from, compile=True).keras_model
        if model is None:
            model = build_model(preset, (*input_size, channels), 3, **options)
        if getattr(model, "optimizer", None) is None:
            model.compile(
                optimizer=keras.optimizers.Adam(learning_rate=learning_rate),
                loss=make_loss(c.loss),
                metrics=make_metrics(),
            )

        state = _State(
            info=info,
            best_path=best_path,
            last_path=last_path,
            history_path=history_path,
            epochs=epochs,
            steps=len(train_source),
            monitor=monitor,
            progress=progress,
            cancel=cancel,
            history=history,
            deadline=None if c.max_minutes is None else start + 60.0 * c.max_minutes,
        )
        # the best score so far carries over only on the same data: on other validation
        # images the old score is no bar to beat
        same_data = (
            resumed_info is not None
            and resumed_info.training_set.get("fingerprint") == info.training_set["fingerprint"]
        )
        previous = [r[monitor] for r in history if isinstance(r.get(monitor), int | float)]
        if previous and same_data:
            best_i = int(np.argmax(previous))
            state.best_value = float(previous[best_i])
            state.best_epoch = int(history[best_i]["epoch"])
            state.best_metrics = dict(history[best_i])

        state.write_history()
        history_before = list(state.history)
        hooks = [_make_callback(state)]
        early = None
        if c.patience:
            early = keras.callbacks.EarlyStopping(monitor=monitor, mode="max", patience=c.patience)
            hooks.append(early)
        if val_source is not None:
            hooks.append(
                keras.callbacks.ReduceLROnPlateau(
                    monitor="val_loss", factor=0.5, patience=4, min_lr=1e-5
                )
            )
        hooks.extend(callbacks)

        state.emit(
            ev.TrainingStarted(
                epochs, initial_epoch, len(train_source), len(train_samples), len(val_samples)
            )
        )
        model.fit(
            as_py_dataset(train_source, workers=c.workers),
            validation_data=as_py_dataset(val_source, workers=1)
            if val_source is not None
            else None,
            epochs=epochs,
            initial_epoch=initial_epoch,
            callbacks=hooks,
            verbose=0,
        )

        if state.cancelled:
            stopped = "cancelled"
        elif state.out_of_time:
            stopped = "time_budget"
        elif early is not None and early.stopped_epoch > 0:
            stopped = "early_stopping"
        else:
            stopped = "completed"
        state.info.training["stopped"] = stopped
        if state.history and len(state.history) > len(history_before):
            state.history[-1]["stopped"] = stopped  # this run's last epoch says why it ended
        epochs_run = state.history[-1]["epoch"] if state.history else initial_epoch
        last_metrics = state.history[-1] if state.history else {}
        state.save(model, last_path, epochs_run, last_metrics)
        if state.best_epoch is None:  # no epoch completed (cancelled in the first one)
            state.save(model, best_path, epochs_run, last_metrics)
    result = TrainResult(
        model_path=best_path,
        last_checkpoint=last_path,
        history_csv=history_path,
        history=list(state.history),
        best_epoch=state.best_epoch,
        best_metrics=dict(state.best_metrics),
        epochs_run=int(epochs_run),
        stopped=stopped,
        seconds=time.perf_counter() - start,
        n_train=len(train_samples),
        n_val=len(val_samples),
        monitor=monitor,
    )
    state.emit(ev.TrainingDone(result))
    return result
