"""What a job runs: one ``spine-seg`` command line, its folder and the files it writes.

A :class:`JobSpec` is the same whether the job runs in this process, in a local
subprocess or on slurm: the command is always our own command line, run by the same
Python executable, so a job folder's script can be read and run again by hand.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from dataclasses import dataclass, field, fields, replace
from pathlib import Path

from ..errors import SpineSegError
from .options import check_argument

#: ``python -c`` program equivalent to ``python -m napari_spine_seg.cli`` (used when the
#: package has no ``cli/__main__.py``)
_CLI_PROGRAM = "import sys; from napari_spine_seg.cli import main; sys.exit(main())"


def cli_command(python: str | None = None) -> list[str]:
    """The command that starts ``spine-seg`` with `python` (default: this Python).

    ``python -m napari_spine_seg.cli`` when the package can run that way, otherwise an
    equivalent ``python -c`` one-liner; never a bare ``spine-seg`` from the PATH, which
    could belong to another environment.
    """
    python = python or sys.executable
    if importlib.util.find_spec("napari_spine_seg.cli.__main__") is not None:
        return [python, "-m", "napari_spine_seg.cli"]
    return [python, "-c", _CLI_PROGRAM]


def without_option(args: tuple[str, ...] | list[str], option: str) -> list[str]:
    """`args` without ``option VALUE`` and ``option=VALUE``."""
    out: list[str] = []
    skip = False
    for arg in args:
        if skip:
            skip = False
            continue
        if arg == option:
            skip = True
            continue
        if arg.startswith(option + "="):
            continue
        out.append(arg)
    return out


def with_resume(args: tuple[str, ...] | list[str], checkpoint: str | os.PathLike) -> list[str]:
    """`args` continuing from `checkpoint`: any ``--resume`` replaced by this one."""
    return [*without_option(args, "--resume"), "--resume", os.fspath(checkpoint)]


def join_args(positionals: list[str], options: list[str]) -> list[str]:
    """Positionals then options; after ``--`` at the end when a positional looks like an option."""
    if any(p.startswith("-") for p in positionals):
        return [*options, "--", *positionals]
    return [*positionals, *options]


def trained_epochs(path: Path) -> int | None:
    """Epochs a model or checkpoint file has trained (None when unreadable)."""
    from ..model.files import read_metadata

    try:
        return int(read_metadata(path).training.get("epoch", 0))
    except (SpineSegError, OSError, ValueError, TypeError, AttributeError):
        return None


def pick_checkpoint(candidates: tuple[Path, ...] | list[Path]) -> tuple[Path, int] | None:
    """The readable checkpoint that has trained the most epochs, with that count.

    Ties go to the earlier candidate (list the "last" checkpoint before the best model).
    """
    best: tuple[Path, int] | None = None
    for path in candidates:
        if not Path(path).is_file():
            continue
        epochs = trained_epochs(Path(path))
        if epochs is not None and (best is None or epochs > best[1]):
            best = (Path(path), epochs)
    return best


@dataclass(frozen=True)
class JobSpec:
    """One ``spine-seg`` command (or an array of them) and where its files go.

    Attributes
    ----------
    command : str
        The subcommand: ``"train"`` or ``"predict"``.
    args : tuple of str
        Its arguments (for an array: those common to every task, for the record).
    folder : Path
        The job folder: ``job.sbatch``, ``job.json``, ``logs/`` (and ``parts/``).
    cwd : Path
        Working directory of the job (relative paths in `args` are relative to it).
    python : str
        The Python that runs the command line (the one submitting, by default).
    out : Path or None
        The model file (training) or output folder (prediction).
    epochs : int or None
        Epochs asked for, to report progress.
    history : Path or None
        The training history CSV (one row per epoch).
    checkpoints : tuple of Path
        Files the training can ``--resume`` from; the most trained one is used.
    task_args : tuple of tuple of str
        For an array job, each task's arguments; empty for a single job.
    debug : bool
        Run ``spine-seg --debug`` (tracebacks in the log).
    """

    command: str
    args: tuple[str, ...]
    folder: Path
    cwd: Path
    python: str = field(default_factory=lambda: sys.executable)
    out: Path | None = None
    epochs: int | None = None
    history: Path | None = None
    checkpoints: tuple[Path, ...] = ()
    task_args: tuple[tuple[str, ...], ...] = ()
    debug: bool = False

    def __post_init__(self):
        for arg in (self.command, *self.args, *(a for task in self.task_args for a in task)):
            check_argument(arg)
        check_argument(self.python)
        for name in ("folder", "cwd", "out", "history"):
            value = getattr(self, name)
            if value is not None:
                object.__setattr__(self, name, Path(os.path.abspath(value)))
        object.__setattr__(self, "args", tuple(self.args))
        object.__setattr__(self, "checkpoints", tuple(Path(p) for p in self.checkpoints))
        object.__setattr__(self, "task_args", tuple(tuple(t) for t in self.task_args))

    @property
    def n_tasks(self) -> int:
        """1 for a single job, else the number of array tasks."""
        return max(1, len(self.task_args))

    @property
    def logs(self) -> Path:
        """Where the job's logs (and submitit's files) go."""
        return self.folder / "logs"

    @property
    def script(self) -> Path:
        """The plain sbatch script of the job."""
        return self.folder / "job.sbatch"

    def part(self, task: int) -> Path:
        """Output folder of array task `task` (merged into `out` at the end)."""
        return self.folder / "parts" / str(task)

    def command_line(self, args: tuple[str, ...] | list[str] | None = None) -> list[str]:
        """The full command: Python, ``spine-seg``, the subcommand and `args`."""
        debug = ["--debug"] if self.debug else []
        return [
            *cli_command(self.python),
            *debug,
            self.command,
            *(self.args if args is None else args),
        ]

    def to_dict(self) -> dict:
        """JSON-able form (paths as strings)."""
        out = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, Path):
                value = str(value)
            elif f.name == "checkpoints":
                value = [str(p) for p in value]
            elif f.name in ("args",):
                value = list(value)
            elif f.name == "task_args":
                value = [list(t) for t in value]
            out[f.name] = value
        return out

    @classmethod
    def from_dict(cls, data: dict) -> JobSpec:
        """The spec :meth:`to_dict` wrote."""
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})


def default_folder(out: str | os.PathLike) -> Path:
    """The job folder beside an output: ``models/m.keras`` → ``models/m.job``."""
    out = Path(os.path.abspath(out))
    stem = out.name[: -len(".keras")] if out.name.endswith(".keras") else out.name
    return out.with_name(f"{stem}.job")


def training_spec(
    dataset: str | os.PathLike,
    out: str | os.PathLike,
    *,
    epochs: int | None = None,
    size: str | None = None,
    preset: str | None = None,
    batch_size: int | None = None,
    resume: str | os.PathLike | None = None,
    extra_args: tuple[str, ...] | list[str] = (),
    folder: str | os.PathLike | None = None,
    cwd: str | os.PathLike | None = None,
    python: str | None = None,
    debug: bool = False,
) -> JobSpec:
    """A ``spine-seg train`` job.

    Parameters
    ----------
    dataset, out : path-like
        The dataset and the model file (``.keras``), as ``spine-seg train`` takes them.
    epochs, size, preset, batch_size, resume
        ``--epochs``, ``--size`` (``"HxW"``), ``--preset``, ``--batch-size`` and
        ``--resume``; the command's defaults when None.
    extra_args : sequence of str
        More ``spine-seg train`` arguments, passed as they are.
    folder : path-like, optional
        The job folder; default beside `out` (``m.keras`` → ``m.job``).
    cwd : path-like, optional
        Working directory of the job; default this process's.
    python : str, optional
        The Python to run; default this one.
    debug : bool
        Tracebacks in the log.

    Returns
    -------
    JobSpec
    """
    from ..model.defaults import TRAIN_DEFAULTS
    from ..model.train import checkpoint_paths

    cwd = Path(cwd or os.getcwd())
    args = ["--out", os.fspath(out)]
    if epochs is not None:
        args += ["--epochs", str(int(epochs))]
    if size is not None:
        args += ["--size", str(size)]
    if preset is not None:
        args += ["--preset", str(preset)]
    if batch_size is not None:
        args += ["--batch-size", str(int(batch_size))]
    if resume is not None:
        args += ["--resume", os.fspath(resume)]
    args = join_args([os.fspath(dataset)], args + [str(a) for a in extra_args])
    out_abs = cwd / out
    best, last, history = checkpoint_paths(out_abs)
    return JobSpec(
        command="train",
        args=tuple(args),
        folder=Path(folder) if folder is not None else default_folder(out_abs),
        cwd=cwd,
        python=python or sys.executable,
        out=best,
        epochs=int(epochs) if epochs is not None else int(TRAIN_DEFAULTS["epochs"]),
        history=history,
        checkpoints=(last, best),
        debug=debug,
    )


def with_folder(spec: JobSpec, folder: str | os.PathLike) -> JobSpec:
    """`spec` with another job folder."""
    return replace(spec, folder=Path(folder))
