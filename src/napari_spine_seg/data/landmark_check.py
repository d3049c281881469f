"""Check the landmarks of an AASCE-layout data set, and write a corrected copy.

:func:`check_dataset` reads every image's landmarks (the ``.mat`` file's ``p2``, and the
split's ``landmarks.csv`` when it lists the image), finds the faults of each
(:func:`napari_spine_seg.spine.landmark_faults.find_faults`), and adds two that need the
data set's other files:

``mat_csv_mismatch``
    the ``.mat`` file and ``landmarks.csv`` place a vertebra's corner differently (by
    more than :data:`MISMATCH_PX` pixels). Certain to fix when exactly one of the two
    has faults of its own: the other is kept.
``angles_mismatch``
    the Cobb angles computed from the landmarks (the challenge's reference computation)
    differ from ``angles.csv`` by more than ``angle_tolerance`` degrees. The recorded
    angles were measured by people, so this is a lead, not a proof; it counts as fixed
    when the landmarks' certain fixes make the two agree.

:func:`write_fixed_copy` writes the whole data set again in the AASCE layout, with the
certain fixes applied and every other fault left as it was, and ``fixes.json`` saying
which is which. The data set itself is only read.
"""

from __future__ import annotations

import json
import os
import shutil
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..atomic import atomic_output, write_text_atomic
from ..errors import SpineSegError
from ..outputs import enclosing_folder, inside_words, only_read
from ..spine.cobb import cobb_angles, cobb_details
from ..spine.landmark_faults import CORNERS, Fault, apply_fixes, find_faults, vertebra_label
from ..trimap import N_VERTEBRAE
from .aasce import (
    ANGLES_CSV,
    FILENAMES_CSV,
    LANDMARKS_CSV,
    read_angles_csv,
    read_filenames_csv,
    read_landmarks_csv,
    read_landmarks_mat,
    write_landmarks_mat,
)
from .dataset import Dataset, open_dataset

#: ``.mat`` and ``landmarks.csv`` corners further apart than this (pixels) disagree
MISMATCH_PX = 1.0
#: recorded and computed Cobb angles further apart than this (degrees) disagree
ANGLE_TOLERANCE = 5.0
#: the report of the corrections in a corrected copy
FIXES_JSON = "fixes.json"
ANGLE_NAMES = ("PT", "MT", "TL/L")


@dataclass
class ImageCheck:
    """The landmarks of one image and their faults.

    Attributes
    ----------
    key : str
        The image's path relative to the data set root, ``data/<split>/<name>``.
    split, name : str
    shape : (rows, cols)
    landmarks : (68, 2) ndarray
        As stored: from the ``.mat`` file, or from ``landmarks.csv`` when there is none.
    csv_landmarks : (68, 2) ndarray or None
        ``landmarks.csv``'s row in pixels, when the CSV lists the image.
    angles : (3,) ndarray or None
        ``angles.csv``'s row.
    faults : list of Fault
    fixed : (68, 2) ndarray
        The landmarks with every certain fix applied.
    csv_kept : bool
        True when ``landmarks.csv`` disagrees with the ``.mat`` file and no certain fix
        decides between them: a corrected copy keeps the CSV row as it was.
    reviewed : bool
        True when `landmarks` were corrected by a person (:func:`recheck_image`).
    """

    key: str
    split: str
    name: str
    shape: tuple[int, int]
    landmarks: np.ndarray
    csv_landmarks: np.ndarray | None = None
    angles: np.ndarray | None = None
    faults: list[Fault] = field(default_factory=list)
    fixed: np.ndarray | None = None
    csv_kept: bool = False
    reviewed: bool = False


@dataclass
class DatasetCheck:
    """Every image's check, in the data set's order.

    Attributes
    ----------
    root : pathlib.Path
    images : list of ImageCheck
    angle_tolerance : float
    """

    root: Path
    images: list[ImageCheck]
    angle_tolerance: float = ANGLE_TOLERANCE

    def faulty(self) -> list[ImageCheck]:
        """Images with faults, the most faults first (then in the data set's order)."""
        found = [image for image in self.images if image.faults]
        return sorted(found, key=lambda image: -len(image.faults))

    def counts(self) -> Counter:
        """Number of faults of each kind."""
        return Counter(f.kind for image in self.images for f in image.faults)

    def to_json(self) -> dict[str, list[dict]]:
        """``{"data/training/x.jpg": [fault, ...]}`` for the images with faults."""
        return {
            image.key: [f.to_json() for f in image.faults] for image in self.images if image.faults
        }


def check_dataset(
    path: str | os.PathLike,
    *,
    angle_tolerance: float = ANGLE_TOLERANCE,
    progress: Callable[..., Iterator] | None = None,
) -> DatasetCheck:
    """Check the landmarks of every image of an AASCE-layout data set.

    Parameters
    ----------
    path : path-like
        An AASCE root or one split folder ``data/<split>``.
    angle_tolerance : float
        Degrees by which computed and recorded Cobb angles may differ.
    progress : callable, optional
        Wraps the iteration over images, called as
        ``progress(iterable, total=n, desc="check", unit="image")``.

    Returns
    -------
    DatasetCheck

    Raises
    ------
    SpineSegError
        When the data set cannot be opened or is not in the AASCE layout, or a label
        file cannot be read.
    """
    dataset = open_dataset(path)
    if dataset.kind != "aasce":
        raise SpineSegError(
            path, "is not an AASCE-layout data set (data/<split>/ and labels/<split>/)"
        )
    tables = {split: _split_tables(dataset.root / "labels" / split) for split in dataset.splits}
    items: Iterator = iter(dataset)
    if progress is not None:
        items = progress(items, total=len(dataset), desc="check", unit="image")
    images = [
        _check_sample(dataset, sample, tables[sample.split], angle_tolerance) for sample in items
    ]
    return DatasetCheck(dataset.root, images, angle_tolerance)


def _split_tables(labels_dir: Path) -> tuple[dict, dict]:
    """``landmarks.csv`` (normalised) and ``angles.csv`` of a split, empty when absent."""
    has_names = (labels_dir / FILENAMES_CSV).is_file()
    csv = (
        read_landmarks_csv(labels_dir)
        if has_names and (labels_dir / LANDMARKS_CSV).is_file()
        else {}
    )
    angles = (
        read_angles_csv(labels_dir) if has_names and (labels_dir / ANGLES_CSV).is_file() else {}
    )
    return csv, angles


def _check_sample(
    dataset: Dataset, sample, tables: tuple[dict, dict], tolerance: float
) -> ImageCheck:
    csv_table, angle_table = tables
    rows, cols = sample.image_shape()
    scale = np.array([cols, rows], dtype=np.float64)
    csv_landmarks = csv_table[sample.name] * scale if sample.name in csv_table else None
    if sample.landmarks_path.suffix.lower() == ".csv":
        landmarks = csv_landmarks
        source = sample.landmarks_path
    else:
        landmarks = read_landmarks_mat(sample.landmarks_path)
        source = sample.landmarks_path
    key = sample.image_path.relative_to(dataset.root).as_posix()
    image = ImageCheck(
        key,
        sample.split,
        sample.name,
        (rows, cols),
        landmarks,
        csv_landmarks,
        angle_table.get(sample.name),
    )
    image.faults = find_faults(landmarks, (rows, cols), source=source)
    image.fixed = apply_fixes(landmarks, image.faults)
    if csv_landmarks is not None and source.suffix.lower() != ".csv":
        image.faults += _mismatch_faults(image)
    if image.angles is not None:
        image.faults += _angle_faults(image, tolerance)
    return image


def recheck_image(image: ImageCheck, landmarks_xy: np.ndarray, tolerance: float) -> ImageCheck:
    """The image with reviewed landmarks in place of its stored ones, checked again.

    A corrected copy writes the ``.mat`` file and ``landmarks.csv`` both from the
    reviewed landmarks, so they are not compared with the CSV; the recorded angles are.
    """
    landmarks = np.array(landmarks_xy, dtype=np.float64)
    checked = ImageCheck(
        image.key,
        image.split,
        image.name,
        image.shape,
        landmarks,
        image.csv_landmarks,
        image.angles,
        reviewed=True,
    )
    checked.faults = find_faults(landmarks, image.shape)
    checked.fixed = apply_fixes(landmarks, checked.faults)
    if checked.angles is not None:
        checked.faults += _angle_faults(checked, tolerance)
    return checked


def _mismatch_faults(image: ImageCheck) -> list[Fault]:
    """Faults for the vertebrae whose ``.mat`` and CSV corners disagree."""
    dist = np.hypot(*(image.landmarks - image.csv_landmarks).T).reshape(N_VERTEBRAE, 4)
    bad = np.flatnonzero(dist.max(axis=1) > MISMATCH_PX)
    if bad.size == 0:
        return []
    mat_faults = image.faults
    csv_faults = find_faults(image.csv_landmarks, image.shape)
    resolved = np.hypot(*(image.fixed - image.csv_landmarks).T).max() <= MISMATCH_PX
    # the CSV row is replaced by the .mat's landmarks only when that is clearly right
    certain = bool(resolved or (not mat_faults and csv_faults))
    image.csv_kept = not certain
    if resolved:
        note = "the .mat's certain fixes make them agree"
    elif certain:
        note = "the .mat has no other fault and the CSV has some: the .mat is kept"
    elif mat_faults and not csv_faults:
        note = "the CSV has no other fault and the .mat has some: check which is right"
    else:
        note = "it is not clear which is right"
    worst = [(int(i), int(np.argmax(dist[i]))) for i in bad]
    if len(worst) > 3:
        i, k = worst[0]
        return [
            Fault(
                i + 1,
                CORNERS[k],
                "mat_csv_mismatch",
                f"{len(worst)} of 17 vertebrae differ between the .mat and landmarks.csv, by "
                f"up to {dist.max():.1f} px; {note}",
                fix=certain,
            )
        ]
    return [
        Fault(
            i + 1,
            CORNERS[k],
            "mat_csv_mismatch",
            f"the .mat and landmarks.csv place this corner {dist[i, k]:.1f} px apart; {note}",
            fix=certain,
        )
        for i, k in worst
    ]


def _angle_faults(image: ImageCheck, tolerance: float) -> list[Fault]:
    """A fault when the recorded angles differ from those of the landmarks."""
    height = image.shape[0]
    try:
        details = cobb_details(image.landmarks, height)
    except SpineSegError as exc:  # a vertebra collapsed to a point has no direction
        return [
            Fault(None, None, "angles_mismatch", f"Cobb angles cannot be computed: {exc.problem}")
        ]
    diff = np.abs(details.angles - image.angles)
    worst = int(np.argmax(diff))
    if diff[worst] <= tolerance:
        return []
    try:
        after = cobb_angles(image.fixed, height)
    except SpineSegError:
        after = details.angles
    agrees = bool(np.abs(after - image.angles).max() <= tolerance)
    upper, lower = details.pairs[worst]
    shown = ", ".join(
        f"{n} {c:.1f}/{r:.1f}"
        for n, c, r in zip(ANGLE_NAMES, details.angles, image.angles, strict=True)
    )
    reason = (
        f"{ANGLE_NAMES[worst]} from the landmarks (vertebrae {vertebra_label(upper)} to "
        f"{vertebra_label(lower)}) differs from angles.csv by {diff[worst]:.1f} degrees "
        f"(computed/recorded: {shown})"
    )
    reason += "; the certain fixes make them agree" if agrees else ""
    return [Fault(upper + 1, None, "angles_mismatch", reason, fix=agrees)]


# --------------------------------------------------------------------------- corrected copy


def check_output_folder(
    root: str | os.PathLike, out: str | os.PathLike, *, allow_marker: str = FIXES_JSON
) -> Path:
    """Refuse an output folder that would put files inside the data set `root`.

    Parameters
    ----------
    root : path-like
        The data set.
    out : path-like
        The folder to write.
    allow_marker : str
        A non-empty `out` is accepted when it holds this file (an earlier output).

    Raises
    ------
    SpineSegError
        When `out` is `root` or inside it, when the copy's ``data/`` or ``labels/``
        would hold `root`, or when `out` holds files that are not an earlier output.
    """
    root_r, out_r = Path(root).resolve(), Path(out).resolve()
    found = enclosing_folder(out_r, [root_r])
    if found is not None:
        where = inside_words(out_r, found[1], f"data set folder {root}")
        raise SpineSegError(out, f"{where}; {only_read('folder')}")
    for sub in ("data", "labels"):
        if (out_r / sub) == root_r or (out_r / sub) in root_r.parents:
            raise SpineSegError(out, f"would write into the data set {root}; choose another folder")
    if out_r.is_dir() and any(out_r.iterdir()) and not (out_r / allow_marker).is_file():
        raise SpineSegError(
            out, "is not empty and holds no earlier corrected copy; choose an empty folder"
        )
    if out_r.exists() and not out_r.is_dir():
        raise SpineSegError(out, "is a file; the corrected copy needs a folder")
    return Path(out)


def _link_or_copy(src: Path, dst: Path) -> None:
    """Hard-link `src` at `dst` (a copy across file systems), replacing `dst` atomically."""
    with atomic_output(dst) as tmp:
        tmp.unlink()
        try:
            os.link(src, tmp)
        except OSError:
            shutil.copyfile(src, tmp)


def _csv_row(values) -> str:
    return ",".join(f"{float(v):.10g}" for v in values) + "\n"


def write_fixed_copy(
    check: DatasetCheck,
    out: str | os.PathLike,
    *,
    progress: Callable[..., Iterator] | None = None,
) -> Path:
    """Write the data set again under `out` with the certain fixes applied.

    ``data/<split>/<name>`` (hard links to the images, or copies across file systems),
    ``labels/<split>/<name>.mat`` for every image, ``filenames.csv``, ``landmarks.csv``
    and ``angles.csv`` (the recorded angles, as they were) of every split, and
    ``fixes.json``: for every image with faults, those ``fixed`` and those ``left``, and
    the images whose landmarks a person ``reviewed`` (:func:`recheck_image`).
    Every file is written atomically.

    Returns
    -------
    pathlib.Path
        `out`.

    Raises
    ------
    SpineSegError
        When `out` is inside the data set or cannot be written
        (:func:`check_output_folder`).
    """
    out = check_output_folder(check.root, out)
    items: Iterator = iter(check.images)
    if progress is not None:
        items = progress(items, total=len(check.images), desc="write", unit="image")
    for image in items:
        _link_or_copy(check.root / image.key, out / image.key)
        write_landmarks_mat(out / "labels" / image.split / f"{image.name}.mat", image.fixed)
    for split in dict.fromkeys(image.split for image in check.images):
        _write_split_csvs(check, split, out / "labels" / split)
    report = {
        "source": str(check.root),
        "images": len(check.images),
        "fixed": {
            i.key: [f.to_json() for f in i.faults if f.fix]
            for i in check.images
            if any(f.fix for f in i.faults)
        },
        "left": {
            i.key: [f.to_json() for f in i.faults if not f.fix]
            for i in check.images
            if any(not f.fix for f in i.faults)
        },
        "reviewed": [i.key for i in check.images if i.reviewed],
    }
    write_text_atomic(out / FIXES_JSON, json.dumps(report, indent=1) + "\n")
    return out


def _angles_or_zero(image: ImageCheck) -> np.ndarray:
    """Cobb angles of the fixed landmarks for an image angles.csv did not list."""
    try:
        return cobb_angles(image.fixed, image.shape[0])
    except SpineSegError:
        return np.zeros(3)


def _write_split_csvs(check: DatasetCheck, split: str, labels_out: Path) -> None:
    """The split's three CSV files: its images in ``filenames.csv``'s order, then any it
    did not list (names listed without an image are left out)."""
    labels_in = check.root / "labels" / split
    images = {image.name: image for image in check.images if image.split == split}
    listed = read_filenames_csv(labels_in) if (labels_in / FILENAMES_CSV).is_file() else []
    names = [n for n in listed if n in images] + sorted(set(images) - set(listed))
    _, old_angles = _split_tables(labels_in)
    landmark_rows, angle_rows = [], []
    for name in names:
        image = images[name]
        rows, cols = image.shape
        kept = image.csv_kept and image.csv_landmarks is not None
        row = (image.csv_landmarks if kept else image.fixed) / np.array([cols, rows])
        landmark_rows.append(_csv_row(np.concatenate([row[:, 0], row[:, 1]])))
        angles = old_angles.get(name)
        angle_rows.append(_csv_row(angles if angles is not None else _angles_or_zero(image)))
    write_text_atomic(labels_out / FILENAMES_CSV, "".join(f"{name}\n" for name in names))
    write_text_atomic(labels_out / LANDMARKS_CSV, "".join(landmark_rows))
    write_text_atomic(labels_out / ANGLES_CSV, "".join(angle_rows))
