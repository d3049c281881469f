"""Slurm through submitit: submit a :class:`~.spec.JobSpec`, ask its state, cancel it.

The job folder holds ``job.sbatch`` (a plain script to read and resubmit by hand),
``job.json`` (the record) and ``logs/``, where submitit keeps its own files:
``<id>_submission.sh`` (the script submitit submitted), ``<id>_0_log.out`` and
``<id>_0_log.err`` (the job's output; array tasks are ``<id>_<task>_0_log.*``),
``<id>_submitted.pkl`` and ``<id>_0_result.pkl``, plus our ``<id>_status.json``.

On the node, :class:`~.slurm_call.JobCall` runs the job's entry point (:mod:`.run`)
in a child process, and requeues the job when its time limit is near.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import shlex
import shutil
import subprocess
import threading
import time
from pathlib import Path

from ..atomic import write_text_atomic
from ..errors import SpineSegError
from .options import SlurmOptions
from .spec import JobSpec

#: seconds to wait for slurm's commands before calling slurm "not answering"
SLURM_TIMEOUT_S = 30.0
_TOOLS = ("sbatch", "squeue", "scancel", "scontrol", "srun")
#: the start of every message that says the controller cannot be reached
NOT_ANSWERING = "slurm is not answering"
#: one submission at a time: submitit's sbatch string maker is swapped while it runs
_SUBMIT_LOCK = threading.Lock()


class SlurmNotAnswering(SpineSegError):
    """Slurm's controller cannot be reached (down, restarting, or the network)."""


def check_slurm(timeout: float = SLURM_TIMEOUT_S) -> None:
    """Make sure slurm's commands are here and its controller answers.

    Raises
    ------
    SpineSegError
        One line saying what is missing or that slurm does not answer.
    """
    missing = [tool for tool in _TOOLS if shutil.which(tool) is None]
    if missing:
        raise SpineSegError(
            None,
            f"slurm is not installed here (no {', '.join(missing)} on the PATH); "
            "run without --slurm to work on this machine",
        )
    problem = controller_problem(timeout)
    if problem:
        raise SlurmNotAnswering(None, problem)


def controller_problem(timeout: float = SLURM_TIMEOUT_S) -> str | None:
    """None when slurm's controller answers ``scontrol ping``, else one line saying why not.

    ``scontrol ping`` answers at once when the controller is down, where ``squeue``
    keeps trying for about 20 s.
    """
    try:
        done = subprocess.run(["scontrol", "ping"], capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return f"{NOT_ANSWERING} (scontrol ping gave no answer in {timeout:.0f} s)"
    except OSError as exc:
        return f"{NOT_ANSWERING} (cannot run scontrol: {exc.strerror or exc})"
    if done.returncode != 0 or " is UP" not in done.stdout:
        said = _first_line(done.stdout + "\n" + done.stderr) or "scontrol ping failed"
        return f"{NOT_ANSWERING}: {said}"
    return None


def _first_line(text: str) -> str:
    return next((line.strip() for line in text.splitlines() if line.strip()), "")


# ----------------------------------------------------------------------------- submitting


def _executor(spec: JobSpec, options: SlurmOptions):
    import submitit

    executor = submitit.AutoExecutor(
        folder=spec.logs,
        cluster="slurm",
        slurm_max_num_timeout=options.max_requeues,
        slurm_python=shlex.quote(spec.python),
    )
    # --requeue: submitit requeues the job itself at the time-limit signal
    additional: dict = {"chdir": str(spec.cwd), "requeue": True}
    for line in options.extra_sbatch:
        key, sep, value = line[2:].partition("=")
        additional[key] = value if sep else True
    parameters = {
        "name": options.job_name,
        "timeout_min": options.time_min,
        "nodes": 1,
        "tasks_per_node": 1,
        "cpus_per_task": options.cpus,
        "slurm_signal_delay_s": options.signal_delay_s,
        "slurm_additional_parameters": additional,
        "slurm_setup": list(options.setup),
        "slurm_array_parallelism": max(1, spec.n_tasks),
    }
    if options.partition:
        parameters["slurm_partition"] = options.partition
    if options.mem_gb is not None:
        parameters["mem_gb"] = options.mem_gb
    if options.gpus:
        parameters["gpus_per_node"] = options.gpus
    if options.account:
        parameters["slurm_account"] = options.account
    if options.qos:
        parameters["slurm_qos"] = options.qos
    executor.update_parameters(**parameters)
    return executor


def sbatch_pattern_safe(path: str | os.PathLike) -> str:
    """`path` for an sbatch/srun ``--output`` pattern: every ``%`` doubled (a literal ``%``).

    Slurm expands ``%j``, ``%A``, ``%x`` ... in ``--output`` and ``--error``, so a folder
    named ``run 50%`` must be written ``run 50%%`` there.
    """
    return os.fspath(path).replace("%", "%%")


def check_job_folder(folder: Path) -> None:
    """Refuse a job folder that submitit would misread (it expands ``%j`` ... in its folder).

    Raises
    ------
    SpineSegError
        When the folder's path holds ``%j``, ``%t``, ``%A`` or ``%a``.
    """
    found = re.search(r"%[jtAa]", str(folder))
    if found:
        raise SpineSegError(
            folder,
            f"the job folder's path holds {found.group()!r}, which submitit replaces by the job "
            "id; give another --job-dir",
        )


@contextlib.contextmanager
def _sbatch_call():
    """Around submitit's call of sbatch: pattern-safe log paths, sbatch's output captured.

    submitit builds the ``--output``/``--error`` patterns from its folder as it is and
    prints sbatch's stderr itself when sbatch refuses; here the folder's ``%`` are
    doubled and what sbatch says is kept for our own one line. Yields the captured text.
    """
    from submitit.slurm import slurm as submitit_slurm

    original = submitit_slurm._make_sbatch_string

    def make(command, folder, **parameters):
        return original(command=command, folder=sbatch_pattern_safe(folder), **parameters)

    said = io.StringIO()
    with _SUBMIT_LOCK:
        submitit_slurm._make_sbatch_string = make
        try:
            with contextlib.redirect_stderr(said), contextlib.redirect_stdout(said):
                yield said
        finally:
            submitit_slurm._make_sbatch_string = original


def _refusal(exc: BaseException, said: str) -> str:
    """sbatch's reason for refusing a job, as one line."""
    text = "\n".join(
        part for part in (str(exc).split("Error stream produced:")[-1], said) if part.strip()
    )
    reasons: list[str] = []
    for line in text.splitlines():
        line = re.sub(r"^\s*sbatch:\s*(error:\s*)?", "", line).strip()
        if line and line not in reasons:
            reasons.append(line)
    return "; ".join(reasons) or type(exc).__name__


def submit(spec: JobSpec, options: SlurmOptions) -> str:
    """Submit `spec` to slurm; return the job id (an array's main id).

    Nothing of sbatch's reaches the terminal: its reason for refusing a job is part of
    the one error line.

    Raises
    ------
    SpineSegError
        When slurm is missing, does not answer or refuses the job.
    """
    check_slurm()
    check_job_folder(spec.logs)
    spec.logs.mkdir(parents=True, exist_ok=True)
    executor = _executor(spec, options)
    data = spec.to_dict()
    with _sbatch_call() as said:
        try:
            from .slurm_call import JobCall  # lazy: imports submitit, which resets logging

            if spec.tasks:
                jobs = executor.submit_array([JobCall(data, t) for t in range(spec.n_tasks)])
                return str(jobs[0].job_id).split("_", 1)[0]
            job = executor.submit(JobCall(data))
        except Exception as exc:  # submitit reports sbatch's refusal in several types
            message = _refusal(exc, said.getvalue())
            raise SpineSegError(spec.script, f"slurm refused the job: {message}") from exc
    return str(job.job_id)


# ----------------------------------------------------------------------------- state


def _run(command: list[str]) -> subprocess.CompletedProcess | None:
    try:
        return subprocess.run(command, capture_output=True, text=True, timeout=SLURM_TIMEOUT_S)
    except (OSError, subprocess.TimeoutExpired):
        return None


def task_states(job_id: str) -> dict[str, str]:
    """Slurm's raw state of each task of a job: ``{"7": "RUNNING"}`` or ``{"7_0": ..., ...}``.

    Asks ``squeue`` (jobs slurm still holds, finished ones for a few minutes), then
    ``sacct`` (when the cluster keeps accounting). Empty when slurm does not know it.

    Raises
    ------
    SlurmNotAnswering
        When the controller cannot be reached: then nothing can be said about the job.
    """
    return {task: state for task, (state, _) in task_details(job_id).items()}


def task_details(job_id: str) -> dict[str, tuple[str, str]]:
    """Like :func:`task_states`, with slurm's reason for each state (``"None"``, ``"Priority"``)."""
    problem = controller_problem()
    if problem:
        raise SlurmNotAnswering(None, problem)
    done = _run(["squeue", "--noheader", "--states=all", f"--jobs={job_id}", "--format=%i|%T|%r"])
    if done is not None and done.returncode == 0:
        states = _parse_states(done.stdout)
        if states:
            return states
    elif done is None or "Invalid job id" not in done.stderr:
        said = _first_line(done.stderr) if done is not None else "no answer from squeue"
        raise SlurmNotAnswering(None, f"{NOT_ANSWERING}: {said}")
    done = _run(
        [
            "sacct",
            "--noheader",
            "--parsable2",
            "--allocations",
            f"--jobs={job_id}",
            "--format=JobID,State,Reason",
        ]
    )
    return _parse_states(done.stdout if done is not None and done.returncode == 0 else "")


def _parse_states(text: str) -> dict[str, tuple[str, str]]:
    states = {}
    for line in text.splitlines():
        task, sep, rest = line.strip().partition("|")
        state, _, reason = rest.partition("|")
        if sep and task and state.strip():
            states[task] = (state.strip(), reason.strip())
    return states


def cancel(job_id: str, logs: Path) -> None:
    """Cancel a slurm job (every task of an array); it ends CANCELLED.

    A marker in `logs` remembers that a user cancelled it, for when slurm has
    forgotten the job.

    Raises
    ------
    SpineSegError
        When slurm does not answer or refuses.
    """
    check_slurm()
    try:
        write_text_atomic(logs / f"{job_id}.cancelled", time.strftime("%Y-%m-%dT%H:%M:%S\n"))
    except SpineSegError:
        pass
    done = _run(["scancel", str(job_id)])
    if done is None:
        raise SpineSegError(None, f"slurm is not answering (scancel {job_id})")
    if done.returncode != 0:
        raise SpineSegError(None, f"cannot cancel job {job_id}: {_first_line(done.stderr)}")


def read_status_files(logs: Path, job_id: str) -> dict[str, dict]:
    """Our own ``<id>_status.json`` files of a job: ``{task id: status}``."""
    found = {}
    for path in list(logs.glob(f"{job_id}_status.json")) + list(
        logs.glob(f"{job_id}_*_status.json")
    ):
        try:
            found[path.name[: -len("_status.json")]] = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
    return found


def log_files(logs: Path, job_id: str) -> list[Path]:
    """The job's stderr logs, newest last (one per array task)."""
    files = list(logs.glob(f"{job_id}_0_log.err")) + list(logs.glob(f"{job_id}_*_0_log.err"))
    return sorted(set(files), key=lambda p: p.stat().st_mtime if p.exists() else 0)
