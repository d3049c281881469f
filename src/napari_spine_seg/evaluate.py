"""Score predicted trimaps against a dataset's labels (no Keras).

For every image of the dataset, the trimap PNG named after it in the prediction folder
(``x.jpg`` → ``x.png``) is compared with the ground truth (the dataset's trimap, or one
drawn from its landmarks) by :mod:`napari_spine_seg.spine.metrics`: pixel accuracy over
the three classes, spine Dice and IoU ignoring the ground truth's border band, and the
95th-percentile Hausdorff distance of the spine outlines in pixels. When the dataset has
``angles.csv`` (or landmarks to compute the reference angles from), the Cobb angles
measured on each prediction are scored against it too (MAE and the challenge's SMAPE,
:func:`napari_spine_seg.spine.cobb_eval.cobb_errors`).

When the prediction folder has ``landmarks/`` (``spine-seg predict`` with a model that
finds vertebrae writes ``landmarks/<image file name>.mat`` for every image whose 17
vertebrae it found), the landmarks are scored beside the trimaps: the share of images
with landmarks (vertebra-count accuracy), the mean corner error against the data set's
landmarks, and the Cobb angles of the landmarks (the reference computation), with an
image without landmarks scored as 0° rather than left out.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .atomic import write_text_atomic
from .data.aasce import LANDMARKS_FOLDER, read_landmarks_mat
from .data.dataset import open_dataset
from .data.masks import read_trimap_png, trimap_name
from .errors import SpineSegError
from .outputs import check_output
from .spine.cobb import cobb_angles
from .spine.cobb_eval import cobb_errors, landmark_cobb_errors, order_note
from .spine.landmark_eval import corner_scores, count_scores
from .spine.metrics import score_trimaps
from .spine.vertebra_count import VERTEBRAE_FILE, read_vertebra_counts
from .trimap import sort_landmarks

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
        Cobb-angle errors of the trimaps against the dataset's ``angles.csv``, or against
        the angles of its landmarks without one
        (:func:`~napari_spine_seg.spine.cobb_eval.cobb_errors`); None without either.
    landmarks : dict or None
        The predicted landmarks' scores (:func:`landmark_scores`), None when the
        prediction folder has no ``landmarks/``.
    cobb_reference : str or None
        What the Cobb angles are scored against: ``"angles.csv"`` or ``"landmarks"``.
    """

    pred_dir: Path
    dataset: str
    images: list[ImageScore] = field(default_factory=list)
    mean: dict = field(default_factory=dict)
    cobb: dict | None = None
    landmarks: dict | None = None
    cobb_reference: str | None = None

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
            "cobb_reference": self.cobb_reference,
            "landmarks": self.landmarks,
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
        against = "the landmarks' angles" if self.cobb_reference == "landmarks" else "angles.csv"
        c = self.cobb
        if c and c["n_images"]:
            lines.append(f"Cobb angles vs {against} ({c['n_images']} images): {scores_text(c)}")
            lines += cobb_notes(c)
        if self.landmarks is not None:
            lines += landmark_lines(self.landmarks, against)
        return "\n".join(lines)


def scores_text(scores: dict) -> str:
    """``MAE … deg (PT …, MT …, TL/L …), SMAPE … %`` of an
    :func:`~napari_spine_seg.spine.cobb_eval.angle_scores` dict."""
    per = scores["mae_per_angle"]
    return (
        f"MAE {scores['mae']:.2f} deg (PT {per['pt']:.2f}, MT {per['mt']:.2f}, "
        f"TL/L {per['tl']:.2f}), SMAPE {scores['smape']:.2f} %"
    )


def landmark_lines(scores: dict, against: str = "angles.csv") -> list[str]:
    """The lines of a report on predicted landmarks (:func:`landmark_scores`).

    One line on the vertebrae found, one per image without landmarks, the corner error,
    and the landmarks' Cobb errors (those over the images with landmarks beside).
    """
    counts = scores["counts"]
    n, found = counts["n_images"], counts["n_found"]
    rate = f" ({100 * counts['found_rate']:.1f} %)" if n else ""
    lines = [f"landmarks: 17 vertebrae found on {found} of {n} images{rate}"]
    for image in counts["not_found"]:
        seen = f"{image['count']} found" if image["count"] is not None else "not found"
        lines.append(f"  no landmarks for {image['name']}: 17 vertebrae {seen}")
    corner = scores["corner_error"]
    if corner["n_images"]:
        lines.append(
            f"corner error ({corner['n_images']} images): mean {corner['mean_px']:.2f} px, "
            f"{corner['mean_percent_height']:.3f} % of the image height "
            f"(worst image {corner['max_px']:.2f} px)"
        )
    c = scores["cobb"]
    if c and c["n_images"]:
        line = f"Cobb angles from landmarks vs {against} ({c['n_images']} images"
        unmeasured = len(c["missing"]) + len(c["failed"])
        if unmeasured:
            line += f", {unmeasured} not measured scored as 0 deg"
        lines.append(f"{line}): {scores_text(c)}")
        if c["found"]["n"] and c["found"]["n"] < c["n_images"]:
            lines.append(f"  on the {c['found']['n']} with landmarks: {scores_text(c['found'])}")
        lines += cobb_notes(c, indent="  ")
    return lines


def cobb_notes(scores: dict, indent: str = "") -> list[str]:
    """The notes under a line of Cobb scores: a doubtful angle order, each image with no
    angle (scored as 0 deg)."""
    notes = [f"({order_note(scores)})"] if scores["order_doubtful"] else []
    notes += [
        f"(no Cobb angle for {f['name']}: {f['problem']}; scored as 0 deg)"
        for f in scores["failed"]
    ]
    return [indent + note for note in notes]


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
    landmarks: bool | None = None,
) -> EvaluationReport:
    """Score the trimaps in `pred_dir` against `dataset`, and its landmarks if it has them.

    Parameters
    ----------
    pred_dir : path-like
        Folder of predicted trimap PNGs named after the images, and optionally
        ``landmarks/<image file name>.mat`` (:func:`read_predicted_landmarks`).
    dataset : Dataset or path-like
        Every sample of it is scored (give a split to score only that split).
    progress : callable, optional
        ``progress(iterable, total)`` wrapping the iteration over samples.
    landmarks : bool, optional
        Score the predicted landmarks (:func:`landmark_scores`): by default when
        ``landmarks/`` or ``vertebrae.json`` (the counts per image) exists; True also without it (the prediction of a model with
        vertebrae that found 17 on no image: every image counts as not found); False
        never.

    Returns
    -------
    EvaluationReport

    Raises
    ------
    SpineSegError
        When the folder is missing, an image has no prediction, or a prediction is not
        a trimap of its image's size.
    """
    pred_dir = Path(pred_dir)
    if not pred_dir.is_dir():
        raise SpineSegError(pred_dir, "is not a folder of predicted trimaps")
    if not hasattr(dataset, "samples"):
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
    scores, heights, truth = [], {}, {}
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
        heights[sample.name] = gt.shape[0]
        truth[sample.name] = true_landmarks(sample)
    angles, reference = reference_angles(dataset, samples, truth, heights)
    cobb = None
    if angles:
        # the PNGs are read again one at a time: a whole split is not held in memory
        paths = {s.name: pred_dir / trimap_name(s.name) for s in samples}
        cobb = cobb_errors(paths, angles, read=read_trimap_png)

    scored_landmarks = None
    folder = pred_dir / LANDMARKS_FOLDER
    recorded = folder.is_dir() or (pred_dir / VERTEBRAE_FILE).is_file()
    if landmarks or (landmarks is None and recorded):
        pred_landmarks = read_predicted_landmarks(folder, [s.name for s in samples])
        counts = {n: e["found"] for n, e in read_vertebra_counts(pred_dir / VERTEBRAE_FILE).items()}
        scored_landmarks = landmark_scores(
            pred_landmarks, truth, angles, heights, folder=folder, counts=counts
        )
    root = str(getattr(dataset, "root", ""))
    return EvaluationReport(
        pred_dir,
        root,
        scores,
        summarise(scores),
        cobb,
        scored_landmarks,
        reference if angles else None,
    )


def true_landmarks(sample) -> np.ndarray | None:
    """A sample's landmarks in the data set's order (re-sorted as for trimaps), or None."""
    if sample.landmarks_path is None:
        return None
    return sort_landmarks(sample.load_landmarks())


def reference_angles(dataset, samples, truth: dict, heights: dict) -> tuple[dict, str | None]:
    """The reference Cobb angles of `samples`, and where they come from.

    Parameters
    ----------
    dataset : Dataset
    samples : sequence of Sample
    truth : dict of str to (68, 2) ndarray or None
        Each sample's landmarks (None: it has none).
    heights : dict of str to int
        Each sample's image height in pixels.

    Returns
    -------
    angles : dict of str to (3,) ndarray
        The data set's ``angles.csv`` where it has one; else, when every sample has
        landmarks, the reference computation on them; else empty.
    source : {"angles.csv", "landmarks"} or None
    """
    if getattr(dataset, "angles", None):
        known = {s.name: dataset.angles[s.name] for s in samples if s.name in dataset.angles}
        return known, "angles.csv"
    if samples and all(truth.get(s.name) is not None for s in samples):
        return {
            s.name: cobb_angles(truth[s.name], heights[s.name], source=s.landmarks_path)
            for s in samples
        }, "landmarks"
    return {}, None


def predicted_landmarks_path(folder: str | os.PathLike, image_name: str) -> Path:
    """The predicted landmark file of an image: ``<folder>/<image file name>.mat``.

    Examples
    --------
    >>> predicted_landmarks_path("pred/landmarks", "a b.jpg").as_posix()
    'pred/landmarks/a b.jpg.mat'
    """
    return Path(folder) / f"{image_name}.mat"


def read_predicted_landmarks(folder: str | os.PathLike, names: Iterable[str]) -> dict:
    """The predicted landmarks of each image, None where it has no file.

    Parameters
    ----------
    folder : path-like
        A folder of ``<image file name>.mat`` files holding ``p2``, as ``spine-seg
        predict`` writes them in ``OUT/landmarks/``.
    names : iterable of str
        The images' file names.

    Returns
    -------
    dict of str to (68, 2) ndarray or None

    Raises
    ------
    SpineSegError
        When a file that is there cannot be read, or its ``p2`` is not 68 x 2 finite
        numbers (:func:`~napari_spine_seg.data.aasce.read_landmarks_mat`).
    """
    out = {}
    for name in names:
        path = predicted_landmarks_path(folder, name)
        out[name] = read_landmarks_mat(path) if path.is_file() else None
    return out


def landmark_scores(
    pred: dict,
    truth: dict,
    angles: dict,
    heights: dict,
    *,
    folder: str | os.PathLike | None = None,
    counts: dict | None = None,
) -> dict:
    """Score predicted landmarks against a data set's.

    Parameters
    ----------
    pred : dict of str to (68, 2) ndarray or None
        Every image to score → its predicted landmarks
        (:func:`read_predicted_landmarks`); None counts as an image whose 17 vertebrae
        were not found.
    truth : dict of str to (68, 2) ndarray or None
        The data set's landmarks of each image, for the corner error.
    angles : dict of str to (3,) array_like
        Reference Cobb angles (may be empty: no Cobb scores).
    heights : dict of str to int
        Each image's height in pixels.
    folder : path-like, optional
        Where the landmark files are: recorded, and named in problems.
    counts : dict of str to int, optional
        The number of vertebrae found in each image, where the prediction recorded it
        (its ``vertebrae.json``): reported beside each image without landmarks.

    Returns
    -------
    dict
        JSON-ready: ``folder``; ``counts``
        (:func:`~napari_spine_seg.spine.landmark_eval.count_scores`); ``corner_error``
        (:func:`~napari_spine_seg.spine.landmark_eval.corner_scores`); ``cobb``
        (:func:`~napari_spine_seg.spine.cobb_eval.landmark_cobb_errors`, None without
        reference angles).
    """
    sources = {n: predicted_landmarks_path(folder, n) for n in pred} if folder else None
    cobb = landmark_cobb_errors(pred, angles, heights, sources=sources) if angles else None
    return {
        "folder": None if folder is None else str(folder),
        "counts": count_scores(pred, counts),
        "corner_error": corner_scores(pred, truth, heights),
        "cobb": cobb,
    }


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
    inputs = [report.pred_dir, *([report.dataset] if report.dataset else [])]
    check_output(path, inputs, suffixes=(".json",))
    return write_text_atomic(path, json.dumps(report.to_json(), indent=1) + "\n")
