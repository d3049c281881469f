"""What each step of the end-plate fit bought: zoom tiles, their fade, and the refit.

Predicts a test split drawn by the second generator (``other_generator.py``, seed 7,
never trained on; or ``--test-root``) with each ``--model`` (a vertebrae model trained
with the zoom pass) and scores, in one process, every variant of

* ``tiles``: the zoom pass with 2 or 3 column tiles (``model/zoom.py``: ``TILES``);
* ``ends_faded``: each tile's weight fading at all its edges (as before), or not at the
  top of the first tile and the bottom of the last (``predict._feather``'s ``top`` and
  ``bottom``: the default);
* ``fit``: how each body's edges are fitted (``spine/body_edges.py``), one of
  :data:`FITS`: ``plain`` (least-squares start, no refit: ``fit_vertebrae(...,
  reconcile=False)``), ``reconciled`` (least-squares start;
  :func:`~napari_spine_seg.spine.body_edges.reconcile_plates` refits any end plate more
  than ``MAX_WEDGE`` from its body's other), ``median start`` (the same from a
  Theil–Sen start, ``body_edges._median_line``), ``wedges kept`` (also a wedged body
  between two others is not refitted, ``WEDGE_MARGIN``) and ``image plates`` (the
  default: also each end plate averaged with the X-ray's own edge,
  ``spine/image_plates.py``). A least-squares start is the old fit, restored within
  the run.

The first, whole-image pass is run once per image and shared by the variants. For each
variant: ``found_17`` (share of images with 17 vertebrae fitted), ``corner_error_px``
and ``corner_error_pct_height`` (mean over those images), ``cobb`` (landmark Cobb MAE
and SMAPE against ``angles.csv``, :func:`~napari_spine_seg.spine.cobb_eval.angle_scores`)
and ``tilt_error_sd`` (per vertebra T1…L5 and over all: the standard deviation of the
error of the line joining a body's side mid-points, in degrees, modulo 180) with
``tilt_error_max`` (the largest absolute one), ``tilt_gain`` and ``neighbour_pull``
(:func:`neighbour_pull`: how far the tilts lean towards their neighbours').

Run ``python benchmarks/bench_end_plates.py OUT.json --model A.keras [--model B.keras]
[--test-root DIR] [--test 16]`` (about 15 s a model for 16 images on 2 CPU cores). A run
on two models of issue 11 is kept in ``benchmarks/results/end_plates.json``.
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

import other_generator
from napari_spine_seg.data.aasce import read_angles_csv
from napari_spine_seg.data.dataset import open_dataset
from napari_spine_seg.model import predict, zoom
from napari_spine_seg.model.files import load_model
from napari_spine_seg.model.preprocess import fit_image, placement
from napari_spine_seg.spine import body_edges
from napari_spine_seg.spine.cobb import cobb_angles, vertebra_tilts
from napari_spine_seg.spine.cobb_eval import angle_scores
from napari_spine_seg.spine.vertebrae import (
    VERTEBRA_NAMES,
    corner_error,
    fit_vertebrae,
    spine_column,
)
from napari_spine_seg.trimap import sort_landmarks

TILES = (2, 3)
#: the edge fits compared: (name, least-squares start, reconcile, wedges kept, plates
#: averaged with the image's edges)
FITS = (
    ("plain", True, False, False, False),
    ("reconciled", True, True, False, False),
    ("median start", False, True, False, False),
    ("wedges kept", False, True, True, False),
    ("image plates", False, True, True, True),
)
_FEATHER = predict._feather
_MEDIAN_LINE = body_edges._median_line
_WEDGE_MARGIN = body_edges.WEDGE_MARGIN


@contextmanager
def fit_variant(least_squares: bool, wedges_kept: bool):
    """Within the block, edges start from least squares and (not `wedges_kept`) every
    pair of plates further apart than ``MAX_WEDGE`` is refitted."""
    if least_squares:  # the old start: least squares through all of an edge's points
        body_edges._median_line = body_edges._least_squares_line
    if not wedges_kept:
        body_edges.WEDGE_MARGIN = 0.0
    try:
        yield
    finally:
        body_edges._median_line = _MEDIAN_LINE
        body_edges.WEDGE_MARGIN = _WEDGE_MARGIN


def _feather_all_edges(shape, *, top: bool = True, bottom: bool = True) -> np.ndarray:
    """The fade before: every edge of every tile, the column's ends too."""
    return _FEATHER(shape)


@contextmanager
def zoom_variant(tiles: int, ends_faded: bool):
    """Within the block, the zoom pass uses `tiles` tiles and (`ends_faded`) the old fade."""
    saved = zoom.TILES
    zoom.TILES = tiles
    if ends_faded:
        predict._feather = _feather_all_edges
    try:
        yield
    finally:
        zoom.TILES = saved
        predict._feather = _FEATHER


def first_pass(loaded, image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The whole-image pass's body and background maps at the image's size (as predict)."""
    info = loaded.info
    size = tuple(info.input_size)
    probs = predict._network(loaded, [fit_image(image, size, info.fit)], 1, False)[0]
    return predict._body_and_background(probs, placement(image.shape, size, info.fit))


def tilt_errors(pred: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """Each vertebra's tilt error in degrees, in [-90, 90).

    A tilt is the line from the middle of a body's left side to that of its right; a
    line has no direction, so an error is taken modulo 180 (crossed corners, which turn
    the line round, count by the angle between the lines).
    """
    return (vertebra_tilts(pred) - vertebra_tilts(truth) + 90.0) % 180.0 - 90.0


#: bands of vertebrae (0 = T1) whose neighbour pull is reported on its own: the upper
#: thoracic bodies are the smallest and their discs the thinnest
PULL_BANDS = {"T2-T6": (1, 6), "T7-T11": (6, 11), "T12-L4": (11, 16)}


def neighbour_pull(errors: np.ndarray, truth: np.ndarray) -> dict:
    """How far predicted tilts lean towards their neighbours' (0: not at all).

    The slope of each interior vertebra's tilt error (its image's mean error removed:
    a turn of the whole spine changes no Cobb angle) on its true tilt's difference from
    the mean of its two neighbours' true tilts. A network that draws each end plate
    partly along its neighbours' plates, rather than along its own, blurs the vertebrae's
    own tilts: its errors then follow ``-pull × difference``.

    Parameters
    ----------
    errors, truth : (images, 17) ndarray
        Tilt errors and true tilts (:func:`tilt_errors`,
        :func:`~napari_spine_seg.spine.cobb.vertebra_tilts`), degrees.

    Returns
    -------
    dict
        ``all`` and one entry per :data:`PULL_BANDS` band: the pull (minus the slope).
    """
    errors = np.asarray(errors, dtype=np.float64)
    truth = np.asarray(truth, dtype=np.float64)
    within = errors - errors.mean(axis=1, keepdims=True)
    own = truth[:, 1:-1] - (truth[:, :-2] + truth[:, 2:]) / 2.0
    within = within[:, 1:-1]

    def pull(x: np.ndarray, y: np.ndarray) -> float:
        x = x.ravel() - x.mean()
        return float(-(x * (y.ravel() - y.mean())).sum() / max(float((x * x).sum()), 1e-12))

    result = {"all": pull(own, within)}
    for name, (lo, hi) in PULL_BANDS.items():
        result[name] = pull(own[:, lo - 1 : hi - 1], within[:, lo - 1 : hi - 1])
    return result


def _key(tiles: int, ends_faded: bool, fit: str) -> str:
    fade = "ends_faded" if ends_faded else "ends_not_faded"
    return f"tiles{tiles}_{fade}_{fit.replace(' ', '_')}"


def _score(records: list[dict], n_images: int) -> dict:
    """One variant's scores from its per-image records (those with 17 vertebrae)."""
    if not records:
        return {"found_17": 0.0, "n_images": n_images}
    errors = np.array([r["tilt_error"] for r in records])
    truth = np.array([r["tilt"] for r in records])
    truth -= truth.mean(axis=1, keepdims=True)
    within = errors - errors.mean(axis=1, keepdims=True)
    return {
        "found_17": len(records) / n_images,
        "n_images": n_images,
        "corner_error_px": float(np.mean([r["corner_px"] for r in records])),
        "corner_error_pct_height": float(np.mean([r["corner_pct"] for r in records])),
        "cobb": angle_scores([r["reference"] for r in records], [r["cobb"] for r in records]),
        "tilt_error_sd": float(errors.std()),
        "tilt_error_max": float(np.abs(errors).max()),
        # slope of predicted on true tilt within each image: below 1, tilts flattened
        "tilt_gain": float(1.0 + (within * truth).sum() / max(float((truth**2).sum()), 1e-12)),
        "neighbour_pull": neighbour_pull(errors, truth),
        "tilt_error_sd_per_vertebra": dict(
            zip(VERTEBRA_NAMES, np.round(errors.std(axis=0), 3).tolist(), strict=True)
        ),
    }


def evaluate_model(model_path: str, test_root: Path) -> dict:
    """Score every variant of `model_path` on the test split of `test_root`."""
    loaded = load_model(model_path)
    if not loaded.info.has_vertebrae:
        raise SystemExit(f"{model_path}: not a vertebrae model")
    reference = read_angles_csv(test_root / "labels" / "test")
    test = open_dataset(test_root).split("test")
    variants = list(itertools.product(TILES, (True, False), FITS))
    records: dict[str, list[dict]] = {_key(t, e, f[0]): [] for t, e, f in variants}
    start = time.perf_counter()
    for sample in test:
        image, _ = predict._prepared(sample)
        truth = sort_landmarks(sample.load_landmarks())
        h = image.shape[0]
        body, background = first_pass(loaded, image)
        column = spine_column(background <= 0.5)
        for tiles, ends_faded in itertools.product(TILES, (True, False)):
            with zoom_variant(tiles, ends_faded):
                zoomed = predict.zoom_pass(loaded, image, body, background)
            for name, least_squares, reconcile, wedges_kept, read_image in FITS:
                with fit_variant(least_squares, wedges_kept):
                    fit = fit_vertebrae(
                        zoomed,
                        column=column,
                        reconcile=reconcile,
                        image=image if read_image else None,
                    )
                if fit.landmarks is None:
                    continue
                err = corner_error(fit.landmarks, truth)
                records[_key(tiles, ends_faded, name)].append(
                    {
                        "corner_px": err,
                        "corner_pct": 100.0 * err / h,
                        "cobb": cobb_angles(fit.landmarks, h),
                        "reference": reference[sample.name],
                        "tilt_error": tilt_errors(fit.landmarks, truth),
                        "tilt": vertebra_tilts(truth),
                    }
                )
        print(sample.name, flush=True)
    out = {"model": model_path, "seconds": time.perf_counter() - start, "variants": {}}
    for tiles, ends_faded, (name, *_) in variants:
        key = _key(tiles, ends_faded, name)
        out["variants"][key] = {
            "tiles": tiles,
            "ends_faded": ends_faded,
            "fit": name,
            **_score(records[key], len(test)),
        }
    return out


def table(report: dict) -> str:
    """The variants of each model as a markdown table."""
    lines = [
        "| model | tiles | ends faded | fit | found 17 | corner % h | Cobb MAE | SMAPE "
        "| tilt sd | gain |",
        "| --- | ---: | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for model in report["models"]:
        for v in model["variants"].values():
            cobb = v.get("cobb") or {}
            lines.append(
                f"| {Path(model['model']).parent.name} | {v['tiles']} | {v['ends_faded']} "
                f"| {v['fit']} | {v['found_17']:.2f} "
                f"| {v.get('corner_error_pct_height', float('nan')):.3f} "
                f"| {cobb.get('mae') or float('nan'):.2f} | {cobb.get('smape') or float('nan'):.2f} "
                f"| {v.get('tilt_error_sd', float('nan')):.2f} "
                f"| {v.get('tilt_gain', float('nan')):.3f} |"
            )
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("json", help="output JSON file")
    parser.add_argument(
        "--model", action="append", required=True, help="a vertebrae model (repeatable)"
    )
    parser.add_argument(
        "--test-root", help="an AASCE-layout set whose test split is scored (default: generated)"
    )
    parser.add_argument("--test", type=int, default=16, help="images generated (no --test-root)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        test_root = Path(args.test_root) if args.test_root else Path(tmp) / "other"
        if not args.test_root:
            other_generator.write_other_set(test_root, n_train=0, n_test=args.test)
        report = {
            "test_root": args.test_root or f"other_generator.py seed {other_generator.TEST_SEED}",
            "models": [evaluate_model(m, test_root) for m in args.model],
        }
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps(report, indent=1))
    print(table(report))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
