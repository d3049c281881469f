"""Retrain on corrections: fine-tune a model on a review's accepted and corrected images.

The training set is the review's reviewed images, each with its reviewed trimap, plus
the model's original training set (named in the model file) when it can still be
opened. A reviewed image that is also in the original set replaces it there: the
reviewed trimap is the better label. Training then starts from the model's weights and
optimizer state (``TrainConfig.init_from``) for a few epochs, with a history and a best
score of its own: the best of these epochs is the fine-tuned model.

A model with vertebrae (``ModelInfo.outputs``) stays one: the corrections are trimaps
without vertebrae, so on them it learns the column only (body or space, either will
do, and the border band is ignored: :mod:`napari_spine_seg.model.targets`), while the
original set's images, which have landmarks, go on teaching it the bodies and spaces.
Without the original set the fine-tune corrects the column and leaves the split into
vertebrae to what the model had learnt.

A retraining that runs later or elsewhere (a local job, a slurm job: see
:mod:`napari_spine_seg.jobs.retraining`) trains on a *retrain set*
(:func:`freeze_retrain_set`): the review's accepted and corrected trimaps as they are
when it is submitted (hard links, or copies), and ``retrain-set.json`` naming the data
set path and each image, in a folder of the job's own. ``spine-seg retrain RETRAIN_SET
--model M --out OUT`` trains on it (:func:`open_retrain_set`), so the person may go on
reviewing (or close napari) while the job waits in the queue.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass, replace
from pathlib import Path

from ..atomic import write_text_atomic
from ..data.dataset import Dataset, open_dataset
from ..data.masks import trimap_name
from ..errors import SpineSegError
from ..model.config import TrainConfig
from ..model.config_json import JsonConfig
from ..model.files import read_metadata
from ..model.train import TEST_SPLITS, TRAIN_SPLITS, train
from ..outputs import check_output
from .session import (
    REVIEWED,
    STATE_FILE,
    UNREVIEWED,
    ReviewSession,
    ReviewSnapshot,
    dataset_location,
    sample_key,
)
from .versioned import read_versioned_json

#: the file of a retrain set that names its data set and images
RETRAIN_SET_FILE = "retrain-set.json"
_SET_FORMAT = "napari-spine-seg retrain set"
_SET_VERSION = 1

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
    resume: str | os.PathLike | None = None,
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
        Epochs of fine-tuning.
    base : path-like, Dataset, None or True
        The original training set to keep training on; True (default) means the
        one the model file names, if it still exists; None trains on the
        corrections alone.
    progress, cancel
        As for :func:`~napari_spine_seg.model.train.train`: progress events, and an
        event that stops training (the model so far is kept).
    resume : path-like, optional
        A checkpoint of this same retraining, interrupted (a slurm job requeued):
        training continues from it, up to `epochs` in all.
    **train_options
        Other :class:`~napari_spine_seg.model.config.TrainConfig` settings
        (``batch_size``, ``max_minutes``, ...).

    Returns
    -------
    napari_spine_seg.model.train.TrainResult
        Its ``model_path`` is the fine-tuned model.

    Raises
    ------
    SpineSegError
        When there is nothing reviewed, `out` is `model_path`, or training refuses.
    """
    model_path, out = Path(model_path), Path(out)
    check_not_the_model(out, model_path)
    live = isinstance(session, ReviewSession)
    with session.snapshot() if live else nullcontext(session) as snapshot:
        if base is True:
            base = original_training_set(model_path)
        dataset = retraining_dataset(snapshot, base)
        config = TrainConfig(
            dataset, out, init_from=model_path, resume=resume, epochs=int(epochs), **train_options
        )
        return train(config, progress=progress, cancel=cancel)


def check_not_the_model(out: str | os.PathLike, model: str | os.PathLike) -> None:
    """Refuse a fine-tuned model file `out` that is the `model` it starts from."""
    if Path(os.path.abspath(out)).resolve() == Path(os.path.abspath(model)).resolve():
        raise SpineSegError(out, "is the model being fine-tuned; choose another file name")


def freeze_retrain_set(review: ReviewSession | ReviewSnapshot, folder: str | os.PathLike) -> Path:
    """Keep the review's accepted and corrected images, as they are now, in `folder`.

    For a retraining that runs later or elsewhere (a job): unlike a snapshot, the
    retrain set stays until its folder is deleted, and it names the data set by path.

    Parameters
    ----------
    review : ReviewSession or ReviewSnapshot
    folder : path-like
        Where to keep it (created): ``trimaps/`` (hard links to the reviewed trimaps,
        copies where the file system has none) and :data:`RETRAIN_SET_FILE`.

    Returns
    -------
    pathlib.Path
        The retrain set's file, which ``spine-seg retrain`` takes.

    Raises
    ------
    SpineSegError
        When nothing is accepted or corrected yet, or `folder` cannot be written.
    """
    if isinstance(review, ReviewSession):
        with review.snapshot() as snapshot:
            return freeze_retrain_set(snapshot, folder)
    keys = review.reviewed_keys(REVIEWED)
    if not keys:
        raise SpineSegError(review.folder, "has no accepted or corrected images to retrain on")
    folder = Path(folder)
    images = []
    try:
        for key in keys:
            sample = review.sample(key)
            relative = Path(sample.split or "") / trimap_name(sample.name)
            target = folder / "trimaps" / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            target.unlink(missing_ok=True)
            try:
                os.link(review.trimap_path(key), target)
            except OSError:
                shutil.copyfile(review.trimap_path(key), target)
            images.append(
                {
                    "key": key,
                    "trimap": relative.as_posix(),
                    "status": review.status(key),
                    "predicted": review.began_as_prediction(key),
                }
            )
    except OSError as exc:
        raise SpineSegError(folder, f"cannot hold the retrain set ({exc.strerror or exc})") from exc
    text = {
        "format": _SET_FORMAT,
        "version": _SET_VERSION,
        "dataset": os.fspath(dataset_location(review.dataset)),
        "review": os.fspath(Path(review.folder).resolve()),
        "images": images,
    }
    return write_text_atomic(folder / RETRAIN_SET_FILE, json.dumps(text, indent=1) + "\n")


def read_retrain_set(path: str | os.PathLike) -> tuple[Path, dict]:
    """The file of a retrain set (`path` or the file in that folder) and what it holds.

    Reads no image or trimap: ``spine-seg retrain`` calls it to name a bad retrain set
    before any other complaint.

    Raises
    ------
    SpineSegError
        When the file is missing or not a retrain set.
    """
    path = Path(path)
    file = path / RETRAIN_SET_FILE if path.is_dir() else path
    kept = read_versioned_json(file, _SET_FORMAT, "retrain set", _SET_VERSION)
    if not isinstance(kept.get("images"), list):
        raise SpineSegError(file, "is a retrain set without its list of images")
    return file, kept


def open_retrain_set(path: str | os.PathLike) -> ReviewSnapshot:
    """The review a retrain set kept (:func:`freeze_retrain_set`), ready for :func:`retrain`.

    Parameters
    ----------
    path : path-like
        The retrain set's file, or its folder.

    Raises
    ------
    SpineSegError
        When the file is not a retrain set, its data set cannot be opened, or one of
        its trimaps is missing.
    """
    file, kept = read_retrain_set(path)
    dataset = open_dataset(kept["dataset"], require_labels=False)
    known = {sample_key(s) for s in dataset.samples}
    statuses = dict.fromkeys(known, UNREVIEWED)
    files, predicted = {}, {}
    for entry in kept["images"]:
        key, trimap = entry.get("key"), file.parent / "trimaps" / str(entry.get("trimap"))
        if key not in known:
            raise SpineSegError(file, f"names image {key!r}, which {kept['dataset']} lacks")
        if not trimap.is_file():
            raise SpineSegError(trimap, "is missing; the retrain set is damaged")
        statuses[key] = entry.get("status") if entry.get("status") in REVIEWED else REVIEWED[0]
        files[key] = trimap
        predicted[key] = bool(entry.get("predicted"))
    return ReviewSnapshot(
        dataset=dataset,
        folder=Path(kept.get("review") or file.parent),
        keys=tuple(sample_key(s) for s in dataset.samples),
        statuses=statuses,
        files=files,
        predicted=predicted,
        snapshot_folder=None,  # closing it deletes nothing: the retrain set is the job's
    )


@dataclass(frozen=True)
class RetrainConfig(JsonConfig):
    """Every setting of a retraining on a retrain set (a job's), checked when made.

    Attributes
    ----------
    retrain_set : Path
        The retrain set's file (:func:`freeze_retrain_set`) or its folder.
    model : Path
        The model to fine-tune (``.keras``).
    out : Path
        The fine-tuned model file (``.keras``), not `model`.
    epochs : int
        Epochs of fine-tuning, 1 or more.
    batch_size : int or None
        None: the training default.
    base : bool
        Also train on the model's original training set (when it still exists).
    resume : Path or None
        A checkpoint of this same retraining to continue from.
    """

    WHAT = "retraining"

    retrain_set: Path
    model: Path
    out: Path
    epochs: int = DEFAULT_EPOCHS
    batch_size: int | None = None
    base: bool = True
    resume: Path | None = None

    def __post_init__(self):
        set_ = object.__setattr__
        for name in ("retrain_set", "model", "out", "resume"):
            value = getattr(self, name)
            set_(self, name, None if value in (None, "") else Path(value))
        if self.out.suffix != ".keras":
            raise SpineSegError(self.out, "a model file name must end in .keras")
        check_not_the_model(self.out, self.model)
        for path in (self.retrain_set, self.model, self.resume):
            if path is not None and not path.exists():
                raise SpineSegError(path, "does not exist")
        if int(self.epochs) < 1 or (self.batch_size is not None and int(self.batch_size) < 1):
            raise SpineSegError(None, "epochs and batch size must be positive")


def retrain_from_set(config: RetrainConfig, progress=None, cancel=None):
    """Retrain as `config` says, on its retrain set; return ``(TrainResult, the review)``.

    Raises
    ------
    SpineSegError
        A damaged retrain set, an `out` inside the data set, or training refusing.
    """
    review = open_retrain_set(config.retrain_set)
    check_output(config.out, [review.dataset.root], suffixes=(".keras",))
    options = {} if config.batch_size is None else {"batch_size": int(config.batch_size)}
    result = retrain(
        review,
        config.model,
        config.out,
        epochs=int(config.epochs),
        base=True if config.base else None,
        progress=progress,
        cancel=cancel,
        resume=config.resume,
        **options,
    )
    return result, review
