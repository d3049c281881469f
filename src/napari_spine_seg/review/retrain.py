"""Retrain on corrections: fine-tune a model on a review's accepted and corrected images.

The training set is the review's reviewed images, each with its reviewed trimap, plus
the model's original training set (named in the model file) when it can still be
opened. A reviewed image that is also in the original set replaces it there: the
reviewed trimap is the better label. Training then continues from the model's weights
and optimizer state (:func:`~napari_spine_seg.model.train.train` with ``resume``) for
a few more epochs.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from ..atomic import atomic_output
from ..data.dataset import Dataset, open_dataset
from ..errors import SpineSegError
from .session import REVIEWED, ReviewSession, ReviewSnapshot

#: fine-tuning epochs unless told otherwise
DEFAULT_EPOCHS = 5


def retraining_dataset(
    session: ReviewSession | ReviewSnapshot, base: str | os.PathLike | Dataset | None = None
) -> Dataset:
    """The reviewed images of `session`, with their reviewed trimaps, plus `base`'s samples.

    Parameters
    ----------
    session : ReviewSession or ReviewSnapshot
    base : path-like or Dataset, optional
        The original training set. Its training and validation samples are kept
        (its test samples are not trained on), except those reviewed in `session`,
        which come with their reviewed trimap instead.

    Returns
    -------
    Dataset
        ``kind="review"``, rooted at `base`'s root (the review folder without one).
        When `base` has a training split the reviewed images join it; otherwise
        they have no split.

    Raises
    ------
    SpineSegError
        When no image of the review is accepted or corrected yet.
    """
    keys = session.reviewed_keys(REVIEWED)
    if not keys:
        raise SpineSegError(session.folder, "has no accepted or corrected images to retrain on")
    if base is not None and not isinstance(base, Dataset):
        base = open_dataset(base)
    from ..model.train import TEST_SPLITS, TRAIN_SPLITS

    base_samples = list(base.samples) if base is not None else []
    train_split = next((s.split for s in base_samples if s.split in TRAIN_SPLITS), None)
    reviewed = [
        replace(
            session.sample(k),
            split=train_split,
            trimap_path=session.trimap_path(k),
            landmarks_path=None,
        )
        for k in keys
    ]
    taken = {Path(s.image_path).resolve() for s in reviewed}
    kept = [
        s
        for s in base_samples
        if Path(s.image_path).resolve() not in taken and s.split not in TEST_SPLITS
    ]
    samples = tuple(kept + reviewed)
    splits = tuple(dict.fromkeys(s.split for s in samples if s.split is not None))
    # rooted at the original set, so that a model fine-tuned on it names that set
    # (and the next retraining starts from it again)
    root = Path(base.root) if base is not None else Path(session.folder)
    return Dataset(root, "review", samples, splits)


def original_training_set(model_path: str | os.PathLike) -> Path | None:
    """The training set a model file names, when it is still a dataset folder; else None."""
    from ..model.files import read_metadata
    from .session import STATE_FILE

    root = read_metadata(model_path).training_set.get("root")
    if not root or not Path(root).is_dir() or (Path(root) / STATE_FILE).exists():
        return None  # gone, or a review folder (a model fine-tuned on corrections alone)
    return Path(root)


def retrain(
    session: ReviewSession | ReviewSnapshot,
    model_path: str | os.PathLike,
    out: str | os.PathLike,
    *,
    epochs: int = DEFAULT_EPOCHS,
    base: str | os.PathLike | Dataset | None | bool = True,
    progress: Callable[[object], None] | None = None,
    cancel=None,
    **train_options,
):
    """Fine-tune the model in `model_path` on the review's corrections; save it to `out`.

    Parameters
    ----------
    session : ReviewSession or ReviewSnapshot
        The review; a live session is trained on from a snapshot taken now (send a
        snapshot to another process: a live session cannot be pickled).
    model_path : path-like
        The model to start from (its weights, optimizer state and settings).
    out : path-like
        The fine-tuned model file (``.keras``); must differ from `model_path`.
    epochs : int
        Epochs to add to those the model has run.
    base : path-like, Dataset, None or True
        The original training set to keep training on; True (default) means the
        one the model file names, if it still exists; None trains on the
        corrections alone.
    progress, cancel
        As for :func:`~napari_spine_seg.model.train.train`: progress events, and an
        event that stops training (the model so far is kept).
    **train_options
        Passed to :func:`~napari_spine_seg.model.train.train` (``batch_size``, ...).

    Returns
    -------
    napari_spine_seg.model.train.TrainResult
        Its ``model_path`` is the fine-tuned model.

    Raises
    ------
    SpineSegError
        When there is nothing reviewed, `out` is `model_path`, or training refuses.
    """
    from ..model.files import read_metadata
    from ..model.train import train

    model_path, out = Path(model_path), Path(out)
    if out.resolve() == model_path.resolve():
        raise SpineSegError(out, "is the model being fine-tuned; choose another file name")
    if isinstance(session, ReviewSession):
        with session.snapshot() as snapshot:
            return retrain(
                snapshot,
                model_path,
                out,
                epochs=epochs,
                base=base,
                progress=progress,
                cancel=cancel,
                **train_options,
            )
    if base is True:
        base = original_training_set(model_path)
    dataset = retraining_dataset(session, base)
    done = int(read_metadata(model_path).training.get("epoch", 0))
    result = train(
        dataset,
        out,
        resume=model_path,
        epochs=done + int(epochs),
        progress=progress,
        cancel=cancel,
        **train_options,
    )
    if not Path(result.model_path).exists():
        # no fine-tuning epoch beat the score the model came with (measured on its
        # old validation images), so train() kept no "best": the latest weights are
        # the fine-tuned model
        with atomic_output(result.model_path) as tmp:
            shutil.copyfile(result.last_checkpoint, tmp)
    return result
