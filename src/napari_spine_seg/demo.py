"""The whole job on phantoms, end to end: ``spine-seg demo``.

1. write a phantom set in the AASCE layout (:func:`~napari_spine_seg.data.phantom.write_phantom_set`);
2. train the default U-Net on its training split (:func:`~napari_spine_seg.model.train.train`);
3. predict its test split at full size (:func:`~napari_spine_seg.model.predict.predict_files`);
4. score the predictions (:func:`~napari_spine_seg.evaluate.evaluate`): the trimaps,
   and, from a model with vertebra outputs, the landmarks (vertebrae found, corner
   error, Cobb angles from the landmarks beside those from the trimaps);
5. write overlays (each test image interlaced with its predicted trimap), the training
   curves and ``report.md`` with the scores.

Everything goes under one output folder::

    phantoms/  model.keras  model.last.keras  model.history.csv  cache/
    predictions/ (landmarks/)  overlays/  curves.png  evaluation.json  report.md
"""

from __future__ import annotations

import contextlib
import datetime
import os
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from . import __version__
from .atomic import check_writable_folder, write_text_atomic
from .data.dataset import open_dataset
from .data.masks import read_trimap_png, trimap_name
from .data.phantom import write_phantom_set
from .evaluate import evaluate, write_report_json
from .model.builders import UNET_DEFAULTS
from .model.curves import plot_history
from .model.files import load_model
from .model.predict import predict_files
from .model.train import train
from .outputs import check_output
from .overlay import write_overlay
from .spine.cobb_eval import order_note

#: the full demo: sized to finish within 10 minutes on 2 CPU cores
DEMO = {"n_train": 150, "n_test": 16, "epochs": 20, "size": None, "options": None, "batch_size": 8}
#: --quick: seconds, for tests (too small to learn much)
QUICK = {
    "n_train": 6,
    "n_test": 2,
    "epochs": 1,
    "size": (64, 32),
    "options": {"depth": 2, "filters": 4},
    "batch_size": 2,
}
#: the targets the report checks the scores against
TARGETS = {"spine_dice": 0.95, "pixel_accuracy": 0.98}
#: the most Cobb-angle SMAPE (percent) the predicted trimaps may score
TARGET_COBB_SMAPE = 10.0
#: the targets of a model with vertebra outputs (issue 11): the least share of images with
#: 17 vertebrae found, the most mean corner error (% of the image height), and the most
#: Cobb-angle SMAPE (percent) and MAE (degrees) from the predicted landmarks
TARGETS_LANDMARKS = {"found_rate": 0.95, "corner_percent": 0.3, "smape": 6.0, "mae": 2.0}
OVERLAYS_IN_REPORT = 6


@dataclass
class DemoResult:
    """What :func:`run_demo` made.

    Attributes
    ----------
    out : Path
        The output folder.
    report : Path
        ``report.md``.
    model : Path
    scores : dict
        Mean test scores (pixel_accuracy, spine_dice, spine_iou, hd95).
    train : TrainResult
    seconds : dict
        Wall time of each stage and ``total``.
    cobb : dict or None
        The Cobb-angle errors of the predicted trimaps (``EvaluationReport.cobb``).
    landmarks : dict or None
        The predicted landmarks' scores (``EvaluationReport.landmarks``); None for a
        model without vertebra outputs.
    """

    out: Path
    report: Path
    model: Path
    scores: dict
    train: object
    seconds: dict = field(default_factory=dict)
    cobb: dict | None = None
    landmarks: dict | None = None


def _noop_bar(iterable: Iterable, **_kwargs) -> Iterable:
    return iterable


def run_demo(
    out: str | os.PathLike = "spine-seg-demo",
    *,
    quick: bool = False,
    seed: int = 0,
    progress: Callable[[object], None] | None = None,
    bar: Callable[..., Iterable] | None = None,
    log: Callable[[str], None] | None = None,
    **overrides,
) -> DemoResult:
    """Make phantoms, train, predict, evaluate, and write overlays and a report.

    Parameters
    ----------
    out : path-like
        Output folder (created; an earlier demo there is replaced file by file).
    quick : bool
        A tiny run (a few small images, one epoch) for tests: it checks the plumbing,
        not the scores.
    seed : int
        Seeds the phantoms and the training.
    progress : callable, optional
        Receives training events (:mod:`napari_spine_seg.model.events`).
    bar : callable, optional
        ``bar(iterable, total=, desc=, unit=)`` wrapping loops over images, like
        :func:`napari_spine_seg.cli._progress.progress`.
    log : callable, optional
        Receives one line per stage.
    **overrides
        Replace settings of the run: ``n_train``, ``n_test``, ``epochs``, ``size``,
        ``options``, ``batch_size``.

    Returns
    -------
    DemoResult
    """
    settings = _settings(quick, overrides)
    bar = bar or _noop_bar
    say = log or (lambda _line: None)
    out = check_writable_folder(check_output(out, folder=True))
    clock = _Stages()

    with clock("phantoms"):
        say(
            f"making {settings['n_train']} training and {settings['n_test']} test phantoms "
            f"in {out / 'phantoms'}"
        )
        root = write_phantom_set(
            out / "phantoms",
            n_train=settings["n_train"],
            n_test=settings["n_test"],
            seed=seed,
            progress=lambda it, **kw: bar(it, **kw),
        )
        dataset = open_dataset(root)
    with clock("training"):
        say("training the default U-Net")
        result = _train(dataset, out, settings, seed, progress)
    test = dataset.split("test")
    with clock("prediction"):
        say(f"predicting the {len(test)} test images")
        model = load_model(result.model_path)
        pred_dir = _predict(model, root, out, bar)
    with clock("evaluation"):
        report = evaluate(
            pred_dir,
            test,
            progress=_bar_progress(bar, "evaluate"),
            landmarks=_has_vertebrae(model.info) or None,
        )
        write_report_json(report, out / "evaluation.json")
    with clock("overlays"):
        overlays = _write_overlays(test, pred_dir, out / "overlays", bar)
        plot_history(result.history, out / "curves.png", title="training (phantoms)")
    seconds = clock.done()

    report_path = out / "report.md"
    run = _Run(settings, seed, quick, out, len(dataset.split("training")))
    text = _report_markdown(run, result, report, model.info, overlays, seconds)
    write_text_atomic(report_path, text)
    say(f"report: {report_path}")
    return DemoResult(
        out,
        report_path,
        result.model_path,
        dict(report.mean),
        result,
        seconds,
        report.cobb,
        report.landmarks,
    )


def _has_vertebrae(info) -> bool:
    """Whether the model has vertebra outputs; then an image without a landmark file
    counts as one whose vertebrae were not found, even when none has one."""
    return bool(getattr(info, "has_vertebrae", False))  # models from before issue 11: False


def _settings(quick: bool, overrides: dict) -> dict:
    settings = dict(QUICK if quick else DEMO)
    unknown = set(overrides) - set(settings)
    if unknown:
        raise TypeError(f"unknown demo setting(s): {', '.join(sorted(unknown))}")
    settings.update(overrides)
    return settings


class _Stages:
    """Wall time of each stage (``with clock("name"):``) and, after :meth:`done`, ``total``."""

    def __init__(self):
        self.seconds: dict = {}
        self._t0 = time.perf_counter()

    @contextlib.contextmanager
    def __call__(self, name: str):
        t = time.perf_counter()
        yield
        self.seconds[name] = time.perf_counter() - t

    def done(self) -> dict:
        self.seconds["total"] = time.perf_counter() - self._t0
        return self.seconds


def _bar_progress(bar, desc: str):
    """A ``progress(iterable, n)`` callback that wraps the loop in `bar`."""
    return lambda it, n: bar(it, total=n, desc=desc, unit="image")


def _train(dataset, out: Path, settings: dict, seed: int, progress):
    return train(
        dataset.split("training"),
        out / "model.keras",
        size=settings["size"],
        epochs=settings["epochs"],
        batch_size=settings["batch_size"],
        options=settings["options"],
        seed=seed,
        progress=progress,
        cache=out / "cache",
    )


def _predict(model, root: Path, out: Path, bar) -> Path:
    """Predict the test split's images into ``out/predictions``."""
    pred_dir = out / "predictions"
    predict_files(
        model, [str(root / "data" / "test")], pred_dir, progress=_bar_progress(bar, "predict")
    )
    return pred_dir


def _write_overlays(test, pred_dir: Path, overlay_dir: Path, bar) -> list[Path]:
    """Each test image interlaced with its predicted trimap; returns the files written."""
    overlays = []
    for sample in bar(test.samples, total=len(test), desc="overlays", unit="image"):
        name = trimap_name(sample.name)
        target = overlay_dir / name
        write_overlay(target, sample.load_image().pixels, read_trimap_png(pred_dir / name))
        overlays.append(target)
    return overlays


@dataclass
class _Run:
    """The settings of a demo run that its report states."""

    settings: dict
    seed: int
    quick: bool
    out: Path
    n_train: int


def _fmt(value, digits: int = 4) -> str:
    return "–" if value is None or value != value else f"{value:.{digits}f}"


def _cobb_section(cobb: dict | None) -> list[str]:
    """Markdown lines of the Cobb angles measured on the predicted trimaps."""
    if not cobb or not cobb["n_images"]:
        return []
    per = cobb["mae_per_angle"]
    lines = [
        "",
        "## Cobb angles",
        "",
        f"Measured on each predicted trimap's centre line (`spine-seg evaluate`) against the "
        f"phantoms' `angles.csv`, {cobb['n_images']} images: MAE {cobb['mae']:.2f}° (PT "
        f"{per['pt']:.2f}°, MT {per['mt']:.2f}°, TL/L {per['tl']:.2f}°), SMAPE "
        f"{cobb['smape']:.2f} %. Phantoms, not real X-rays: the published marks on the real "
        "AASCE test set are SMAPE 21.7 % (best challenge entry) and 22.96 % (a centre-line "
        "method).",
    ]
    if cobb["order_doubtful"]:
        lines.append(order_note(cobb) + ".")
    if cobb["failed"]:
        names = ", ".join(f["name"] for f in cobb["failed"])
        lines.append(f"Not measurable (scored as 0°): {names}.")
    return lines


def _landmark_section(report) -> list[str]:
    """Markdown lines on the predicted landmarks: vertebrae found, corner error, and the
    Cobb angles from the landmarks beside those from the trimaps (none without landmarks)."""
    scores = report.landmarks
    if scores is None:
        return []
    counts, corner, cobb = scores["counts"], scores["corner_error"], scores["cobb"]
    rate = counts["found_rate"]
    lines = [
        "",
        "## Vertebrae and landmarks",
        "",
        "The model also finds the vertebral bodies and fits the 68 corners of the 17 "
        "vertebrae (`predictions/landmarks/`, the data set's own `.mat` format) wherever it "
        f"found exactly 17: on {counts['n_found']} of {counts['n_images']} test images"
        + (f" ({100 * rate:.1f} %)." if rate is not None else "."),
    ]
    if corner["n_images"]:
        lines.append(
            f"Mean corner error against the phantoms' landmarks: {corner['mean_px']:.2f} px, "
            f"{corner['mean_percent_height']:.3f} % of the image height (worst image "
            f"{corner['max_px']:.2f} px)."
        )
    if cobb and cobb["n_images"]:
        lines += ["", "| Cobb angles against `angles.csv` | images | MAE | SMAPE |"]
        lines.append("| --- | ---: | ---: | ---: |")
        if report.cobb and report.cobb["n_images"]:
            lines.append(_cobb_row("from the predicted trimaps (centre line)", report.cobb))
        lines.append(_cobb_row("from the predicted landmarks (the reference computation)", cobb))
        found = cobb["found"]
        if found["n"] and found["n"] < cobb["n_images"]:
            lines.append(_cobb_row("from the landmarks, images with landmarks only", found))
        if cobb["missing"]:
            lines += ["", f"Without landmarks (scored as 0°): {', '.join(cobb['missing'])}."]
        if cobb["order_doubtful"]:
            lines.append(f"Landmarks: {order_note(cobb)}.")
    return lines


def _cobb_row(what: str, scores: dict) -> str:
    n = scores.get("n_images", scores.get("n"))
    return f"| {what} | {n} | {scores['mae']:.2f}° | {scores['smape']:.2f} % |"


def _report_markdown(run: _Run, result, report, info, overlays, seconds) -> str:
    lines = [
        *_intro(run, info, seconds),
        *_data_and_model(run, result, report, info),
        *_scores_section(report),
        *_targets_section(report, run.quick),
        "",
        "The seed paper reported 92 % pixel accuracy (160×160 Oxford-pets U-Net, hand-painted "
        "trimaps of real X-rays).",
        *_cobb_section(report.cobb),
        *_landmark_section(report),
        *_overlays_section(overlays, run.out),
        *_time_section(seconds),
    ]
    return "\n".join(lines)


def _intro(run: _Run, info, seconds: dict) -> list[str]:
    now = datetime.datetime.now().strftime("%Y-%m-%d %H:%M")
    versions = info.versions
    return [
        "# napari-spine-seg demo",
        "",
        f"Made by `spine-seg demo{' --quick' if run.quick else ''}` on {now} in "
        f"{seconds['total'] / 60:.1f} minutes (napari-spine-seg {__version__}, Keras "
        f"{versions.get('keras', '?')} on {versions.get('backend', '?')}).",
    ]


def _architecture(info) -> str:
    if info.preset != "unet":
        return "(the seed's keras-io model)"
    o = {**UNET_DEFAULTS, **(info.options or {})}
    return f"(depth {o['depth']}, {o['filters']} base filters, {o['norm']} normalisation)"


def _data_and_model(run: _Run, result, report, info) -> list[str]:
    return [
        "",
        "## Data",
        "",
        f"{run.n_train} training and {len(report.images)} test phantoms (seed {run.seed}) in "
        f"the AASCE layout: `phantoms/`. {result.n_val} of the training phantoms were held out "
        "for validation. Trimaps (1 spine, 2 background, 3 border) were drawn from the "
        "landmarks on the fly.",
        "",
        "## Model",
        "",
        f"Preset `{info.preset}` {_architecture(info)}, input {info.input_size[0]}×"
        f"{info.input_size[1]}×{info.channels} ({info.fit}), loss "
        f"`{info.training.get('loss')}`, batch {info.training.get('batch_size')}, Adam at "
        f"{info.training.get('learning_rate')}. Trained {result.epochs_run} epochs "
        f"({result.stopped}); the best epoch, {result.best_epoch}, is saved in `model.keras`.",
        "",
        "## Training curves",
        "",
        "Loss, pixel accuracy and spine Dice per epoch, on the training and validation phantoms.",
        "",
        "![training curves](curves.png)",
    ]


def _scores_section(report) -> list[str]:
    m = report.mean
    lines = [
        "",
        "## Scores on the test split",
        "",
        "At each image's full size; spine Dice and IoU ignore the ground truth's border band.",
        "",
        "| | pixel accuracy | spine Dice | spine IoU | HD95 (px) |",
        "| --- | ---: | ---: | ---: | ---: |",
        f"| **mean** | **{_fmt(m['pixel_accuracy'])}** | **{_fmt(m['spine_dice'])}** | "
        f"**{_fmt(m['spine_iou'])}** | **{_fmt(m['hd95'], 1)}** |",
    ]
    for s in report.images:
        lines.append(
            f"| {s.name} | {_fmt(s.pixel_accuracy)} | {_fmt(s.spine_dice)} | {_fmt(s.spine_iou)} | "
            f"{_fmt(s.hd95 if s.hd95 != float('inf') else None, 1)} |"
        )
    return lines


def _targets_section(report, quick: bool) -> list[str]:
    m = report.mean
    lines = ["", "Targets on phantoms:"]
    for key, target in TARGETS.items():
        ok = m[key] >= target
        lines.append(
            f"- {key.replace('_', ' ')} ≥ {target}: {_fmt(m[key])} — {'met' if ok else 'NOT met'}"
        )
    cobb = report.cobb
    if cobb and cobb["smape"] is not None:
        ok = cobb["smape"] <= TARGET_COBB_SMAPE
        lines.append(
            f"- Cobb-angle SMAPE from the predicted trimaps ≤ {TARGET_COBB_SMAPE:g} %: "
            f"{cobb['smape']:.2f} % — {'met' if ok else 'NOT met'}"
        )
    lines += _landmark_targets(report)
    if quick:
        lines.append("- (a `--quick` run is too small to meet them; it checks the plumbing)")
    return lines


def _landmark_targets(report) -> list[str]:
    """Target lines for the predicted landmarks (none without them)."""
    scores = report.landmarks
    if scores is None:
        return []
    t = TARGETS_LANDMARKS

    def verdict(ok: bool) -> str:
        return "met" if ok else "NOT met"

    rate, corner, cobb = (
        scores["counts"]["found_rate"],
        scores["corner_error"]["mean_percent_height"],
        scores["cobb"],
    )
    lines = []
    if rate is not None:
        lines.append(
            f"- 17 vertebrae found on ≥ {100 * t['found_rate']:g} % of the images: "
            f"{100 * rate:.1f} % — {verdict(rate >= t['found_rate'])}"
        )
    if corner is not None:
        lines.append(
            f"- mean corner error ≤ {t['corner_percent']:g} % of the image height: "
            f"{corner:.3f} % — {verdict(corner <= t['corner_percent'])}"
        )
    if cobb and cobb["smape"] is not None:
        below = report.cobb is None or cobb["smape"] < (report.cobb["smape"] or 0.0)
        ok = cobb["smape"] <= t["smape"] and cobb["mae"] <= t["mae"] and below
        lines.append(
            f"- Cobb angles from the predicted landmarks: SMAPE ≤ {t['smape']:g} % and MAE ≤ "
            f"{t['mae']:g}°, and below the trimaps': MAE {cobb['mae']:.2f}°, SMAPE "
            f"{cobb['smape']:.2f} % — {verdict(ok)}"
        )
    return lines


def _overlays_section(overlays: list[Path], out: Path) -> list[str]:
    lines = [
        "",
        "## Overlays",
        "",
        "Each test image interlaced with its predicted trimap (spine and border in colour on "
        "alternate row bands): `overlays/`.",
        "",
    ]
    for path in overlays[:OVERLAYS_IN_REPORT]:
        rel = path.relative_to(out).as_posix()
        lines.append(f'<img src="{rel}" alt="{path.name}" height="320">')
    if len(overlays) > OVERLAYS_IN_REPORT:
        lines += ["", f"… and {len(overlays) - OVERLAYS_IN_REPORT} more in `overlays/`."]
    return lines


def _time_section(seconds: dict) -> list[str]:
    return [
        "",
        "## Time",
        "",
        "| stage | seconds |",
        "| --- | ---: |",
        *(f"| {k} | {v:.1f} |" for k, v in seconds.items()),
        "",
        "Files: `model.keras` (best model, metadata inside), `model.last.keras` (to resume), "
        "`model.history.csv`, `predictions/` (trimap PNGs; `landmarks/` from a model with "
        "vertebra outputs), `evaluation.json`.",
        "",
    ]
