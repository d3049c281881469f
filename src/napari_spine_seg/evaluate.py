"""Score predicted trimaps against a dataset's labels (no Keras).

For every image of the dataset, the trimap PNG named after it in the prediction folder
(``x.jpg`` → ``x.png``) is compared with the ground truth (the dataset's trimap, or one
drawn from its landmarks) by :mod:`napari_spine_seg.spine.metrics`: pixel accuracy over
the three classes, spine Dice and IoU ignoring the ground truth's border band, and the
95th-percentile Hausdorff distance of the spine outlines in pixels. When the dataset has
``angles.csv``, the Cobb angles measured on each prediction are scored against it too
(MAE and the challenge's SMAPE, :func:`napari_spine_seg.spine.cobb_eval.cobb_errors`).
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from .atomic import write_text_atomic
from .errors import SpineSegError

METRICS = ("pixel_accuracy", "spine_dice", "spine_iou", "hd95")


@dataclass(frozen=True)
class ImageScore:
    """The scores of one image (``hd95`` is ``inf`` when only one trimap has a spine)."""

    name: str
    pixel_accuracy: float
    spine_dice: float
    spine_iou: float
    hd95: float

    def as_dict(self) -> dict:
        """JSON-ready: an infinite or undefined HD95 becomes None."""
        return {
            "name": self.name,
            **{k: _finite_or_none(getattr(self, k)) for k in METRICS},
        }


@dataclass
class EvaluationReport:
    """Per-image scores and their means.

    Attributes
    ----------
    pred_dir : Path
    dataset : str
        The dataset's root.
    images : list of ImageScore
    mean : dict
        Mean of each metric; HD95's mean is over images where it is finite, and
        ``hd95_undefined`` counts the others.
    cobb : dict or None
        Cobb-angle errors against the dataset's ``angles.csv``
        (:func:`~napari_spine_seg.spine.cobb_eval.cobb_errors`), None without one.
    """

    pred_dir: Path
    dataset: str
    images: list[ImageScore] = field(default_factory=list)
    mean: dict = field(default_factory=dict)
    cobb: dict | None = None

    def to_json(self) -> dict:
        """The report as a JSON-ready dict."""
        return {
            "predictions": str(self.pred_dir),
            "dataset": self.dataset,
            "n_images": len(self.images),
            "mean": {
                k: _finite_or_none(v) if isinstance(v, float) else v for k, v in self.mean.items()
            },
            "images": [s.as_dict() for s in self.images],
            "cobb": self.cobb,
        }

    def table(self) -> str:
        """A readable fixed-width table: one row per image, then the mean."""
        width = max([len("image"), len("mean"), *(len(s.name) for s in self.images)])
        width = min(width, 60)
        head = f"{'image':<{width}}  {'accuracy':>8}  {'Dice':>6}  {'IoU':>6}  {'HD95 px':>8}"
        lines = [head, "-" * len(head)]
        for s in self.images:
            name = s.name if len(s.name) <= width else "…" + s.name[-(width - 1) :]
            lines.append(_row(name, width, s.pixel_accuracy, s.spine_dice, s.spine_iou, s.hd95))
        lines.append("-" * len(head))
        m = self.mean
        lines.append(
            _row("mean", width, m["pixel_accuracy"], m["spine_dice"], m["spine_iou"], m["hd95"])
        )
        if m.get("hd95_undefined"):
            lines.append(
                f"(HD95 undefined for {m['hd95_undefined']} image(s) with a spine in only one trimap)"
            )
        c = self.cobb
        if c and c["n_images"]:
            per = c["mae_per_angle"]
            lines.append(
                f"Cobb angles vs angles.csv ({c['n_images']} images): MAE {c['mae']:.2f} deg "
                f"(PT {per['pt']:.2f}, MT {per['mt']:.2f}, TL/L {per['tl']:.2f}), "
                f"SMAPE {c['smape']:.2f} %"
            )
            if c["order_doubtful"]:
                from .spine.cobb_eval import order_note

                lines.append(f"({order_note(c)})")
            for failure in c["failed"]:
                lines.append(
                    f"(no Cobb angle for {failure['name']}: {failure['problem']}; scored as 0 deg)"
                )
        return "\n".join(lines)


def _row(name: str, width: int, acc: float, dice: float, iou: float, hd: float) -> str:
    hd_text = f"{hd:8.1f}" if math.isfinite(hd) else f"{'-':>8}"
    return f"{name:<{width}}  {acc:8.4f}  {dice:6.4f}  {iou:6.4f}  {hd_text}"


def _finite_or_none(value: float):
    return value if isinstance(value, int | float) and math.isfinite(value) else None


def evaluate(
    pred_dir: str | os.PathLike,
    dataset,
    *,
    progress: Callable[[Iterable, int], Iterable] | None = None,
) -> EvaluationReport:
    """Score the trimaps in `pred_dir` against `dataset`.

    Parameters
    ----------
    pred_dir : path-like
        Folder of predicted trimap PNGs named after the images.
    dataset : Dataset or path-like
        Every sample of it is scored (give a split to score only that split).
    progress : callable, optional
        ``progress(iterable, total)`` wrapping the iteration over samples.

    Returns
    -------
    EvaluationReport

    Raises
    ------
    SpineSegError
        When the folder is missing, an image has no prediction, or a prediction is not
        a trimap of its image's size.
    """
    from .data.masks import read_trimap_png, trimap_name
    from .spine.metrics import score_trimaps

    pred_dir = Path(pred_dir)
    if not pred_dir.is_dir():
        raise SpineSegError(pred_dir, "is not a folder of predicted trimaps")
    if not hasattr(dataset, "samples"):
        from .data.dataset import open_dataset

        dataset = open_dataset(dataset)
    samples = list(dataset.samples)
    missing = [s for s in samples if not (pred_dir / trimap_name(s.name)).is_file()]
    if missing:
        more = f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""
        raise SpineSegError(
            pred_dir / trimap_name(missing[0].name),
            f"missing: no prediction for image {missing[0].name}{more}",
        )
    stream: Iterable = samples
    if progress is not None:
        stream = progress(samples, len(samples))
    scores = []
    for sample in stream:
        path = pred_dir / trimap_name(sample.name)
        pred = read_trimap_png(path)
        gt = sample.load_trimap()
        if pred.shape != gt.shape:
            raise SpineSegError(
                path,
                f"is {pred.shape[0]} x {pred.shape[1]} pixels but image {sample.name} is "
                f"{gt.shape[0]} x {gt.shape[1]}",
            )
        s = score_trimaps(gt, pred)
        scores.append(ImageScore(sample.name, *(float(s[k]) for k in METRICS)))
    cobb = None
    if getattr(dataset, "angles", None):
        from .spine.cobb_eval import cobb_errors

        # the PNGs are read again one at a time: a whole split is not held in memory
        paths = {s.name: pred_dir / trimap_name(s.name) for s in samples}
        angles = {s.name: dataset.angles[s.name] for s in samples if s.name in dataset.angles}
        cobb = cobb_errors(paths, angles, read=read_trimap_png)
    return EvaluationReport(
        pred_dir, str(getattr(dataset, "root", "")), scores, summarise(scores), cobb
    )


def summarise(scores: list[ImageScore]) -> dict:
    """Means of the metrics over `scores` (HD95 over the finite ones)."""
    if not scores:
        return {k: float("nan") for k in METRICS} | {"hd95_undefined": 0}
    out = {k: sum(getattr(s, k) for s in scores) / len(scores) for k in METRICS[:3]}
    finite = [s.hd95 for s in scores if math.isfinite(s.hd95)]
    out["hd95"] = sum(finite) / len(finite) if finite else float("nan")
    out["hd95_undefined"] = len(scores) - len(finite)
    return out


def write_report_json(report: EvaluationReport, path: str | os.PathLike) -> Path:
    """Write the report as JSON, atomically.

    Raises
    ------
    SpineSegError
        Before writing, when `path` is a file or lies in a folder the report was made
        from (the predictions, the data set), or is an existing file that is not JSON
        (:func:`~napari_spine_seg.outputs.check_output`); a failed write names `path`.
    """
    from .outputs import check_output

    inputs = [report.pred_dir, *([report.dataset] if report.dataset else [])]
    check_output(path, inputs, suffixes=(".json",))
    return write_text_atomic(path, json.dumps(report.to_json(), indent=1) + "\n")
