"""``spine-seg jobs``: list jobs with state and progress, show one, or cancel jobs."""

from __future__ import annotations

import argparse
import sys

from ..jobs import cancel_job, list_jobs, reattach
from ..jobs.slurm import NOT_ANSWERING
from ..jobs.status import MEANINGS
from ._command import add_command

#: ``spine-seg jobs`` in the list of subcommands, and the head of its --help
SUMMARY = "list, show or cancel training and prediction jobs"
DESCRIPTION = """\
Jobs started with --slurm (or by the napari widgets) are kept in an index on disk
($SPINE_SEG_JOBS_DIR, default ~/.local/share/napari-spine-seg/jobs). Without an action, list
them with their state and progress.
"""


def add_parser(subparsers) -> argparse.ArgumentParser:
    """Add the ``jobs`` subcommand (``list``, ``show ID``, ``cancel ID...``)."""
    p = add_command(subparsers, "jobs", run, SUMMARY, DESCRIPTION)
    actions = p.add_subparsers(dest="jobs_action", metavar="ACTION")
    actions.add_parser("list", help="list every job with its state and progress (default)")
    show = actions.add_parser("show", help="state, progress, error line and log tail of a job")
    show.add_argument("job_id", metavar="ID", help="job id (or job folder)")
    show.add_argument(
        "--lines", type=int, default=20, help="log lines to show (default %(default)s)"
    )
    cancel = actions.add_parser("cancel", help="cancel jobs (their checkpoints are kept)")
    cancel.add_argument("job_ids", nargs="+", metavar="ID", help="job ids")
    return p


def format_table(statuses) -> str:
    """The ``spine-seg jobs`` table: id, command, state, progress, submitted output."""
    rows = [("ID", "COMMAND", "STATE", "PROGRESS", "WHERE", "OUTPUT")]
    for s in statuses:
        rows.append(
            (s.job_id, s.command, s.state, s.progress_text() or "-", s.backend, s.out or s.folder)
        )
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]) - 1)]
    return "\n".join(
        "  ".join(cell.ljust(w) for cell, w in zip(r[:-1], widths, strict=True)) + "  " + r[-1]
        for r in rows
    )


def run(args: argparse.Namespace) -> int:
    """List, show or cancel jobs."""
    action = getattr(args, "jobs_action", None) or "list"
    if action == "list":
        statuses = list_jobs()
        if not statuses:
            print("no jobs", file=sys.stderr)
            return 0
        print(format_table(statuses))
        return 0
    if action == "show":
        status = reattach(args.job_id).status()
        meaning = MEANINGS.get(status.state, "")
        if NOT_ANSWERING in status.detail:  # the job itself may well be running
            meaning = f"{status.detail}; the job keeps running without it"
        print(f"job {status.job_id}: {status.state} ({meaning})")
        print(f"command: spine-seg {status.command}; {status.progress_text() or 'no epochs yet'}")
        print(f"folder: {status.folder}")
        print(f"output: {status.out}")
        print(f"state from: {status.detail}")
        if status.error_line:
            print(f"error: {status.error_line}")
        if status.log_tail:
            print("log:\n" + "\n".join(status.log_tail.splitlines()[-max(1, args.lines) :]))
        return 0
    for job_id in args.job_ids:
        cancel_job(job_id)
        print(f"cancelled job {job_id}")
    return 0
