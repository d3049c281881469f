"""``spine-seg check DATASET [--json FILE] [--fix --out DIR]``: faults in the landmarks.

Reads every image's landmarks of an AASCE-layout data set (the ``.mat`` files,
``landmarks.csv`` and ``angles.csv``), reports each fault found
(:func:`napari_spine_seg.data.landmark_check.check_dataset`; the kinds are described in
``docs/landmarks.md``) and, with ``--fix --out DIR``, writes a corrected copy of the data
set with only the certain fixes applied
(:func:`napari_spine_seg.data.landmark_check.write_fixed_copy`). The data set itself is
never written to. Exits 0 whether or not faults were found; 2 for input it cannot read.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from ..atomic import check_writable_folder, write_text_atomic
from ..data.dataset import open_dataset
from ..data.landmark_check import check_dataset, check_output_folder, write_fixed_copy
from ..errors import SpineSegError
from ._command import add_command
from ._progress import progress

#: how many of the worst images the summary lists
WORST_SHOWN = 10


#: ``spine-seg check`` in the list of subcommands, and the head of its --help
SUMMARY = "find faults in a data set's landmarks (and write a corrected copy)"
DESCRIPTION = """\
Check the landmarks of every image of an AASCE-layout DATASET: vertebrae out of order,
swapped corners, misplaced corners, points outside the image, duplicated vertebrae, missing
or extra end plates, .mat and landmarks.csv disagreeing, and recorded angles disagreeing
with the landmarks. Prints a summary; the data set is only read.
"""


def add_parser(subparsers) -> argparse.ArgumentParser:
    """Register ``check`` with the ``spine-seg`` subcommand parsers."""
    parser = add_command(subparsers, "check", run, SUMMARY, DESCRIPTION)
    parser.add_argument("dataset", metavar="DATASET", help="AASCE root or data/<split> folder")
    parser.add_argument(
        "--json", metavar="FILE", default=None, help="write every fault of every image here"
    )
    parser.add_argument(
        "--fix",
        action="store_true",
        help="write a corrected copy (needs --out) with only the certain fixes applied",
    )
    parser.add_argument(
        "--out", metavar="DIR", default=None, help="folder for the corrected copy (with --fix)"
    )
    parser.add_argument(
        "--angle-tolerance",
        type=float,
        default=5.0,
        metavar="DEG",
        help="recorded and computed Cobb angles may differ by this much (default 5)",
    )
    return parser


def _print_summary(check) -> None:
    counts = check.counts()
    faulty = check.faulty()
    total = sum(counts.values())
    print(
        f"checked {len(check.images)} images: {total} faults in {len(faulty)} images "
        f"({sum(f.fix for i in check.images for f in i.faults)} with a certain fix)"
    )
    for kind, n in counts.most_common():
        print(f"  {kind:<20} {n}")
    if not faulty:
        return
    print("worst images:")
    for image in faulty[:WORST_SHOWN]:
        kinds = ", ".join(sorted({f.kind for f in image.faults}))
        print(f"  {len(image.faults):3d}  {image.key}  ({kinds})")
    if len(faulty) > WORST_SHOWN:
        print(f"  ... and {len(faulty) - WORST_SHOWN} more (--json FILE lists them all)")


def run(args: argparse.Namespace) -> int:
    """Check ``args.dataset``; write the JSON report and the corrected copy if asked."""
    if args.fix != (args.out is not None):
        raise SpineSegError(None, "--fix and --out DIR go together")
    if args.angle_tolerance < 0:
        raise SpineSegError(
            None, f"--angle-tolerance must be 0 or more, not {args.angle_tolerance}"
        )
    root = open_dataset(args.dataset).root.resolve()
    # refused before anything is written: nothing goes into the data set
    if args.out is not None:
        check_output_folder(root, args.out)
    if args.json:
        report = Path(args.json).resolve()
        if root in report.parents:
            raise SpineSegError(args.json, f"is inside the data set {root}; write it elsewhere")
        check_writable_folder(report.parent)
    check = check_dataset(args.dataset, angle_tolerance=args.angle_tolerance, progress=progress)
    if args.json:
        write_text_atomic(args.json, json.dumps(check.to_json(), indent=1) + "\n")
    _print_summary(check)
    if args.json:
        print(f"wrote {args.json}")
    if args.fix:
        out = write_fixed_copy(check, args.out, progress=progress)
        print(f"wrote the corrected copy to {out} (what changed: {out / 'fixes.json'})")
    return 0
