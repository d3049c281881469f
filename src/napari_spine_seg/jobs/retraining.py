"""Retraining on a review's corrections as a job: here, in a local process or on slurm.

The same job path as training (:func:`~.runner.run_job`): the job runs ``spine-seg
retrain RETRAIN_SET --model MODEL --out OUT``, where the retrain set
(:func:`~napari_spine_seg.review.retrain.freeze_retrain_set`) keeps the review's
accepted and corrected trimaps, as they were when the job was submitted, in the job
folder. A requeued slurm job continues from its last checkpoint (``--resume``).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from .options import SlurmOptions
from .runner import Job, run_job
from .spec import JobSpec, default_folder, join_args

#: the retrain set's folder inside the job folder
RETRAIN_SET_FOLDER = "retrain-set"


def retraining_spec(
    retrain_set: str | os.PathLike,
    model: str | os.PathLike,
    out: str | os.PathLike,
    *,
    epochs: int,
    batch_size: int | None = None,
    base: bool = True,
    folder: str | os.PathLike | None = None,
    cwd: str | os.PathLike | None = None,
    python: str | None = None,
    debug: bool = False,
) -> JobSpec:
    """A ``spine-seg retrain`` job.

    Parameters
    ----------
    retrain_set : path-like
        The retrain set's file (:func:`~napari_spine_seg.review.retrain.freeze_retrain_set`).
    model, out : path-like
        The model to fine-tune and the fine-tuned model file (``.keras``).
    epochs : int
        Epochs to add to those `model` has run.
    batch_size : int, optional
    base : bool
        Also train on the model's original training set (when it still exists).
    folder, cwd, python, debug
        As for :func:`~.spec.training_spec`.

    Returns
    -------
    JobSpec
    """
    from ..model.train import checkpoint_paths

    cwd = Path(cwd or os.getcwd())
    args = ["--model", os.fspath(model), "--out", os.fspath(out), "--epochs", str(int(epochs))]
    if batch_size is not None:
        args += ["--batch-size", str(int(batch_size))]
    if not base:
        args.append("--no-base")
    out_abs = cwd / out
    best, last, history = checkpoint_paths(out_abs)
    return JobSpec(
        command="retrain",
        args=tuple(join_args([os.fspath(retrain_set)], args)),
        folder=Path(folder) if folder is not None else default_folder(out_abs),
        cwd=cwd,
        python=python or sys.executable,
        out=best,
        epochs=int(epochs),  # a fine-tune counts its own epochs from 1
        history=history,
        checkpoints=(last,),  # only this retraining's own: never the model it starts from
        debug=debug,
    )


def submit_retraining(
    review,
    model: str | os.PathLike,
    out: str | os.PathLike,
    *,
    epochs: int,
    where: str = "slurm",
    options: SlurmOptions | None = None,
    **spec_args,
) -> Job:
    """Retrain `model` on a review's corrections in a job (as :func:`~.runner.submit_training`).

    Parameters
    ----------
    review : ReviewSession or ReviewSnapshot
        The review; its accepted and corrected trimaps are kept in the job folder now
        (the person may go on reviewing).
    model, out : path-like
    epochs : int
    where : {"process", "local", "slurm"}
    options : SlurmOptions, optional
    **spec_args
        ``batch_size``, ``base``, ``folder``, ``cwd``, ``python``, ``debug``: see
        :func:`retraining_spec`.

    Returns
    -------
    Job

    Raises
    ------
    SpineSegError
        Nothing reviewed, `out` is `model`, slurm missing or refusing the job, or a
        folder that cannot be written.
    """
    from ..errors import SpineSegError
    from ..review.retrain import freeze_retrain_set

    if Path(os.path.abspath(out)).resolve() == Path(os.path.abspath(model)).resolve():
        raise SpineSegError(out, "is the model being fine-tuned; choose another file name")
    folder = spec_args.pop("folder", None) or default_folder(out)
    retrain_set = freeze_retrain_set(review, Path(folder) / RETRAIN_SET_FOLDER)
    spec = retraining_spec(retrain_set, model, out, epochs=epochs, folder=folder, **spec_args)
    return run_job(spec, where, options)
