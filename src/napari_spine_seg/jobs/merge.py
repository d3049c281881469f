"""Merge the parts of an array prediction into its output folder.

Each array task writes into ``JOB/parts/<task>/`` and, when it succeeds, marks itself
done. The task that finds every part done (an exclusive lock file decides, should two
finish together) moves the files into the output folder; CSV files that several parts
wrote under the same name are concatenated, header once.

The job's entry point (:mod:`.run`) calls :func:`finish_task` when a task succeeds.
"""

from __future__ import annotations

import csv
import io
import os
import shutil
from pathlib import Path

from ..atomic import check_writable_folder, write_text_atomic
from ..errors import SpineSegError
from .spec import JobSpec

MERGED = "merged"


def _done_marker(spec: JobSpec, task: int) -> Path:
    return spec.folder / "parts" / f"{task}.done"


def finish_task(spec: JobSpec, task: int) -> bool:
    """Mark array task `task` done; merge every part when it was the last one.

    Returns
    -------
    bool
        True when this call merged the parts.
    """
    write_text_atomic(_done_marker(spec, task), "done\n")
    if not all(_done_marker(spec, t).exists() for t in range(spec.n_tasks)):
        return False
    lock = spec.folder / "parts" / "merge.lock"
    try:
        fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
    except FileExistsError:
        return False  # another task is merging
    os.close(fd)
    merge_parts(spec)
    return True


def merge_parts(spec: JobSpec) -> Path:
    """Move every part's files into ``spec.out`` (CSV files of the same name concatenated).

    Raises
    ------
    SpineSegError
        When the output folder cannot be written, or two parts wrote the same
        non-CSV file.
    """
    if spec.out is None:
        raise SpineSegError(spec.folder, "has no output folder to merge into")
    out = check_writable_folder(spec.out)
    csv_parts: dict[Path, list[Path]] = {}
    moves: dict[Path, Path] = {}
    for task in range(spec.n_tasks):
        part = spec.part(task)
        for path in sorted(p for p in part.rglob("*") if p.is_file()):
            rel = path.relative_to(part)
            if path.suffix.lower() == ".csv":
                csv_parts.setdefault(rel, []).append(path)
            elif rel in moves:
                raise SpineSegError(path, f"was written by two array tasks ({moves[rel]})")
            else:
                moves[rel] = path
    for rel, path in moves.items():
        target = out / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(os.fspath(path), os.fspath(target))
    for rel, paths in csv_parts.items():
        write_text_atomic(out / rel, _concat_csv(paths))
    write_text_atomic(spec.folder / "parts" / MERGED, f"{out}\n")
    return out


def _concat_csv(paths: list[Path]) -> str:
    header: list[str] | None = None
    rows: list[list[str]] = []
    for path in paths:
        reader = csv.reader(io.StringIO(path.read_text(encoding="utf-8")))
        first = next(reader, None)
        if first is None:
            continue
        if header is None:
            header = first
        elif first != header:
            raise SpineSegError(path, f"has other columns than {paths[0]}; cannot merge")
        rows.extend(reader)
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    if header is not None:
        writer.writerow(header)
    writer.writerows(rows)
    return buf.getvalue()
