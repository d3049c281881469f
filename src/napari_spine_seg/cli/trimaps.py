"""``spine-seg trimaps DATASET --out DIR``: trimap PNGs drawn from the landmarks.

One single-channel 8-bit PNG per image (1 spine, 2 background, 3 border), at the
image's size and named after it (:func:`~napari_spine_seg.data.masks.trimap_name`).
A data set with several splits gets one subfolder per split.
"""

from __future__ import annotations

import argparse

from ..data.trimaps import write_trimaps
from ..outputs import check_output
from ._command import add_command
from ._progress import progress

#: ``spine-seg trimaps`` in the list of subcommands, and the head of its --help
SUMMARY = "trimap PNGs from the landmarks of a data set"
DESCRIPTION = """\
Draw a trimap PNG (1 spine, 2 background, 3 border) for every image of DATASET from its
landmarks. DATASET is an AASCE root or one split folder data/<split>; with several splits
the trimaps go to DIR/<split>/.
"""


def add_parser(subparsers) -> argparse.ArgumentParser:
    """Register ``trimaps`` with the ``spine-seg`` subcommand parsers."""
    parser = add_command(subparsers, "trimaps", run, SUMMARY, DESCRIPTION)
    parser.add_argument("dataset", metavar="DATASET", help="AASCE root or split folder")
    parser.add_argument("--out", required=True, metavar="DIR", help="folder for the trimap PNGs")
    parser.add_argument(
        "--border",
        type=int,
        default=None,
        metavar="PX",
        help=(
            "border band half-width in pixels, 1 to a quarter of the narrowest image's "
            "width (default: 1%% of each image's width, at least 2)"
        ),
    )
    parser.add_argument(
        "--jobs", type=int, default=2, metavar="N", help="worker processes (default 2)"
    )
    return parser


def run(args: argparse.Namespace) -> int:
    """Write the trimaps that `args` asks for; return the exit status."""
    check_output(args.out, [args.dataset], folder=True)
    written = write_trimaps(
        args.dataset, args.out, border=args.border, jobs=args.jobs, progress=progress
    )
    print(f"wrote {len(written)} trimaps to {args.out}")
    return 0
