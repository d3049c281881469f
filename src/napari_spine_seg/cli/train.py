"""``spine-seg train DATASET --out MODEL``: train a U-Net (the work is in ``model.train.train``)."""

from __future__ import annotations

import argparse
import contextlib
import signal
import sys
import threading

from ..model.config import PRESET_SIZES, PRESETS
from ..model.defaults import TRAIN_DEFAULTS
from ._slurm_args import add_slurm_arguments, run_on_slurm

D = TRAIN_DEFAULTS


def add_parser(subparsers) -> argparse.ArgumentParser:
    """Add the ``train`` subcommand (other options, e.g. ``--slurm``, extend this parser)."""
    p = subparsers.add_parser(
        "train",
        help="train a U-Net on a dataset",
        description=(
            "Train a U-Net on DATASET (an AASCE root or split, a folder of images with "
            "trimaps, or the Pets layout) and save the best model (by validation spine "
            "Dice) to MODEL (e.g. m.keras). Beside it: m.last.keras (the latest "
            "weights, to --resume from) and m.history.csv (metrics per epoch)."
        ),
    )
    p.add_argument(
        "dataset", metavar="DATASET", help="AASCE root or split, image+trimap folder, or Pets root"
    )
    p.add_argument("--out", required=True, metavar="MODEL", help="model file to write (.keras)")
    p.add_argument(
        "--epochs", type=int, default=D["epochs"], help="total epochs (default %(default)s)"
    )
    p.add_argument(
        "--size",
        metavar="HxW",
        help="network input rows x columns (default: "
        + "; ".join(f"{p} {r}x{c}" for p, (r, c) in PRESET_SIZES.items())
        + ")",
    )
    p.add_argument(
        "--preset", choices=PRESETS, default=D["preset"], help="architecture (default %(default)s)"
    )
    p.add_argument("--batch-size", type=int, default=D["batch_size"], help="default %(default)s")
    p.add_argument(
        "--learning-rate", type=float, default=D["learning_rate"], help="default %(default)s"
    )
    p.add_argument(
        "--loss",
        choices=("ce", "ce+dice"),
        default=D["loss"],
        help="cross-entropy, or plus spine Dice (default %(default)s)",
    )
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
        "--val-fraction",
        type=float,
        default=D["val_fraction"],
        help="held out for validation (default %(default)s)",
    )
    p.add_argument(
        "--patience",
        type=int,
        default=D["patience"],
        help="early stopping patience in epochs; 0 = off",
    )
    p.add_argument(
        "--fit",
        choices=("resize", "letterbox"),
        default=D["fit"],
        help="how images meet the input size (default %(default)s)",
    )
    p.add_argument(
        "--outputs",
        choices=("auto", "trimap", "vertebrae"),
        default="auto",
        help="what the network learns: the trimap, or the 17 vertebrae (needs landmarks; "
        "the trimap is derived); auto: vertebrae when every image has landmarks",
    )
    p.add_argument("--no-augment", action="store_true", help="train without augmentation")
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
    add_slurm_arguments(p)
    p.set_defaults(func=run)
    return p


class TrainBars:
    """Turn training progress events into tqdm bars and one line per epoch on stderr."""

    def __init__(self, file=None):
        self.file = file or sys.stderr
        self.bar = None
        self.steps = None

    def _new(self, total, desc, unit):
        from tqdm.auto import tqdm

        self.close()
        self.bar = tqdm(
            total=total, desc=desc, unit=unit, file=self.file, dynamic_ncols=True, leave=False
        )

    def close(self):
        if self.bar is not None:
            self.bar.close()
            self.bar = None

    def __call__(self, event) -> None:
        from ..model import events as ev

        if isinstance(event, ev.Preparing):
            if self.bar is None:
                self._new(event.total, "decode", "image")
            self.bar.n = event.done
            self.bar.refresh()
            if event.done >= event.total:
                self.close()
        elif isinstance(event, ev.TrainingStarted):
            self.steps = event.steps_per_epoch
            print(
                f"training on {event.n_train} images, validating on {event.n_val}; "
                f"epochs {event.initial_epoch + 1}-{event.epochs}, {event.steps_per_epoch} steps each",
                file=self.file,
            )
        elif isinstance(event, ev.EpochStarted):
            self._new(self.steps, f"epoch {event.epoch}/{event.epochs}", "batch")
        elif isinstance(event, ev.BatchEnded):
            if self.bar is not None:
                self.bar.total = event.steps
                self.bar.update(1)
                self.bar.set_postfix(
                    loss=f"{event.loss:.3f}", dice=f"{event.metrics.get('spine_dice', 0):.3f}"
                )
        elif isinstance(event, ev.EpochEnded):
            self.close()
            print(format_epoch(event), file=self.file, flush=True)
        elif isinstance(event, ev.TrainingDone):
            self.close()


def format_epoch(event) -> str:
    """One line for an ended epoch: losses, accuracy, Dice, time, and a star when best."""
    m = event.metrics
    parts = [f"epoch {event.epoch}/{event.epochs}", f"loss {m.get('loss', float('nan')):.4f}"]
    parts.append(f"acc {m.get('accuracy', float('nan')):.4f}")
    parts.append(f"dice {m.get('spine_dice', float('nan')):.4f}")
    if "val_loss" in m:
        parts.append(f"val_loss {m['val_loss']:.4f}")
        parts.append(f"val_acc {m.get('val_accuracy', float('nan')):.4f}")
        parts.append(f"val_dice {m.get('val_spine_dice', float('nan')):.4f}")
    parts.append(f"{event.seconds:.1f}s")
    return "  ".join(parts) + ("  *" if event.improved else "")


def config_from_args(args: argparse.Namespace):
    """The :class:`~napari_spine_seg.model.config.TrainConfig` the arguments ask for."""
    from ..model.config import TrainConfig

    return TrainConfig(
        dataset=args.dataset,
        out=args.out,
        preset=args.preset,
        size=args.size or None,
        epochs=args.epochs,
        batch_size=args.batch_size,
        learning_rate=args.learning_rate,
        loss=args.loss,
        val_fraction=args.val_fraction,
        seed=args.seed,
        patience=args.patience or None,
        fit=args.fit,
        augment=not args.no_augment,
        cache=None if args.no_cache else (args.cache or "auto"),
        mixed_precision={"auto": None, "on": True, "off": False}[args.mixed_precision],
        resume=args.resume,
        init_from=args.init_from,
        max_minutes=args.max_minutes,
        outputs=getattr(args, "outputs", "auto"),
    )


def run(args: argparse.Namespace) -> int:
    """Train as the arguments say and print where the model went."""
    from ..outputs import check_output

    # never over a file of the data set or into it (before TensorFlow is imported)
    check_output(args.out, [args.dataset], suffixes=(".keras",))
    if args.slurm:  # the job checks its settings again where it runs
        return run_on_slurm(args)
    config = config_from_args(args)  # every setting checked before any work
    from ..model.train import train

    bars = TrainBars()
    with _cancel_on_signals() as cancel:
        try:
            result = train(config, progress=bars, cancel=cancel)
        finally:
            bars.close()
    best = result.best_metrics
    monitor = result.monitor
    score = f"{monitor} {best[monitor]:.4f}" if monitor in best else "no score"
    print(
        f"saved {result.model_path} (best epoch {result.best_epoch}: {score}); "
        f"{result.stopped} after {result.epochs_run} epochs in {result.seconds:.0f} s; "
        f"resume from {result.last_checkpoint}; history {result.history_csv}"
    )
    return 130 if result.stopped == "cancelled" else 0


@contextlib.contextmanager
def _cancel_on_signals():
    """Yield an event that SIGTERM (scancel, a time limit) or Ctrl-C sets meanwhile.

    Training then stops at the end of the batch and still writes its last checkpoint,
    so the run can be resumed; a second Ctrl-C interrupts at once. The previous
    handlers come back afterwards.
    """
    cancel = threading.Event()

    def stop(signum, frame):
        if signum == signal.SIGINT and cancel.is_set():
            raise KeyboardInterrupt
        cancel.set()
        print(
            f"spine-seg train: {signal.Signals(signum).name}: stopping after this batch",
            file=sys.stderr,
        )

    if threading.current_thread() is not threading.main_thread():
        yield cancel
        return
    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield cancel
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
