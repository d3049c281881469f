"""The whole job on phantoms, end to end: ``spine-seg demo``.

1. write a phantom set in the AASCE layout (:func:`~napari_spine_seg.data.phantom.write_phantom_set`);
2. train the default U-Net on its training split (:func:`~napari_spine_seg.model.train.train`);
3. predict its test split at full size (:func:`~napari_spine_seg.model.predict.predict_files`);
4. score the predictions (:func:`~napari_spine_seg.evaluate.evaluate`): the trimaps,
   and, from a model with vertebra outputs, the landmarks (vertebrae found, corner
   error, Cobb angles from the landmarks beside those from the trimaps);
5. write overlays (each test image interlaced with its predicted trimap), the training
   curves and ``report.md`` with the scores (:mod:`~napari_spine_seg.demo_report`).

Everything goes under one output folder::

    phantoms/  model.keras  model.last.keras  model.history.csv  cache/
    predictions/ (landmarks/)  overlays/  curves.png  evaluation.json  report.md
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from .atomic import check_writable_folder, write_text_atomic
from .data.dataset import open_dataset
from .data.masks import read_trimap_png, trimap_name
from .data.phantom import write_phantom_set
from .demo_report import DemoRun, report_markdown
from .evaluate import evaluate, write_report_json
from .model.curves import plot_history
from .model.files import load_model
from .model.predict import predict_files
from .model.train import train
from .outputs import check_output
from .overlay import write_overlay

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
    run = DemoRun(settings, seed, quick, out, len(dataset.split("training")))
    text = report_markdown(run, result, report, model.info, overlays, seconds)
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
    # an image without 17 vertebrae is named by the report's landmark lines, once and
    # plainly (not as a Python warning with a file and line number)
    predict_files(
        model,
        [str(root / "data" / "test")],
        pred_dir,
        progress=_bar_progress(bar, "predict"),
        report=lambda line: None,
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
