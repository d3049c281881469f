"""Jobs on this machine: in this process, or in a detached subprocess.

A local subprocess job runs ``python -m napari_spine_seg.jobs.local JOB_FOLDER JOB_ID``,
which runs the job's entry point (:mod:`.run`; each array task in turn) and writes
``logs/<id>_status.json`` when it ends; it runs in its own session, so closing napari or
the shell does not stop it.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from ..atomic import write_text_atomic
from ..errors import SpineSegError
from .spec import JobSpec, read_spec
from .status import CANCELLED, COMPLETED, FAILED, RUNNING, UNKNOWN

_WORKER = "napari_spine_seg.jobs.local"


def status_path(spec: JobSpec, job_id: str) -> Path:
    """Where a local job writes how it ended."""
    return spec.logs / f"{job_id}_status.json"


def _write_status(path: Path, state: str, rc: int | None) -> None:
    write_text_atomic(
        path, json.dumps({"state": state, "returncode": rc, "finished": time.time()}) + "\n"
    )


def run_in_process(spec: JobSpec, job_id: str) -> int:
    """Run the job (each array task in turn) in this process; return its exit status.

    Output goes to this process's stdout and stderr.
    """
    # lazy: the package imports this module, and ``python -m ...jobs.run`` warns when
    # the package has imported jobs.run before running it
    from .run import run_reporting

    rc = 0
    for task in range(len(spec.tasks)) if spec.tasks else (None,):
        rc = run_reporting(spec, task)
        if rc != 0:
            break
    _write_status(status_path(spec, job_id), COMPLETED if rc == 0 else FAILED, rc)
    return rc


def start(spec: JobSpec, job_id: str) -> int:
    """Start the job in a detached subprocess; return its process id.

    Its output goes to ``logs/<id>_0_log.out`` and ``logs/<id>_0_log.err``.
    """
    spec.logs.mkdir(parents=True, exist_ok=True)
    with (
        open(spec.logs / f"{job_id}_0_log.out", "ab") as out,
        open(spec.logs / f"{job_id}_0_log.err", "ab") as err,
    ):
        proc = subprocess.Popen(
            [spec.python, "-m", _WORKER, str(spec.folder), job_id],
            cwd=spec.cwd,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=err,
            start_new_session=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
    return proc.pid


def _alive(pid: int | None) -> bool:
    if not pid:
        return False
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as fh:
            cmdline = fh.read().replace(b"\0", b" ").decode(errors="replace")
        with open(f"/proc/{pid}/stat", "rb") as fh:
            zombie = fh.read().rsplit(b")", 1)[-1].split()[0] == b"Z"
    except OSError:
        return _signal_alive(pid)
    return _WORKER in cmdline and not zombie


def _signal_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def state(spec: JobSpec, job_id: str, pid: int | None) -> tuple[str, str]:
    """``(state, detail)`` of a local job from its status file and process."""
    path = status_path(spec, job_id)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return str(data.get("state", UNKNOWN)), f"exit status {data.get('returncode')}"
    except (OSError, ValueError):
        pass
    if _alive(pid):
        return RUNNING, f"process {pid}"
    if (spec.logs / f"{job_id}.cancelled").exists():
        return CANCELLED, "cancelled"
    return FAILED, "the job's process ended without a status"


def cancel(spec: JobSpec, job_id: str, pid: int | None) -> None:
    """Stop a local job (its whole process group); it ends CANCELLED."""
    write_text_atomic(spec.logs / f"{job_id}.cancelled", time.strftime("%Y-%m-%dT%H:%M:%S\n"))
    if not _alive(pid):
        return
    try:
        os.killpg(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    except PermissionError as exc:
        raise SpineSegError(None, f"cannot stop process {pid}: {exc}") from exc


def _worker(folder: str, job_id: str) -> int:
    """Body of the detached subprocess: run the tasks, merge, write the status."""
    spec = read_spec(folder)
    terminated = []
    signal.signal(signal.SIGTERM, lambda *_: terminated.append(True))
    rc = 0
    for task in range(len(spec.tasks)) if spec.tasks else (None,):
        rc = subprocess.Popen(spec.run_command(task), cwd=spec.cwd).wait()
        if rc != 0 or terminated:
            break
    cancelled = terminated or (spec.logs / f"{job_id}.cancelled").exists()
    result = COMPLETED if rc == 0 and not terminated else (CANCELLED if cancelled else FAILED)
    _write_status(status_path(spec, job_id), result, rc)
    return 0 if result == COMPLETED else 1


if __name__ == "__main__":  # pragma: no cover - run as the detached subprocess
    sys.exit(_worker(sys.argv[1], sys.argv[2]))
