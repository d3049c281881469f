"""The vertebrae output measured: corners, vertebra counts, Cobb angles and trimaps.

Trains a model with the default settings on phantoms (``write_phantom_set``) for a time
budget (or takes ``--model``), predicts a test split drawn by the second generator
(``other_generator.py``, never trained on; ``--generator spines``: ``other_spines.py``'s
seed-2024 split, the Cobb benchmark's; ``--generator strong``: its strongly curved set,
main curves 30–75°, ``bench_bending.py``'s), and reports in one JSON:

* ``found_17``: the fraction of images where exactly 17 vertebrae were found;
* ``corner_error``: mean distance between predicted and true corners, in pixels and in
  % of the image height, over those images; both for the fit at the image's own size
  (what ``predict`` does) and for a fit at the network's size scaled to the image;
* ``cobb_landmarks``, ``cobb_column`` and ``cobb_trimaps``: Cobb MAE and SMAPE from
  the predicted landmarks and, in the same run, by the centre-line method from the
  network's own column (the whole-column trimap, what a trimap model measures) and from
  the predicted trimap (drawn from the corners where 17 were found, else the column);
* ``tilt_error_deg``: each vertebra's tilt (the line the reference measures, from the
  middle of its left side to that of its right) against the truth: the spread, overall
  and per vertebra, and the gain (slope of predicted on true tilt; below 1, the tilts
  are flattened): the end plates' precision, which the three Cobb angles of 16 images
  measure only coarsely; and the neighbour pull (``bench_end_plates.neighbour_pull``:
  how far each tilt leans towards its neighbours', overall and for three bands of
  vertebrae);
* ``cobb_landmarks`` also gives the median of the images' SMAPE and the share of images
  whose largest angle (MT) moved to another curve than the reference's: where two
  curves are nearly equal, a fraction of a degree moves the reference's PT/MT/TL to
  other curves and that image scores some 50 % (``bench_tilt_noise.py``);
* ``trimap`` and ``column``: mean spine Dice and 3-class pixel accuracy of the
  predicted trimap and of the network's column against trimaps drawn from the true
  landmarks;
* training and prediction seconds.

Run ``python benchmarks/bench_vertebrae.py OUT.json [--minutes 10] [--outputs vertebrae]
[--model FILE] [--train 40] [--test 16] [--patience N] [--lr-schedule plateau|cosine]
[--filters N]
[--generator other|spines|strong] [--test-seed 7] [--test-scale 1] [--no-test-grain]
[--test-antialias 4] [--no-zoom-pass] [--epochs N] [--work DIR] [--tta]``.
Training takes the defaults of ``spine-seg train`` (``TRAIN_DEFAULTS``: epochs, early
stopping, the zoom pass of a vertebrae model) unless told. ``--test-seed 8`` draws
another set of the second generator, kept apart from the one (seed 7) the defaults were
measured on; ``--test-scale 2`` draws its images with twice the rows and columns, and
``--no-test-grain`` without their counting noise and film grain. ``--test-antialias``
sets how many times finer than the image any generator draws its shapes (default 4, so
that a body lies where its landmarks say; 1: every corner floored to a whole pixel, as
every set was drawn until 2026-12-01, ``fine_drawing.py``).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

import other_generator
import other_spines
from bench_end_plates import neighbour_pull, tilt_errors
from bench_tilt_noise import mt_moved
from fine_drawing import FINENESS, fineness
from napari_spine_seg.data.aasce import read_angles_csv
from napari_spine_seg.data.dataset import open_dataset
from napari_spine_seg.data.phantom import write_phantom_set
from napari_spine_seg.model.config import LR_SCHEDULES
from napari_spine_seg.model.defaults import TRAIN_DEFAULTS
from napari_spine_seg.model.files import load_model
from napari_spine_seg.model.predict import iter_predictions
from napari_spine_seg.model.preprocess import fit_image, placement
from napari_spine_seg.spine.cobb import cobb_details, smape, vertebra_tilts
from napari_spine_seg.spine.cobb_eval import angle_scores, cobb_errors
from napari_spine_seg.spine.metrics import pixel_accuracy, spine_dice
from napari_spine_seg.spine.vertebrae import corner_error, fit_vertebrae, spine_column
from napari_spine_seg.trimap import trimap_from_landmarks, trimap_from_mask


def train_model(
    work: Path,
    minutes: float,
    outputs: str,
    n_train: int,
    seed: int,
    patience: int | None,
    zoom_pass: bool | None = None,
    epochs: int | None = None,
    max_curve: float | None = None,
    **settings,
) -> dict:
    """Train on fresh phantoms for `minutes`; return the model path and the seconds.

    `max_curve` draws only phantoms with curves up to that many degrees; `settings` are
    further training settings (``bend_deg``, ...).
    """
    from napari_spine_seg.model.train import train

    root = write_phantom_set(
        work / "phantoms", n_train=n_train, n_test=0, seed=seed, max_curve=max_curve
    )
    start = time.perf_counter()
    result = train(
        root,
        work / f"{outputs}.keras",
        outputs=outputs,
        epochs=epochs or TRAIN_DEFAULTS["epochs"],
        max_minutes=minutes,
        cache=work / "cache",
        seed=seed,
        zoom_pass=zoom_pass,
        **({} if patience is None else {"patience": patience}),
        **settings,
    )
    return {
        "model": str(result.model_path),
        "train_seconds": time.perf_counter() - start,
        "epochs_run": result.epochs_run,
        "best_epoch": result.best_epoch,
        "stopped": result.stopped,
    }


def _net_fit(loaded, image: np.ndarray):
    """Landmarks fitted at the network's size, scaled to the image (None if not 17)."""
    import keras

    from napari_spine_seg.model.targets import BACKGROUND_CLASS, BODY_CLASS

    info = loaded.info
    x = fit_image(image, info.input_size, info.fit)[None, ..., None]
    probs = keras.ops.convert_to_numpy(loaded.keras_model.predict_on_batch(x))[0]
    place = placement(image.shape, info.input_size, info.fit)
    top, left, ph, pw = place.box
    crop = probs[top : top + ph, left : left + pw]
    column = spine_column(crop[..., BACKGROUND_CLASS] <= 0.5)
    fit = fit_vertebrae(crop[..., BODY_CLASS], column=column)
    if fit.landmarks is None:
        return None
    h, w = image.shape
    scale = np.array([w / pw, h / ph])
    return (fit.landmarks + 0.5) * scale - 0.5


def _tilt_summary(tilts: list[tuple[np.ndarray, np.ndarray]]) -> dict | None:
    """Spread of the tilt errors, per vertebra, and the gain of predicted on true tilts."""
    if not tilts:
        return None
    errors = np.array([e for e, _ in tilts])
    true = np.concatenate([t for _, t in tilts])
    return {
        "sd": float(errors.std()),
        "mean": float(errors.mean()),
        "gain": float(np.polyfit(true, true + errors.ravel(), 1)[0]),
        "sd_per_vertebra": np.round(errors.std(axis=0), 3).tolist(),
        "neighbour_pull": neighbour_pull(errors, np.array([t for _, t in tilts])),
    }


def evaluate_model(
    model_path: str, test_root: Path, net_fit: bool = True, tta: bool = False
) -> dict:
    """Predict the test split and score landmarks, counts, Cobb angles and trimaps
    (`tta`: as ``spine-seg predict --tta``)."""
    loaded = load_model(model_path)
    test = open_dataset(test_root).split("test")
    reference = read_angles_csv(test_root / "labels" / "test")
    images = [s.load_image().pixels for s in test]
    start = time.perf_counter()
    preds = list(iter_predictions(loaded, images, tta=tta))
    predict_seconds = time.perf_counter() - start
    rows, lm_angles, lm_ref, trimaps, columns, tilts = [], [], [], {}, {}, []
    for sample, image, pred in zip(test, images, preds, strict=True):
        truth = sample.load_landmarks()
        h = image.shape[0]
        gt_trimap = trimap_from_landmarks(truth, image.shape)
        row = {
            "name": sample.name,
            "dice": spine_dice(gt_trimap, pred.trimap),
            "accuracy": pixel_accuracy(gt_trimap, pred.trimap),
            "found": None if pred.vertebrae is None else int(pred.vertebrae.max()),
            "faults": list(pred.vertebra_faults),
        }
        trimaps[sample.name] = pred.trimap
        # the network's own column, which the trimap was before it was drawn from the
        # corners: the centre-line method as it stands without landmarks
        column = trimap_from_mask(spine_column(pred.probability >= 0.5))
        columns[sample.name] = column
        row.update(
            column_dice=spine_dice(gt_trimap, column),
            column_accuracy=pixel_accuracy(gt_trimap, column),
        )
        if pred.landmarks is not None:
            err = corner_error(pred.landmarks, truth)
            row.update(corner_px=err, corner_pct=100.0 * err / h)
            measured, true = cobb_details(pred.landmarks, h), cobb_details(truth, h)
            lm_angles.append(measured.angles)
            lm_ref.append(reference[sample.name])
            row.update(
                cobb_smape=smape(lm_ref[-1][None], measured.angles[None]),
                mt_moved=mt_moved(true.pairs, measured.pairs),
            )
            tilts.append((tilt_errors(pred.landmarks, truth), vertebra_tilts(truth)))
        if net_fit and loaded.info.has_vertebrae:
            net = _net_fit(loaded, image)
            if net is not None:
                row["net_corner_pct"] = 100.0 * corner_error(net, truth) / h
        rows.append(row)
    cobb_tri = cobb_errors(trimaps, reference)
    cobb_col = cobb_errors(columns, reference)

    def mean(key):
        vals = [r[key] for r in rows if r.get(key) is not None]
        return float(np.mean(vals)) if vals else None

    found = [r for r in rows if r.get("corner_px") is not None]
    cobb = angle_scores(lm_ref, lm_angles) if lm_angles else None
    if cobb is not None:
        cobb["smape_median"] = float(np.median([r["cobb_smape"] for r in found]))
        cobb["mt_moved"] = float(np.mean([r["mt_moved"] for r in found]))
    return {
        "n_images": len(rows),
        "found_17": len(found) / len(rows) if loaded.info.has_vertebrae else None,
        "corner_error_px": mean("corner_px"),
        "corner_error_pct_height": mean("corner_pct"),
        "corner_error_pct_height_net_fit": mean("net_corner_pct"),
        "cobb_landmarks": cobb,
        "tilt_error_deg": _tilt_summary(tilts),
        "cobb_trimaps": {k: cobb_tri[k] for k in ("n_images", "mae", "smape")},
        "cobb_column": {k: cobb_col[k] for k in ("n_images", "mae", "smape")},
        "trimap": {"dice": mean("dice"), "accuracy": mean("accuracy")},
        "column": {"dice": mean("column_dice"), "accuracy": mean("column_accuracy")},
        "predict_seconds_per_image": predict_seconds / len(rows),
        "images": rows,
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("json", help="output JSON file")
    parser.add_argument("--minutes", type=float, default=20.0, help="training time budget")
    parser.add_argument("--epochs", type=int, help="epochs (default: the default)")
    parser.add_argument("--outputs", default="vertebrae", choices=("vertebrae", "trimap"))
    parser.add_argument("--model", help="score this model instead of training one")
    parser.add_argument("--train", type=int, default=40)
    parser.add_argument("--test", type=int, default=16)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--patience", type=int, help="early stopping (default: the default)")
    parser.add_argument(
        "--filters", type=int, help="the U-Net's base filters (default: the builder's, 16)"
    )
    parser.add_argument(
        "--lr-schedule",
        choices=LR_SCHEDULES,
        help="the learning rate's schedule (default: the default)",
    )
    parser.add_argument(
        "--no-zoom-pass",
        dest="zoom_pass",
        action="store_const",
        const=False,
        default=None,
        help="train without the zoom pass (model/zoom.py; on by default for vertebrae)",
    )
    parser.add_argument("--work", help="folder for the data sets and model (default: temporary)")
    parser.add_argument(
        "--tta", action="store_true", help="predict as spine-seg predict --tta (mirror averaged)"
    )
    parser.add_argument(
        "--generator",
        choices=("other", "spines", "strong"),
        default="other",
        help="test images: other_generator.py (default), other_spines.py (seed 2024) or its "
        "strongly curved set",
    )
    parser.add_argument(
        "--test-seed",
        type=int,
        default=other_generator.TEST_SEED,
        help="seed of the second generator's test images (--generator other): 7, the set "
        "the defaults were measured on; 8, a set kept apart to check them",
    )
    parser.add_argument(
        "--test-scale",
        type=float,
        default=1.0,
        help="draw the second generator's test images with this many times the rows and "
        "columns (the same spines): what the pixels across a body are worth",
    )
    parser.add_argument(
        "--no-test-grain",
        dest="test_grain",
        action="store_false",
        help="draw the second generator's test images without their counting noise and "
        "film grain (the same images otherwise): what the grain is worth",
    )
    parser.add_argument(
        "--test-antialias",
        type=fineness,
        default=FINENESS,
        metavar="K",
        help="draw the test images' shapes K times finer and average them down (default "
        "%(default)s; 1: corners floored to whole pixels, as before 2026-12-01)",
    )
    args = parser.parse_args(argv)
    redrawn = (
        args.test_seed != other_generator.TEST_SEED or args.test_scale != 1.0 or not args.test_grain
    )
    if redrawn and args.generator != "other":
        parser.error(
            "--test-seed, --test-scale and --no-test-grain draw the second generator's set "
            "(--generator other)"
        )
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(args.work or tmp)
        work.mkdir(parents=True, exist_ok=True)
        fine = "" if args.test_antialias == 1 else f"_antialias{args.test_antialias}"
        test_root = work / f"{args.generator}{fine}"
        if args.generator == "other" and (redrawn or fine):
            grain = "" if args.test_grain else "_no_grain"
            test_root = work / f"other_seed{args.test_seed}_scale{args.test_scale:g}{grain}{fine}"
        if not (test_root / "labels" / "test" / "angles.csv").exists():
            if args.generator == "other":
                other_generator.write_other_set(
                    test_root,
                    n_train=0,
                    n_test=args.test,
                    seed=args.test_seed,
                    scale=args.test_scale,
                    grain=args.test_grain,
                    antialias=args.test_antialias,
                )
            elif args.generator == "spines":
                other_spines.write_spine_set(
                    test_root, n_test=args.test, seed=2024, antialias=args.test_antialias
                )
            else:
                other_spines.write_strong_set(
                    test_root, n_test=args.test, antialias=args.test_antialias
                )
        report = {
            "outputs": args.outputs,
            "minutes": args.minutes,
            "generator": args.generator,
            **(
                {
                    "test_seed": args.test_seed,
                    "test_scale": args.test_scale,
                    "test_grain": args.test_grain,
                }
                if args.generator == "other"
                else {}
            ),
            "test_antialias": args.test_antialias,
            "zoom_pass": args.zoom_pass,
            "tta": args.tta,
            **({} if args.filters is None else {"filters": args.filters}),
        }
        if args.model:
            report["model"] = args.model
        else:
            report.update(
                train_model(
                    work,
                    args.minutes,
                    args.outputs,
                    args.train,
                    args.seed,
                    args.patience,
                    args.zoom_pass,
                    args.epochs,
                    **({} if args.lr_schedule is None else {"lr_schedule": args.lr_schedule}),
                    **({} if args.filters is None else {"options": {"filters": args.filters}}),
                )
            )
        report.update(evaluate_model(report["model"], test_root, tta=args.tta))
    Path(args.json).write_text(json.dumps(report, indent=1))
    summary = {k: v for k, v in report.items() if k != "images"}
    print(json.dumps(summary, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
