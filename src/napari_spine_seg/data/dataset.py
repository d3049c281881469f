"""Open a DATASET: an AASCE root or split folder, a folder of images with trimaps, or Pets.

:func:`open_dataset` only lists files: nothing is decoded until a :class:`Sample` is
asked for its image, landmarks or trimap, so a split of hundreds of X-rays opens at once.
The layouts it recognises, in this order:

``aasce``
    An AASCE root (``data/<split>/`` and ``labels/<split>/``; every split that has both)
    or one split folder ``data/<split>``. The landmarks of ``data/<split>/x y.jpg`` are
    ``labels/<split>/x y.jpg.mat``; when that file is missing and ``landmarks.csv`` of the
    split lists the image, the CSV is used instead.
``pets``
    The Oxford-IIIT Pets layout: ``images/*.jpg`` and ``annotations/trimaps/*.png``, split
    by ``annotations/trainval.txt`` and ``test.txt`` when they exist.
``folder``
    Images in a folder (or its ``images/`` subfolder) with trimap PNGs named after them
    (:func:`~napari_spine_seg.data.masks.trimap_name`) in a ``trimaps/`` or ``masks/``
    subfolder, or beside the images. Beside them, an image and its trimap share a stem
    and are told apart by content: the trimap is the single-channel PNG with values 0–3.
    A colour mask (:data:`~napari_spine_seg.data.masks.DEFAULT_COLOUR_MAP`) may stand in
    for a trimap.

Samples are sorted by split (training first, then validation, then test) and within a
split by file name.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import SpineSegError
from ..trimap import check_landmarks_inside, trimap_from_landmarks
from .aasce import (
    ANGLES_CSV,
    FILENAMES_CSV,
    LANDMARKS_CSV,
    aasce_splits,
    find_aasce_root,
    label_path,
    read_angles_csv,
    read_filenames_csv,
    read_landmarks_csv,
    read_landmarks_mat,
)
from .images import XRay, image_shape, is_image_file, read_xray
from .masks import is_trimap_image, looks_like_trimap, read_mask, read_trimap_png, trimap_name

#: subfolders holding the trimaps of a folder of images, in the order they are looked for
MASK_FOLDERS = ("trimaps", "masks")
_LAYOUTS = (
    "an AASCE root (data/ and labels/), one split folder data/<split>, a folder of images "
    "with trimap PNGs, or the Oxford-IIIT Pets layout (images/ and annotations/trimaps/)"
)


@dataclass(frozen=True)
class Sample:
    """One image of a data set and where its labels are; nothing is read until asked.

    Attributes
    ----------
    name : str
        The image's file name, e.g. ``"sunhl-1th-02-Jan-2017-162 A AP.jpg"``.
    image_path : pathlib.Path
    split : str or None
        ``"training"``, ``"test"``, … or None.
    landmarks_path : pathlib.Path or None
        A ``.mat`` file with ``p2``, or the split's ``landmarks.csv`` listing the image.
    trimap_path : pathlib.Path or None
        A trimap PNG or a colour mask.
    """

    name: str
    image_path: Path
    split: str | None = None
    landmarks_path: Path | None = None
    trimap_path: Path | None = None

    @property
    def has_labels(self) -> bool:
        """Whether the sample has landmarks or a trimap."""
        return self.landmarks_path is not None or self.trimap_path is not None

    def load_image(self) -> XRay:
        """Read the image (:func:`~napari_spine_seg.data.images.read_xray`)."""
        return read_xray(self.image_path)

    def image_shape(self) -> tuple[int, int]:
        """``(rows, cols)`` of the image, from its header."""
        return image_shape(self.image_path)

    def load_landmarks(self) -> np.ndarray | None:
        """The 68 landmarks ``(x, y)`` in pixels, or None when the sample has none.

        Landmarks from ``landmarks.csv`` are multiplied by the image's width and height.

        Raises
        ------
        SpineSegError
            When the landmark file is bad (see
            :func:`~napari_spine_seg.data.aasce.read_landmarks_mat`) or its landmarks lie
            outside the image (:func:`~napari_spine_seg.trimap.check_landmarks_inside`).
        """
        path = self.landmarks_path
        if path is None:
            return None
        if path.suffix.lower() != ".csv":
            landmarks = read_landmarks_mat(path)
            check_landmarks_inside(landmarks, self.image_shape(), path)
            return landmarks
        table = read_landmarks_csv(path.parent)
        if self.name not in table:
            raise SpineSegError(path.parent / FILENAMES_CSV, f"does not list {self.name}")
        rows, cols = self.image_shape()
        landmarks = table[self.name] * np.array([cols, rows], dtype=np.float64)
        check_landmarks_inside(landmarks, (rows, cols), path, row_of=self.name)
        return landmarks

    def load_trimap(self, border: int | None = None) -> np.ndarray:
        """The trimap (1 spine, 2 background, 3 border) at the image's size.

        Read from :attr:`trimap_path` when there is one (`border` is then ignored), else
        drawn from the landmarks
        (:func:`~napari_spine_seg.trimap.trimap_from_landmarks`).

        Parameters
        ----------
        border : int, optional
            Border band half-width in pixels for a trimap drawn from landmarks; default
            :func:`~napari_spine_seg.trimap.default_border` of the width.

        Raises
        ------
        SpineSegError
            When the sample has no labels, or the trimap's size differs from the image's.
        """
        if self.trimap_path is not None:
            trimap = read_mask(self.trimap_path)
            shape = self.image_shape()
            if trimap.shape != shape:
                raise SpineSegError(
                    self.trimap_path,
                    f"is {trimap.shape[0]} x {trimap.shape[1]} pixels but its image "
                    f"{self.name} is {shape[0]} x {shape[1]}",
                )
            return trimap
        landmarks = self.load_landmarks()
        if landmarks is None:
            raise SpineSegError(self.image_path, "has no labels: no landmarks and no trimap")
        return trimap_from_landmarks(landmarks, self.image_shape(), border)


@dataclass(frozen=True, eq=False)
class Dataset:
    """The samples of a data set, in order, and what the layout says about them.

    Attributes
    ----------
    root : pathlib.Path
        The folder opened (the AASCE root for an AASCE split folder).
    kind : str
        ``"aasce"``, ``"folder"`` or ``"pets"``.
    samples : tuple of Sample
    splits : tuple of str
        Split names present, in order (empty when the layout has none).
    angles : dict of str to (3,) ndarray
        Image name → Cobb angles (degrees) from ``angles.csv``; empty when there is none.
    """

    root: Path
    kind: str
    samples: tuple[Sample, ...]
    splits: tuple[str, ...] = ()
    angles: dict[str, np.ndarray] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.samples)

    def __iter__(self) -> Iterator[Sample]:
        return iter(self.samples)

    def __getitem__(self, key: int | str) -> Sample:
        """A sample by position, or by image file name."""
        if isinstance(key, str):
            for sample in self.samples:
                if sample.name == key:
                    return sample
            raise SpineSegError(self.root, f"has no image named {key!r}")
        return self.samples[key]

    def __repr__(self) -> str:
        return (
            f"Dataset(root={str(self.root)!r}, kind={self.kind!r}, "
            f"samples={len(self.samples)}, splits={self.splits!r})"
        )

    @property
    def names(self) -> tuple[str, ...]:
        """The samples' image file names, in order."""
        return tuple(s.name for s in self.samples)

    def split(self, name: str) -> Dataset:
        """The samples of one split, as a data set of its own.

        Raises
        ------
        SpineSegError
            When the data set has no such split.
        """
        if name not in self.splits:
            known = ", ".join(self.splits) if self.splits else "none"
            raise SpineSegError(self.root, f"has no split {name!r} (splits: {known})")
        samples = tuple(s for s in self.samples if s.split == name)
        names = {s.name for s in samples}
        angles = {k: v for k, v in self.angles.items() if k in names}
        return Dataset(self.root, self.kind, samples, (name,), angles)


def open_dataset(path: str | os.PathLike, *, require_labels: bool = True) -> Dataset:
    """Open a DATASET folder by listing its files (no image is decoded).

    Parameters
    ----------
    path : path-like
        An AASCE root, one split folder ``data/<split>``, a folder of images with
        trimaps, or an Oxford-IIIT Pets root (see the module's description).
    require_labels : bool
        When True (the default) every image must have landmarks or a trimap and every
        label file an image. When False, images without labels are kept (with no
        ``landmarks_path`` or ``trimap_path``) and stray label files are ignored.

    Returns
    -------
    Dataset

    Raises
    ------
    SpineSegError
        When the folder does not exist, is empty, has no known layout, or (with
        `require_labels`) an image has no labels or a label file has no image; the
        message names the file.
    """
    path = Path(path)
    if not path.exists():
        raise SpineSegError(path, "does not exist")
    if not path.is_dir():
        raise SpineSegError(path, f"is a file; a data set is a folder: {_LAYOUTS}")
    found = find_aasce_root(path)
    if found is not None:
        return _open_aasce(found[0], found[1], require_labels)
    if (path / "images").is_dir() and (path / "annotations" / "trimaps").is_dir():
        return _open_pets(path, require_labels)
    images = _list_images(path)
    if images:
        return _open_folder(path, path, images, require_labels)
    if (path / "images").is_dir() and any((path / sub).is_dir() for sub in MASK_FOLDERS):
        return _open_folder(path, path / "images", _list_images(path / "images"), require_labels)
    if not any(not name.startswith(".") for name in os.listdir(path)):
        raise SpineSegError(path, "is empty")
    raise SpineSegError(path, f"holds no images and is not a data set; expected {_LAYOUTS}")


def _list_files(folder: Path) -> list[os.DirEntry]:
    try:
        entries = list(os.scandir(folder))
    except OSError as exc:
        raise SpineSegError(folder, f"cannot be listed ({exc.strerror or exc})") from exc
    return sorted((e for e in entries if not e.name.startswith(".") and e.is_file()), key=_name)


def _name(entry: os.DirEntry) -> str:
    return entry.name


def _list_images(folder: Path) -> list[Path]:
    """Image files directly in `folder`, sorted by name (decided by suffix, or DICOM magic)."""
    return [Path(e.path) for e in _list_files(folder) if is_image_file(e.path)]


# --------------------------------------------------------------------------- AASCE


def _open_aasce(root: Path, split: str | None, require_labels: bool) -> Dataset:
    splits = (split,) if split is not None else aasce_splits(root)
    if not splits:
        raise SpineSegError(
            root / "data", "holds no split folder with a matching labels/<split> folder"
        )
    samples: list[Sample] = []
    present: list[str] = []
    angles: dict[str, np.ndarray] = {}
    for name in splits:
        found = _aasce_split_samples(root, name, require_labels)
        if not found:
            continue  # an empty split of a root (e.g. no test images yet) is left out
        samples.extend(found)
        present.append(name)
        labels_dir = root / "labels" / name
        if (labels_dir / ANGLES_CSV).is_file() and (labels_dir / FILENAMES_CSV).is_file():
            angles.update(read_angles_csv(labels_dir))
    if not samples:
        folder = root / "data" / split if split is not None else root / "data"
        raise SpineSegError(folder, "holds no images")
    return Dataset(root, "aasce", tuple(samples), tuple(present), angles)


def _aasce_split_samples(root: Path, split: str, require_labels: bool) -> list[Sample]:
    data_dir, labels_dir = root / "data" / split, root / "labels" / split
    images = _list_images(data_dir)
    mats = {
        e.name[: -len(".mat")]: Path(e.path)
        for e in _list_files(labels_dir)
        if e.name.lower().endswith(".mat")
    }
    in_csv = _names_in_landmarks_csv(labels_dir)
    samples = []
    for image in images:
        landmarks = mats.get(image.name)
        if landmarks is None and image.name in in_csv:
            landmarks = labels_dir / LANDMARKS_CSV
        if landmarks is None and require_labels:
            expected = label_path(root, split, image.name)
            raise SpineSegError(
                image, f"has no landmarks: no {expected} and {LANDMARKS_CSV} does not list it"
            )
        samples.append(Sample(image.name, image, split, landmarks_path=landmarks))
    if require_labels:
        names = {image.name for image in images}
        for image_name, mat in mats.items():
            if image_name not in names:
                raise SpineSegError(mat, f"has no image: no {data_dir / image_name}")
        listed = read_filenames_csv(labels_dir) if (labels_dir / FILENAMES_CSV).is_file() else []
        for image_name in listed:
            if image_name not in names:
                raise SpineSegError(
                    labels_dir / FILENAMES_CSV,
                    f"names {image_name}, which is not an image in {data_dir}",
                )
    return samples


def _names_in_landmarks_csv(labels_dir: Path) -> set[str]:
    """Images that ``landmarks.csv`` can stand in for: the names in ``filenames.csv``."""
    if (labels_dir / LANDMARKS_CSV).is_file() and (labels_dir / FILENAMES_CSV).is_file():
        return set(read_filenames_csv(labels_dir))
    return set()


# --------------------------------------------------------------------------- folders


def _open_folder(root: Path, image_dir: Path, images: list[Path], require_labels: bool) -> Dataset:
    mask_dir = _mask_folder(root)
    if mask_dir is None:
        images, masks = _split_beside(images)
    else:
        masks = {Path(e.path).name: Path(e.path) for e in _list_files(mask_dir) if _is_png(e)}
    if not images:
        raise SpineSegError(image_dir, "holds no images")
    samples = _pair_with_masks(images, masks, mask_dir or image_dir, require_labels)
    return Dataset(root, "folder", tuple(samples), (), {})


def _is_png(entry: os.DirEntry) -> bool:
    return entry.name.lower().endswith(".png")


def _mask_folder(root: Path) -> Path | None:
    """The first of ``trimaps/``, ``masks/`` that holds a PNG; None for trimaps beside."""
    for sub in MASK_FOLDERS:
        folder = root / sub
        if folder.is_dir() and any(_is_png(e) for e in _list_files(folder)):
            return folder
    return None


def _split_beside(files: list[Path]) -> tuple[list[Path], dict[str, Path]]:
    """Tell images from trimaps in one folder: a PNG named like another image's trimap
    that is a trimap by content (one channel, values 1–3, see
    :func:`~napari_spine_seg.data.masks.looks_like_trimap`: a few stray values are
    reported when it is read, not taken for an X-ray) is that image's trimap."""
    wanted = {trimap_name(p.name) for p in files if p.suffix.lower() != ".png"}
    masks = {
        p.name: p
        for p in files
        if p.suffix.lower() == ".png" and p.name in wanted and looks_like_trimap(p)
    }
    images = [p for p in files if p.name not in masks]
    return images, masks


def _pair_with_masks(
    images: list[Path], masks: dict[str, Path], mask_dir: Path, require_labels: bool
) -> list[Sample]:
    samples = []
    for image in images:
        mask = masks.get(trimap_name(image.name))
        if mask is None and require_labels:
            _raise_no_trimap(image, mask_dir)
        samples.append(Sample(image.name, image, None, trimap_path=mask))
    if require_labels:
        used = {trimap_name(image.name) for image in images}
        for name, mask in masks.items():
            if name not in used:
                raise SpineSegError(mask, "is a trimap without an image of the same name")
    return samples


def _raise_no_trimap(image: Path, mask_dir: Path) -> None:
    if image.suffix.lower() == ".png" and looks_like_trimap(image):
        if not is_trimap_image(image):
            read_trimap_png(image)  # raises, naming the stray values
        raise SpineSegError(image, "is a trimap without an image of the same name")
    raise SpineSegError(image, f"has no trimap: no {mask_dir / trimap_name(image.name)}")


# --------------------------------------------------------------------------- Pets


def _open_pets(root: Path, require_labels: bool) -> Dataset:
    image_dir, mask_dir = root / "images", root / "annotations" / "trimaps"
    images = _list_images(image_dir)
    if not images:
        raise SpineSegError(image_dir, "holds no images")
    masks = {Path(e.path).name: Path(e.path) for e in _list_files(mask_dir) if _is_png(e)}
    split_of = _pets_splits(root / "annotations")
    samples = [
        Sample(s.name, s.image_path, split_of.get(s.image_path.stem), trimap_path=s.trimap_path)
        for s in _pair_with_masks(images, masks, mask_dir, require_labels)
    ]
    present = {s.split for s in samples}
    splits = tuple(name for name in ("trainval", "test") if name in present)
    order = {name: i for i, name in enumerate(splits)}
    samples.sort(key=lambda s: (order.get(s.split, len(order)), s.name))
    return Dataset(root, "pets", tuple(samples), splits, {})


def _pets_splits(annotations: Path) -> dict[str, str]:
    """Image stem → split from ``trainval.txt`` and ``test.txt`` (first word of a line)."""
    split_of: dict[str, str] = {}
    for split in ("trainval", "test"):
        listing = annotations / f"{split}.txt"
        if not listing.is_file():
            continue
        for line in listing.read_text(encoding="utf-8", errors="replace").splitlines():
            words = line.split()
            if words and not words[0].startswith("#"):
                split_of[words[0]] = split
    return split_of
