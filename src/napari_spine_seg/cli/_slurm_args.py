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

from ..errors import SpineSegError


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
    g.add_argument("--partition", dest="slurm_partition", metavar="P", help="slurm partition")
    g.add_argument(
        "--time", dest="slurm_time", type=int, default=60, metavar="MIN",
        help="time limit in minutes (default %(default)s); a training that reaches it is "
        "requeued and resumes from its last checkpoint",
    )  # fmt: skip
    g.add_argument(
        "--cpus",
        dest="slurm_cpus",
        type=int,
        default=2,
        metavar="N",
        help="CPUs (default %(default)s)",
    )
    g.add_argument("--mem", dest="slurm_mem", type=float, metavar="GB", help="memory in GB")
    g.add_argument(
        "--gpus",
        dest="slurm_gpus",
        type=int,
        default=0,
        metavar="N",
        help="GPUs (default %(default)s)",
    )
    g.add_argument("--account", dest="slurm_account", metavar="A", help="slurm account")
    g.add_argument("--qos", dest="slurm_qos", metavar="Q", help="slurm quality of service")
    g.add_argument(
        "--setup", dest="slurm_setup", action="append", default=[], metavar="LINE",
        help="shell line run before the job, e.g. 'module load cuda' (repeatable)",
    )  # fmt: skip
    g.add_argument(
        "--extra-sbatch", dest="slurm_extra_sbatch", action="append", default=[], metavar="LINE",
        help="more sbatch options, each key=value or key, e.g. constraint=a100 (repeatable)",
    )  # fmt: skip
    g.add_argument(
        "--signal-delay", dest="slurm_signal_delay", type=int, default=90, metavar="S",
        help="seconds before the time limit at which the job checkpoints and requeues "
        "(default %(default)s; slurm checks every 30 s)",
    )  # fmt: skip
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


def slurm_options(args: argparse.Namespace):
    """The validated :class:`~napari_spine_seg.jobs.options.SlurmOptions` of `args`."""
    from ..jobs.options import SlurmOptions

    return SlurmOptions(
        partition=args.slurm_partition,
        time_min=args.slurm_time,
        cpus=args.slurm_cpus,
        mem_gb=args.slurm_mem,
        gpus=args.slurm_gpus,
        account=args.slurm_account,
        qos=args.slurm_qos,
        setup=tuple(args.slurm_setup or ()),
        extra_sbatch=tuple(args.slurm_extra_sbatch or ()),
        job_name=f"spine-seg-{args.command}",
        signal_delay_s=args.slurm_signal_delay,
    )


def follow(job, stream=None, poll_s: float = 2.0):
    """Print the job's state and epochs on `stream` (stderr) until it ends; return its status."""
    from ..jobs.slurm import NOT_ANSWERING

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
    from ..jobs.runner import run_job
    from ..jobs.status import COMPLETED

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
    from ..jobs.slurm import log_files

    logs = log_files(job.folder / "logs", job.job_id)
    what = status.error_line or status.detail or "see its log"
    raise SpineSegError(
        logs[-1] if logs else job.folder, f"job {job.job_id} {status.state}: {what}"
    )
