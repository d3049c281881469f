"""The slurm side of the Train widget: submit a training or retraining, follow a job.

:class:`SlurmTraining` holds the methods :class:`~.train_widget.TrainWidget` uses with
"run: slurm": submit the training's config (or a retraining) as a batch job, follow it
by polling in a worker thread (state, epochs from its history file, log tail), reattach
to a job of the on-disk index, and Stop it. The widget owns the fields these read.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

from magicgui.widgets import ComboBox, LineEdit, PushButton, SpinBox

from ...errors import SpineSegError
from ...jobs import SlurmOptions, list_jobs, reattach, submit_training
from ...jobs.retraining import submit_retraining
from ...jobs.status import COMPLETED
from ...model.history import read_history_csv
from ._dock import button_row
from ._workers import start_worker, status_label

#: seconds between looks at a slurm job
SLURM_POLL_S = 2.0
#: lines of a job's log shown under the job list
LOG_LINES = 4


def job_choices(_widget=None) -> list[tuple[str, str]]:
    """The jobs index as ``(label, job id)`` choices, newest first (napari may have been
    closed since they were sent: the index is on disk)."""
    try:
        jobs = list_jobs()
    except Exception:  # listing is best effort: a damaged index must not stop the widget opening
        return []
    return [
        (f"{s.job_id} {s.command} {s.state.lower()} {s.progress_text()}".strip(), s.job_id)
        for s in reversed(jobs)
    ]


class SlurmFollower:
    """Submit a slurm training job and follow it: its state, its epochs, and Stop.

    Parameters
    ----------
    submit : callable
        Submits the job and returns its :class:`~napari_spine_seg.jobs.runner.Job`.
    """

    def __init__(self, submit):
        self._submit = submit
        self._cancel = threading.Event()

    def cancel(self) -> None:
        """Cancel the job (``scancel``) at the next look at it."""
        self._cancel.set()

    def events(self):
        """Yield ``("submitted", job)``, then ``("epoch", row)`` and ``("status", JobStatus)``
        as they change; return the final JobStatus. Runs in a worker thread.
        """
        job = self._submit()
        yield ("submitted", job)
        seen, last = 0, None
        while True:
            if self._cancel.is_set():
                self._cancel.clear()
                job.cancel()
            status = job.status()
            rows = read_history_csv(job.record.spec.history)
            for row in rows[seen:]:
                yield ("epoch", row)
            seen = max(seen, len(rows))
            if (status.state, status.epoch) != last:
                last = (status.state, status.epoch)
                yield ("status", status)
            if status.finished:
                return status
            time.sleep(SLURM_POLL_S)


class SlurmTraining:
    """The Train widget's slurm jobs (a mixin: the widget provides the fields and helpers,
    ``_say``, ``_fail``, ``_refuse``, ``_busy`` ...)."""

    def _make_slurm_fields(self) -> None:
        """The slurm settings, the job list, its buttons and the job log (hidden until slurm)."""
        self.partition = LineEdit(value="", label="slurm partition", visible=False)
        self.partition.native.setPlaceholderText("the cluster's default")
        self.time_min = SpinBox(value=60, min=1, max=14 * 24 * 60, label="slurm time (min)")
        self.time_min.visible = False
        self.jobs = ComboBox(choices=job_choices, label="slurm jobs", nullable=True)
        self.refresh_jobs_button = PushButton(text="Refresh")
        self.follow_button = PushButton(text="Follow job")
        self.log_tail = status_label(label="job log", value="")
        self.jobs_buttons = button_row(self.refresh_jobs_button, self.follow_button)
        self.refresh_jobs_button.clicked.connect(self.jobs.reset_choices)
        self.follow_button.clicked.connect(self.follow_job)

    def _show_slurm_options(self, where: str) -> None:
        """Show the slurm settings, job list, job log and its buttons only for slurm."""
        slurm = where == "slurm"
        for widget in (self.partition, self.time_min, self.jobs, self.jobs_buttons, self.log_tail):
            widget.visible = slurm

    def _run_slurm(self, config) -> None:
        """Submit the training's config to slurm and follow the job until it ends."""
        if self._busy():
            return
        options = self._slurm_options()
        if options is None:
            return
        self._job = job = SlurmFollower(
            lambda: submit_training(config, where="slurm", options=options)
        )
        self._follow(job, f"submitting the training of {config.dataset.name} to slurm…")

    def follow_job(self) -> None:
        """Reattach to the chosen job of the jobs index (one sent before napari was closed,
        say): follow its state and epochs, Stop cancels it, and its model is loaded when it
        completes."""
        job_id = self.jobs.value
        if job_id is None:
            self._refuse("choose a job to follow (Refresh lists them)")
            return
        if self._busy():
            return
        self._job = job = SlurmFollower(lambda: reattach(job_id))
        self.plot.reset()
        self._follow(job, f"following job {job_id}…")

    def _follow(self, job: SlurmFollower, message: str) -> None:
        """Follow a slurm job in a worker thread until it ends."""
        self._set_running(True)
        self._say(message)
        start_worker(
            job.events,
            on_yield=self._on_slurm_event,
            on_return=self._on_slurm_done,
            on_error=self._fail,
            on_finish=self._on_finish,
            keep_in=self._workers,
        )

    def _on_slurm_event(self, item) -> None:
        from napari.utils import progress

        kind, value = item
        if kind == "submitted":
            self._close_progress()
            self._progress = progress(total=max(1, value.record.spec.epochs or 1), desc="slurm job")
            self._say(f"submitted slurm job {value.job_id} ({value.folder})")
        elif kind == "epoch":
            self.plot.add(int(value.pop("epoch")), value)
        elif kind == "status":
            if self._progress is not None and value.epoch is not None:
                self._progress.update(max(0, value.epoch - self._progress.n))
            text = value.progress_text()
            self.log_tail.value = "\n".join(value.log_tail.strip().splitlines()[-LOG_LINES:])
            self._say(
                f"slurm job {value.job_id}: {value.state.lower()}{', ' + text if text else ''}"
            )

    def _on_slurm_done(self, status) -> None:
        if status.state != COMPLETED:
            why = status.error_line or f"the slurm job ended {status.state.lower()}"
            self._say(f"slurm job {status.job_id}: {why}")
            if status.error_line:
                self._fail(SpineSegError(status.out, status.error_line))
            if status.out and Path(status.out).exists():  # stopped: the best model so far
                done = f"slurm job {status.job_id}: {why}"
                self._consider(Path(status.out), done, "the job did not complete")
            return
        self._consider(Path(status.out), f"slurm job {status.job_id} completed")

    def _retrain_on_slurm(self, snapshot, source: Path, out: Path, epochs: int, options) -> None:
        """Submit the retraining to slurm (the same job path as training) and follow it."""

        def submit():
            try:  # the job folder keeps its own copy of the review: the snapshot can go
                return submit_retraining(
                    snapshot, source, out, epochs=epochs, where="slurm", options=options
                )
            finally:
                snapshot.close()

        self._job = job = SlurmFollower(submit)
        self._follow(job, f"submitting the retraining of {source.name} to slurm…")

    def _slurm_options(self):
        """The slurm options of the form, or None after saying in one line what is wrong."""
        try:  # a bad partition name or too short a time limit: one line, nothing sent
            return SlurmOptions(
                partition=self.partition.value.strip() or None, time_min=int(self.time_min.value)
            )
        except SpineSegError as exc:
            self._fail(exc)
            return None
