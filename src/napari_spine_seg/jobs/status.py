"""What a job is doing: its state, its progress and the end of its log."""

from __future__ import annotations

from dataclasses import dataclass

PENDING = "PENDING"
RUNNING = "RUNNING"
COMPLETED = "COMPLETED"
FAILED = "FAILED"
CANCELLED = "CANCELLED"
TIMEOUT = "TIMEOUT"
UNKNOWN = "UNKNOWN"

#: states after which a job does nothing more
FINAL_STATES = frozenset({COMPLETED, FAILED, CANCELLED, TIMEOUT})

#: slurm's job states (``squeue %T``, ``scontrol JobState``, ``sacct State``) → ours
_SLURM_STATES = {
    "PENDING": PENDING,
    "REQUEUED": PENDING,
    "REQUEUE_HOLD": PENDING,
    "REQUEUE_FED": PENDING,
    "RESV_DEL_HOLD": PENDING,
    "SUSPENDED": PENDING,
    "CONFIGURING": RUNNING,
    "RUNNING": RUNNING,
    "COMPLETING": RUNNING,
    "STAGE_OUT": RUNNING,
    "SIGNALING": RUNNING,
    "RESIZING": RUNNING,
    "STOPPED": RUNNING,
    "COMPLETED": COMPLETED,
    "CANCELLED": CANCELLED,
    "REVOKED": CANCELLED,
    "TIMEOUT": TIMEOUT,
    "DEADLINE": TIMEOUT,
    "FAILED": FAILED,
    "BOOT_FAIL": FAILED,
    "NODE_FAIL": FAILED,
    "OUT_OF_MEMORY": FAILED,
    "PREEMPTED": FAILED,
    "SPECIAL_EXIT": FAILED,
}

#: what each state means, for ``spine-seg jobs`` and the documentation
MEANINGS = {
    PENDING: "waiting for resources (or requeued, waiting to start again)",
    RUNNING: "running on a node",
    COMPLETED: "finished; the outputs are written",
    FAILED: "stopped with an error; see the error line and the log",
    CANCELLED: "cancelled by a user; checkpoints written so far are kept",
    TIMEOUT: "reached its time limit too often; resubmit to continue from the last checkpoint",
    UNKNOWN: "slurm no longer knows the job and it left no final status",
}


def normalise_slurm_state(text: str) -> str:
    """Map a slurm state (``"CANCELLED by 0"``, ``"OUT_OF_MEMORY"``, ...) to one of ours.

    Examples
    --------
    >>> normalise_slurm_state("CANCELLED by 0")
    'CANCELLED'
    >>> normalise_slurm_state("COMPLETING")
    'RUNNING'
    """
    word = text.strip().split(" ", 1)[0].rstrip("+").upper()
    return _SLURM_STATES.get(word, UNKNOWN)


def combine_states(states: list[str]) -> str:
    """One state for an array of tasks: running while any task runs or waits.

    A finished array is COMPLETED only when every task completed; otherwise the worst
    outcome among its tasks (FAILED, then TIMEOUT, then CANCELLED).
    """
    if not states:
        return UNKNOWN
    for state in (RUNNING, PENDING, UNKNOWN):
        if state in states:
            if state == PENDING and any(s in FINAL_STATES for s in states):
                return RUNNING  # some tasks are done, others wait: the array is under way
            return state
    for state in (FAILED, TIMEOUT, CANCELLED):
        if state in states:
            return state
    return COMPLETED


@dataclass(frozen=True)
class JobStatus:
    """A snapshot of one job, for the command line and for widgets that poll.

    Attributes
    ----------
    state : str
        PENDING, RUNNING, COMPLETED, FAILED, CANCELLED, TIMEOUT or UNKNOWN.
    epoch : int or None
        Epochs completed so far (training; from the history CSV).
    epochs : int or None
        Epochs asked for (training).
    log_tail : str
        The last lines of the job's log.
    error_line : str or None
        The line of the log that says what went wrong, when the job failed.
    job_id : str
    command : str
        ``"train"`` or ``"predict"``.
    folder : str
        The job folder (script, logs, record).
    out : str or None
        The model file (training) or output folder (prediction).
    backend : str
        ``"slurm"``, ``"local"`` (a subprocess here) or ``"process"`` (in this process).
    detail : str
        The scheduler's own word for the state, or where the state came from.
    """

    state: str
    epoch: int | None = None
    epochs: int | None = None
    log_tail: str = ""
    error_line: str | None = None
    job_id: str = ""
    command: str = ""
    folder: str = ""
    out: str | None = None
    backend: str = "slurm"
    detail: str = ""

    @property
    def finished(self) -> bool:
        """True once the job will do nothing more."""
        return self.state in FINAL_STATES

    def progress_text(self) -> str:
        """``"epoch 3/40"``, ``"epoch 3"`` or ``""``."""
        if self.epoch is None:
            return ""
        return f"epoch {self.epoch}/{self.epochs}" if self.epochs else f"epoch {self.epoch}"
