"""``spine-seg synth OUT``: a phantom X-ray set in the AASCE layout."""

from __future__ import annotations

import argparse

from ..data.phantom import write_phantom_set
from ..errors import SpineSegError
from ..outputs import check_output
from ._command import add_command
from ._progress import progress

#: ``spine-seg synth`` in the list of subcommands, and the head of its --help
SUMMARY = "write a phantom X-ray set in the AASCE layout"
DESCRIPTION = """\
Write phantom posteroanterior spine X-rays with their landmarks and Cobb angles in the AASCE
layout (data/<split>/, labels/<split>/). The same seed gives the same set.
"""


def add_parser(subparsers) -> argparse.ArgumentParser:
    """Register ``synth`` with the ``spine-seg`` subcommand parsers."""
    parser = add_command(subparsers, "synth", run, SUMMARY, DESCRIPTION)
    parser.add_argument("out", metavar="OUT", help="folder to write the set to (created if needed)")
    parser.add_argument(
        "--train", type=int, default=40, metavar="N", help="training images (default 40)"
    )
    parser.add_argument(
        "--test", type=int, default=16, metavar="N", help="test images (default 16)"
    )
    parser.add_argument("--seed", type=int, default=0, metavar="S", help="random seed (default 0)")
    parser.add_argument(
        "--jobs", type=int, default=2, metavar="N", help="worker processes (default 2)"
    )
    return parser


def run(args: argparse.Namespace) -> int:
    """Write the phantom set that `args` asks for; return the exit status."""
    check_output(args.out, folder=True)  # never inside another data set's data/ or labels/

    for option, value in (("--train", args.train), ("--test", args.test)):
        if value < 0:
            raise SpineSegError(None, f"{option} must be 0 or more, not {value}")
    if args.jobs < 1:
        raise SpineSegError(None, f"--jobs must be 1 or more, not {args.jobs}")
    root = write_phantom_set(
        args.out,
        n_train=args.train,
        n_test=args.test,
        seed=args.seed,
        progress=progress,
        jobs=args.jobs if args.train + args.test >= 16 else 1,
    )
    print(f"wrote {args.train} training and {args.test} test phantom X-rays to {root}")
    return 0
