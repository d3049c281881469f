"""How many vertebrae a prediction found, per image, and a fault where it is not 17.

``spine-seg predict`` with a model that finds vertebrae writes :data:`VERTEBRAE_FILE`
beside its trimaps: each image file name → ``{"found": N, "faults": [...]}``.
``spine-seg evaluate`` reports the counts; the gap inspector (``spine-seg gaps`` and the
Gap inspector widget) lists an image whose count is not 17 as a ``"vertebrae"`` gap
(:func:`count_gap`), placed on the largest body when the bodies are at hand (two merged
make the tallest), else on the column's middle.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping
from pathlib import Path

import numpy as np
from scipy import ndimage

from ..atomic import write_text_atomic
from ..errors import SpineSegError
from ..trimap import N_VERTEBRAE, SPINE
from .gaps import Gap
from .image_json import read_image_entries

#: the per-image vertebra counts of a prediction folder
VERTEBRAE_FILE = "vertebrae.json"


def read_vertebra_counts(path: str | os.PathLike) -> dict[str, dict]:
    """The entries of a :data:`VERTEBRAE_FILE`: image name → ``{"found", "faults"}``.

    A missing file is no entries.

    Raises
    ------
    SpineSegError
        When the file is not one this package wrote.
    """
    return read_image_entries(
        path,
        lambda e: {"found": int(e["found"]), "faults": [str(f) for f in e["faults"]]},
        "vertebra counts",
    )


def update_vertebra_counts(
    path: str | os.PathLike, entries: Mapping[str, dict], drop: Iterable[str] = ()
) -> None:
    """Write `entries` into the file at `path` (atomically), keeping its other images'.

    Images named in `drop` lose their entry (predicted again by a model without
    vertebrae); a file left with no entry is removed. An unreadable old file is replaced.
    """
    path = Path(path)
    try:
        kept = read_vertebra_counts(path)
    except SpineSegError:
        kept = {}
    for name in drop:
        kept.pop(name, None)
    kept.update(entries)
    if not kept:
        path.unlink(missing_ok=True)
        return
    text = json.dumps({"version": 1, "images": dict(sorted(kept.items()))}, indent=1)
    write_text_atomic(path, text + "\n")


def count_entry(found: int, faults: Iterable[str]) -> dict:
    """The :data:`VERTEBRAE_FILE` entry of one image."""
    return {"found": int(found), "faults": [str(f) for f in faults]}


def count_message(found: int, faults: Iterable[str] = ()) -> str:
    """One line saying the count is not 17, with the prediction's reasons.

    Examples
    --------
    >>> count_message(16, ["two bodies merged"])
    '16 vertebrae found, not 17: two bodies merged'
    """
    line = f"{found} vertebrae found, not {N_VERTEBRAE}"
    reasons = [f for f in faults if f]
    return f"{line}: {'; '.join(reasons)}" if reasons else line


def count_gap(
    found: int, *, vertebrae: np.ndarray | None = None, trimap: np.ndarray | None = None
) -> Gap | None:
    """A ``"vertebrae"`` gap where `found` is not 17, else None.

    Parameters
    ----------
    found : int
        The number of vertebral bodies found.
    vertebrae : (H, W) int array, optional
        The bodies (one label each): the gap is the largest one's centroid, as tall as it.
    trimap : (H, W) array, optional
        Without bodies: the gap is the spine column's middle, as tall as the column;
        without either, the image's middle.
    """
    if found == N_VERTEBRAE:
        return None
    if vertebrae is not None and np.any(vertebrae):
        labels = np.asarray(vertebrae)
        sizes = np.bincount(labels.ravel().astype(np.int64))
        sizes[0] = 0
        return _gap_over(labels == int(np.argmax(sizes)))
    if trimap is not None and np.any(np.asarray(trimap) == SPINE):
        return _gap_over(np.asarray(trimap) == SPINE, middle_row=True)
    shape = np.shape(trimap) if trimap is not None else np.shape(vertebrae)
    rows, cols = (tuple(shape) + (0, 0))[:2]
    return Gap(rows // 2, cols // 2, max(rows, 1), "vertebrae")


def _gap_over(mask: np.ndarray, middle_row: bool = False) -> Gap:
    """A gap on `mask`: its centroid (or its middle row's centre), as tall as it."""
    rows = np.flatnonzero(mask.any(axis=1))
    height = int(rows[-1] - rows[0] + 1)
    if middle_row:
        row = int(rows[0] + height // 2)
        row = int(rows[np.argmin(np.abs(rows - row))])
        col = int(np.floor(np.flatnonzero(mask[row]).mean() + 0.5))
    else:
        r, c = ndimage.center_of_mass(mask)
        row, col = int(np.floor(r + 0.5)), int(np.floor(c + 0.5))
    return Gap(row, col, height, "vertebrae")
