"""Progress events of training, as small frozen dataclasses (no Keras).

:func:`~napari_spine_seg.model.train.train` calls ``progress(event)`` with these, in
this order::

    Preparing* TrainingStarted (EpochStarted BatchEnded* EpochEnded)* TrainingDone

The command line turns them into a tqdm bar; the napari widget forwards them from a
``thread_worker``; a slurm job can log them. Epochs and batches are counted from 1.
``metrics`` hold plain floats: ``loss``, ``accuracy`` (pixel accuracy over three
classes), ``spine_dice`` and, at epoch end, the ``val_`` versions and ``lr``.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Preparing:
    """Samples decoded (and cached) so far before training starts."""

    done: int
    total: int


@dataclass(frozen=True)
class TrainingStarted:
    """Training is about to run epochs ``initial_epoch + 1`` … ``epochs``."""

    epochs: int
    initial_epoch: int
    steps_per_epoch: int
    n_train: int
    n_val: int


@dataclass(frozen=True)
class EpochStarted:
    """Epoch `epoch` of `epochs` begins."""

    epoch: int
    epochs: int


@dataclass(frozen=True)
class BatchEnded:
    """Batch `batch` of `steps` of epoch `epoch` is done; metrics are the epoch's means so far."""

    epoch: int
    batch: int
    steps: int
    loss: float
    metrics: dict = field(default_factory=dict)


@dataclass(frozen=True)
class EpochEnded:
    """Epoch `epoch` is done; `improved` when its monitored metric is the best so far."""

    epoch: int
    epochs: int
    metrics: dict
    seconds: float
    improved: bool


@dataclass(frozen=True)
class TrainingDone:
    """Training has finished; `result` is the :class:`~napari_spine_seg.model.train.TrainResult`."""

    result: object


#: every event class, for type checks and documentation
EVENTS = (Preparing, TrainingStarted, EpochStarted, BatchEnded, EpochEnded, TrainingDone)
