"""``spine-seg cobb SOURCE [--csv FILE] [--dataset DATASET]``: Cobb angles from landmarks or trimaps.

SOURCE is a data set with landmarks (an AASCE root or split folder: the challenge's
reference computation, :func:`napari_spine_seg.spine.cobb.cobb_angles`), a data set of
images with trimaps, or a folder holding only trimap PNGs (both measured on the spine
column's centre line, :func:`napari_spine_seg.spine.centreline.cobb_from_trimap`).

SOURCE may also be predicted landmarks: a prediction folder with ``landmarks/`` (what
``spine-seg predict`` writes with a model that finds vertebrae: ``landmarks/<image file
name>.mat`` for each image whose 17 vertebrae it found), or a folder of such ``.mat``
files. They are measured with the reference computation. The images are those of
``--dataset`` or, without it, the trimaps beside the landmarks (which also give each
image's height, which the reference computation needs). An image without a landmark
file is one row with no angles, a warning naming it, and, when scored, 0° for all three
angles. ``--trimaps`` measures a prediction folder's trimaps instead.

The CSV has the header ``file,pt,mt,tl`` and one row per image, the angles in degrees
in the order of the challenge's ``angles.csv`` (empty for an image without landmarks).
When the data set (SOURCE, or ``--dataset``) has ``angles.csv``, the mean absolute error
and the SMAPE against it are printed too (:func:`~napari_spine_seg.spine.cobb_eval.angle_scores`);
against ``--dataset`` without one, against the reference computation on its landmarks.

A trimap PNG that ``spine-seg predict`` wrote is marked as a network's prediction
(:func:`napari_spine_seg.data.masks.is_predicted_trimap`) and measured as one
(``outline="predicted"``); ``--predicted`` treats every trimap so, e.g. predictions
saved by another program.
"""

from __future__ import annotations

import argparse
import csv
import io
import sys
from pathlib import Path

import numpy as np

from ..atomic import check_writable_folder, write_text_atomic
from ..data.aasce import LANDMARKS_FOLDER, read_landmarks_mat
from ..data.dataset import open_dataset
from ..data.images import image_shape, is_image_file
from ..data.masks import is_predicted_trimap, looks_like_trimap, read_trimap_png, trimap_name
from ..errors import SpineSegError
from ..evaluate import (
    landmark_lines,
    landmark_scores,
    predicted_landmarks_path,
    reference_angles,
    scores_text,
    true_landmarks,
)
from ..outputs import check_output
from ..spine.centreline import cobb_from_trimap
from ..spine.cobb import cobb_angles
from ..spine.cobb_eval import angle_scores
from ..spine.vertebra_count import VERTEBRAE_FILE, count_message, read_vertebra_counts
from ..trimap import sort_landmarks
from ._command import add_command
from ._progress import progress

HEADER = ("file", "pt", "mt", "tl")


#: ``spine-seg cobb`` in the list of subcommands, and the head of its --help
SUMMARY = "Cobb angles from landmarks or from trimaps"
DESCRIPTION = """\
Compute the three Cobb angles (PT, MT, TL/L, in the order of the AASCE challenge's
angles.csv) of every image of SOURCE: a data set with landmarks (the challenge's reference
computation), a data set of images with trimaps, a folder of trimap PNGs (measured on the
spine column's centre line), or predicted landmarks: a prediction folder with landmarks/ or
a folder of .mat files (the reference computation; an image without a file is reported).
"""


def add_parser(subparsers) -> argparse.ArgumentParser:
    """Register ``cobb`` with the ``spine-seg`` subcommand parsers."""
    parser = add_command(subparsers, "cobb", run, SUMMARY, DESCRIPTION)
    parser.add_argument(
        "source",
        metavar="SOURCE",
        help="data set, folder of trimap PNGs, prediction folder, or folder of landmark .mat files",
    )
    parser.add_argument("--csv", metavar="FILE", default=None, help="write the angles here")
    parser.add_argument(
        "--dataset",
        metavar="DATASET",
        default=None,
        help=(
            "score SOURCE's angles against this data set's angles.csv (or its landmarks); "
            "with predicted landmarks, its images are the ones expected and its landmarks "
            "give the corner error"
        ),
    )
    parser.add_argument(
        "--trimaps",
        action="store_true",
        help="measure a prediction folder's trimaps even when it has landmarks/",
    )
    parser.add_argument(
        "--predicted",
        action="store_true",
        help=(
            "measure every trimap as a network's prediction (files written by "
            "spine-seg predict are recognised without it)"
        ),
    )
    return parser


def trimap_folder(path: Path) -> list[Path] | None:
    """The trimap PNGs of `path` when it holds trimaps and no other image; else None.

    A PNG meant as a trimap that holds stray values counts as a trimap here, so that
    reading it names the file and its bad values.
    """
    if not path.is_dir():
        return None
    files = sorted(p for p in path.iterdir() if p.is_file() and not p.name.startswith("."))
    images = [p for p in files if is_image_file(p)]
    if not images or any(p.suffix.lower() != ".png" or not looks_like_trimap(p) for p in images):
        return None
    return images


def _warn(path: Path, message: str) -> None:
    print(f"spine-seg cobb: warning: {path}: {message}", file=sys.stderr)


def _from_trimap(trimap: np.ndarray, path: Path, predicted: bool) -> np.ndarray:

    outline = "predicted" if predicted or is_predicted_trimap(path) else "auto"
    result = cobb_from_trimap(trimap, outline=outline, source=path)
    for message in result.warnings:
        _warn(path, message)
    return result.angles


def _trimap_rows(files: list[Path], predicted: bool):
    for path in files:
        yield path.name, _from_trimap(read_trimap_png(path), path, predicted)


def _dataset_rows(dataset, predicted: bool):

    for sample in dataset:
        if sample.landmarks_path is not None:
            # re-sorting corners and vertebrae changes nothing on the data set's own
            # order and rescues redistributions that store them otherwise
            landmarks = sort_landmarks(sample.load_landmarks())
            height = sample.image_shape()[0]
            yield sample.name, cobb_angles(landmarks, height, source=sample.landmarks_path)
        else:
            yield sample.name, _from_trimap(sample.load_trimap(), sample.trimap_path, predicted)


def _csv_text(rows: list[tuple[str, np.ndarray | None]]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(HEADER)
    for name, angles in rows:
        cells = ["", "", ""] if angles is None else [f"{a:.4f}" for a in angles]
        writer.writerow([name, *cells])
    return out.getvalue()


def _print_table(rows: list[tuple[str, np.ndarray | None]]) -> None:
    width = max(len("file"), *(len(name) for name, _ in rows))
    print(f"{'file':<{width}}  {'PT':>7}  {'MT':>7}  {'TL/L':>7}")
    for name, angles in rows:
        if angles is None:
            print(f"{name:<{width}}  no landmarks (17 vertebrae not found)")
        else:
            print(f"{name:<{width}}  " + "  ".join(f"{a:7.2f}" for a in angles))


def _print_scores(
    rows: list[tuple[str, np.ndarray | None]], reference: dict[str, np.ndarray], against: str
) -> None:

    known = [(angles, reference[name]) for name, angles in rows if name in reference]
    if not known:
        return
    scores = angle_scores([g for _, g in known], [p for p, _ in known])
    print(f"against {against} ({len(known)} images): {scores_text(scores)}")


def _landmark_images(folder: Path, source: Path, dataset) -> tuple[list[str], dict, dict]:
    """The images whose landmarks `folder` should hold, their heights, and their files.

    From `dataset` when given; else from the trimaps beside the landmark folder (a
    prediction folder's): each trimap ``x.png`` is the image whose landmark file is
    ``x.<suffix>.mat``, or, without one, stands for its image by its own name.
    """
    if dataset is not None:
        names = [s.name for s in dataset.samples]
        heights = {s.name: s.image_shape()[0] for s in dataset.samples}
        for path in _mat_files(folder):
            if path.name[: -len(".mat")] not in heights:
                _warn(path, "is not the landmark file of an image of the data set: ignored")
        return names, heights, {n: predicted_landmarks_path(folder, n) for n in names}
    beside = trimap_folder(folder.parent if folder == source else source) or []
    files = {p.name[: -len(".mat")]: p for p in _mat_files(folder)}
    if not beside:
        raise SpineSegError(
            folder,
            "holds landmark files but no trimaps beside them tell which images there are and "
            "their heights: give --dataset DATASET",
        )
    by_stem = {Path(name).stem: name for name in files}
    names, heights, paths = [], {}, {}
    for trimap in beside:
        name = by_stem.get(trimap.stem, trimap.name)
        names.append(name)
        heights[name] = image_shape(trimap)[0]
        paths[name] = files.get(name, predicted_landmarks_path(folder, name))
    extra = sorted(set(files) - set(names))
    if extra:
        raise SpineSegError(files[extra[0]], f"has no trimap {Path(extra[0]).stem}.png beside it")
    return names, heights, paths


def _mat_files(folder: Path) -> list[Path]:
    if not folder.is_dir():  # a vertebrae model that found 17 in no image wrote none
        return []
    return sorted(p for p in folder.iterdir() if p.is_file() and p.name.lower().endswith(".mat"))


def landmark_folder(path: Path) -> Path | None:
    """Where `path`'s predicted landmarks are: ``path/landmarks`` (also when a model that
    finds vertebrae wrote none there, its ``vertebrae.json`` says so), or `path` itself
    when it holds ``.mat`` files and no images; None when it has none."""
    if (path / LANDMARKS_FOLDER).is_dir() or (path / VERTEBRAE_FILE).is_file():
        return path / LANDMARKS_FOLDER
    if not path.is_dir():
        return None
    files = [p for p in path.iterdir() if p.is_file() and not p.name.startswith(".")]
    mats = [p for p in files if p.name.lower().endswith(".mat")]
    if mats and not any(is_image_file(p) for p in files):
        return path
    return None


def _landmark_rows(folder: Path, source: Path, dataset) -> tuple[list, dict]:
    """Rows ``(name, angles or None)`` of the predicted landmarks, and their scores."""
    names, heights, paths = _landmark_images(folder, source, dataset)
    counts = _vertebra_counts(folder)
    pred, rows = {}, []
    for name in names:
        path = paths[name]
        pred[name] = read_landmarks_mat(path) if path.is_file() else None
        if pred[name] is None:
            entry = counts.get(name)
            why = "17 vertebrae not found" if entry is None else count_message(**entry)
            _warn(folder, f"missing: no landmark file for image {name} ({why})")
            rows.append((name, None))
        else:
            rows.append((name, cobb_angles(pred[name], heights[name], source=path)))
    truth, angles, against = {}, {}, None
    if dataset is not None:
        truth = {s.name: true_landmarks(s) for s in dataset.samples}
        angles, against = reference_angles(dataset, list(dataset.samples), truth, heights)
    found = {name: entry["found"] for name, entry in counts.items()}
    scores = landmark_scores(pred, truth, angles, heights, folder=folder, counts=found)
    return rows, {"scores": scores, "against": against}


def _vertebra_counts(folder: Path) -> dict[str, dict]:
    """The vertebra counts ``spine-seg predict`` recorded beside a ``landmarks/`` folder
    (image name → ``{"found", "faults"}``); none for another folder of landmarks."""
    if folder.name != LANDMARKS_FOLDER:
        return {}
    return read_vertebra_counts(folder.parent / VERTEBRAE_FILE)


def run(args: argparse.Namespace) -> int:
    """Compute and report the Cobb angles of ``args.source``; return the exit status."""
    source = Path(args.source)
    inputs = [source, *([Path(args.dataset)] if args.dataset else [])]
    if args.csv:  # refused before the work: the data set's own angles.csv, an X-ray, …
        check_output(args.csv, inputs, suffixes=(".csv",))
        check_writable_folder(Path(args.csv).resolve().parent)
    dataset = open_dataset(args.dataset) if args.dataset else None
    folder = None if args.trimaps else landmark_folder(source)
    if folder is not None:
        return _run_landmarks(args, folder, source, dataset)
    files = trimap_folder(source)
    reference: dict[str, np.ndarray] = {}
    against = "angles.csv"
    if files is not None:
        items, total = _trimap_rows(files, args.predicted), len(files)
        if dataset is not None:
            reference, against = _by_trimap_name(dataset)
    else:
        own = open_dataset(source)
        reference = own.angles if dataset is None else dataset.angles
        items, total = _dataset_rows(own, args.predicted), len(own)
    rows = list(progress(items, total=total, desc="cobb", unit="image"))
    if args.csv:
        write_text_atomic(args.csv, _csv_text(rows))
    _print_table(rows)
    _print_scores(rows, reference, against)
    if args.csv:
        print(f"wrote {args.csv}")
    return 0


def _by_trimap_name(dataset) -> tuple[dict[str, np.ndarray], str]:
    """The data set's reference angles keyed by its images' trimap names (``x.png``), and
    what they are (``angles.csv`` or the landmarks' angles)."""
    samples = list(dataset.samples)
    truth = {s.name: true_landmarks(s) for s in samples}
    heights = {s.name: s.image_shape()[0] for s in samples if truth[s.name] is not None}
    angles, kind = reference_angles(dataset, samples, truth, heights)
    against = "the landmarks' angles" if kind == "landmarks" else "angles.csv"
    return {trimap_name(name): value for name, value in angles.items()}, against


def _run_landmarks(args: argparse.Namespace, folder: Path, source: Path, dataset) -> int:

    rows, report = _landmark_rows(folder, source, dataset)
    if args.csv:
        write_text_atomic(args.csv, _csv_text(rows))
    _print_table(rows)
    against = "the landmarks' angles" if report["against"] == "landmarks" else "angles.csv"
    for line in landmark_lines(report["scores"], against):
        print(line)
    if args.csv:
        print(f"wrote {args.csv}")
    return 0
