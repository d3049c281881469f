"""``--slurm`` for ``spine-seg train`` and ``spine-seg predict``: submit instead of running here.

A subcommand offers it with two calls::

    add_slurm_arguments(parser)              # in add_parser (array=True for predict)
    if args.slurm:                           # in run(args), once the config is built
        return run_on_slurm(args, training_spec(config, ...))

The job carries the subcommand's config (a :class:`~napari_spine_seg.jobs.spec.JobSpec`),
not its arguments: the slurm options here only say where and how it runs.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from dataclasses import MISSING, fields

from ..errors import SpineSegError
from ..jobs.options import SlurmOptions
from ..jobs.runner import run_job
from ..jobs.slurm import NOT_ANSWERING, log_files
from ..jobs.status import COMPLETED

#: the options that set a :class:`~napari_spine_seg.jobs.options.SlurmOptions` field, in
#: --help order: flag, field, metavar, argparse's type or action, help. Each defaults to
#: the field's default, which ``%(default)s`` shows.
SLURM_OPTIONS = (
    ("--partition", "partition", "P", None, "slurm partition"),
    (
        "--time", "time_min", "MIN", int,
        "time limit in minutes (default %(default)s); a training that reaches it is "
        "requeued and resumes from its last checkpoint",
    ),
    ("--cpus", "cpus", "N", int, "CPUs (default %(default)s)"),
    ("--mem", "mem_gb", "GB", float, "memory in GB"),
    ("--gpus", "gpus", "N", int, "GPUs (default %(default)s)"),
    ("--account", "account", "A", None, "slurm account"),
    ("--qos", "qos", "Q", None, "slurm quality of service"),
    (
        "--setup", "setup", "LINE", "append",
        "shell line run before the job, e.g. 'module load cuda' (repeatable)",
    ),
    (
        "--extra-sbatch", "extra_sbatch", "LINE", "append",
        "more sbatch options, each key=value or key, e.g. constraint=a100 (repeatable)",
    ),
    (
        "--signal-delay", "signal_delay_s", "S", int,
        "seconds before the time limit at which the job checkpoints and requeues "
        "(default %(default)s; slurm checks every 30 s)",
    ),
)  # fmt: skip


def _field_defaults() -> dict:
    return {f.name: f.default for f in fields(SlurmOptions) if f.default is not MISSING}


def add_slurm_arguments(parser: argparse.ArgumentParser, *, array: bool = False) -> None:
    """Add ``--slurm`` and the slurm options to a subcommand's parser.

    Parameters
    ----------
    parser : argparse.ArgumentParser
        The subcommand's parser (``train`` or ``predict``).
    array : bool
        Also add ``--array K`` (split the inputs over K array tasks; for ``predict``).
    """
    g = parser.add_argument_group(
        "slurm", "submit the job to a slurm cluster instead of running it here (docs/hpc.md)"
    )
    g.add_argument("--slurm", action="store_true", help="run as a slurm job (submitit)")
    defaults = _field_defaults()
    for flag, name, metavar, kind, help_ in SLURM_OPTIONS:
        how = {"action": kind, "default": []} if kind == "append" else {"type": kind}
        how.setdefault("default", defaults.get(name))
        g.add_argument(flag, dest=f"slurm_{name}", metavar=metavar, help=help_, **how)
    g.add_argument(
        "--wait", dest="slurm_wait", action="store_true", help="follow the job until it ends"
    )
    g.add_argument(
        "--job-dir", dest="slurm_job_dir", metavar="DIR",
        help="job folder (script, logs); default beside --out (MODEL.job or DIR.job)",
    )  # fmt: skip
    if array:
        g.add_argument(
            "--array", dest="slurm_array", type=int, default=1, metavar="K",
            help="split the inputs over K array tasks and merge their outputs (default 1)",
        )  # fmt: skip


def slurm_options(args: argparse.Namespace) -> SlurmOptions:
    """The validated :class:`~napari_spine_seg.jobs.options.SlurmOptions` of `args`."""
    chosen = {name: getattr(args, f"slurm_{name}") for _, name, *_ in SLURM_OPTIONS}
    return SlurmOptions(**chosen, job_name=f"spine-seg-{args.command}")


def follow(job, stream=None, poll_s: float = 2.0):
    """Print the job's state and epochs on `stream` (stderr) until it ends; return its status."""
    stream = stream or sys.stderr
    last: tuple = ()

    def show(status) -> None:
        nonlocal last
        # while the controller is down the job runs on: say so once, keep polling
        unreachable = status.detail if NOT_ANSWERING in status.detail else ""
        now = (status.state, status.epoch, bool(unreachable))
        if now != last:
            progress = status.progress_text()
            print(
                f"{time.strftime('%H:%M:%S')} job {status.job_id} {status.state}"
                + (f" {progress}" if progress else "")
                + (f" ({unreachable}; still asking)" if unreachable else ""),
                file=stream,
                flush=True,
            )
            last = now

    try:
        return job.wait(poll_s=poll_s, on_status=show)
    except KeyboardInterrupt:
        print(
            f"job {job.job_id} keeps running; `spine-seg jobs cancel {job.job_id}` stops it",
            file=stream,
            flush=True,
        )
        raise


def run_on_slurm(args: argparse.Namespace, spec, argv: Sequence[str] | None = None) -> int:
    """Submit `spec`, the job of the subcommand of `args`, to slurm; print the job id on stdout.

    With ``--wait`` follow the job (state and epochs on stderr) until it ends: 0 when
    it completed (its outputs are at ``--out``), otherwise a :class:`SpineSegError`
    naming the job's log and its error line.

    Parameters
    ----------
    args : argparse.Namespace
        Parsed arguments of a parser that :func:`add_slurm_arguments` extended.
    spec : JobSpec
        The job (:func:`~napari_spine_seg.jobs.spec.training_spec` ...).
    argv : sequence of str, optional
        The command line as typed, kept in the job record for reference.

    Returns
    -------
    int
        Exit status.
    """
    options = slurm_options(args)
    job = run_job(spec, "slurm", options, typed=argv or ())
    print(job.job_id, flush=True)
    print(
        f"spine-seg {args.command}: submitted slurm job {job.job_id}; folder {job.folder}; "
        f"`spine-seg jobs` shows its state, `spine-seg jobs cancel {job.job_id}` stops it",
        file=sys.stderr,
        flush=True,
    )
    if not args.slurm_wait:
        return 0
    status = follow(job)
    if status.state == COMPLETED:
        print(
            f"spine-seg {args.command}: job {job.job_id} COMPLETED; output {status.out}",
            file=sys.stderr,
        )
        return 0

    logs = log_files(job.folder / "logs", job.job_id)
    what = status.error_line or status.detail or "see its log"
    raise SpineSegError(
        logs[-1] if logs else job.folder, f"job {job.job_id} {status.state}: {what}"
    )
