"""Training, step three: fit the model with progress, cancel, time budget and checkpoint
callbacks, then save the best and last model files (see
:func:`~napari_spine_seg.model.train.train`)."""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from . import events as ev
from .config import TrainConfig
from .files import ModelInfo, save_model
from .history import write_history_csv
from .pipeline import as_py_dataset
from .train_setup import TrainData

#: seconds between "last" checkpoints (one is always written at the end)
LAST_CHECKPOINT_EVERY_S = 60.0
#: the lowest learning rate either schedule reaches
MIN_LEARNING_RATE = 1e-5


@dataclass
class TrainResult:
    """What :func:`~napari_spine_seg.model.train.train` did.

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


@dataclass
class FitState:
    """Mutable bookkeeping shared by the training callback and :func:`fit_and_save`."""

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
    #: perf_counter time the training call began, and its time budget in seconds
    #: (TrainConfig.max_minutes; None: no budget)
    started: float = 0.0
    budget_s: float | None = None
    out_of_time: bool = False

    @property
    def deadline(self) -> float | None:
        """perf_counter time after which no new epoch starts (None: no budget)."""
        return None if self.budget_s is None else self.started + self.budget_s

    def budget_share(self) -> float:
        """The share of the time budget spent so far (0 without a budget)."""
        if self.budget_s is None:
            return 0.0
        return (time.perf_counter() - self.started) / self.budget_s

    def emit(self, event) -> None:
        if self.progress is not None:
            self.progress(event)

    def write_history(self) -> None:
        write_history_csv(self.history_path, self.history)

    def save(self, model, path: Path, epoch: int, metrics: dict) -> None:
        training = {**self.info.training, "epoch": epoch, "best_epoch": self.best_epoch}
        info = replace(
            self.info, training=training, metrics=dict(metrics), history=list(self.history)
        )
        save_model(model, path, info)
        if path == self.last_path:
            self.last_saved = time.perf_counter()

    def end_epoch(self, model, epoch: int, logs: dict) -> None:
        """Record a finished epoch: history row, best and last checkpoints, time budget."""
        seconds = time.perf_counter() - self.epoch_start
        row = {"epoch": epoch, **logs, "seconds": round(seconds, 3)}
        self.history.append(row)
        self.write_history()
        value = logs.get(self.monitor)
        improved = (
            value is not None
            and np.isfinite(value)
            and (self.best_value is None or value > self.best_value)
        )
        if improved:
            self.best_value, self.best_epoch, self.best_metrics = value, epoch, row
            self.save(model, self.best_path, epoch, row)
        if time.perf_counter() - self.last_saved > LAST_CHECKPOINT_EVERY_S:
            self.save(model, self.last_path, epoch, row)
        if self.deadline is not None and time.perf_counter() >= self.deadline:
            self.out_of_time = True  # this epoch crossed the time budget: the last one
            model.stop_training = True
        self.emit(ev.EpochEnded(epoch, self.epochs, row, seconds, bool(improved)))


def _make_callback(state: FitState):
    import keras

    class _Hook(keras.callbacks.Callback):
        """Progress events, cancel, history CSV and checkpoints."""

        def on_epoch_begin(self, epoch, logs=None):
            state.epoch = epoch + 1
            state.epoch_start = time.perf_counter()
            state.emit(ev.EpochStarted(epoch + 1, state.epochs))

        def on_train_batch_end(self, batch, logs=None):
            logs = _floats(logs)
            loss = logs.get("loss", float("nan"))
            state.emit(ev.BatchEnded(state.epoch, batch + 1, state.steps, loss, logs))
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
            state.end_epoch(self.model, epoch + 1, logs)

    return _Hook()


def _floats(logs) -> dict:
    out = {}
    for k, v in (logs or {}).items():
        try:
            out[k] = float(v)
        except (TypeError, ValueError):
            continue
    return out


def cosine_rate(first: float, progress: float) -> float:
    """The learning rate `progress` (0 to 1) of the way through a cosine schedule.

    It falls from `first` at 0 to :data:`MIN_LEARNING_RATE` at 1, and stays there.

    Examples
    --------
    >>> cosine_rate(1e-3, 0.0), round(cosine_rate(1e-3, 0.5), 7), cosine_rate(1e-3, 2.0)
    (0.001, 0.000505, 1e-05)
    """
    low = min(MIN_LEARNING_RATE, first)
    done = min(max(progress, 0.0), 1.0)
    return low + (first - low) * 0.5 * (1.0 + math.cos(math.pi * done))


def _make_cosine(c: TrainConfig, state: FitState):
    import keras

    class _Cosine(keras.callbacks.Callback):
        """Sets each epoch's rate from how far training has gone, in epochs or in time."""

        def on_epoch_begin(self, epoch, logs=None):
            progress = max(epoch / c.epochs, state.budget_share())
            self.model.optimizer.learning_rate = cosine_rate(c.learning_rate, progress)

    return _Cosine()


def _hooks(c: TrainConfig, state: FitState, data: TrainData, callbacks: Sequence):
    """Our callback, early stopping, learning-rate decay and the caller's callbacks."""
    import keras

    hooks = [_make_callback(state)]
    early = None
    if c.patience:
        early = keras.callbacks.EarlyStopping(
            monitor=state.monitor, mode="max", patience=c.patience
        )
        hooks.append(early)
    if c.lr_schedule == "cosine":
        hooks.append(_make_cosine(c, state))
    elif data.val_source is not None:
        hooks.append(
            keras.callbacks.ReduceLROnPlateau(
                monitor="val_loss", factor=0.5, patience=4, min_lr=MIN_LEARNING_RATE
            )
        )
    hooks.extend(callbacks)
    return hooks, early


def _why_stopped(state: FitState, early) -> str:
    if state.cancelled:
        return "cancelled"
    if state.out_of_time:
        return "time_budget"
    if early is not None and early.stopped_epoch > 0:
        return "early_stopping"
    return "completed"


def fit_and_save(
    model,
    c: TrainConfig,
    data: TrainData,
    state: FitState,
    initial_epoch: int,
    callbacks: Sequence = (),
) -> tuple[str, int]:
    """Fit `model` and save the last checkpoint (and the best, if no epoch finished).

    Returns
    -------
    stopped : str
        Why training ended (see :class:`TrainResult`).
    epochs_run : int
    """
    state.write_history()
    n_before = len(state.history)
    hooks, early = _hooks(c, state, data, callbacks)
    steps, n_train, n_val = len(data.train_source), len(data.train_samples), len(data.val_samples)
    state.emit(ev.TrainingStarted(c.epochs, initial_epoch, steps, n_train, n_val))
    val = data.val_source
    model.fit(
        as_py_dataset(data.train_source, workers=c.workers),
        validation_data=as_py_dataset(val, workers=1) if val is not None else None,
        epochs=c.epochs,
        initial_epoch=initial_epoch,
        callbacks=hooks,
        verbose=0,
    )
    stopped = _why_stopped(state, early)
    state.info.training["stopped"] = stopped
    if len(state.history) > n_before:
        state.history[-1]["stopped"] = stopped  # this run's last epoch says why it ended
    epochs_run = state.history[-1]["epoch"] if state.history else initial_epoch
    last_metrics = state.history[-1] if state.history else {}
    state.save(model, state.last_path, epochs_run, last_metrics)
    if state.best_epoch is None:  # no epoch completed (cancelled in the first one)
        state.save(model, state.best_path, epochs_run, last_metrics)
    return stopped, int(epochs_run)
