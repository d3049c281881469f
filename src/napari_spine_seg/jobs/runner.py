"""One interface to run a training or a prediction: here, in a subprocess, or on slurm.

``where`` is ``"process"`` (this process, blocking), ``"local"`` (a detached
subprocess on this machine) or ``"slurm"`` (a job submitted through submitit). Every
job gets a folder (``job.sbatch``, ``job.json``, ``logs/``) and an entry in the jobs
index, so that :func:`job_status`, :func:`cancel_job`, :func:`list_jobs` and
:func:`reattach` work from another process later, e.g. after napari was closed.
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path

from ..atomic import check_writable_folder, write_text_atomic
from ..errors import SpineSegError
from ..model.config import TrainConfig
from ..model.predict_config import PredictConfig
from . import local, registry, slurm
from . import logs as joblogs
from .options import SlurmOptions
from .registry import JobRecord
from .script import render_script
from .spec import JobSpec, prediction_spec, training_spec
from .status import (
    CANCELLED,
    COMPLETED,
    FAILED,
    FINAL_STATES,
    TIMEOUT,
    UNKNOWN,
    JobStatus,
    combine_states,
    normalise_slurm_state,
)

WHERE = ("process", "local", "slurm")


class Job:
    """A handle on a job: its id, folder, status; cancel it or wait for it.

    Get one from :func:`run_job`, :func:`submit_training`, :func:`submit_prediction`
    or :func:`reattach`.
    """

    def __init__(self, record: JobRecord):
        self.record = record

    def __repr__(self) -> str:
        return f"Job({self.job_id!r}, {self.record.backend}, {str(self.folder)!r})"

    @property
    def job_id(self) -> str:
        """The job id (slurm's, or ``local-…`` / ``process-…``)."""
        return self.record.job_id

    @property
    def folder(self) -> Path:
        """The job folder."""
        return self.record.spec.folder

    def status(self) -> JobStatus:
        """The job's state, progress and log tail now."""
        status, self.record = _status(self.record)
        return status

    def cancel(self) -> None:
        """Cancel the job (see :func:`cancel_job`)."""
        _cancel(self.record)

    def wait(
        self,
        poll_s: float = 2.0,
        timeout_s: float | None = None,
        on_status: Callable[[JobStatus], None] | None = None,
    ) -> JobStatus:
        """Poll until the job is finished; return its last status.

        Parameters
        ----------
        poll_s : float
            Seconds between polls.
        timeout_s : float, optional
            Give up after this long and return the status as it is.
        on_status : callable, optional
            Called with every status polled (for progress output).
        """
        start = time.monotonic()
        while True:
            status = self.status()
            if on_status is not None:
                on_status(status)
            if status.finished:
                return status
            if timeout_s is not None and time.monotonic() - start > timeout_s:
                return status
            time.sleep(poll_s)


def run_job(
    spec: JobSpec,
    where: str = "slurm",
    options: SlurmOptions | None = None,
    typed: Sequence[str] = (),
) -> Job:
    """Run `spec` in this process, in a local subprocess or on slurm.

    Parameters
    ----------
    spec : JobSpec
    where : {"process", "local", "slurm"}
    options : SlurmOptions, optional
        Slurm options (default ones when None); they also shape ``job.sbatch``.
    typed : sequence of str
        The command line as the user typed it, kept in the record.

    Returns
    -------
    Job
        For ``"process"`` the job has finished when this returns.

    Raises
    ------
    SpineSegError
        Slurm missing or refusing the job, or a folder that cannot be written.
    """
    if where not in WHERE:
        raise SpineSegError(
            None, f"unknown place to run {where!r}; choose one of {', '.join(WHERE)}"
        )
    options = options or SlurmOptions()
    check_writable_folder(spec.folder)
    spec.logs.mkdir(parents=True, exist_ok=True)
    spec.write()  # what the job's entry point reads, before anything can start it
    write_text_atomic(spec.script, render_script(spec, options))
    typed = tuple(str(t) for t in typed)
    if where == "slurm":
        job_id = slurm.submit(spec, options)
        return Job(registry.save(JobRecord(job_id, "slurm", spec, options, typed=typed)))
    job_id = f"{where}-{uuid.uuid4().hex[:8]}"
    record = registry.save(JobRecord(job_id, where, spec, options, typed=typed))
    if where == "process":
        local.run_in_process(spec, job_id)
        return Job(record)
    pid = local.start(spec, job_id)
    return Job(registry.save(replace(record, pid=pid)))


def submit_training(
    config: TrainConfig,
    *,
    where: str = "slurm",
    options: SlurmOptions | None = None,
    **spec_args,
) -> Job:
    """Train a model with `config` in a job.

    `where` and `options` are as for :func:`run_job`; `spec_args` (``folder``,
    ``python``, ``debug``) as for :func:`~.spec.training_spec`.
    """
    return run_job(training_spec(config, **spec_args), where, options)


def submit_prediction(
    config: PredictConfig,
    *,
    array: int = 1,
    where: str = "slurm",
    options: SlurmOptions | None = None,
    **spec_args,
) -> Job:
    """Predict trimaps with `config` in a job, optionally as a slurm array.

    See :func:`~.spec.prediction_spec` for `array` and the other arguments.
    """
    return run_job(prediction_spec(config, array=array, **spec_args), where, options)


def reattach(job_id_or_folder: str | os.PathLike) -> Job:
    """A handle on a job from the jobs index (by id) or from its folder's ``job.json``."""
    return Job(registry.load(job_id_or_folder))


def job_status(job_id: str) -> JobStatus:
    """The state, progress (epochs), log tail and error line of a job.

    Raises
    ------
    SpineSegError
        When the jobs index has no such job.
    """
    return reattach(job_id).status()


def cancel_job(job_id: str) -> None:
    """Cancel a job; its checkpoints stay on disk.

    Raises
    ------
    SpineSegError
        Unknown job, or slurm not answering.
    """
    reattach(job_id).cancel()


def list_jobs() -> list[JobStatus]:
    """The status of every job in the index, oldest first."""
    return [_status(record)[0] for record in registry.all_records()]


# ----------------------------------------------------------------------------- internals


def _cancel(record: JobRecord) -> None:
    spec = record.spec
    if record.backend == "slurm":
        slurm.cancel(record.job_id, spec.logs)
    elif record.backend == "local":
        local.cancel(spec, record.job_id, record.pid)
    # an in-process job has finished by the time anyone can cancel it


def _slurm_state(record: JobRecord) -> tuple[str, str, dict[str, dict], JobRecord]:
    spec = record.spec
    files = slurm.read_status_files(spec.logs, record.job_id)
    own = [str(f.get("state", UNKNOWN)) for f in files.values()]
    try:
        raw = slurm.task_details(record.job_id)
    except slurm.SlurmNotAnswering as exc:
        # the job runs on without the controller; say so and keep asking
        if len(own) >= spec.n_tasks:
            detail = f"from the job's status files ({exc.problem})"
            return combine_states(own), detail, files, record
        return UNKNOWN, exc.problem, files, record
    if raw:
        state = combine_states([normalise_slurm_state(s) for s, _ in raw.values()])
        detail = ", ".join(
            f"{k} {s}" + (f" ({r})" if r and r != "None" else "")
            for k, (s, r) in sorted(raw.items())
        )
        if state in (COMPLETED, FAILED) and len(own) >= spec.n_tasks:
            state = combine_states(own)  # ours tells TIMEOUT and CANCELLED from FAILED
        if state in FINAL_STATES:
            record = registry.remember_state(record, state)
        return state, f"slurm: {detail}", files, record
    if len(own) >= spec.n_tasks:
        return combine_states(own), "from the job's status files", files, record
    if record.last_state:
        return record.last_state, "last state slurm reported", files, record
    if (spec.logs / f"{record.job_id}.cancelled").exists():
        return CANCELLED, "cancelled (slurm no longer lists it)", files, record
    return UNKNOWN, "slurm does not know this job (any more)", files, record


def _status(record: JobRecord) -> tuple[JobStatus, JobRecord]:
    spec = record.spec
    files: dict[str, dict] = {}
    if record.backend == "slurm":
        state, detail, files, record = _slurm_state(record)
        logs = slurm.log_files(spec.logs, record.job_id)
    else:
        state, detail = local.state(spec, record.job_id, record.pid)
        logs = [spec.logs / f"{record.job_id}_0_log.err"]
    log_tail = joblogs.tail(logs[-1]) if logs else ""
    error = None
    if state in (FAILED, TIMEOUT):
        error = next((f.get("error_line") for f in files.values() if f.get("error_line")), None)
        error = error or joblogs.error_line(*(joblogs.tail(p, 200) for p in reversed(logs)))
    status = JobStatus(
        state=state,
        epoch=joblogs.epochs_done(spec.history) if spec.history else None,
        epochs=spec.epochs,
        log_tail=log_tail,
        error_line=error,
        job_id=record.job_id,
        command=spec.kind,
        folder=str(spec.folder),
        out=None if spec.out is None else str(spec.out),
        backend=record.backend,
        detail=detail,
    )
    return status, record
