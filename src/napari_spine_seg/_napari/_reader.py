"""npe2 readers: data sets, X-ray files, trimap PNGs and colour masks.

Each ``get_*_reader(path)`` returns a reader function for what it handles and None
for anything else; it never raises. A reader function never raises either: a bad file
becomes a napari error notification naming the file and the problem, and the reader
returns napari's "nothing to add" value ``[(None,)]``.

Data sets (folders; the manifest lists the AASCE reader before the Pets one):

- **AASCE layout** (``data/<split>`` + ``labels/<split>``): a split folder opens as a lazy
  stack of its X-rays, its trimaps (drawn from the landmarks, lazily) as Labels and
  its landmarks as Points ``(slice, row, col)``, aligned slice by slice; slices are
  padded to the split's largest image, top-left aligned (see :mod:`._stack`). A root
  (or its ``data/`` folder) with several splits opens **its training split** (the first
  of training/train/validation/…/test) and a notification names the other splits and
  how to open them.
- **Oxford-IIIT Pets layout** (``images/`` + ``annotations/trimaps/``): the same stack of
  images and trimaps (no landmarks).

A data set opens even when some of its images have no labels, or its ``filenames.csv``
names an image that is not there; a warning notification says which.

Files (told apart by content, not by name: see :mod:`._sniff`):

- **X-ray** (JPEG, PNG, TIFF, DICOM): an Image layer, scaled by the DICOM pixel spacing
  (mm) when the file states one. When the file sits in an AASCE layout its landmarks
  and trimap open with it; in a Pets layout (or beside a ``trimaps/`` or ``masks/``
  folder) its trimap does.
- **trimap PNG** (one channel, values 0–3): a Labels layer named ``<image> trimap``
  (the file is named after its image); a prediction's ``drawn-by`` mark is kept in the
  layer's metadata, so File > Save writes it again.
- **colour mask** (red, green, blue regions): a trimap Labels layer (``<image> trimap``), by the colour
  mapping of :mod:`napari_spine_seg.data.colour_map` (default red spine, green background, blue border;
  ``colours.json`` beside the mask or ``SPINE_SEG_COLOURS`` change it).
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..data.aasce import (
    FILENAMES_CSV,
    aasce_splits,
    find_aasce_root,
    label_path,
    read_filenames_csv,
    read_landmarks_mat,
)
from ..data.colour_map import colour_map_for
from ..data.dataset import open_dataset
from ..data.images import read_xray
from ..data.masks import (
    is_predicted_trimap,
    read_colour_mask,
    read_mask,
    read_trimap_png,
    trimap_name,
)
from ..errors import SpineSegError
from ..trimap import trimap_from_landmarks
from ._layers import image_layer, landmarks_layer, point_size, trimap_layer
from ._notify import notify_error, notify_info, notify_warning
from ._sniff import file_kind
from ._stack import stack_layers

ReaderFunction = Callable[[Any], list[tuple]]
NOTHING = [(None,)]


def _single_path(path) -> Path | None:
    if isinstance(path, list | tuple):
        if len(path) != 1:
            return None
        path = path[0]
    try:
        return Path(os.fspath(path))
    except TypeError:
        return None


def _paths(path) -> list[Path]:
    items = path if isinstance(path, list | tuple) else [path]
    return [Path(os.fspath(p)) for p in items]


def _guarded(build: Callable[[Path], list[tuple]], path: Path) -> list[tuple]:
    """Run `build(path)`; turn any failure into a notification naming the file."""
    try:
        layers = build(path)
    except SpineSegError as exc:
        notify_error(str(exc))
        return NOTHING
    except Exception as exc:  # the napari open path must never see a traceback
        notify_error(f"{path}: cannot be opened ({type(exc).__name__}: {exc})")
        return NOTHING
    return layers or NOTHING


# --------------------------------------------------------------------------- data sets


def _is_pets_root(path: Path) -> bool:
    return (path / "images").is_dir() and (path / "annotations" / "trimaps").is_dir()


def get_aasce_reader(path) -> ReaderFunction | None:
    """Reader for an AASCE-layout root, its ``data/`` folder or a split ``data/<split>``."""
    folder = _single_path(path)
    try:
        if folder is None or not folder.is_dir():
            return None

        if find_aasce_root(folder) is None:
            return None
    except Exception:  # a reader probe never raises
        return None
    return functools.partial(_read_dataset_folder, folder=folder)


def get_pets_reader(path) -> ReaderFunction | None:
    """Reader for an Oxford-IIIT Pets-layout folder (``images/`` + ``annotations/trimaps/``)."""
    folder = _single_path(path)
    try:
        if folder is None or not folder.is_dir() or not _is_pets_root(folder):
            return None
    except OSError:
        return None
    return functools.partial(_read_dataset_folder, folder=folder)


def _read_dataset_folder(path, stack: bool = False, *, folder: Path) -> list[tuple]:
    return _guarded(_dataset_layers, folder)


def _dataset_layers(folder: Path) -> list[tuple]:

    found = find_aasce_root(folder)
    if found is not None and found[1] is None:
        root = found[0]
        splits = aasce_splits(root)
        if not splits:
            raise SpineSegError(
                root, "has no split folder data/<split> with a matching labels/<split>"
            )
        split = splits[0]
        if len(splits) > 1:
            others = ", ".join(str(root / "data" / s) for s in splits[1:])
            notify_info(
                f"{root}: opened the {split!r} split; open {others} to browse the other split(s)"
            )
        dataset = open_dataset(root / "data" / split, require_labels=False)
        _warn_about_labels(dataset, root / "data" / split)
        return stack_layers(list(dataset), name=split, source=str(root / "data" / split))
    dataset = open_dataset(folder, require_labels=False)
    _warn_about_labels(dataset, folder)
    name = found[1] if found is not None else folder.name
    return stack_layers(list(dataset), name=name, source=str(folder))


def _listing(names: list[str]) -> str:
    more = f"; … ({len(names)} in all)" if len(names) > 3 else ""
    return "; ".join(names[:3]) + more


def _warn_about_labels(dataset, source: Path) -> None:
    """Warn about images without labels, and names in ``filenames.csv`` without an image."""
    unlabelled = [s.name for s in dataset.samples if not s.has_labels]
    if unlabelled:
        notify_warning(
            f"{source}: {len(unlabelled)} image(s) have no landmarks or trimap (their "
            f"trimap slice is empty): {_listing(unlabelled)}"
        )
    if dataset.kind != "aasce":
        return
    for split in dataset.splits:
        labels = Path(dataset.root) / "labels" / split
        if not (labels / FILENAMES_CSV).is_file():
            continue
        try:
            listed = read_filenames_csv(labels)
        except SpineSegError as exc:
            notify_warning(str(exc))
            continue
        present = {s.name for s in dataset.samples if s.split == split}
        missing = [name for name in listed if name not in present]
        if missing:
            notify_warning(
                f"{labels / FILENAMES_CSV}: names {len(missing)} image(s) not in "
                f"{Path(dataset.root) / 'data' / split}: {_listing(missing)}"
            )


# --------------------------------------------------------------------------- single files


def _file_reader(kind: str, read_one: Callable[[Path], list[tuple]]) -> Callable:
    def get_reader(path) -> ReaderFunction | None:
        try:
            paths = _paths(path)
            if not paths or any(file_kind(p) != kind for p in paths):
                return None
        except Exception:  # a reader probe never raises
            return None
        return functools.partial(_read_files, paths=paths, read_one=read_one)

    return get_reader


def _read_files(path, stack: bool = False, *, paths: list[Path], read_one) -> list[tuple]:
    layers = []
    for p in paths:
        layers.extend(layer for layer in _guarded(read_one, p) if layer[0] is not None)
    return layers or NOTHING


def _read_trimap(path: Path) -> list[tuple]:
    trimap = read_trimap_png(path)
    # the prediction's mark rides on the layer, so File > Save writes it again
    meta = {
        "path": str(path),
        "image_shape": list(trimap.shape),
        "predicted": is_predicted_trimap(path),
    }
    return [trimap_layer(trimap, name=_trimap_layer_name(path), metadata=meta)]


def _trimap_layer_name(path: Path) -> str:
    """``<image> trimap``: a trimap file is named after its image, whose layer has that name."""
    return f"{path.stem} trimap"


def _read_colour_mask(path: Path) -> list[tuple]:

    colour_map, source = colour_map_for(path)
    trimap = read_colour_mask(path, colour_map)
    meta = {
        "path": str(path),
        "image_shape": list(trimap.shape),
        "colour_map": None if source is None else str(source),
    }
    return [trimap_layer(trimap, name=_trimap_layer_name(path), metadata=meta)]


def _companion_trimap(path: Path) -> Path | None:
    """A trimap file for the image `path` in a Pets layout or a trimaps/masks folder."""
    name = trimap_name(path.name)
    candidates = (
        [path.parent.parent / "annotations" / "trimaps" / name]
        if path.parent.name == "images"
        else []
    )
    candidates += [path.parent / "trimaps" / name, path.parent / "masks" / name]
    return next((c for c in candidates if c.is_file()), None)


def _read_xray(path: Path) -> list[tuple]:
    xray = read_xray(path)
    meta = {
        "path": str(path),
        "image_shape": list(xray.shape),
        "spacing": None if xray.spacing is None else list(xray.spacing),
    }
    layers = [image_layer(xray.pixels, name=path.stem, scale=xray.spacing, metadata=meta)]
    mat = _landmarks_file(path)
    if mat is not None:
        return layers + _landmark_layers(mat, path.stem, xray.shape, xray.spacing, meta)
    return layers + _companion_layers(path, path.stem, xray.spacing, meta)


def _read_or_say(read, path: Path, what: str):
    """``read(path)``, or None after saying that the image opens without its `what`."""
    try:
        return read(path)
    except SpineSegError as exc:
        notify_error(f"{exc} (the image opens without its {what})")
        return None


def _landmarks_file(path: Path) -> Path | None:
    """The landmark file of an image of an AASCE split, when there is one."""
    found = find_aasce_root(path.parent)
    if found is None or found[1] is None:
        return None
    mat = label_path(found[0], found[1], path.name)
    return mat if mat.is_file() else None


def _landmark_layers(mat: Path, name: str, shape, scale, meta: dict) -> list[tuple]:
    """The trimap drawn from an image's landmarks and the landmarks (none if unreadable)."""
    landmarks = _read_or_say(read_landmarks_mat, mat, "landmarks")
    if landmarks is None:
        return []
    lm_meta = {**meta, "landmarks_path": str(mat)}
    trimap = trimap_from_landmarks(landmarks, shape)
    return [
        trimap_layer(trimap, name=f"{name} trimap", scale=scale, metadata=lm_meta),
        landmarks_layer(
            landmarks,
            name=f"{name} landmarks",
            size=point_size(shape[1]),
            scale=scale,
            metadata=lm_meta,
        ),
    ]


def _companion_layers(path: Path, name: str, scale, meta: dict) -> list[tuple]:
    """The trimap saved beside an image (:func:`_companion_trimap`), if any and readable."""
    trimap_file = _companion_trimap(path)
    if trimap_file is None:
        return []
    trimap = _read_or_say(read_mask, trimap_file, "trimap")
    if trimap is None:
        return []
    trimap_meta = {**meta, "trimap_path": str(trimap_file)}
    return [trimap_layer(trimap, name=f"{name} trimap", scale=scale, metadata=trimap_meta)]


get_trimap_reader = _file_reader("trimap", _read_trimap)
get_trimap_reader.__doc__ = "Reader for trimap PNGs (one channel, values 0–3; by content)."
get_colour_mask_reader = _file_reader("colour", _read_colour_mask)
get_colour_mask_reader.__doc__ = "Reader for hand-painted colour masks (by content)."
get_xray_reader = _file_reader("xray", _read_xray)
get_xray_reader.__doc__ = (
    "Reader for X-ray files: JPEG, PNG, TIFF, DICOM (not trimaps or colour masks)."
)
