"""The AASCE 2019 / SpineWeb Dataset 16 layout: landmark ``.mat`` files and label CSVs.

::

    root/data/<split>/<name>.jpg
    root/labels/<split>/<name>.jpg.mat      variable p2: 68 x 2 (x, y) pixels
    root/labels/<split>/filenames.csv       one image name per row
    root/labels/<split>/landmarks.csv       68 x's then 68 y's per row, normalised to [0, 1]
    root/labels/<split>/angles.csv          3 Cobb angles (degrees) per row

Any split name is accepted (``training``/``test``, ``train``/``val``/``test``) as long as
``data/<split>`` has a matching ``labels/<split>``. See ``docs/aasce-format.md``.
"""

from __future__ import annotations

import csv
import os
from pathlib import Path

import numpy as np

from ..atomic import atomic_output
from ..errors import SpineSegError
from ..trimap import N_LANDMARKS, check_landmarks
from .images import describe_error

LANDMARKS_VARIABLE = "p2"
FILENAMES_CSV = "filenames.csv"
LANDMARKS_CSV = "landmarks.csv"
ANGLES_CSV = "angles.csv"
#: the subfolder of a prediction folder where `spine-seg predict` writes one ``.mat`` of
#: predicted landmarks per image (read by `cobb` and `evaluate`)
LANDMARKS_FOLDER = "landmarks"
#: the order splits are listed in; others follow alphabetically
_SPLIT_ORDER = ("training", "train", "validation", "val", "test", "testing")
_MAT_V5_HEADER_BYTES = 128
_HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"


def label_path(root: str | os.PathLike, split: str, image_name: str) -> Path:
    """The landmark file of an image: ``labels/<split>/<image file name>.mat``.

    Examples
    --------
    >>> label_path("set", "training", "a b.jpg").as_posix()
    'set/labels/training/a b.jpg.mat'
    """
    return Path(root) / "labels" / split / f"{image_name}.mat"


def read_landmarks_mat(path: str | os.PathLike) -> np.ndarray:
    """Read the 68 landmarks of one image from a MATLAB file's variable ``p2``.

    Both MAT v4/v5 (``scipy.io.loadmat``) and v7.3 (HDF5, read with ``h5py`` and
    transposed from MATLAB's column-major order) are read.

    Parameters
    ----------
    path : path-like
        A ``.mat`` file holding ``p2``, a 68 x 2 array of (x, y) pixel coordinates.

    Returns
    -------
    (68, 2) ndarray of float64
        ``(x, y)`` in pixels, in the file's order.

    Raises
    ------
    SpineSegError
        When the file is missing, truncated or not a MAT file, has no ``p2``, or ``p2``
        is not 68 x 2 finite numbers.
    """
    path = Path(path)
    head = _read_head(path, 520)
    if len(head) < _MAT_V5_HEADER_BYTES:
        raise SpineSegError(path, f"is truncated or empty ({len(head)} bytes): not a MAT file")
    if head[512:520] == _HDF5_SIGNATURE or head.startswith(_HDF5_SIGNATURE):
        p2 = _read_p2_hdf5(path)
    else:
        p2 = _read_p2_v5(path, is_v5=head.startswith(b"MATLAB"))
    return _check_p2(p2, path)


def _read_head(path: Path, n: int) -> bytes:
    try:
        with open(path, "rb") as f:
            return f.read(n)
    except FileNotFoundError:
        raise SpineSegError(path, "does not exist") from None
    except OSError as exc:
        raise SpineSegError(path, f"cannot be read ({exc.strerror or exc})") from exc


def _read_p2_v5(path: Path, *, is_v5: bool) -> object:
    from scipy.io import loadmat, whosmat

    try:
        contents = loadmat(path, variable_names=[LANDMARKS_VARIABLE])
        if LANDMARKS_VARIABLE not in contents:
            names = sorted(name for name, _, _ in whosmat(path))
            if not names:
                raise SpineSegError(path, "holds no variables: an empty or truncated MAT file")
            raise SpineSegError(path, f"has no variable 'p2' (variables: {', '.join(names)})")
    except SpineSegError:
        raise
    except Exception as exc:  # scipy raises many types for a damaged file
        problem = "is truncated or corrupt" if is_v5 else "is not a MATLAB .mat file"
        raise SpineSegError(path, f"{problem} ({describe_error(exc)})") from exc
    return contents[LANDMARKS_VARIABLE]


def _read_p2_hdf5(path: Path) -> object:
    import h5py

    try:
        with h5py.File(path, "r") as f:
            if LANDMARKS_VARIABLE not in f:
                found = ", ".join(sorted(k for k in f if not k.startswith("#"))) or "none"
                raise SpineSegError(path, f"has no variable 'p2' (variables: {found})")
            data = f[LANDMARKS_VARIABLE]
            if not isinstance(data, h5py.Dataset):
                raise SpineSegError(path, "variable 'p2' is not a numeric array")
            arr = data[()]
    except SpineSegError:
        raise
    except Exception as exc:  # h5py raises OSError, KeyError, … for a damaged file
        raise SpineSegError(path, f"is truncated or corrupt ({describe_error(exc)})") from exc
    # MATLAB writes column-major: a 68 x 2 matrix is stored as 2 x 68
    return np.asarray(arr).T


def _check_p2(p2: object, path: Path) -> np.ndarray:
    arr = np.asarray(p2)
    if arr.dtype.kind not in "iuf":
        raise SpineSegError(path, f"variable 'p2' is not a numeric array (dtype {arr.dtype})")
    if arr.shape != (N_LANDMARKS, 2):
        shape = " x ".join(map(str, arr.shape)) or "a scalar"
        raise SpineSegError(path, f"variable 'p2' is {shape}, expected {N_LANDMARKS} x 2")
    arr = arr.astype(np.float64)
    if not np.all(np.isfinite(arr)):
        raise SpineSegError(path, "variable 'p2' holds NaN or infinite values")
    return arr


def write_landmarks_mat(path: str | os.PathLike, landmarks: np.ndarray) -> Path:
    """Write 68 landmarks as a MAT v5 file with variable ``p2``, atomically.

    Parameters
    ----------
    path : path-like
        Output file, conventionally ``labels/<split>/<image name>.mat``.
    landmarks : (68, 2) array
        ``(x, y)`` pixel coordinates.

    Returns
    -------
    pathlib.Path
        `path`.
    """
    from scipy.io import savemat

    path = Path(path)
    arr = check_landmarks(landmarks, path)
    with atomic_output(path) as tmp, open(tmp, "wb") as f:
        savemat(f, {LANDMARKS_VARIABLE: arr})
    return path


def _read_csv_rows(path: Path) -> list[list[str]]:
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            return [row for row in csv.reader(f) if row and any(cell.strip() for cell in row)]
    except FileNotFoundError:
        raise SpineSegError(path, "does not exist") from None
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise SpineSegError(path, f"cannot be read as CSV ({describe_error(exc)})") from exc


def read_filenames_csv(labels_split_dir: str | os.PathLike) -> list[str]:
    """Image file names, in order, from ``filenames.csv`` of a labels split folder.

    Raises
    ------
    SpineSegError
        When the file is missing or unreadable.
    """
    path = Path(labels_split_dir) / FILENAMES_CSV
    names = [row[0].strip() for row in _read_csv_rows(path)]
    for i, name in enumerate(names):
        if not name or "/" in name or "\\" in name or name in (".", ".."):
            raise SpineSegError(path, f"row {i + 1} is not an image file name: {name[:80]!r}")
    seen: dict[str, int] = {}
    for i, name in enumerate(names):
        if name in seen:
            raise SpineSegError(path, f"names {name} twice (rows {seen[name] + 1} and {i + 1})")
        seen[name] = i
    return names


def _read_number_rows(path: Path, n_columns: int, n_rows: int) -> np.ndarray:
    """A CSV of `n_rows` rows of `n_columns` numbers (a header row is skipped)."""
    rows = _read_csv_rows(path)
    if rows and not _is_number(rows[0][0]):
        rows = rows[1:]
    if len(rows) != n_rows:
        raise SpineSegError(path, f"has {len(rows)} rows but {FILENAMES_CSV} names {n_rows} images")
    arr = np.empty((n_rows, n_columns), dtype=np.float64)
    for i, row in enumerate(rows):
        cells = [v.strip() for v in row if v.strip()]
        if len(cells) != n_columns:
            raise SpineSegError(
                path, f"row {i + 1} has {len(cells)} columns, expected {n_columns} numbers"
            )
        for j, cell in enumerate(cells):
            try:
                arr[i, j] = float(cell)
            except ValueError:
                raise SpineSegError(
                    path, f"row {i + 1}, column {j + 1} is not a number: {cell[:40]!r}"
                ) from None
    if not np.all(np.isfinite(arr)):
        row = int(np.flatnonzero(~np.isfinite(arr).all(axis=1))[0])
        raise SpineSegError(path, f"row {row + 1} holds NaN or infinite values")
    return arr


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def read_landmarks_csv(labels_split_dir: str | os.PathLike) -> dict[str, np.ndarray]:
    """Normalised landmarks of every image of a split from ``landmarks.csv``.

    Parameters
    ----------
    labels_split_dir : path-like
        ``labels/<split>``, holding ``filenames.csv`` and ``landmarks.csv``.

    Returns
    -------
    dict of str to (68, 2) ndarray
        Image file name → ``(x, y)`` divided by the image's width and height; multiply
        by ``(width, height)`` for pixels.

    Raises
    ------
    SpineSegError
        When a file is missing, or the two files disagree in length, or a row is not 136
        numbers.
    """
    names, arr = _named_rows(labels_split_dir, LANDMARKS_CSV, 2 * N_LANDMARKS)
    xy = np.stack([arr[:, :N_LANDMARKS], arr[:, N_LANDMARKS:]], axis=-1)
    return dict(zip(names, xy, strict=True))


def read_angles_csv(labels_split_dir: str | os.PathLike) -> dict[str, np.ndarray]:
    """The three Cobb angles (degrees) of every image of a split from ``angles.csv``.

    Read as :func:`read_landmarks_csv` reads ``landmarks.csv``, with the same errors;
    a row holds 3 numbers: PT, MT and TL/L, in the order of ``angles.csv``.

    Returns
    -------
    dict of str to (3,) ndarray
    """
    names, arr = _named_rows(labels_split_dir, ANGLES_CSV, 3)
    return dict(zip(names, arr, strict=True))


def _named_rows(labels_split_dir, csv_name: str, n_columns: int) -> tuple[list, np.ndarray]:
    """The names of ``filenames.csv`` and the rows of `csv_name` beside it, one per name."""
    folder = Path(labels_split_dir)
    names = read_filenames_csv(folder)
    return names, _read_number_rows(folder / csv_name, n_columns, len(names))


def find_aasce_root(path: str | os.PathLike) -> tuple[Path, str | None] | None:
    """Recognise an AASCE-layout root or one of its split folders.

    Parameters
    ----------
    path : path-like
        A root (holding ``data/`` and ``labels/``), its ``data/`` folder, or a split
        folder ``data/<split>`` that has a matching ``labels/<split>``.

    Returns
    -------
    tuple of (pathlib.Path, str or None), or None
        ``(root, None)`` for a root (all splits), ``(root, split)`` for a split folder,
        None when `path` is neither.
    """
    path = Path(path)
    if (path / "data").is_dir() and (path / "labels").is_dir():
        return (path, None)
    if path.name == "data" and (path.parent / "labels").is_dir():
        return (path.parent, None)
    if path.parent.name == "data" and (path.parent.parent / "labels" / path.name).is_dir():
        return (path.parent.parent, path.name)
    return None


def aasce_splits(root: str | os.PathLike) -> tuple[str, ...]:
    """Split names of an AASCE root: folders under ``data/`` with a matching ``labels/``.

    Ordered training, validation, test first (under their common names), then the rest
    alphabetically.
    """
    root = Path(root)
    try:
        entries = list(os.scandir(root / "data"))
    except OSError:
        return ()
    names = [
        e.name
        for e in entries
        if e.is_dir() and not e.name.startswith(".") and (root / "labels" / e.name).is_dir()
    ]

    def rank(name: str) -> tuple[int, str]:
        low = name.lower()
        return (_SPLIT_ORDER.index(low) if low in _SPLIT_ORDER else len(_SPLIT_ORDER), name)

    return tuple(sorted(names, key=rank))
