"""``spine-seg retrain RETRAIN_SET --model M --out OUT``: fine-tune on a review's corrections.

It runs as a retraining job does (:func:`napari_spine_seg.jobs.run.run_retraining` with a
:class:`~napari_spine_seg.review.retrain.RetrainConfig`); the retrain set is what
:func:`~napari_spine_seg.review.retrain.freeze_retrain_set` kept (the Train widget's
retraining job writes one into its job folder).
"""

from __future__ import annotations

import argparse

from ..jobs.run import run_retraining
from ..review.retrain import DEFAULT_EPOCHS, RetrainConfig, read_retrain_set
from ._command import add_command

#: ``spine-seg retrain`` in the list of subcommands, and the head of its --help
SUMMARY = "fine-tune a model on a review's accepted and corrected images"
DESCRIPTION = """\
Fine-tune MODEL on the reviewed images kept in RETRAIN_SET (a retrain-set.json written when
a retraining job is submitted), plus the model's original training set when it still exists,
and save it to OUT (.keras).
"""


def add_parser(subparsers) -> argparse.ArgumentParser:
    """Add the ``retrain`` subcommand."""
    p = add_command(subparsers, "retrain", run, SUMMARY, DESCRIPTION)
    p.add_argument("retrain_set", metavar="RETRAIN_SET", help="retrain-set.json or its folder")
    p.add_argument("--model", required=True, help="the model to fine-tune (.keras)")
    p.add_argument("--out", required=True, metavar="OUT", help="the fine-tuned model (.keras)")
    p.add_argument(
        "--epochs",
        type=int,
        default=DEFAULT_EPOCHS,
        help="epochs of fine-tuning (default %(default)s)",
    )
    p.add_argument("--batch-size", type=int, default=None, help="default: the model's")
    p.add_argument("--no-base", action="store_true", help="train on the reviewed images alone")
    p.add_argument(
        "--resume", default=None, help="continue an interrupted retraining from its checkpoint"
    )
    return p


def run(args: argparse.Namespace) -> int:
    """Retrain as the arguments say, as a retraining job does
    (:func:`~napari_spine_seg.jobs.run.run_retraining`)."""
    read_retrain_set(args.retrain_set)  # a bad retrain set is named before anything else
    config = RetrainConfig(
        args.retrain_set,
        args.model,
        args.out,
        epochs=args.epochs,
        batch_size=args.batch_size,
        base=not args.no_base,
        resume=args.resume,
    )
    return run_retraining(config)
