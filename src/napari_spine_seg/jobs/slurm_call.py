"""What submitit runs on a slurm node: :class:`JobCall`, the job's entry point in a child.

When slurm warns that the time limit is near (``--signal=USR2@…``), submitit calls
:meth:`JobCall.checkpoint`: the child is stopped (a training writes its checkpoint) and
the job is requeued; the next run, the same entry point, continues from the most trained
checkpoint (:func:`~.run.continued`).

Importing this module imports submitit, whose logging set-up closes the handlers already
there (absl's, once TensorFlow is loaded): only submitting a job and the node import it.
"""

from __future__ import annotations

import json
import os
import shlex
import signal
import subprocess
import threading
import time
from pathlib import Path

from ..atomic import write_text_atomic
from ..errors import SpineSegError
from . import logs as joblogs
from .spec import JobSpec, pick_checkpoint
from .status import CANCELLED, COMPLETED, FAILED, TIMEOUT

#: signal that asks a running job to stop cleanly (a training keeps its checkpoints)
STOP_SIGNAL = signal.SIGTERM
#: seconds a stopped child may take to write its checkpoint before it is killed
STOP_GRACE_S = 60.0


class _Call:
    """Base of :class:`JobCall` without submitit, so that the module imports without it."""


def _checkpointable_base():
    try:
        from submitit.helpers import Checkpointable
    except ImportError:  # pragma: no cover - submitit is a dependency
        return _Call
    return Checkpointable


class JobCall(_checkpointable_base()):
    """The callable submitit runs on the node: the job's entry point, in a child process.

    Parameters
    ----------
    spec : dict
        :meth:`JobSpec.to_dict` of the job.
    task : int or None
        Array task index, or None for a single job.
    finished : bool
        True when a requeued run has nothing left to do (the job finished just as the
        time limit came).
    """

    def __init__(self, spec: dict, task: int | None = None, finished: bool = False):
        self.spec = spec
        self.task = task
        self.finished = finished
        self._proc = None
        self._terminated = False

    def __getstate__(self):
        state = dict(self.__dict__)
        state.update(_proc=None, _terminated=False)
        return state

    def __call__(self) -> int:
        """Run the entry point; raise when it fails, so that slurm marks the job FAILED."""
        import submitit

        env = submitit.JobEnvironment()
        spec = JobSpec.from_dict(self.spec)
        paths = env.paths
        status_path = paths.folder / f"{env.job_id}_status.json"
        if self.finished:
            rc = 0
        else:
            signal.signal(signal.SIGTERM, self._on_term)
            command = spec.run_command(self.task)
            print("spine-seg job: running " + shlex.join(command), flush=True)
            self._proc = subprocess.Popen(
                command,
                cwd=spec.cwd,
                env={**os.environ, "PYTHONUNBUFFERED": "1"},
                preexec_fn=_ignore_usr2,
            )
            try:
                rc = self._wait_child()
            except submitit.core.utils.UncompletedJobError:
                _write_status(
                    status_path, TIMEOUT, None, paths.stderr, "reached the time limit too often"
                )
                raise
        if rc == 0:
            _write_status(status_path, COMPLETED, 0, paths.stderr)
            return 0
        main_id = env.array_job_id or env.raw_job_id
        cancelled = self._terminated or (spec.logs / f"{main_id}.cancelled").exists()
        state = CANCELLED if cancelled else FAILED
        line = _write_status(status_path, state, rc, paths.stderr)
        raise RuntimeError(line or f"spine-seg {spec.kind} exited with status {rc}")

    def _on_term(self, signum, frame) -> None:
        # scancel: slurm signals every process of the job; the child stops on its own
        self._terminated = True

    def _wait_child(self) -> int:
        # A thread reaps the child and the main thread only sleeps and reads its
        # return code: no lock is held there when submitit's signal handler runs
        # (a handler calling Popen.wait inside Popen.wait would deadlock).
        proc = self._proc
        threading.Thread(target=proc.wait, daemon=True).start()
        while proc.returncode is None:
            time.sleep(0.5)
        return proc.returncode

    def _stop_child(self) -> int | None:
        proc = self._proc
        if proc is None:
            return None
        for sig, grace in ((STOP_SIGNAL, STOP_GRACE_S), (signal.SIGKILL, 10.0)):
            if proc.returncode is not None:
                break
            try:
                os.kill(proc.pid, sig)
            except ProcessLookupError:
                pass
            deadline = time.monotonic() + grace
            while proc.returncode is None and time.monotonic() < deadline:
                time.sleep(0.2)
        return proc.returncode

    def checkpoint(self, *args, **kwargs):
        """Stop the child and resubmit this call; the next run continues where it stopped.

        Called by submitit when slurm signals that the time limit is near.
        """
        from submitit.helpers import DelayedSubmission

        rc = self._stop_child()
        spec = JobSpec.from_dict(self.spec)
        finished = self.finished or rc == 0
        if spec.checkpoints and not finished:
            picked = pick_checkpoint(spec.checkpoints)
            finished = picked is not None and spec.epochs is not None and picked[1] >= spec.epochs
        print(
            "spine-seg job: time limit near, stopped; "
            + ("nothing left to do" if finished else "next run: the same job, continued"),
            flush=True,
        )
        return DelayedSubmission(JobCall(self.spec, self.task, finished))


def _ignore_usr2() -> None:  # pragma: no cover - runs in the child before exec
    # slurm's time-limit warning is for the wrapper, which stops the child itself
    signal.signal(signal.SIGUSR2, signal.SIG_IGN)


def _write_status(
    path: Path, state: str, rc: int | None, stderr: Path, note: str | None = None
) -> str | None:
    line = note if state == TIMEOUT else joblogs.error_line(joblogs.tail(stderr, 200))
    if state == COMPLETED:
        line = None
    data = {"state": state, "returncode": rc, "error_line": line, "finished": time.time()}
    try:
        write_text_atomic(path, json.dumps(data) + "\n")
    except (SpineSegError, OSError):
        pass
    return line
