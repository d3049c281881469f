"""A training's history CSV (``m.history.csv``): one row per epoch, written by
:func:`~napari_spine_seg.model.train.train` and read by whoever shows its progress."""

from __future__ import annotations

import csv
import io
import os

from ..atomic import write_text_atomic

HISTORY_COLUMNS = (
    "epoch",
    "loss",
    "accuracy",
    "spine_dice",
    "val_loss",
    "val_accuracy",
    "val_spine_dice",
    "lr",
    "seconds",
)


def write_history_csv(path: str | os.PathLike, rows) -> None:
    """Write `rows` (dicts with :data:`HISTORY_COLUMNS` keys) atomically; other keys are left out."""
    buf = io.StringIO()
    writer = csv.DictWriter(
        buf, fieldnames=HISTORY_COLUMNS, extrasaction="ignore", lineterminator="\n"
    )
    writer.writeheader()
    for row in rows:
        writer.writerow({k: row.get(k, "") for k in HISTORY_COLUMNS})
    write_text_atomic(path, buf.getvalue())


def read_history_csv(path: str | os.PathLike) -> list[dict]:
    """The rows of a history CSV, numbers as floats; ``[]`` when it cannot be read.

    A row that does not parse is skipped: a training may be writing the file right now.
    """
    try:
        with open(path, newline="", encoding="utf-8") as f:
            rows = list(csv.DictReader(f))
    except OSError:
        return []
    out = []
    for row in rows:
        try:
            out.append({k: float(v) for k, v in row.items() if v not in ("", None)})
        except ValueError:
            continue
    return out
