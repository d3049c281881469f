"""npe2 writers: a Labels layer → trimap PNG(s) (1 spine, 2 background, 3 border), or a
vertebra map PNG; a landmarks Points layer → AASCE ``.mat`` file(s).

Label 0 (napari's eraser) is written as 2. The PNG has the image's size: a layer that
this plugin's readers made from a padded stack, or from one image, carries each
image's true shape in ``layer.metadata["spine_seg"]``, and the padding is cropped.

- A 2-D layer is written to `path` (one PNG).
- A 3-D layer (a data set stack) is written as one PNG per slice into the folder
  `path` without its ``.png`` suffix, each named after its image
  (:func:`~napari_spine_seg.data.masks.trimap_name`), or ``slice-0000.png`` … when the
  layer does not know its images' names.

A data set is only read: a layer's own files (``path``, ``paths``, ``landmarks_path``,
``trimap_path`` in its metadata) are never written over, and a layer opened from a
data set (a stack, an X-ray with its labels, the review queue's image) is never
saved inside that data set (its root, ``data/``, ``labels/``, ``trimaps/``, the images'
folders): refused with one line before anything is written. A lone file lying in a
data set's tree protects that data set too.

Files are written atomically (:func:`~napari_spine_seg.data.masks.write_trimap_png`).
A layer holding a network's prediction (``metadata["spine_seg"]["predicted"]``, set by
the Predict and Review widgets, and by the reader for a trimap PNG that has the mark)
is written with the prediction's mark, so that its Cobb angles are measured as a
network's outline wherever the file goes: export → File > Open → File > Save keeps it.

A ``<image> vertebrae`` Labels layer (the Predict widget's, ``role: vertebrae`` in its
metadata) is written as a PNG of its instance numbers (0 background, 1 = T1 … 17 = L5;
:func:`~napari_spine_seg.data.masks.write_vertebrae_png`), not as a trimap. A
``<image> landmarks`` Points layer is written as the data set's landmark file, ``p2``
68 × 2 ``(x, y)`` in the layer's point order
(:func:`~napari_spine_seg.data.aasce.write_landmarks_mat`, as ``spine-seg predict``
writes them); a stack's as one ``<image name>.mat`` per image that has 68 points, in
the folder `path` without ``.mat``. The same protection holds for both.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from ..data.aasce import write_landmarks_mat
from ..data.masks import trimap_name, write_trimap_png, write_vertebrae_png
from ..errors import SpineSegError
from ..model.predict import landmarks_name  # the name spine-seg predict gives
from ..review.protect import check_outside, enclosing_dataset_root
from ..trimap import N_LANDMARKS, rowcol_to_xy
from ._layers import METADATA_KEY

#: the metadata entries naming a layer's input files
_FILE_KEYS = ("path", "landmarks_path", "trimap_path")


def _crop(arr: np.ndarray, shape) -> np.ndarray:
    if shape is None:
        return arr
    rows, cols = int(shape[0]), int(shape[1])
    return arr[:rows, :cols]


def _inputs(info: dict) -> tuple[list[Path], list[Path]]:
    """The input files a layer was made from, and the data set folders it must not touch."""
    files = [info.get(key) for key in _FILE_KEYS] + list(info.get("paths") or [])
    files = [Path(os.fspath(f)) for f in files if f]
    source = info.get("source")
    from_dataset = bool(
        source or info.get("landmarks_path") or info.get("trimap_path") or info.get("review")
    )
    folders = []
    if source:
        folders.append(enclosing_dataset_root(source) or Path(source))
    for file in files:
        root = enclosing_dataset_root(file)
        if root is not None:
            folders.append(root)
        if from_dataset:
            folders.append(file.parent)
    return files, list(dict.fromkeys(folders))


def _check_targets(targets: list[Path], info: dict, what: str = "trimap") -> None:
    """Refuse any target that is one of the layer's input files or lies in its data set."""
    files, folders = _inputs(info)
    inputs = {Path(os.path.abspath(file)).resolve() for file in files}
    for target in targets:
        if Path(os.path.abspath(target)).resolve() in inputs:
            raise SpineSegError(
                target, f"is a file this layer was opened from; save the {what} elsewhere"
            )
        check_outside(target, folders, f"place to save the {what}")


def write_trimap(path: str, data: Any, meta: dict) -> list[str]:
    """Write a Labels layer's data as trimap PNG(s); return the paths written.

    Parameters
    ----------
    path : str
        Output ``.png`` file (a 2-D layer) or the folder name plus ``.png`` (a 3-D stack).
    data : array_like
        The layer's data (numpy or dask), 2-D or 3-D, values 0–3.
    meta : dict
        The layer's attributes; ``meta["metadata"]["spine_seg"]`` may hold
        ``image_shape`` (2-D) or ``names`` and ``shapes`` (3-D), and ``predicted``.

    Returns
    -------
    list of str

    Raises
    ------
    SpineSegError
        When the data is not 2-D or 3-D or holds values other than 0–3, when `path`
        is one of the layer's input files or lies inside its data set, or when the
        file cannot be written.
    """
    info = (meta.get("metadata") or {}).get(METADATA_KEY) or {}
    if info.get("role") == "vertebrae":
        what, write = "vertebra map", write_vertebrae_png
    else:
        predicted = bool(info.get("predicted"))
        what = "trimap"

        def write(target, arr):
            return write_trimap_png(target, arr, predicted=predicted)

    ndim = len(np.shape(data))
    if ndim == 2:
        _check_targets([Path(path)], info, what)
        arr = _crop(np.asarray(data), info.get("image_shape"))
        return [os.fspath(write(path, arr))]
    if ndim != 3:
        raise SpineSegError(
            path, f"a {what} layer must be 2-D or a 3-D stack, this one is {ndim}-D"
        )
    folder = _stack_folder(path, ".png")
    names = info.get("names") or []
    shapes = info.get("shapes") or []
    targets = [
        folder / (trimap_name(names[i]) if i < len(names) else f"slice-{i:04d}.png")
        for i in range(np.shape(data)[0])
    ]
    _check_targets([folder, *targets], info, what)
    written = []
    for i, target in enumerate(targets):
        arr = _crop(np.asarray(data[i]), shapes[i] if i < len(shapes) else None)
        written.append(os.fspath(write(target, arr)))
    return written


def _stack_folder(path: str, suffix: str) -> Path:
    """The folder a stack's files go to: `path` without `suffix`."""
    folder = Path(path)
    return folder.with_suffix("") if folder.suffix.lower() == suffix else folder


def write_landmarks(path: str, data: Any, meta: dict) -> list[str]:
    """Write a landmarks Points layer as AASCE landmark file(s); return the paths written.

    Parameters
    ----------
    path : str
        Output ``.mat`` file (one image's 68 points) or, for a stack's points
        ``(slice, row, col)``, the folder name plus ``.mat``: one ``<image name>.mat``
        per slice that has 68 points (``slice-0000.mat`` … without the images' names).
    data : (N, 2) or (N, 3) array_like
        The points, ``(row, col)`` in image pixels (a stack's with the slice first).
    meta : dict
        The layer's attributes (``name``, ``metadata``).

    Returns
    -------
    list of str

    Raises
    ------
    SpineSegError
        When the layer does not hold 68 points (per image of a stack), `path` is one
        of its input files or lies inside its data set, or a file cannot be written.
    """
    info = (meta.get("metadata") or {}).get(METADATA_KEY) or {}
    points = np.asarray(data, dtype=np.float64).reshape(-1, np.shape(data)[-1])
    name = meta.get("name") or "landmarks"
    if points.shape[1] == 2:
        sets, targets = [points], [Path(path)]
    elif points.shape[1] == 3:
        slices = np.round(points[:, 0]).astype(int)
        kept = [i for i in np.unique(slices) if np.count_nonzero(slices == i) == N_LANDMARKS]
        if not kept:
            raise SpineSegError(path, f"layer {name!r} has no image with {N_LANDMARKS} points")
        names = info.get("names") or []
        folder = _stack_folder(path, ".mat")
        sets = [points[slices == i][:, 1:] for i in kept]
        targets = [
            folder / (landmarks_name(names[i]) if i < len(names) else f"slice-{i:04d}.mat")
            for i in kept
        ]
        _check_targets([folder], info, "landmarks")
    else:
        raise SpineSegError(path, f"layer {name!r} is not 2-D or a 3-D stack of points")
    if len(sets[0]) != N_LANDMARKS:
        raise SpineSegError(
            path,
            f"layer {name!r} has {len(sets[0])} points; a landmark file holds {N_LANDMARKS} "
            "(17 vertebrae x 4 corners)",
        )
    _check_targets(targets, info, "landmarks")
    return [
        os.fspath(write_landmarks_mat(target, rowcol_to_xy(rowcol)))
        for target, rowcol in zip(targets, sets, strict=True)
    ]
