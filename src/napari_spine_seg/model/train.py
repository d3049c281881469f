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

Setup, build-or-resume and fit-and-save are in :mod:`.train_setup`, :mod:`.train_start`
and :mod:`.train_fit`; this module ties them together.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence

from ..atomic import check_writable_folder
from . import events as ev
from .config import TrainConfig, parse_size  # noqa: F401 (parse_size: for callers)
from .pipeline import Augmentation
from .train_fit import (
    FitState,
    TrainResult,
    checkpoint_paths,
    fit_and_save,
)
from .train_setup import (  # noqa: F401 (splits, split_samples, fingerprint: for callers)
    TEST_SPLITS,
    TRAIN_SPLITS,
    VAL_SPLITS,
    fingerprint,
    split_samples,
    training_data,
    training_info,
)
from .train_start import (
    accelerator_present,
    build_or_resume,
    dtype_policy,
    previous_best,
    read_start,
)


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
    start_time = time.perf_counter()
    check_writable_folder(c.out.parent if str(c.out.parent) else ".")
    best_path, last_path, history_path = checkpoint_paths(c.out)
    start = read_start(c)
    data = training_data(c, start, augment, progress)  # bad images fail before Keras loads

    import keras

    keras.utils.set_random_seed(c.seed)
    mixed_precision = c.mixed_precision
    if mixed_precision is None:
        mixed_precision = accelerator_present()
    info = training_info(c, start, data, bool(mixed_precision))
    with dtype_policy(bool(mixed_precision)):
        model, initial_epoch, history = build_or_resume(c, start, data.target)
        state = FitState(
            info=info,
            best_path=best_path,
            last_path=last_path,
            history_path=history_path,
            epochs=c.epochs,
            steps=len(data.train_source),
            monitor=data.monitor,
            progress=progress,
            cancel=cancel,
            history=history,
            started=start_time,
            budget_s=None if c.max_minutes is None else 60.0 * c.max_minutes,
        )
        best = previous_best(start, history, data.monitor, info.training_set["fingerprint"])
        if best is not None:
            state.best_value, state.best_epoch, state.best_metrics = best
        stopped, epochs_run = fit_and_save(model, c, data, state, initial_epoch, callbacks)
    result = TrainResult(
        model_path=best_path,
        last_checkpoint=last_path,
        history_csv=history_path,
        history=list(state.history),
        best_epoch=state.best_epoch,
        best_metrics=dict(state.best_metrics),
        epochs_run=epochs_run,
        stopped=stopped,
        seconds=time.perf_counter() - start_time,
        n_train=len(data.train_samples),
        n_val=len(data.val_samples),
        monitor=data.monitor,
    )
    state.emit(ev.TrainingDone(result))
    return result
