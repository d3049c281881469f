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
from .spec import JobSpec


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

    It runs the job's entry point (:mod:`.run`) on the job's ``spec.json``, as submitit
    and a local job do. A training run again (``sbatch job.sbatch`` after a cancel, a
    failure or a time-out) continues from its most trained checkpoint; an array task
    predicts its part of the images and the last one to finish merges the parts.
    """
    lines = [
        "#!/bin/bash",
        f"# spine-seg {spec.kind}, written {time.strftime('%Y-%m-%d %H:%M')} by napari-spine-seg.",
        "# Submit it again by hand with:",
        f"#   sbatch {_q(spec.script)}",
        f"# The job's settings are in {spec.spec_file}.",
    ]
    if spec.checkpoints:
        lines.append("# Run again, the training continues from its most trained checkpoint.")
    for key, value in options.sbatch_options():
        lines.append(f"#SBATCH --{key}" + ("" if value is None else f"={value}"))
    name = "%A_%a" if spec.tasks else "%j"
    if spec.tasks:
        lines.append(f"#SBATCH --array=0-{spec.n_tasks - 1}")
    lines += [
        f"#SBATCH --chdir={_sbatch_path(spec.cwd)}",
        f"#SBATCH --output={_sbatch_path(spec.logs, f'{name}_0_log.out')}",
        f"#SBATCH --error={_sbatch_path(spec.logs, f'{name}_0_log.err')}",
        "#SBATCH --open-mode=append",
    ]
    if options.setup:
        lines += ["", "# setup", *options.setup]
    command = " ".join(_q(part) for part in spec.run_command())
    task = ' "$SLURM_ARRAY_TASK_ID"' if spec.tasks else ""
    lines += ["", f"exec {command}{task}", ""]
    return "\n".join(lines)
