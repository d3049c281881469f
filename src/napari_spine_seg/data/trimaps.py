"""Trimap PNGs for a whole data set, drawn from its landmarks.

One single-channel 8-bit PNG per image (1 spine, 2 background, 3 border), at the
image's size and named after it (:func:`~napari_spine_seg.data.masks.trimap_name`).
A data set with several splits gets one subfolder per split. Used by
``spine-seg trimaps`` and by anything else that needs the trimaps on disk.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

from ..atomic import check_writable_folder
from ..data.dataset import Dataset, open_dataset
from ..data.masks import trimap_name, write_trimap_png
from ..errors import SpineSegError
from ..outputs import check_output
from ..parallel import map_in_processes
from ..trimap import trimap_from_landmarks


def _own_folders(dataset) -> set[Path]:
    """Folders holding the data set's own files (images, landmark files, trimaps).

    Trimaps written there could replace labels, or be taken for images next time.
    """
    folders = {
        Path(p).resolve().parent
        for s in dataset.samples
        for p in (s.image_path, s.landmarks_path, s.trimap_path)
        if p is not None
    }
    if dataset.kind == "aasce":
        folders.update((Path(dataset.root) / sub).resolve() for sub in ("data", "labels"))
    if dataset.kind == "pets":
        folders.add((Path(dataset.root) / "annotations").resolve())
    return folders


def plan_trimaps(dataset, out: str | os.PathLike) -> list[tuple[object, Path]]:
    """Pair every sample of `dataset` with the trimap PNG it gets under `out`.

    Parameters
    ----------
    dataset : napari_spine_seg.data.dataset.Dataset
    out : path-like
        Output folder; with several splits, ``out/<split>/<name>.png``, else ``out/<name>.png``.

    Returns
    -------
    list of (Sample, pathlib.Path)

    Raises
    ------
    SpineSegError
        When `out` lies inside the data set's image or label folders, a sample has no
        landmarks, or an output would replace one of the data set's own files.
    """
    out = Path(out)
    resolved = out.resolve()
    for folder in sorted(_own_folders(dataset)):
        if resolved.is_relative_to(folder):
            raise SpineSegError(
                out, f"is inside the data set's own folder {folder}; write the trimaps elsewhere"
            )
    own = {
        Path(p).resolve()
        for s in dataset.samples
        for p in (s.image_path, s.landmarks_path, s.trimap_path)
        if p is not None
    }
    by_split = len(dataset.splits) > 1
    plan = []
    for sample in dataset.samples:
        if sample.landmarks_path is None:
            raise SpineSegError(sample.image_path, "has no landmarks to draw a trimap from")
        folder = out / sample.split if by_split and sample.split else out
        target = folder / trimap_name(sample.name)
        if target.resolve() in own:
            raise SpineSegError(target, "is a file of the data set itself; not overwritten")
        plan.append((sample, target))
    return plan


def check_border(border: int, dataset) -> int:
    """Return `border` when it fits every image: 1 pixel or more, at most a quarter of
    the narrowest image's width (a wider band would cover the whole spine and more).

    Raises
    ------
    SpineSegError
        Naming the narrowest image when `border` is too wide, or when under 1.
    """
    if border < 1:
        raise SpineSegError(None, f"the border must be 1 or more pixels, not {border}")
    if not len(dataset):
        return border
    narrowest = min(dataset.samples, key=lambda s: s.image_shape()[1])
    width = narrowest.image_shape()[1]
    if border > width / 4:
        raise SpineSegError(
            narrowest.image_path,
            f"is {width} pixels wide; a border of {border} pixels is more than a quarter of "
            f"it (at most {width // 4} here)",
        )
    return border


def _draw_one(job: tuple[object, Path, int | None]) -> Path:
    """Draw and write the trimap of one sample (runs in a worker process)."""
    sample, target, border = job
    landmarks = sample.load_landmarks()
    trimap = trimap_from_landmarks(landmarks, sample.image_shape(), border)
    return write_trimap_png(target, trimap)


def write_trimaps(
    dataset,
    out: str | os.PathLike,
    *,
    border: int | None = None,
    jobs: int = 2,
    progress: Callable[..., Iterator] | None = None,
) -> list[Path]:
    """Write a trimap PNG from the landmarks of every sample of `dataset`.

    Parameters
    ----------
    dataset : napari_spine_seg.data.dataset.Dataset or path-like
        The data set, or a folder :func:`~napari_spine_seg.data.dataset.open_dataset` opens.
    out : path-like
        Output folder (see :func:`plan_trimaps` for the layout); checked for writing first.
    border : int, optional
        Border band half-width in pixels, 1 to a quarter of the narrowest image's width;
        default
        :func:`~napari_spine_seg.trimap.default_border` of each image's width.
    jobs : int
        Worker processes (1: in this process).
    progress : callable, optional
        Wraps the iteration over finished images, like
        :func:`napari_spine_seg.cli._progress.progress`.

    Returns
    -------
    list of pathlib.Path
        The trimap files, in the data set's order.

    Raises
    ------
    SpineSegError
        Before anything is written: for a bad data set, a border under 1 pixel or over a
        quarter of the narrowest image's width, or an output folder that cannot be
        written, lies inside the data set (:func:`~napari_spine_seg.outputs.check_output`).
        While writing: a bad landmark file, or a failed write (a full disk), naming the file.
    """
    if border is not None and border < 1:
        raise SpineSegError(None, f"the border must be 1 or more pixels, not {border}")
    if jobs < 1:
        raise SpineSegError(None, f"jobs must be 1 or more, not {jobs}")
    given = [] if isinstance(dataset, Dataset) else [dataset]
    if given:
        check_output(out, given, folder=True)
        dataset = open_dataset(dataset)
    plan = plan_trimaps(dataset, out)
    check_output(out, [dataset.root], folder=True)
    if border is not None:
        check_border(border, dataset)
    check_writable_folder(out)
    for folder in sorted({target.parent for _, target in plan}):
        check_writable_folder(folder)
    work = [(sample, target, border) for sample, target in plan]

    iterator = map_in_processes(
        _draw_one,
        work,
        jobs=1 if len(work) < 8 else jobs,
        preload=[__name__, "napari_spine_seg.data.dataset"],
    )
    if progress is not None:
        iterator = progress(iterator, total=len(work), desc="trimaps", unit="image")
    return list(iterator)
