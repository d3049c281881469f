"""``spine-seg cobb SOURCE [--csv FILE]``: Cobb angles from landmarks or from trimaps.

SOURCE is a data set with landmarks (an AASCE root or split folder: the challenge's
reference computation, :func:`napari_spine_seg.spine.cobb.cobb_angles`), a data set of
images with trimaps, or a folder holding only trimap PNGs (both measured on the spine
column's centre line, :func:`napari_spine_seg.spine.centreline.cobb_from_trimap`).

The CSV has the header ``file,pt,mt,tl`` and one row per image, the angles in degrees
in the order of the challenge's ``angles.csv``. When the data set has ``angles.csv``,
the mean absolute error and the SMAPE against it are printed too.

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

from ._command import add_command

HEADER = ("file", "pt", "mt", "tl")


#: ``spine-seg cobb`` in the list of subcommands, and the head of its --help
SUMMARY = "Cobb angles from landmarks or from trimaps"
DESCRIPTION = """\
Compute the three Cobb angles (PT, MT, TL/L, in the order of the AASCE challenge's
angles.csv) of every image of SOURCE: a data set with landmarks (the challenge's reference
computation), a data set of images with trimaps, or a folder of trimap PNGs (measured on the
spine column's centre line).
"""


def add_parser(subparsers) -> argparse.ArgumentParser:
    """Register ``cobb`` with the ``spine-seg`` subcommand parsers."""
    parser = add_command(subparsers, "cobb", run, SUMMARY, DESCRIPTION)
    parser.add_argument("source", metavar="SOURCE", help="data set or folder of trimap PNGs")
    parser.add_argument("--csv", metavar="FILE", default=None, help="write the angles here")
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
    from ..data.images import is_image_file
    from ..data.masks import looks_like_trimap

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
    from ..data.masks import is_predicted_trimap
    from ..spine.centreline import cobb_from_trimap

    outline = "predicted" if predicted or is_predicted_trimap(path) else "auto"
    result = cobb_from_trimap(trimap, outline=outline, source=path)
    for message in result.warnings:
        _warn(path, message)
    return result.angles


def _trimap_rows(files: list[Path], predicted: bool):
    from ..data.masks import read_trimap_png

    for path in files:
        yield path.name, _from_trimap(read_trimap_png(path), path, predicted)


def _dataset_rows(dataset, predicted: bool):
    from ..spine.cobb import cobb_angles
    from ..trimap import sort_landmarks

    for sample in dataset:
        if sample.landmarks_path is not None:
            # re-sorting corners and vertebrae changes nothing on the data set's own
            # order and rescues redistributions that store them otherwise
            landmarks = sort_landmarks(sample.load_landmarks())
            height = sample.image_shape()[0]
            yield sample.name, cobb_angles(landmarks, height, source=sample.landmarks_path)
        else:
            yield sample.name, _from_trimap(sample.load_trimap(), sample.trimap_path, predicted)


def _csv_text(rows: list[tuple[str, np.ndarray]]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(HEADER)
    for name, angles in rows:
        writer.writerow([name, *(f"{a:.4f}" for a in angles)])
    return out.getvalue()


def _print_table(rows: list[tuple[str, np.ndarray]]) -> None:
    width = max(len("file"), *(len(name) for name, _ in rows))
    print(f"{'file':<{width}}  {'PT':>7}  {'MT':>7}  {'TL/L':>7}")
    for name, angles in rows:
        print(f"{name:<{width}}  " + "  ".join(f"{a:7.2f}" for a in angles))


def _print_scores(rows: list[tuple[str, np.ndarray]], reference: dict[str, np.ndarray]) -> None:
    from ..spine.cobb import smape

    known = [(angles, reference[name]) for name, angles in rows if name in reference]
    if not known:
        return
    pred = np.array([p for p, _ in known])
    gt = np.array([g for _, g in known])
    mae = np.abs(pred - gt).mean(axis=0)
    print(
        f"against angles.csv ({len(known)} images): MAE {mae.mean():.2f} deg "
        f"(PT {mae[0]:.2f}, MT {mae[1]:.2f}, TL/L {mae[2]:.2f}), SMAPE {smape(gt, pred):.2f} %"
    )


def run(args: argparse.Namespace) -> int:
    """Compute and report the Cobb angles of ``args.source``; return the exit status."""
    from ..atomic import check_writable_folder, write_text_atomic
    from ..data.dataset import open_dataset
    from ..outputs import check_output
    from ._progress import progress

    source = Path(args.source)
    if args.csv:  # refused before the work: the data set's own angles.csv, an X-ray, …
        check_output(args.csv, [source], suffixes=(".csv",))
        check_writable_folder(Path(args.csv).resolve().parent)
    files = trimap_folder(source)
    if files is not None:
        reference: dict[str, np.ndarray] = {}
        items, total = _trimap_rows(files, args.predicted), len(files)
    else:
        dataset = open_dataset(source)
        reference = dataset.angles
        items, total = _dataset_rows(dataset, args.predicted), len(dataset)
    rows = list(progress(items, total=total, desc="cobb", unit="image"))
    if args.csv:
        write_text_atomic(args.csv, _csv_text(rows))
    _print_table(rows)
    _print_scores(rows, reference)
    if args.csv:
        print(f"wrote {args.csv}")
    return 0
