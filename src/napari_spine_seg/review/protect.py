"""Keep a data set read-only: refuse outputs (review folder, export, saved layers) inside it.

A data set's folders are its root (for the AASCE layout the folder holding ``data/``
and ``labels/``; for Pets the folder holding ``images/`` and ``annotations/``; for a
folder of images the folder itself, with its ``trimaps/`` or ``masks/``) and the folder
of every image and label file it has. Nothing this package writes may go there: a
review folder inside the data set would write its ``trimaps/`` over the data set's,
and an export into ``data/<split>`` leaves a PNG beside the X-rays, after which the
data set no longer opens. Every check here runs before anything is written.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

from ..data.aasce import find_aasce_root
from ..errors import SpineSegError
from ..outputs import enclosing_folder, inside_words, only_read

#: folders of a folder-of-images data set that hold its trimaps (as data/dataset.py)
_MASK_FOLDERS = ("trimaps", "masks")
#: how many folders up from a file an enclosing data set root is looked for
_LEVELS_UP = 3


def _resolved(path: str | os.PathLike) -> Path:
    return Path(os.path.abspath(os.path.expanduser(os.fspath(path)))).resolve()


def dataset_folders(dataset) -> list[Path]:
    """The folders of `dataset` (resolved): its root, then each image's and label's folder.

    Parameters
    ----------
    dataset : Dataset
        An opened data set (:func:`~napari_spine_seg.data.dataset.open_dataset`).

    Returns
    -------
    list of pathlib.Path
        Without duplicates, the root first.
    """
    folders = [_resolved(dataset.root)]
    for sample in dataset.samples:
        for path in (sample.image_path, sample.trimap_path, sample.landmarks_path):
            if path is not None:
                folders.append(_resolved(path).parent)
    return list(dict.fromkeys(folders))


def enclosing_dataset_root(path: str | os.PathLike) -> Path | None:
    """The root of the data set that file or folder `path` lies in, or None.

    Looks a few folders up for an AASCE root (``data/`` + ``labels/``), a Pets root
    (``images/`` + ``annotations/trimaps/``) or a folder of images with a ``trimaps/``
    or ``masks/`` folder.
    """
    start = _resolved(path)
    for folder in [start, *start.parents][: _LEVELS_UP + 1]:
        try:
            if not folder.is_dir():
                continue
            found = find_aasce_root(folder)
            if found is not None:
                return found[0]
            if (folder / "images").is_dir() and (folder / "annotations" / "trimaps").is_dir():
                return folder
            if folder.name in _MASK_FOLDERS and folder != start:
                return folder.parent
            if any((folder / sub).is_dir() for sub in _MASK_FOLDERS) and folder != start:
                return folder
        except OSError:
            continue
    return None


def check_outside(path: str | os.PathLike, folders: Iterable[str | os.PathLike], what: str) -> Path:
    """Refuse `path` when it is one of `folders` or lies inside one; return it resolved.

    Parameters
    ----------
    path : path-like
        The output (a folder or a file) about to be written.
    folders : iterable of path-like
        The data set's folders (:func:`dataset_folders`).
    what : str
        What `path` is, for the message ("review folder", "export folder", ...).

    Raises
    ------
    SpineSegError
        Naming `path` and the data set folder it lies in.
    """
    target = _resolved(path)
    for folder in folders:  # in their order: the data set's root, named first, wins
        found = enclosing_folder(target, [folder])
        if found is not None:
            where = inside_words(target, found[1], f"data set folder {_resolved(folder)}")
            raise SpineSegError(path, f"{where}; {only_read(what)}")
    return target


def check_outside_dataset(path: str | os.PathLike, dataset, what: str) -> Path:
    """Refuse `path` when it is `dataset`'s folder or lies inside it (see :func:`check_outside`)."""
    return check_outside(path, dataset_folders(dataset), what)


def default_review_folder(dataset: str | os.PathLike) -> Path:
    """Where a data set's review goes unless the person chooses: beside the data set.

    ``<parent>/<name>-review`` for a data set folder ``<parent>/<name>``; for an AASCE
    split folder ``<root>/data/<split>``, ``<parent of root>/<root name>-<split>-review``,
    so that it never lies inside the data set.

    Examples
    --------
    >>> default_review_folder("/scans/clinic").as_posix()
    '/scans/clinic-review'
    """
    path = Path(dataset)
    try:
        found = find_aasce_root(path)
    except OSError:
        found = None
    if found is not None:
        root, split = found
        name = f"{root.name}-{split}" if split else root.name
        return root.with_name(f"{name}-review")
    return path.with_name(f"{path.name}-review")
