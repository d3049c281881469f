"""``spine-seg demo [--out DIR]``: phantoms → train → predict → evaluate → overlays + report."""

from __future__ import annotations

import argparse
import sys

from ..demo import run_demo
from ..demo_report import TARGETS
from ..evaluate import landmark_lines, scores_text
from ..outputs import check_output
from ._command import add_command
from ._progress import progress
from .train import TrainBars

#: ``spine-seg demo`` in the list of subcommands, and the head of its --help
SUMMARY = "the whole job on phantoms, end to end"
DESCRIPTION = """\
Make a phantom X-ray set, train the default U-Net, predict the test split, score it
(trimaps, and with a model that finds vertebrae the landmarks too: vertebrae found, corner
error, Cobb angles from landmarks beside those from trimaps), and write overlays and a
Markdown report (with training curves) to DIR. About 10 minutes on 2 CPU cores.
"""


def add_parser(subparsers) -> argparse.ArgumentParser:
    """Add the ``demo`` subcommand."""
    p = add_command(subparsers, "demo", run, SUMMARY, DESCRIPTION)
    p.add_argument(
        "--out", default="spine-seg-demo", metavar="DIR", help="output folder (default %(default)s)"
    )
    p.add_argument(
        "--quick", action="store_true", help="a tiny run in seconds (checks the plumbing only)"
    )
    p.add_argument("--seed", type=int, default=0, help="random seed (default %(default)s)")
    return p


def run(args: argparse.Namespace) -> int:
    """Run the demo with progress bars and print the scores and where the report is."""
    check_output(args.out, folder=True)  # before TensorFlow is imported

    bars = TrainBars()

    def log(line: str) -> None:
        print(f"demo: {line}", file=sys.stderr, flush=True)

    try:
        result = run_demo(
            args.out, quick=args.quick, seed=args.seed, progress=bars, bar=progress, log=log
        )
    finally:
        bars.close()
    s = result.scores
    print(
        f"test split: pixel accuracy {s['pixel_accuracy']:.4f}, spine Dice {s['spine_dice']:.4f}, "
        f"IoU {s['spine_iou']:.4f}, HD95 {s['hd95']:.1f} px "
        f"(targets: Dice >= {TARGETS['spine_dice']}, accuracy >= {TARGETS['pixel_accuracy']})"
    )
    for line in summary_lines(result):
        print(line)
    print(f"report: {result.report}  ({result.seconds['total'] / 60:.1f} min)")
    return 0


def summary_lines(result) -> list[str]:
    """The Cobb angles from the trimaps and, when the model found vertebrae, the
    landmarks' lines (vertebrae found, corner error, Cobb angles from the landmarks)."""
    lines = []
    cobb = result.cobb
    if cobb and cobb["n_images"]:
        lines.append(
            f"Cobb angles from the trimaps ({cobb['n_images']} images): {scores_text(cobb)}"
        )
    if result.landmarks is not None:
        lines += landmark_lines(result.landmarks)
    return lines
