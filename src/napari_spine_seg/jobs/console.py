"""What a training job prints while it runs, and how a signal stops it cleanly.

The command line and a job's entry point (:mod:`.run`) both use these, so a job's log
reads like the terminal of ``spine-seg train``.
"""

from __future__ import annotations

import contextlib
import signal
import sys
import threading
from collections.abc import Iterable, Iterator
from typing import TypeVar

from ..model import events as ev

T = TypeVar("T")


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


@contextlib.contextmanager
def cancel_on_signals(what: str = "train"):
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
            f"spine-seg {what}: {signal.Signals(signum).name}: stopping after this batch",
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


def progress(
    items: Iterable[T], *, total: int | None = None, desc: str = "", unit: str = "image"
) -> Iterator[T]:
    """Iterate over `items` with a progress bar on stderr.

    The bar appears only after a second (``delay=1``), so quick jobs print nothing, and
    only on a terminal (``disable=None``), so that logs and pipes get the results and
    the error lines alone.
    """
    from tqdm.auto import tqdm

    yield from tqdm(
        items,
        total=total,
        desc=desc,
        unit=unit,
        delay=1.0,
        file=sys.stderr,
        dynamic_ncols=True,
        disable=None,
    )
