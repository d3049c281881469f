"""The one entry point of every job: ``python -m napari_spine_seg.jobs.run JOB [TASK]``.

JOB is a job folder, its ``spec.json`` or its ``job.json``. The entry reads the job's
config and runs it here: :func:`~napari_spine_seg.model.train.train`, a prediction over
files, or a retraining on a review's corrections. The local subprocess, submitit's
call on a slurm node and the plain ``job.sbatch`` all run this same command.

A training that runs again (requeued at a time limit, after a node failure,
``sbatch job.sbatch`` by hand, cancelled and restarted) continues from the checkpoint
this job wrote that has trained the most epochs: the first run leaves a marker in the
job folder, and only checkpoints written since count, never an older model that happens
to lie at the same path. An array task (TASK) predicts its own part of the images and,
when it is the last to finish, merges every part into the output folder.

Progress goes to stderr as on the command line; an error is one line,
``spine-seg KIND: error: ...``, and exit status 2.
"""

from __future__ import annotations

import os
import sys
import time
from dataclasses import replace
from pathlib import Path

from ..atomic import write_text_atomic
from ..data.images import check_image_headers
from ..errors import SpineSegError
from ..model.config import TrainConfig
from ..model.defaults import QUIET_TENSORFLOW_ENV
from ..model.files import load_model
from ..model.predict import LANDMARKS_FOLDER, collect_inputs, predict_files
from ..model.predict_config import PredictConfig
from ..model.train import train
from ..review.retrain import RetrainConfig, retrain_from_set
from .console import TrainBars, cancel_on_signals, progress
from .merge import finish_task
from .spec import JobSpec, pick_checkpoint, read_spec

#: the marker a job's first run leaves in its folder; a later run resumes
STARTED_NAME = "started"


def run_training(config: TrainConfig, file=None) -> int:
    """Train with `config`, progress on stderr; print where the model went; the exit status.

    SIGTERM (scancel, a time limit) or Ctrl-C stops training at the end of the batch,
    with its checkpoints written: then 130.
    """
    result = _with_bars("train", train, config, file)
    best = result.best_metrics
    monitor = result.monitor
    score = f"{monitor} {best[monitor]:.4f}" if monitor in best else "no score"
    print(
        f"saved {result.model_path} (best epoch {result.best_epoch}: {score}); "
        f"{result.stopped} after {result.epochs_run} epochs in {result.seconds:.0f} s; "
        f"resume from {result.last_checkpoint}; history {result.history_csv}",
        flush=True,
    )
    return _exit_status(result)


def _with_bars(what: str, job, config, file=None):
    """``job(config, progress=bars, cancel=event)``: the bars on stderr (or `file`), the
    event set by SIGTERM (scancel, a time limit) or Ctrl-C."""
    bars = TrainBars(file)
    with cancel_on_signals(what) as cancel:
        try:
            return job(config, progress=bars, cancel=cancel)
        finally:
            bars.close()


def _exit_status(result) -> int:
    """130 for a training that was cancelled (its checkpoints are written), else 0."""
    return 130 if result.stopped == "cancelled" else 0


def run_prediction(config: PredictConfig) -> int:
    """Predict with `config` (a bar on stderr on a terminal); print what was written; 0."""
    files = collect_inputs(config.inputs)  # bad input fails before the model loads
    check_image_headers(files)  # … and before TensorFlow is imported
    model = load_model(config.model)
    missing: list[str] = []  # images of a vertebrae model without 17 vertebrae

    def report(line: str) -> None:
        missing.append(line)
        print(line, file=sys.stderr, flush=True)

    written = predict_files(
        model,
        files,
        config.out,
        batch_size=config.batch_size,
        tta=config.tta,
        probability=config.probability,
        progress=lambda it, n: progress(it, total=n, desc="predict", unit="image"),
        report=report,
    )
    print(f"wrote {len(written)} trimap(s) to {config.out}", flush=True)
    if model.info.has_vertebrae:
        folder = Path(config.out) / LANDMARKS_FOLDER
        print(f"wrote the landmarks of {len(written) - len(missing)} image(s) to {folder}")
    return 0


def run_retraining(config: RetrainConfig) -> int:
    """Fine-tune as `config` says, progress on stderr; print where the model went."""
    result, review = _with_bars("retrain", retrain_from_set, config)
    print(
        f"saved {result.model_path}: fine-tuned on {len(review.reviewed_keys())} reviewed "
        f"images; {result.stopped} after {result.epochs_run} epochs in {result.seconds:.0f} s; "
        f"resume from {result.last_checkpoint}",
        flush=True,
    )
    return _exit_status(result)


def continued(spec: JobSpec, config):
    """`config` continuing from this job's most trained checkpoint, on a re-run.

    Returns None when that checkpoint has trained every epoch asked for already.
    """
    marker = spec.folder / STARTED_NAME
    if not marker.exists():
        write_text_atomic(marker, time.strftime("%Y-%m-%dT%H:%M:%S\n"))
        return config
    since = marker.stat().st_mtime
    ours = [p for p in spec.checkpoints if p.is_file() and p.stat().st_mtime >= since]
    picked = pick_checkpoint(ours)
    if picked is None:
        return config
    path, done = picked
    if done >= config.epochs:
        print(
            f"spine-seg job: {path} has trained all {done} epochs; nothing left to do",
            file=sys.stderr,
            flush=True,
        )
        return None
    print(
        f"spine-seg job: continuing from {path} ({done} epochs done)", file=sys.stderr, flush=True
    )
    return replace(config, resume=path)


def run_spec(spec: JobSpec, task: int | None = None) -> int:
    """Run `spec` (array task `task`) in this process; return the exit status.

    Raises
    ------
    SpineSegError
        For a bad config or bad input (the job's one error line).
    """
    data = spec.task_config(task)
    if spec.kind == "predict":
        rc = run_prediction(PredictConfig.from_dict(data))
        if rc == 0 and spec.tasks and task is not None:
            finish_task(spec, task)
        return rc
    config = (TrainConfig if spec.kind == "train" else RetrainConfig).from_dict(data)
    config = continued(spec, config)
    if config is None:
        return 0
    if spec.kind == "train":
        return run_training(config)
    return run_retraining(config)


def run_reporting(spec: JobSpec, task: int | None = None) -> int:
    """:func:`run_spec`, with a bad job's error as one line on stderr (2), as ``main`` does."""
    try:
        return run_spec(spec, task)
    except SpineSegError as exc:
        if spec.debug:
            raise
        print(f"spine-seg {spec.kind}: error: {exc}", file=sys.stderr, flush=True)
        return 2
    except KeyboardInterrupt:
        print(f"spine-seg {spec.kind}: interrupted", file=sys.stderr, flush=True)
        return 130


def main(argv: list[str] | None = None) -> int:
    """``run JOB [TASK]``: run a job here; 2 with one line on stderr for a bad job."""
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) not in (1, 2):
        print("usage: python -m napari_spine_seg.jobs.run JOB [TASK]", file=sys.stderr)
        return 2
    try:
        task = int(argv[1]) if len(argv) == 2 else None
    except ValueError:
        print(f"spine-seg job: error: {argv[1]!r} is not an array task number", file=sys.stderr)
        return 2
    try:
        spec = read_spec(argv[0])
    except SpineSegError as exc:
        print(f"spine-seg job: error: {exc}", file=sys.stderr)
        return 2
    if not spec.debug:
        for name, value in QUIET_TENSORFLOW_ENV.items():
            os.environ.setdefault(name, value)
    return run_reporting(spec, task)


if __name__ == "__main__":  # pragma: no cover - run by every job
    sys.exit(main())
