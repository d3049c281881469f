"""``spine-seg evaluate PRED_DIR DATASET [--json FILE]``: score predicted trimaps and landmarks."""

from __future__ import annotations

import argparse

from ..atomic import check_writable_folder
from ..evaluate import evaluate, write_report_json
from ..outputs import check_output
from ._command import add_command
from ._progress import progress

#: ``spine-seg evaluate`` in the list of subcommands, and the head of its --help
SUMMARY = "score predicted trimaps (and landmarks) against a dataset"
DESCRIPTION = """\
Compare the trimap PNGs in PRED_DIR (named after the images) with DATASET's labels: pixel
accuracy over the three classes, spine Dice and IoU ignoring the ground truth's border band,
and HD95 of the spine outlines in pixels; Cobb MAE and SMAPE against angles.csv (or the
landmarks' angles). When PRED_DIR has landmarks/ (predicted vertebra corners,
landmarks/<image file name>.mat), also the share of images whose 17 vertebrae were found,
the mean corner error (px and % of the image height) and the Cobb MAE and SMAPE of the
landmarks, an image without landmarks scored as 0 deg. Prints a table; --json also writes
every score.
"""


def add_parser(subparsers) -> argparse.ArgumentParser:
    """Add the ``evaluate`` subcommand."""
    p = add_command(subparsers, "evaluate", run, SUMMARY, DESCRIPTION)
    p.add_argument("pred_dir", metavar="PRED_DIR", help="folder of predicted trimap PNGs")
    p.add_argument("dataset", metavar="DATASET", help="AASCE root or split, or image+trimap folder")
    p.add_argument("--json", metavar="FILE", help="write the per-image and mean scores as JSON")
    return p


def run(args: argparse.Namespace) -> int:
    """Evaluate, print the table, and write the JSON when asked."""
    from pathlib import Path

    if args.json:  # fail before the work, not after it
        check_output(args.json, [args.pred_dir, args.dataset], suffixes=(".json",))
        check_writable_folder(Path(args.json).parent)
    report = evaluate(
        args.pred_dir,
        args.dataset,
        progress=lambda it, n: progress(it, total=n, desc="evaluate", unit="image"),
    )
    print(report.table())
    if args.json:
        write_report_json(report, args.json)
        print(f"wrote {args.json}")
    return 0
