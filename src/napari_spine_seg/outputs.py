"""Refuse an output that would write over a user's input, or into a data set.

A data set and every input are read-only to this package. Every command and widget
that writes calls :func:`check_output` with its output path and its inputs *before*
any work is done, and :func:`check_output_names` before a batch writes one file per
input, so that a wrong ``--out`` costs one line of error, never a file.

Paths are compared by the file system's own identity of a file (device and inode,
after following symbolic links and ``..``), so another spelling of the same file or
folder (a symbolic link, a hard link, other letter case on a case-insensitive disk)
is recognised too.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

from .errors import SpineSegError

#: the folders of a data set layout that hold its own files, by the folder that marks it
_DATASET_FOLDERS = {
    # an AASCE root: data/<split>/ images and labels/<split>/ landmarks and CSVs
    "data": ("labels",),
    "labels": ("data",),
    # the Oxford-IIIT Pets layout: images/ and annotations/trimaps/
    "images": ("annotations/trimaps",),
    "annotations": ("images",),
}
_ELSEWHERE = "write it elsewhere (inputs and data sets are never written to)"


def _identity(path: Path) -> tuple[int, int] | None:
    try:
        st = os.stat(path)
    except (OSError, ValueError):
        return None
    return (st.st_dev, st.st_ino)


def _dataset_folder(folder: Path) -> bool:
    """Whether `folder` is the ``data/`` or ``labels/`` of an AASCE root (or Pets' own).

    An AASCE root must have a split: a folder ``data/<split>`` with ``labels/<split>``,
    so that a home folder that merely holds ``data/`` and ``labels/`` is not taken for one.
    """
    siblings = _DATASET_FOLDERS.get(folder.name.casefold())
    if siblings is None or not folder.is_dir():
        return False
    if not all((folder.parent / s).is_dir() for s in siblings):
        return False
    if folder.name.casefold() not in ("data", "labels"):
        return True
    root = folder.parent
    try:
        splits = [e.name for e in os.scandir(root / "data") if e.is_dir()]
    except OSError:
        return False
    return any((root / "labels" / name).is_dir() for name in splits)


def inside_words(path: Path, ancestor: Path, folder: str) -> str:
    """How `path` stands to `ancestor`, a folder found on its way up (see
    :func:`enclosing_folder`): ``is the <folder>`` or ``is inside the <folder>``.

    The one wording of every "inside which folder?" refusal; `folder` names the folder,
    e.g. ``"input folder /data/x"``.
    """
    return f"{'is' if ancestor == path else 'is inside'} the {folder}"


def only_read(what: str) -> str:
    """The advice that ends a refusal inside a data set: choose a `what` outside it."""
    return f"a data set is only read: choose a {what} outside it"


def enclosing_folder(
    path: str | os.PathLike, folders: Iterable[str | os.PathLike]
) -> tuple[Path, Path] | None:
    """The first of `folders` that `path` is or lies inside, by file-system identity.

    Parameters
    ----------
    path : path-like
        A file or folder, existing or not (its nearest existing folders are compared).
    folders : iterable of path-like
        Folders that do not exist are ignored.

    Returns
    -------
    (folder, ancestor) or None
        The folder of `folders` as given, and the folder on `path`'s way up (`path`
        itself included, resolved) that is that folder; None when `path` is outside all.
    """
    given = {}
    for folder in folders:
        key = _identity(Path(folder))
        if key is not None:
            given.setdefault(key, Path(folder))
    target = Path(os.path.realpath(os.path.expanduser(path)))
    for ancestor in (target, *target.parents):
        key = _identity(ancestor)
        if key is not None and key in given:
            return given[key], ancestor
    return None


def check_output(
    out: str | os.PathLike,
    inputs: Iterable[str | os.PathLike] = (),
    *,
    folder: bool = False,
    keep: Iterable[str | os.PathLike] = (),
    suffixes: Sequence[str] = (),
) -> Path:
    """Refuse `out` when writing it could change an input or a data set; else return it.

    Nothing is created or written. Refused are: an output that *is* an input file (or a
    file of `keep`); an output inside an input folder, or the folder itself; a folder
    output that is the folder an input file lies in (the outputs would land beside the
    inputs); an output inside a data set's own folders (``data/`` or ``labels/`` of an
    AASCE root, ``images/`` or ``annotations/`` of the Pets layout) whether or not that
    data set is an input; an existing file of another kind than `suffixes`; a file
    output that is a folder, and a folder output that is a file.

    Parameters
    ----------
    out : path-like
        The output file, or with `folder` the output folder.
    inputs : iterable of path-like
        The files and folders the command reads. A folder protects everything under it.
    folder : bool
        `out` is a folder the outputs are written into.
    keep : iterable of path-like
        Further files that must not be overwritten (e.g. the model file read).
    suffixes : sequence of str
        For a file output: the suffixes (``".csv"``) an *existing* file at `out` may
        have and still be replaced; another existing file is refused.

    Returns
    -------
    pathlib.Path
        `out`, as given.

    Raises
    ------
    SpineSegError
        One line naming `out` and why it is refused.
    """
    given = Path(out)
    target = Path(os.path.realpath(os.path.expanduser(given)))
    files: dict[tuple[int, int], Path] = {}
    trees: list[Path] = []
    beside: dict[tuple[int, int], Path] = {}
    for raw in inputs:
        path = Path(raw)
        key = _identity(path)
        if key is None:
            continue
        if path.is_dir():
            trees.append(path)
        else:
            files[key] = path
            parent = _identity(Path(os.path.realpath(path)).parent)
            if parent is not None:
                beside[parent] = path
    for raw in keep:
        key = _identity(Path(raw))
        if key is not None:
            files[key] = Path(raw)

    own = _identity(target)
    if own is not None:
        _check_kind(given, target, folder, suffixes)
        if own in files:
            raise SpineSegError(given, f"is the input file {files[own]}; {_ELSEWHERE}")
    found = enclosing_folder(target, trees)
    for ancestor in (target, *target.parents):
        # the nearest enclosing folder decides: an input folder, or a data set's own
        if found is not None and found[1] == ancestor:
            where = inside_words(target, ancestor, f"input folder {found[0]}")
            raise SpineSegError(given, f"{where}; {_ELSEWHERE}")
        if _dataset_folder(ancestor):
            where = inside_words(target, ancestor, f"data set's own folder {ancestor}")
            raise SpineSegError(given, f"{where}; {_ELSEWHERE}")
    holder = _identity(target if folder else target.parent)
    if holder is not None and holder in beside:
        raise SpineSegError(
            given,
            f"is the folder of the input {beside[holder]}; the outputs would lie beside "
            f"the inputs; {_ELSEWHERE}",
        )
    return given


def _check_kind(given: Path, target: Path, folder: bool, suffixes: Sequence[str]) -> None:
    if folder:
        if not target.is_dir():
            raise SpineSegError(given, "is a file, not a folder; not overwritten")
        return
    if target.is_dir():
        raise SpineSegError(given, "is a folder; give a file name")
    if suffixes and target.suffix.lower() not in {s.lower() for s in suffixes}:
        kinds = " or ".join(suffixes)
        raise SpineSegError(given, f"exists and is not a {kinds} file; not overwritten")


def check_output_names(inputs: Iterable[str | os.PathLike], name_of: Callable[[str], str]) -> None:
    """Refuse a batch in which two inputs would be written to the same output file.

    Output names are compared ignoring letter case, as a case-insensitive disk (macOS,
    Windows) would store them: ``x.jpg`` and ``x.png`` both become ``x.png``; ``A.png``
    and ``a.png`` are one file there.

    Parameters
    ----------
    inputs : iterable of path-like
    name_of : callable
        Input file name → output file name, e.g.
        :func:`~napari_spine_seg.data.masks.trimap_name`.

    Raises
    ------
    SpineSegError
        Naming both inputs and the output name they share.
    """
    seen: dict[str, Path] = {}
    for raw in inputs:
        path = Path(raw)
        name = name_of(path.name)
        other = seen.setdefault(name.casefold(), path)
        if other != path:
            raise SpineSegError(
                path,
                f"and {other} would both be written as {name}; rename one "
                "(outputs are named after their inputs)",
            )
