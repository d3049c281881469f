"""A review folder on disk: its files, the statuses it records, its state file.

::

    review-folder/
      review.json                  the data set opened, queue and its order, current image,
                                   status of each image, why each image ranks where it does
      trimaps/<trimap name>        the saved trimap of each draft, accepted or corrected image
      trimaps/<split>/<trimap name>    (AASCE layout: one sub-folder per split)
      predictions/<model>/         each image's prediction by one model (:mod:`.predictions`)

The session that keeps it is :class:`~.session.ReviewSession`.
"""

from __future__ import annotations

import shutil
import zlib
from pathlib import Path

import numpy as np

from ..data.aasce import aasce_splits
from ..data.dataset import Dataset, Sample
from ..data.masks import trimap_name
from ..errors import SpineSegError
from .priority import Priority
from .versioned import read_versioned_json

UNREVIEWED = "unreviewed"
DRAFT = "draft"
ACCEPTED = "accepted"
CORRECTED = "corrected"
#: every status an image can have, in the order a person meets them
STATUSES = (UNREVIEWED, DRAFT, ACCEPTED, CORRECTED)
#: the statuses whose trimaps are final: exported, and used to retrain
REVIEWED = (ACCEPTED, CORRECTED)

FILE_ORDER = "file"
WORST_FIRST = "worst"
ORDERS = (FILE_ORDER, WORST_FIRST)

STATE_FILE = "review.json"
TRIMAP_FOLDER = "trimaps"
#: prefix of the folders holding a snapshot's links to the reviewed trimaps
SNAPSHOT_PREFIX = ".snapshot-"
STATE_FORMAT = "napari-spine-seg review"
STATE_VERSION = 1


def sample_key(sample: Sample) -> str:
    """The name a session knows an image by: ``split/name``, or ``name`` without a split."""
    return f"{sample.split}/{sample.name}" if sample.split else sample.name


def dataset_location(dataset: Dataset) -> Path:
    """The exact data set path a review of `dataset` names: what reopening it opens.

    One split of a multi-split AASCE root is its split folder ``data/<split>``; any
    other data set is its root.
    """
    root = Path(dataset.root).resolve()
    if dataset.kind == "aasce" and len(dataset.splits) == 1:
        if len(aasce_splits(root)) > 1:
            return root / "data" / dataset.splits[0]
    return root


def trimap_checksum(trimap: np.ndarray) -> int:
    """CRC-32 of a trimap's shape and pixels: whether two trimaps are the same.

    Parameters
    ----------
    trimap : (H, W) array

    Returns
    -------
    int
    """
    shape = np.asarray(trimap.shape, dtype=np.int64).tobytes()
    return zlib.crc32(np.ascontiguousarray(trimap, dtype=np.uint8).tobytes(), zlib.crc32(shape))


def trimap_file(folder: Path, sample: Sample) -> Path:
    """Where the reviewed trimap of `sample` is kept under a review folder's trimaps.

    Parameters
    ----------
    folder : pathlib.Path
        The folder the trimaps are kept in (``<review folder>/trimaps``, or a snapshot's).
    sample : Sample

    Returns
    -------
    pathlib.Path
        ``<folder>/[<split>/]<trimap name>``; it may not exist.
    """
    sub = folder / sample.split if sample.split else folder
    return sub / trimap_name(sample.name)


def clear_partial_writes(folder: Path) -> None:
    """Delete the temporary files of writes a killed process left half done.

    Called only by the process that has just taken the folder's lock, so no write it
    deletes the file of can be under way.
    """
    patterns = (
        f".{Path(STATE_FILE).stem}.*.part.json",
        f"{TRIMAP_FOLDER}/**/.*.part.png",
        "predictions/*/.*.part.*",  # the prediction cache (.predictions)
    )
    for pattern in patterns:
        for path in folder.glob(pattern):
            path.unlink(missing_ok=True)
    for path in folder.glob(f"{SNAPSHOT_PREFIX}*"):
        shutil.rmtree(path, ignore_errors=True)


def read_state(path: Path) -> dict:
    """The review state saved in `path`.

    Parameters
    ----------
    path : pathlib.Path
        A review folder's :data:`STATE_FILE`.

    Returns
    -------
    dict

    Raises
    ------
    SpineSegError
        When the file is unreadable, not a review state, of another version, or names
        no data set.
    """
    state = read_versioned_json(path, STATE_FORMAT, "review state", STATE_VERSION)
    if not isinstance(state.get("dataset"), str):
        raise SpineSegError(path, "names no dataset")
    return state


def saved_location(state: dict) -> str:
    """The data set path a state names (states before ``dataset_path``: the root)."""
    location = state.get("dataset_path")
    return location if isinstance(location, str) else state["dataset"]


def check_same_dataset(state_path: Path, state: dict, dataset: Dataset) -> None:
    """Refuse a data set (or another split of it) that is not the one the state names."""
    saved = Path(saved_location(state)).resolve()
    given = dataset_location(dataset)
    if "dataset_path" not in state:  # an older state knows only the root
        given = Path(dataset.root).resolve()
    if saved != given:
        raise SpineSegError(state_path, f"is the review of {saved}, not of {given}")


def saved_priorities(state: dict) -> dict[str, Priority]:
    """The saved reasons for a worst-first queue; a damaged entry is dropped, not fatal."""
    priorities = {}
    saved = state.get("priority")
    for key, values in (saved if isinstance(saved, dict) else {}).items():
        try:
            priorities[key] = Priority.from_dict(values)
        except (TypeError, ValueError, KeyError, AttributeError):
            continue
    return priorities
