"""The plain ``job.sbatch`` of a job folder: readable, and resubmittable with ``sbatch``.

Every value that came from a user is either validated by
:class:`~napari_spine_seg.jobs.options.SlurmOptions` or quoted with :func:`shlex.quote`;
setup lines are written as they are, since running them is their purpose.
"""

from __future__ import annotations

import shlex
import time

from .options import SlurmOptions
from .slurm import sbatch_pattern_safe
from .spec import JobSpec, cli_command


def _q(text: object) -> str:
    return shlex.quote(str(text))


def _sbatch_path(path: object, name: str | None = None) -> str:
    # sbatch reads #SBATCH values itself (no shell); it understands double quotes and
    # ends a value at an unquoted '#'. --output/--error are patterns (`name` holds %j):
    # there a literal '%' of the folder is written '%%'
    text = str(path) if name is None else f"{sbatch_pattern_safe(path)}/{name}"
    return f'"{text}"' if any(c.isspace() or c == "#" for c in text) else text


def render_script(spec: JobSpec, options: SlurmOptions) -> str:
    """The text of the job's plain sbatch script.

    A training script continues from the checkpoint that has trained the most epochs,
    when there is one, so that ``sbatch job.sbatch`` after a cancel, a failure or a
    time-out picks up where the job stopped. An array script runs one part of the
    inputs per task and the last task to finish merges the parts into the output.
    """
    python = _q(spec.python)
    lines = [
        "#!/bin/bash",
        f"# spine-seg {spec.command}, written {time.strftime('%Y-%m-%d %H:%M')} by napari-spine-seg.",
        "# Submit it again by hand with:",
        f"#   sbatch {_q(spec.script)}",
    ]
    if spec.checkpoints:
        lines.append(
            "# The training continues from its most trained checkpoint, when there is one."
        )
    for key, value in options.sbatch_options():
        lines.append(f"#SBATCH --{key}" + ("" if value is None else f"={value}"))
    name = "%A_%a" if spec.task_args else "%j"
    if spec.task_args:
        lines.append(f"#SBATCH --array=0-{spec.n_tasks - 1}")
    lines += [
        f"#SBATCH --chdir={_sbatch_path(spec.cwd)}",
        f"#SBATCH --output={_sbatch_path(spec.logs, f'{name}_0_log.out')}",
        f"#SBATCH --error={_sbatch_path(spec.logs, f'{name}_0_log.err')}",
        "#SBATCH --open-mode=append",
    ]
    if options.setup:
        lines += ["", "# setup", *options.setup]
    cli = " ".join(_q(part) for part in cli_command(spec.python))
    debug = " --debug" if spec.debug else ""
    lines.append("")
    if spec.task_args:
        lines += ['case "$SLURM_ARRAY_TASK_ID" in']
        for task, args in enumerate(spec.task_args):
            lines.append(f"    {task}) set -- {' '.join(_q(a) for a in args)} ;;")
        lines += [
            '    *) echo "job.sbatch: no array task $SLURM_ARRAY_TASK_ID" >&2; exit 2 ;;',
            "esac",
            f'{cli}{debug} {_q(spec.command)} "$@" || exit $?',
            "# the last task to finish merges every part into the output",
            f'exec {python} -m napari_spine_seg.jobs.merge {_q(spec.folder)} "$SLURM_ARRAY_TASK_ID"',
            "",
        ]
        return "\n".join(lines)
    args = list(spec.args)
    if spec.checkpoints:
        from .spec import without_option

        given = _resume_given(args)
        args = without_option(args, "--resume")
        candidates = " ".join(_q(p) for p in spec.checkpoints)
        lines += [
            "# continue from the checkpoint that has trained the most epochs, if there is one",
            f"checkpoint=$({python} -m napari_spine_seg.jobs.resume {candidates})",
            'if [ -n "$checkpoint" ]; then set -- --resume "$checkpoint"; fi',
        ]
        if given is not None:
            lines.append(f'if [ -z "$checkpoint" ]; then set -- --resume {_q(given)}; fi')
    lines += [
        f'exec {cli}{debug} {_q(spec.command)} {" ".join(_q(a) for a in args)} "$@"',
        "",
    ]
    return "\n".join(lines)


def _resume_given(args: list[str]) -> str | None:
    for i, arg in enumerate(args):
        if arg == "--resume" and i + 1 < len(args):
            return args[i + 1]
        if arg.startswith("--resume="):
            return arg.split("=", 1)[1]
    return None
