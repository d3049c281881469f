"""What a job runs: one config (training, prediction or retraining), its folder and files.

A :class:`JobSpec` is the same whether the job runs in this process, in a local
subprocess or on slurm: it holds the job's config as JSON, every path in it absolute,
and one entry point runs it everywhere (``python -m napari_spine_seg.jobs.run FOLDER``,
see :mod:`.run`), so a job folder's script can be read and run again by hand.
"""

from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass, field, fields, replace
from pathlib import Path

from ..atomic import write_text_atomic
from ..errors import SpineSegError
from ..model.config import TrainConfig
from ..model.files import read_metadata
from ..model.predict import collect_inputs
from ..model.predict_config import PredictConfig
from ..model.train import checkpoint_paths
from .options import check_argument

#: the kinds of job, each run by :mod:`.run` from its config
KINDS = ("train", "predict", "retrain")
#: the spec's own file in the job folder, written before the job starts
SPEC_NAME = "spec.json"


def trained_epochs(path: Path) -> int | None:
    """Epochs a model or checkpoint file has trained (None when unreadable)."""
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
    """One job (or an array of them): its config, and where its files go.

    Attributes
    ----------
    kind : {"train", "predict", "retrain"}
        What runs: :func:`~napari_spine_seg.model.train.train`, a prediction over files,
        or :func:`~napari_spine_seg.review.retrain.retrain`.
    config : dict
        The job's config as JSON values (``TrainConfig.to_dict()`` ...), paths absolute.
    folder : Path
        The job folder: ``job.sbatch``, ``spec.json``, ``job.json``, ``logs/`` (and ``parts/``).
    cwd : Path
        Working directory of the job (nothing in it depends on it: paths are absolute).
    python : str
        The Python that runs the job (the one submitting, by default).
    out : Path or None
        The model file (training) or output folder (prediction).
    epochs : int or None
        Epochs asked for, to report progress.
    history : Path or None
        The training history CSV (one row per epoch).
    checkpoints : tuple of Path
        Files a re-run of the training continues from; the most trained one is used.
    tasks : tuple of dict
        For an array job, each task's config; empty for a single job.
    debug : bool
        Tracebacks in the log.
    """

    kind: str
    config: dict
    folder: Path
    cwd: Path = field(default_factory=Path.cwd)
    python: str = field(default_factory=lambda: sys.executable)
    out: Path | None = None
    epochs: int | None = None
    history: Path | None = None
    checkpoints: tuple[Path, ...] = ()
    tasks: tuple[dict, ...] = ()
    debug: bool = False

    def __post_init__(self):
        if self.kind not in KINDS:
            raise SpineSegError(None, f"unknown kind of job {self.kind!r}")
        check_argument(self.python)
        for name in ("folder", "cwd", "out", "history"):
            value = getattr(self, name)
            if value is not None:
                object.__setattr__(self, name, Path(os.path.abspath(value)))
        check_argument(str(self.folder))
        check_argument(str(self.cwd))
        object.__setattr__(self, "config", dict(self.config))
        object.__setattr__(self, "checkpoints", tuple(Path(p) for p in self.checkpoints))
        object.__setattr__(self, "tasks", tuple(dict(t) for t in self.tasks))

    @property
    def n_tasks(self) -> int:
        """1 for a single job, else the number of array tasks."""
        return max(1, len(self.tasks))

    @property
    def logs(self) -> Path:
        """Where the job's logs (and submitit's files) go."""
        return self.folder / "logs"

    @property
    def script(self) -> Path:
        """The plain sbatch script of the job."""
        return self.folder / "job.sbatch"

    @property
    def spec_file(self) -> Path:
        """The spec's own JSON file, which the job's entry point reads."""
        return self.folder / SPEC_NAME

    def part(self, task: int) -> Path:
        """Output folder of array task `task` (merged into `out` at the end)."""
        return self.folder / "parts" / str(task)

    def task_config(self, task: int | None = None) -> dict:
        """The config of array task `task` (the job's own config for a single job)."""
        if task is None or not self.tasks:
            return self.config
        if not 0 <= task < len(self.tasks):
            raise SpineSegError(self.folder, f"has no array task {task}")
        return self.tasks[task]

    def run_command(self, task: int | None = None) -> list[str]:
        """The command that runs this job (array task `task`): its entry point."""
        return [
            self.python,
            "-m",
            "napari_spine_seg.jobs.run",
            str(self.spec_file),
            *([] if task is None else [str(task)]),
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
            elif f.name == "tasks":
                value = [dict(t) for t in value]
            out[f.name] = value
        return out

    @classmethod
    def from_dict(cls, data: dict) -> JobSpec:
        """The spec :meth:`to_dict` wrote (a record of an older version: its kind alone)."""
        known = {f.name for f in fields(cls)}
        data = dict(data)
        if "kind" not in data and "command" in data:  # written before configs: list it only
            data.setdefault("config", {})
            data["kind"] = data["command"]
        return cls(**{k: v for k, v in data.items() if k in known})

    def write(self) -> Path:
        """Write :attr:`spec_file` (before the job starts); return it."""
        return write_text_atomic(self.spec_file, json.dumps(self.to_dict(), indent=2) + "\n")


def read_spec(path: str | os.PathLike) -> JobSpec:
    """The spec of a job folder, of its ``spec.json`` or of its ``job.json`` record.

    Raises
    ------
    SpineSegError
        When there is no such file or it is not a job's JSON.
    """
    path = Path(path)
    if path.is_dir():
        path = path / SPEC_NAME
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        if isinstance(data, dict) and isinstance(data.get("spec"), dict):
            data = data["spec"]  # a job.json record
        return JobSpec.from_dict(data)
    except FileNotFoundError:
        raise SpineSegError(path, "does not exist (a job folder or its spec.json)") from None
    except (OSError, ValueError, TypeError, KeyError, AttributeError) as exc:
        raise SpineSegError(path, f"is not a readable job spec ({exc})") from None


def default_folder(out: str | os.PathLike) -> Path:
    """The job folder beside an output: ``models/m.keras`` → ``models/m.job``."""
    out = Path(os.path.abspath(out))
    stem = out.name[: -len(".keras")] if out.name.endswith(".keras") else out.name
    return out.with_name(f"{stem}.job")


def _absolute(path):
    return None if path is None else Path(os.path.abspath(path))


def absolute_train_config(config: TrainConfig) -> TrainConfig:
    """`config` with every path absolute (a job may run in another folder)."""
    if not isinstance(config.dataset, Path):
        raise SpineSegError(None, "a training job needs a dataset path, not an open dataset")
    cache = config.cache
    return replace(
        config,
        dataset=_absolute(config.dataset),
        out=_absolute(config.out),
        resume=_absolute(config.resume),
        init_from=_absolute(config.init_from),
        cache=cache if cache is None or cache == "auto" else _absolute(cache),
    )


def training_spec(
    config: TrainConfig,
    *,
    folder: str | os.PathLike | None = None,
    python: str | None = None,
    debug: bool = False,
) -> JobSpec:
    """The job that runs :func:`~napari_spine_seg.model.train.train` with `config`.

    Parameters
    ----------
    config : TrainConfig
        Checked already; its paths are made absolute here.
    folder : path-like, optional
        The job folder; default beside the model (``m.keras`` → ``m.job``).
    python : str, optional
        The Python to run; default this one.
    debug : bool
        Tracebacks in the log.

    Returns
    -------
    JobSpec
    """
    config = absolute_train_config(config)
    return model_job_spec("train", config, folder=folder, python=python, debug=debug)


def model_job_spec(
    kind: str,
    config,
    *,
    own_best: bool = True,
    folder: str | os.PathLike | None = None,
    python: str | None = None,
    debug: bool = False,
) -> JobSpec:
    """The spec of a job that trains a model into ``config.out`` for ``config.epochs``.

    Its progress is the history beside the model; a re-run continues from the most
    trained of its checkpoints: the last one, and the best model too when `own_best`
    (a retraining lists only its own last checkpoint, never the model it starts from).
    """
    best, last, history = checkpoint_paths(config.out)
    return JobSpec(
        kind=kind,
        config=config.to_dict(),
        folder=Path(folder) if folder is not None else default_folder(config.out),
        python=python or sys.executable,
        out=best,
        epochs=int(config.epochs),
        history=history,
        checkpoints=(last, best) if own_best else (last,),
        debug=debug,
    )


def _absolute_predict_config(config: PredictConfig) -> PredictConfig:
    return replace(
        config,
        model=_absolute(config.model),
        inputs=tuple(_absolute(p) for p in config.inputs),
        out=_absolute(config.out),
    )


def prediction_spec(
    config: PredictConfig,
    *,
    array: int = 1,
    folder: str | os.PathLike | None = None,
    python: str | None = None,
    debug: bool = False,
) -> JobSpec:
    """The job that predicts with `config`, split over `array` tasks.

    With ``array > 1`` the images of the inputs are split into that many parts (fewer
    when there are fewer images); each task's config names its images and its part
    folder, and the last task to finish merges the parts into ``config.out``.

    Raises
    ------
    SpineSegError
        For `array` under 1, or inputs holding no image (when split).
    """
    if int(array) < 1:
        raise SpineSegError(None, f"--array must be at least 1, got {array}")
    config = _absolute_predict_config(config)
    folder = Path(folder) if folder is not None else default_folder(config.out)
    spec = JobSpec(
        kind="predict",
        config=config.to_dict(),
        folder=folder,
        python=python or sys.executable,
        out=config.out,
        debug=debug,
    )
    if int(array) == 1:
        return spec
    files = collect_inputs(config.inputs)
    k = min(int(array), len(files))
    chunks = [files[len(files) * t // k : len(files) * (t + 1) // k] for t in range(k)]
    tasks = [
        replace(config, inputs=tuple(chunk), out=spec.part(t)).to_dict()
        for t, chunk in enumerate(chunks)
    ]
    return replace(spec, tasks=tuple(tasks))
