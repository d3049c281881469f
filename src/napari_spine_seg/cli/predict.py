"""``spine-seg predict MODEL INPUT... --out DIR``: one trimap PNG per image."""

from __future__ import annotations

import argparse

from ..jobs.run import run_prediction
from ..jobs.spec import prediction_spec
from ..model.defaults import PREDICT_BATCH_SIZE
from ..model.predict_config import PredictConfig
from ._command import add_command
from ._slurm_args import add_slurm_arguments, run_on_slurm

#: ``spine-seg predict`` in the list of subcommands, and the head of its --help
SUMMARY = "predict a trimap PNG for each image"
DESCRIPTION = (
    "Predict the spine in each image of INPUT (image files, folders of images, or "
    "an AASCE root or split) and write one trimap PNG per image into DIR, named "
    "after the image (x.jpg -> x.png), at the image's own size."
)


def add_parser(subparsers) -> argparse.ArgumentParser:
    """Add the ``predict`` subcommand."""
    p = add_command(subparsers, "predict", run, SUMMARY, DESCRIPTION)
    p.add_argument("model", metavar="MODEL", help="a .keras model written by spine-seg train")
    p.add_argument(
        "inputs", nargs="+", metavar="INPUT", help="image files, folders or an AASCE split"
    )
    p.add_argument("--out", required=True, metavar="DIR", help="output folder")
    p.add_argument(
        "--batch-size", type=int, default=PREDICT_BATCH_SIZE, help="1 or more (default %(default)s)"
    )
    p.add_argument(
        "--tta", action="store_true", help="average with the left-right mirrored prediction"
    )
    p.add_argument(
        "--probability",
        action="store_true",
        help="also write spine probability maps (<stem>.probability.tif)",
    )
    add_slurm_arguments(p, array=True)
    return p


def config_from_args(args: argparse.Namespace) -> PredictConfig:
    """The :class:`~napari_spine_seg.model.predict_config.PredictConfig` the arguments ask for."""
    return PredictConfig(
        model=args.model,
        inputs=tuple(args.inputs),
        out=args.out,
        batch_size=args.batch_size,
        tta=args.tta,
        probability=args.probability,
    )


def run(args: argparse.Namespace) -> int:
    """Predict (here, or as a slurm job) and say how many trimaps were written where."""
    # a bad batch size, an --out over the inputs or a missing input fail before
    # TensorFlow loads: the config checks them when made
    config = config_from_args(args)
    if args.slurm:
        spec = prediction_spec(
            config, array=args.slurm_array, folder=args.slurm_job_dir, debug=args.debug
        )
        return run_on_slurm(args, spec)
    return run_prediction(config)
