"""The jobs index on disk, so that jobs outlive the napari window or shell that started them.

One JSON file per job in :func:`registry_dir` (``$SPINE_SEG_JOBS_DIR``, else
``$XDG_DATA_HOME/napari-spine-seg/jobs``, else ``~/.local/share/napari-spine-seg/jobs``),
written atomically, so that the command line and a widget can both add jobs at once.
Each job folder also holds its own record as ``job.json``.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path

from ..atomic import make_folder, write_text_atomic
from ..errors import SpineSegError
from .options import SlurmOptions
from .spec import JobSpec

_JOB_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,99}")
RECORD_NAME = "job.json"


def registry_dir() -> Path:
    """The folder of the jobs index (not created here)."""
    env = os.environ.get("SPINE_SEG_JOBS_DIR")
    if env:
        return Path(env)
    base = os.environ.get("XDG_DATA_HOME") or os.path.join(
        os.path.expanduser("~"), ".local", "share"
    )
    return Path(base) / "napari-spine-seg" / "jobs"


def check_job_id(job_id: object) -> str:
    """Return `job_id` as text when it is a plausible job id, else raise SpineSegError."""
    text = str(job_id).strip()
    if not _JOB_ID.fullmatch(text):
        raise SpineSegError(None, f"{job_id!r} is not a job id")
    return text


@dataclass(frozen=True)
class JobRecord:
    """One submitted job.

    Attributes
    ----------
    job_id : str
        Slurm's job id (an array's main id), or ``local-…`` for a local job.
    backend : str
        ``"slurm"``, ``"local"`` or ``"process"``.
    spec : JobSpec
        What runs.
    options : SlurmOptions or None
        Slurm options (slurm jobs).
    created : str
        ISO time of submission (UTC).
    pid : int or None
        The local job's process id (local jobs).
    last_state : str or None
        The last final state slurm reported, kept for when slurm has forgotten the job.
    typed : tuple of str
        The command line as the user typed it, for the record.
    """

    job_id: str
    backend: str
    spec: JobSpec
    options: SlurmOptions | None = None
    created: str = field(
        default_factory=lambda: datetime.now(timezone.utc).isoformat(timespec="seconds")
    )
    pid: int | None = None
    last_state: str | None = None
    typed: tuple[str, ...] = ()

    def to_dict(self) -> dict:
        """JSON-able form."""
        return {
            "job_id": self.job_id,
            "backend": self.backend,
            "spec": self.spec.to_dict(),
            "options": None if self.options is None else self.options.to_dict(),
            "created": self.created,
            "pid": self.pid,
            "last_state": self.last_state,
            "typed": list(self.typed),
        }

    @classmethod
    def from_dict(cls, data: dict) -> JobRecord:
        """The record :meth:`to_dict` wrote."""
        options = data.get("options")
        return cls(
            job_id=str(data["job_id"]),
            backend=str(data["backend"]),
            spec=JobSpec.from_dict(data["spec"]),
            options=None if options is None else SlurmOptions.from_dict(options),
            created=str(data.get("created", "")),
            pid=data.get("pid"),
            last_state=data.get("last_state"),
            typed=tuple(data.get("typed", ())),
        )


def _text(record: JobRecord) -> str:
    return json.dumps(record.to_dict(), indent=2) + "\n"


def save(record: JobRecord) -> JobRecord:
    """Write `record` into the index and into its job folder; return it."""
    check_job_id(record.job_id)
    folder = make_folder(registry_dir(), "the jobs index")
    text = _text(record)
    write_text_atomic(folder / f"{record.job_id}.json", text)
    write_text_atomic(record.spec.folder / RECORD_NAME, text)
    return record


def _read(path: Path) -> JobRecord:
    try:
        return JobRecord.from_dict(json.loads(path.read_text(encoding="utf-8")))
    except FileNotFoundError:
        raise
    except (OSError, ValueError, KeyError, TypeError, SpineSegError) as exc:
        raise SpineSegError(path, f"is not a readable job record ({exc})") from exc


def load(job_id_or_folder: str | os.PathLike) -> JobRecord:
    """The record of a job id from the index, or of a job folder (its ``job.json``).

    Raises
    ------
    SpineSegError
        When the index has no such job and it is not a job folder.
    """
    text = os.fspath(job_id_or_folder)
    candidate = Path(text)
    if candidate.is_dir() and (candidate / RECORD_NAME).is_file():
        return _read(candidate / RECORD_NAME)
    job_id = check_job_id(text)
    try:
        return _read(registry_dir() / f"{job_id}.json")
    except FileNotFoundError:
        raise SpineSegError(
            None, f"no job {job_id} in the jobs index {registry_dir()} (see `spine-seg jobs`)"
        ) from None


def all_records() -> list[JobRecord]:
    """Every job in the index, oldest first; unreadable entries are left out."""
    folder = registry_dir()
    records = []
    for path in sorted(folder.glob("*.json")) if folder.is_dir() else []:
        try:
            records.append(_read(path))
        except (SpineSegError, FileNotFoundError):
            continue
    return sorted(records, key=lambda r: (r.created, r.job_id))


def remember_state(record: JobRecord, state: str) -> JobRecord:
    """Keep a final state slurm reported in the index (and job folder) and return the record."""
    if record.last_state == state:
        return record
    return save(replace(record, last_state=state))


def forget(job_id: str) -> None:
    """Remove a job from the index (its folder stays)."""
    path = registry_dir() / f"{check_job_id(job_id)}.json"
    try:
        path.unlink()
    except FileNotFoundError:
        pass
