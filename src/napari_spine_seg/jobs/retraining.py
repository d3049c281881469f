"""Retraining on a review's corrections as a job: here, in a local process or on slurm.

The same job path as training (:func:`~.runner.run_job`): the job's config is a
:class:`~napari_spine_seg.review.retrain.RetrainConfig` naming the retrain set
(:func:`~napari_spine_seg.review.retrain.freeze_retrain_set`), which keeps the review's
accepted and corrected trimaps, as they were when the job was submitted, in the job
folder. A job run again continues from its last checkpoint (:func:`~.run.continued`).
"""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path

from ..review.retrain import RetrainConfig, check_not_the_model, freeze_retrain_set
from .options import SlurmOptions
from .runner import Job, run_job
from .spec import JobSpec, default_folder, model_job_spec

#: the retrain set's folder inside the job folder
RETRAIN_SET_FOLDER = "retrain-set"


def retraining_spec(config: RetrainConfig, **spec_args) -> JobSpec:
    """The job that retrains as `config` says (:func:`~.run.run_retraining`).

    `config` is checked already; its paths are made absolute here. `spec_args`
    (``folder``, ``python``, ``debug``) are as for :func:`~.spec.training_spec`.
    """
    config = replace(
        config,
        retrain_set=Path(os.path.abspath(config.retrain_set)),
        model=Path(os.path.abspath(config.model)),
        out=Path(os.path.abspath(config.out)),
        resume=None if config.resume is None else Path(os.path.abspath(config.resume)),
    )
    # a fine-tune counts its own epochs from 1; only its own last checkpoint is
    # continued from, never the model it starts from
    return model_job_spec("retrain", config, own_best=False, **spec_args)


def submit_retraining(
    review,
    model: str | os.PathLike,
    out: str | os.PathLike,
    *,
    epochs: int,
    batch_size: int | None = None,
    base: bool = True,
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
    batch_size : int, optional
    base : bool
        Also train on the model's original training set (when it still exists).
    **spec_args
        ``folder``, ``python``, ``debug``: see :func:`retraining_spec`.

    Returns
    -------
    Job

    Raises
    ------
    SpineSegError
        Nothing reviewed, `out` is `model`, slurm missing or refusing the job, or a
        folder that cannot be written.
    """
    check_not_the_model(out, model)
    folder = spec_args.pop("folder", None) or default_folder(out)
    retrain_set = freeze_retrain_set(review, Path(folder) / RETRAIN_SET_FOLDER)
    config = RetrainConfig(retrain_set, model, out, epochs, batch_size=batch_size, base=base)
    spec = retraining_spec(config, folder=folder, **spec_args)
    return run_job(spec, where, options)
