"""Bending augmentation measured: trained on mild spines, tested on strongly curved ones.

Trains the default vertebrae model (``bench_vertebrae.train_model``) twice on the same
mild phantoms (``write_phantom_set(max_curve=...)``: main curves up to about 25°), once
without and once with the bending augmentation (``bend_deg``, :mod:`napari_spine_seg.model.bend`),
for a time budget each, one after the other. Both models are scored
(``bench_vertebrae.evaluate_model``) on

* ``strong``: 16 strongly curved spines of the second generator
  (``other_spines.py --strong``, main Cobb angle 30–75°), never trained on;
* ``other``: the default benchmark's test set (``other_generator.py``, seed 7), to see
  that bending does not hurt the usual spines.

Each score: trimap spine Dice mean and min, 3-class pixel accuracy, found-17 share,
corner error, Cobb MAE/SMAPE from the landmarks and from the trimaps.

Run ``python benchmarks/bench_bending.py OUT.json [--minutes 5.5] [--bend-deg 30]
[--max-curve 25] [--train 40] [--test 16] [--work DIR]``.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

import other_generator
import other_spines
from bench_vertebrae import evaluate_model, train_model


def test_sets(work: Path, n_test: int) -> dict[str, Path]:
    """Write (or reuse) the two test sets; return their roots by name."""
    roots = {"strong": work / "strong", "other": work / "other"}
    if not (roots["strong"] / "labels" / "test" / "angles.csv").exists():
        other_spines.write_strong_set(roots["strong"], n_test=n_test)
    if not (roots["other"] / "labels" / "test" / "angles.csv").exists():
        other_generator.write_other_set(roots["other"], n_train=0, n_test=n_test)
    return roots


def score(model: str, root: Path) -> dict:
    """``evaluate_model``'s numbers plus the lowest Dice and each image's Dice."""
    report = evaluate_model(model, root, net_fit=False)
    dice = [r["dice"] for r in report["images"]]
    main = np.loadtxt(root / "labels" / "test" / "angles.csv", delimiter=",", ndmin=2)[:, 0]
    return {
        "trimap_dice_mean": report["trimap"]["dice"],
        "trimap_dice_min": float(min(dice)),
        "trimap_accuracy": report["trimap"]["accuracy"],
        "found_17": report["found_17"],
        "corner_error_px": report["corner_error_px"],
        "corner_error_pct_height": report["corner_error_pct_height"],
        "cobb_landmarks": report["cobb_landmarks"],
        "cobb_trimaps": report["cobb_trimaps"],
        "predict_seconds_per_image": report["predict_seconds_per_image"],
        "images": [
            {"name": r["name"], "main_cobb": float(a), "dice": r["dice"], "found": r["found"]}
            for r, a in zip(report["images"], main, strict=True)
        ],
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("json", help="output JSON file")
    parser.add_argument("--minutes", type=float, default=5.5, help="training budget per model")
    parser.add_argument("--bend-deg", type=float, default=30.0, help="bending of the bent run")
    parser.add_argument("--max-curve", type=float, default=25.0, help="mildest training curves")
    parser.add_argument("--train", type=int, default=40)
    parser.add_argument("--test", type=int, default=16)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--work", help="folder for the data sets and models (default: temporary)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(args.work or tmp)
        work.mkdir(parents=True, exist_ok=True)
        roots = test_sets(work, args.test)
        report = {
            "minutes": args.minutes,
            "max_curve": args.max_curve,
            "n_train": args.train,
            "strong_main_cobb": sorted(
                float(a)
                for a in np.loadtxt(
                    roots["strong"] / "labels" / "test" / "angles.csv", delimiter=","
                )[:, 0]
            ),
            "runs": {},
        }
        for name, bend_deg in (("plain", 0.0), ("bent", args.bend_deg)):
            run = train_model(
                work / name,
                args.minutes,
                "vertebrae",
                args.train,
                args.seed,
                None,
                max_curve=args.max_curve,
                bend_deg=bend_deg,
            )
            run["bend_deg"] = bend_deg
            for set_name, root in roots.items():
                run[set_name] = score(run["model"], root)
            report["runs"][name] = run
            Path(args.json).write_text(json.dumps(report, indent=1))  # a partial result too
    summary = {
        name: {k: v for k, v in run.items() if k not in ("strong", "other")}
        | {s: {k: v for k, v in run[s].items() if k != "images"} for s in ("strong", "other")}
        for name, run in report["runs"].items()
    }
    print(json.dumps(summary, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
