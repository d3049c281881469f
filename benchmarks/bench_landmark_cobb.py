"""Cobb angles from landmarks against Cobb angles from trimaps, side by side in one run.

The AASCE reference measures the angle between two vertebrae's end plates; a trimap's
centre line cannot see a single vertebra's own tilt. This benchmark measures, on the
same images, the Cobb angles (MAE and SMAPE against ``angles.csv``) from

- **landmarks**: the reference computation on predicted corners
  (:func:`napari_spine_seg.spine.cobb_eval.landmark_cobb_errors`), an image without
  landmarks scored as 0°;
- **trimaps**: the centre-line method (:func:`napari_spine_seg.spine.cobb_eval.cobb_errors`),
  read as a network's outline (``predicted``, what ``spine-seg evaluate`` does) and as
  an outline of any origin (``auto``);

and the corner error and the share of images whose 17 vertebrae were found. The
landmarks come either from a model (``--model M``: ``spine-seg predict`` writes the
trimaps and ``landmarks/``, ``spine-seg evaluate``'s scores are reported) or, before a
model exists, from the ground truth moved by Gaussian noise of ``--noise`` px per axis
on every corner, the trimaps then drawn from the same moved landmarks
(``trimap_from_landmarks``), so the two measurements see the same spine. ``--fit`` adds
landmarks fitted (``spine.vertebrae.fit_vertebrae``) to the ground truth's body masks:
what the fitting costs a perfect body segmentation.

Sets: fresh phantoms (``spine-seg synth --train 0 --test N --seed S``) and the second
generator (``benchmarks/other_generator.py``), whose vertebrae tilt on their own: with
``--other-tilts 1`` each vertebra is tilted like the curve plus N(0, 1°) of its own (as
real ones, a little); ``wedge`` is the generator's default (60–100 % of the slope and a
wedge of about ±4°).

Run ``python benchmarks/bench_landmark_cobb.py [--noise 0 0.5 1 2] [--model M] [--n 16]
[--phantom-seed 101] [--other-seed 7] [--other-tilts 1 wedge] [--repeats 3] [--fit]
[--json FILE] [--keep DIR]``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

import other_generator
from bench_cobb_phantoms import _checked
from napari_spine_seg.data.dataset import open_dataset
from napari_spine_seg.evaluate import evaluate, landmark_scores
from napari_spine_seg.model.files import read_metadata
from napari_spine_seg.spine.cobb_eval import cobb_errors
from napari_spine_seg.spine.vertebrae import BODY, body_space_target, fit_vertebrae
from napari_spine_seg.trimap import sort_landmarks, trimap_from_landmarks


def write_sets(folder: Path, n: int, phantom_seed: int, other_seed: int, tilts: list[str]):
    """Write the test splits; return ``{set name: split folder}``."""
    sets = {}
    root = folder / f"phantoms-{phantom_seed}"
    _checked(["synth", "--train", "0", "--test", str(n), "--seed", str(phantom_seed), str(root)])
    sets[f"phantoms (seed {phantom_seed})"] = root / "data" / "test"
    for tilt in tilts:
        own = None if tilt == "wedge" else float(tilt)
        root = folder / f"other-{other_seed}-{tilt}"
        other_generator.write_other_set(
            root, n_train=0, n_test=n, seed=other_seed, vertebra_tilt=own
        )
        label = "wedge ±4°, 60–100 % of the slope" if own is None else f"own tilt N(0, {own:g}°)"
        sets[f"second generator (seed {other_seed}, {label})"] = root / "data" / "test"
    return sets


def _summary(cobb: dict | None) -> dict | None:
    if cobb is None or not cobb["n_images"]:
        return None
    return {
        "mae": round(cobb["mae"], 3),
        "smape": round(cobb["smape"], 2),
        "failed": len(cobb["failed"]),
        "order_doubtful": len(cobb["order_doubtful"]),
    }


def _landmark_summary(scores: dict | None) -> dict | None:
    if scores is None:
        return None
    corner, cobb = scores["corner_error"], scores["cobb"]
    return {
        "found_rate": scores["counts"]["found_rate"],
        "corner_px": None if corner["mean_px"] is None else round(corner["mean_px"], 3),
        "corner_percent_height": (
            None
            if corner["mean_percent_height"] is None
            else round(corner["mean_percent_height"], 4)
        ),
        **(_summary(cobb) or {}),
        "smape_found": None if not cobb["found"]["n"] else round(cobb["found"]["smape"], 2),
    }


def _mean_rows(rows: list[dict]) -> dict:
    """Means of the numbers of repeated noise draws (the structure of one row)."""
    out = {}
    for key, value in rows[0].items():
        if isinstance(value, dict):
            out[key] = _mean_rows([r[key] for r in rows])
        elif isinstance(value, int | float) and not isinstance(value, bool):
            out[key] = round(float(np.mean([r[key] for r in rows])), 4)
        else:
            out[key] = value
    return out


def score_noise(split: Path, sigma: float, repeats: int, seed: int = 0) -> dict:
    """Landmarks moved by N(0, sigma) px and trimaps drawn from them, scored both ways."""
    dataset = open_dataset(split)
    truth, heights, shapes = {}, {}, {}
    for sample in dataset.samples:
        truth[sample.name] = sort_landmarks(sample.load_landmarks())
        shapes[sample.name] = sample.image_shape()
        heights[sample.name] = shapes[sample.name][0]
    rows = []
    for r in range(repeats):
        rng = np.random.default_rng([seed, r, int(round(sigma * 1000))])
        moved = {n: lm + rng.normal(0.0, sigma, lm.shape) for n, lm in truth.items()}
        trimaps = {n: trimap_from_landmarks(lm, shapes[n]) for n, lm in moved.items()}
        scores = landmark_scores(moved, truth, dataset.angles, heights)
        rows.append(
            {
                "landmarks": _landmark_summary(scores),
                "trimaps": {
                    outline: _summary(cobb_errors(trimaps, dataset.angles, outline=outline))
                    for outline in ("predicted", "auto")
                },
            }
        )
    return {"noise_px": sigma, "repeats": repeats, **_mean_rows(rows)}


def score_fit(split: Path) -> dict:
    """Landmarks fitted to the ground truth's body masks (``fit_vertebrae``), and trimaps
    drawn from them: what the fitting alone costs a perfect body segmentation."""
    dataset = open_dataset(split)
    truth, heights, fitted, trimaps = {}, {}, {}, {}
    for sample in dataset.samples:
        name, shape = sample.name, sample.image_shape()
        truth[name] = sort_landmarks(sample.load_landmarks())
        heights[name] = shape[0]
        bodies = body_space_target(truth[name], shape) == BODY
        fitted[name] = fit_vertebrae(bodies).landmarks
        drawn = truth[name] if fitted[name] is None else fitted[name]
        trimaps[name] = trimap_from_landmarks(drawn, shape)
    scores = landmark_scores(fitted, truth, dataset.angles, heights)
    return {
        "source": "fit_vertebrae on the ground truth's body masks",
        "landmarks": _landmark_summary(scores),
        "trimaps": {
            outline: _summary(cobb_errors(trimaps, dataset.angles, outline=outline))
            for outline in ("predicted", "auto")
        },
    }


def score_model(split: Path, model: str, folder: Path) -> dict:
    """Predict `split` with `model` and score its trimaps and landmarks (``evaluate``)."""
    pred = folder / f"pred-{split.parent.parent.name}"
    start = time.perf_counter()
    _checked(["predict", model, str(split), "--out", str(pred)])
    seconds = time.perf_counter() - start
    # a model with vertebrae that found 17 on no image writes no landmarks/: all not found
    vertebrae = getattr(read_metadata(model), "has_vertebrae", False)
    report = evaluate(pred, split, landmarks=vertebrae or None)
    paths = {s.name: pred / f"{Path(s.name).stem}.png" for s in open_dataset(split).samples}
    from napari_spine_seg.data.masks import read_trimap_png

    auto = cobb_errors(paths, open_dataset(split).angles, outline="auto", read=read_trimap_png)
    return {
        "model": model,
        "predict_seconds": round(seconds, 1),
        "spine_dice": round(report.mean["spine_dice"], 4),
        "pixel_accuracy": round(report.mean["pixel_accuracy"], 4),
        "landmarks": _landmark_summary(report.landmarks),
        "trimaps": {"predicted": _summary(report.cobb), "auto": _summary(auto)},
    }


def _num(value, fmt: str) -> str:
    return "-" if value is None else format(value, fmt)


def _line(name: str, row: dict) -> str:
    lm, tri = row["landmarks"], row["trimaps"]["predicted"]
    what = f"noise {row['noise_px']:g} px" if "noise_px" in row else row.get("source", "model")
    land = "no landmarks"
    if lm is not None:
        land = (
            f"landmarks {_num(lm.get('mae'), '.2f')} deg / {_num(lm.get('smape'), '.2f')} % "
            f"(found {_num(lm['found_rate'], '.0%')}, corner {_num(lm['corner_px'], '.2f')} px "
            f"= {_num(lm['corner_percent_height'], '.3f')} %)"
        )
    auto = row["trimaps"]["auto"]
    return (
        f"{name}, {what}: {land} | trimaps {tri['mae']:.2f} deg / {tri['smape']:.2f} % "
        f"(auto {auto['mae']:.2f} deg / {auto['smape']:.2f} %)"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=None, help="a trained .keras model (else --noise)")
    parser.add_argument(
        "--noise", type=float, nargs="+", default=[0.0, 0.5, 1.0, 2.0], metavar="PX"
    )
    parser.add_argument("--n", type=int, default=16, help="images per set (default 16)")
    parser.add_argument("--phantom-seed", type=int, default=101)
    parser.add_argument("--other-seed", type=int, default=other_generator.TEST_SEED)
    parser.add_argument("--other-tilts", nargs="+", default=["1", "wedge"], metavar="DEG")
    parser.add_argument("--repeats", type=int, default=3, help="noise draws per level")
    parser.add_argument(
        "--fit",
        action="store_true",
        help="also landmarks fitted to the ground truth's body masks (fit_vertebrae)",
    )
    parser.add_argument("--json", metavar="FILE", default=None)
    parser.add_argument("--keep", metavar="DIR", default=None, help="keep the sets here")
    args = parser.parse_args(argv)
    rows = []
    with contextlib.ExitStack() as stack:
        if args.keep:
            folder = Path(args.keep)
        else:
            folder = Path(stack.enter_context(tempfile.TemporaryDirectory()))
        sets = write_sets(folder, args.n, args.phantom_seed, args.other_seed, args.other_tilts)
        for name, split in sets.items():
            if args.model:
                found = [score_model(split, args.model, folder)]
            else:
                found = [score_noise(split, sigma, args.repeats) for sigma in args.noise]
                if args.fit:
                    found.append(score_fit(split))
            for row in found:
                rows.append({"set": name, "n_images": args.n, **row})
                print(_line(name, row), flush=True)
    if args.json:
        report = {"benchmark": "bench_landmark_cobb", "args": vars(args), "rows": rows}
        Path(args.json).write_text(json.dumps(report, indent=1) + "\n")
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
