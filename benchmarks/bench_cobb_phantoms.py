"""Cobb angles from a trained model's predicted trimaps on fresh phantom test splits.

For each of ``--splits`` seeds, writes a 16-image phantom test split (``spine-seg
synth --train 0 --test 16``), predicts it with ``--model`` (``spine-seg predict``, which
marks its trimaps as predictions) and scores the Cobb angles measured on the predicted
trimaps against the split's ``angles.csv``, both ways the centre-line method can read
them: as a network's outline (``outline="predicted"``, what ``spine-seg evaluate`` and
``spine-seg cobb`` do with predictions) and as an outline of unknown origin
(``outline="auto"``). One JSON row per split, and the means.

Run ``python benchmarks/bench_cobb_phantoms.py --model spine-seg-demo/model.keras
[--splits 5] [--first-seed 101] [--json FILE] [--keep DIR]``; with the demo's model
each split takes about 15 s on two cores.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import sys
import tempfile
from pathlib import Path

import numpy as np

from napari_spine_seg.cli import main as spine_seg
from napari_spine_seg.data.dataset import open_dataset
from napari_spine_seg.data.masks import read_trimap_png
from napari_spine_seg.spine.cobb_eval import cobb_errors

#: the issue's target for predicted trimaps
TARGET_SMAPE = 10.0


def _checked(argv: list[str]) -> None:
    """Run ``spine-seg`` in this process, quietly; raise when it fails."""
    err = io.StringIO()
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(err):
        status = spine_seg(argv)
    if status != 0:
        raise RuntimeError(f"spine-seg {' '.join(argv)} failed ({status}): {err.getvalue()}")


def score_split(model: str, seed: int, folder: Path) -> dict:
    """Write, predict and score one 16-image phantom test split."""
    root, pred = folder / f"phantoms-{seed}", folder / f"predicted-{seed}"
    _checked(["synth", "--train", "0", "--test", "16", "--seed", str(seed), str(root)])
    split = root / "data" / "test"
    _checked(["predict", model, str(split), "--out", str(pred)])
    angles = open_dataset(split).angles
    paths = {name: pred / (Path(name).stem + ".png") for name in angles}
    row: dict = {"seed": seed, "n_images": len(paths)}
    for outline in ("predicted", "auto"):
        report = cobb_errors(paths, angles, outline=outline, read=read_trimap_png)
        row[outline] = {
            "mae": round(report["mae"], 3),
            "smape": round(report["smape"], 2),
            "failed": len(report["failed"]),
        }
    return row


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True, help="a trained .keras model")
    parser.add_argument("--splits", type=int, default=5)
    parser.add_argument("--first-seed", type=int, default=101)
    parser.add_argument("--json", metavar="FILE", default=None)
    parser.add_argument("--keep", metavar="DIR", default=None, help="keep the splits here")
    args = parser.parse_args(argv)
    with contextlib.ExitStack() as stack:
        if args.keep:
            folder = Path(args.keep)
        else:
            folder = Path(stack.enter_context(tempfile.TemporaryDirectory()))
        rows = []
        for seed in range(args.first_seed, args.first_seed + args.splits):
            rows.append(score_split(args.model, seed, folder))
            r = rows[-1]
            print(
                f"seed {seed}: predicted outline MAE {r['predicted']['mae']:.2f} deg, SMAPE "
                f"{r['predicted']['smape']:.2f} % | auto MAE {r['auto']['mae']:.2f} deg, "
                f"SMAPE {r['auto']['smape']:.2f} %",
                flush=True,
            )
    summary = {
        outline: {
            "mean_mae": round(float(np.mean([r[outline]["mae"] for r in rows])), 3),
            "mean_smape": round(float(np.mean([r[outline]["smape"] for r in rows])), 2),
            "splits_meeting_target": sum(r[outline]["smape"] <= TARGET_SMAPE for r in rows),
        }
        for outline in ("predicted", "auto")
    }
    for outline, s in summary.items():
        print(
            f"{outline}: mean MAE {s['mean_mae']:.2f} deg, mean SMAPE {s['mean_smape']:.2f} %, "
            f"{s['splits_meeting_target']}/{len(rows)} splits with SMAPE <= {TARGET_SMAPE:g} %"
        )
    if args.json:
        report = {"model": args.model, "target_smape": TARGET_SMAPE, "splits": rows, **summary}
        Path(args.json).write_text(json.dumps(report, indent=2) + "\n")
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
