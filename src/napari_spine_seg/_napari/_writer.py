"""npe2 writer: a Labels layer → trimap PNG(s) (1 spine, 2 background, 3 border).

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
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from ..data.masks import trimap_name, write_trimap_png
from ..errors import SpineSegError
from ..review.protect import check_outside, enclosing_dataset_root
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


def _check_targets(targets: list[Path], info: dict) -> None:
    """Refuse any target that is one of the layer's input files or lies in its data set."""
    files, folders = _inputs(info)
    inputs = {Path(os.path.abspath(file)).resolve() for file in files}
    for target in targets:
        if Path(os.path.abspath(target)).resolve() in inputs:
            raise SpineSegError(
                target, "is a file this layer was opened from; save the trimap elsewhere"
            )
        check_outside(target, folders, "place to save the trimap")


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
    predicted = bool(info.get("predicted"))
    ndim = len(np.shape(data))
    if ndim == 2:
        _check_targets([Path(path)], info)
        arr = _crop(np.asarray(data), info.get("image_shape"))
        return [os.fspath(write_trimap_png(path, arr, predicted=predicted))]
    if ndim != 3:
        raise SpineSegError(
            path, f"a trimap layer must be 2-D or a 3-D stack, this one is {ndim}-D"
        )
    folder = Path(path)
    if folder.suffix.lower() == ".png":
        folder = folder.with_suffix("")
    names = info.get("names") or []
    shapes = info.get("shapes") or []
    targets = [
        folder / (trimap_name(names[i]) if i < len(names) else f"slice-{i:04d}.png")
        for i in range(np.shape(data)[0])
    ]
    _check_targets([folder, *targets], info)
    written = []
    for i, target in enumerate(targets):
        arr = _crop(np.asarray(data[i]), shapes[i] if i < len(shapes) else None)
        written.append(os.fspath(write_trimap_png(target, arr, predicted=predicted)))
    return written
