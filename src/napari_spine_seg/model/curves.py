"""Training curves as a PNG: loss and accuracy per epoch (the seed's Fig. 1), plus spine Dice.

Drawn with matplotlib (Agg backend, no display) when it is installed, else with Pillow,
so that the demo's report has its figure on a bare install too.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

from ..atomic import atomic_output

#: (panel title, [(history key, label)])
PANELS = (
    ("loss", [("loss", "training"), ("val_loss", "validation")]),
    ("pixel accuracy", [("accuracy", "training"), ("val_accuracy", "validation")]),
    ("spine Dice", [("spine_dice", "training"), ("val_spine_dice", "validation")]),
)


def _series(history: list[dict], key: str) -> tuple[list[float], list[float]]:
    xs, ys = [], []
    for row in history:
        value = row.get(key)
        if isinstance(value, int | float) and math.isfinite(value):
            xs.append(float(row.get("epoch", len(xs) + 1)))
            ys.append(float(value))
    return xs, ys


def plot_history(history: list[dict], path: str | os.PathLike, *, title: str = "") -> Path:
    """Plot per-epoch loss, pixel accuracy and spine Dice (training and validation).

    Parameters
    ----------
    history : list of dict
        Rows with ``epoch`` and the metrics (as :class:`~napari_spine_seg.model.train.TrainResult`
        has them).
    path : path-like
        PNG to write (atomically).
    title : str

    Returns
    -------
    pathlib.Path
    """
    path = Path(path)
    try:
        import matplotlib
    except ImportError:
        matplotlib = None
    with atomic_output(path) as tmp:
        if matplotlib is not None:
            _plot_matplotlib(history, tmp, title)
        else:
            _plot_pillow(history, tmp, title)
    return path


def _plot_matplotlib(history: list[dict], out: Path, title: str) -> None:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(12, 3.6), dpi=100)
    FigureCanvasAgg(fig)
    for i, (name, keys) in enumerate(PANELS):
        ax = fig.add_subplot(1, len(PANELS), i + 1)
        for key, label in keys:
            xs, ys = _series(history, key)
            if xs:
                ax.plot(xs, ys, marker="o", markersize=3, label=label)
        ax.set_title(name)
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend()
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(out, format="png")


def _plot_pillow(history: list[dict], out: Path, title: str) -> None:
    from PIL import Image, ImageDraw

    panel_w, panel_h, pad = 380, 300, 40
    img = Image.new("RGB", (panel_w * len(PANELS), panel_h + 30), "white")
    draw = ImageDraw.Draw(img)
    colours = ((31, 119, 180), (255, 127, 14))
    if title:
        draw.text((10, 5), title, fill="black")
    for i, (name, keys) in enumerate(PANELS):
        x0, y0 = i * panel_w + pad, 30 + 20
        w, h = panel_w - 2 * pad, panel_h - 2 * pad
        draw.rectangle([x0, y0, x0 + w, y0 + h], outline="black")
        draw.text((x0, y0 - 15), name, fill="black")
        series = [_series(history, key) for key, _ in keys]
        values = [v for _, ys in series for v in ys]
        epochs = [e for xs, _ in series for e in xs]
        if not values:
            continue
        lo, hi = min(values), max(values)
        hi = hi if hi > lo else lo + 1.0
        e_lo, e_hi = min(epochs), max(epochs)
        e_hi = e_hi if e_hi > e_lo else e_lo + 1.0
        draw.text((x0 - 35, y0), f"{hi:.2f}", fill="black")
        draw.text((x0 - 35, y0 + h - 10), f"{lo:.2f}", fill="black")
        draw.text((x0, y0 + h + 5), f"epoch {e_lo:g}", fill="black")
        draw.text((x0 + w - 50, y0 + h + 5), f"{e_hi:g}", fill="black")
        for (xs, ys), colour in zip(series, colours, strict=True):
            pts = [
                (x0 + (e - e_lo) / (e_hi - e_lo) * w, y0 + h - (v - lo) / (hi - lo) * h)
                for e, v in zip(xs, ys, strict=True)
            ]
            if len(pts) > 1:
                draw.line(pts, fill=colour, width=2)
            for px, py in pts:
                draw.ellipse([px - 2, py - 2, px + 2, py + 2], fill=colour)
        for k, (colour, (_, label)) in enumerate(zip(colours, keys, strict=True)):
            draw.text((x0 + w - 90, y0 + 5 + 12 * k), label, fill=colour)
    img.save(out, format="PNG")
