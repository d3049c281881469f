"""``spine-seg train DATASET --out MODEL``: train a U-Net (the work is in ``model.train.train``)."""

from __future__ import annotations

import argparse

from ..jobs.console import TrainBars, format_epoch
from ..jobs.console import cancel_on_signals as _cancel_on_signals
from ..jobs.run import run_training
from ..jobs.spec import training_spec
from ..model.config import LOSSES, LR_SCHEDULES, OUTPUTS, PRESET_SIZES, PRESETS, TrainConfig
from ..model.defaults import TRAIN_DEFAULTS
from ..outputs import check_output
from ._command import add_command
from ._slurm_args import add_slurm_arguments, run_on_slurm

__all__ = [
    "TrainBars",
    "_cancel_on_signals",
    "add_parser",
    "config_from_args",
    "format_epoch",
    "run",
]


#: ``spine-seg train`` in the list of subcommands, and the head of its --help
SUMMARY = "train a U-Net on a dataset"
DESCRIPTION = (
    "Train a U-Net on DATASET (an AASCE root or split, a folder of images with "
    "trimaps, or the Pets layout) and save the best model (by validation spine "
    "Dice) to MODEL (e.g. m.keras). Beside it: m.last.keras (the latest "
    "weights, to --resume from) and m.history.csv (metrics per epoch)."
)
#: the options that default to ``TRAIN_DEFAULTS``: flag → (its type or its choices, its help)
SETTINGS = {
    "--epochs": (int, "total epochs (default %(default)s)"),
    "--preset": (PRESETS, "architecture (default %(default)s)"),
    "--batch-size": (int, "default %(default)s"),
    "--learning-rate": (float, "default %(default)s"),
    "--loss": (LOSSES, "cross-entropy, or plus spine Dice (default %(default)s)"),
    "--val-fraction": (float, "held out for validation (default %(default)s)"),
    "--patience": (int, "early stopping patience in epochs; 0 = off"),
    "--lr-schedule": (
        LR_SCHEDULES,
        "how the learning rate falls: halved when the validation loss stalls (plateau), "
        "or along a half cosine over the epochs or --max-minutes (default %(default)s)",
    ),
    "--fit": (("resize", "letterbox"), "how images meet the input size (default %(default)s)"),
    "--bend-deg": (
        float,
        "augmentation: bend spines, adding up to this tilt in degrees (0 = off; "
        "default %(default)s)",
    ),
}


def _add_settings(parser: argparse.ArgumentParser, *flags: str) -> None:
    """Add the options `flags` of :data:`SETTINGS`, each defaulting to its training default
    (``--batch-size``: ``TRAIN_DEFAULTS["batch_size"]``)."""
    for flag in flags:
        kind, help_ = SETTINGS[flag]
        kwargs = {"choices": kind} if isinstance(kind, tuple) else {"type": kind}
        default = TRAIN_DEFAULTS[flag[2:].replace("-", "_")]
        parser.add_argument(flag, default=default, help=help_, **kwargs)


def add_parser(subparsers) -> argparse.ArgumentParser:
    """Add the ``train`` subcommand (other options, e.g. ``--slurm``, extend this parser)."""
    p = add_command(subparsers, "train", run, SUMMARY, DESCRIPTION)
    p.add_argument(
        "dataset", metavar="DATASET", help="AASCE root or split, image+trimap folder, or Pets root"
    )
    p.add_argument("--out", required=True, metavar="MODEL", help="model file to write (.keras)")
    _add_settings(p, "--epochs")
    sizes = "; ".join(f"{name} {r}x{c}" for name, (r, c) in PRESET_SIZES.items())
    p.add_argument("--size", metavar="HxW", help=f"network input rows x columns (default: {sizes})")
    _add_settings(p, "--preset", "--batch-size", "--learning-rate", "--lr-schedule", "--loss")
    _add_start_and_stop(p)
    _add_settings(p, "--val-fraction", "--patience", "--fit")
    _add_data_handling(p)
    add_slurm_arguments(p)
    return p


def _add_start_and_stop(p: argparse.ArgumentParser) -> None:
    """Where a training starts from (a checkpoint, a model), when it stops, and its seed."""
    p.add_argument(
        "--resume", metavar="CKPT", help="continue from a checkpoint (e.g. MODEL.last.keras)"
    )
    p.add_argument(
        "--init-from",
        metavar="MODEL",
        help="fine-tune: start from this model's weights, with a history and best score of its own",
    )
    p.add_argument(
        "--max-minutes",
        type=float,
        metavar="M",
        help="stop at the end of the epoch that crosses M minutes (the best model is kept)",
    )
    p.add_argument("--seed", type=int, default=0, help="random seed (default %(default)s)")
    p.add_argument(
        "--outputs",
        choices=OUTPUTS,
        default="auto",
        help="what the network learns: the trimap, or the 17 vertebrae (needs landmarks; "
        "the trimap is derived); auto: vertebrae when every image has landmarks",
    )
    p.add_argument(
        "--zoom-pass",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="vertebrae: also learn the column at the X-ray's own resolution and predict it "
        "in a second pass (sharper end plates; on for a vertebrae model unless "
        "--no-zoom-pass; not with --outputs trimap)",
    )


def _add_data_handling(p: argparse.ArgumentParser) -> None:
    """Augmentation, the cache of decoded images, and mixed precision."""
    p.add_argument("--no-augment", action="store_true", help="train without augmentation")
    _add_settings(p, "--bend-deg")
    p.add_argument(
        "--cache", metavar="DIR", help="cache folder for decoded images (default: user cache)"
    )
    p.add_argument(
        "--no-cache", action="store_true", help="decode images every epoch instead of caching"
    )
    p.add_argument(
        "--mixed-precision",
        choices=("auto", "on", "off"),
        default="auto",
        help="bf16 mixed precision (auto: on when a GPU is present)",
    )


def config_from_args(args: argparse.Namespace) -> TrainConfig:
    """The :class:`~napari_spine_seg.model.config.TrainConfig` the arguments ask for."""
    return TrainConfig(
        dataset=args.dataset,
        out=args.out,
        preset=args.preset,
        size=args.size or None,
        epochs=args.epochs,
        batch_size=args.batch_size,
        learning_rate=args.learning_rate,
        lr_schedule=args.lr_schedule,
        loss=args.loss,
        val_fraction=args.val_fraction,
        seed=args.seed,
        patience=args.patience or None,
        fit=args.fit,
        augment=not args.no_augment,
        bend_deg=args.bend_deg,
        cache=None if args.no_cache else (args.cache or "auto"),
        mixed_precision={"auto": None, "on": True, "off": False}[args.mixed_precision],
        resume=args.resume,
        init_from=args.init_from,
        max_minutes=args.max_minutes,
        outputs=args.outputs,
        zoom_pass=args.zoom_pass,
    )


def run(args: argparse.Namespace) -> int:
    """Train as the arguments say (here, or as a slurm job) and print where the model went."""
    # never over a file of the data set or into it (before TensorFlow is imported)
    check_output(args.out, [args.dataset], suffixes=(".keras",))
    config = config_from_args(args)  # every setting checked before any work
    if args.slurm:
        spec = training_spec(config, folder=args.slurm_job_dir, debug=args.debug)
        return run_on_slurm(args, spec)
    return run_training(config)
