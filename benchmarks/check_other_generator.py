"""The "done when" check: train with defaults on X-rays of another generator, then predict.

Writes a 40-image training split and a 16-image test split with
``benchmarks/other_generator.py`` (which shares no code with our phantoms), then runs,
exactly as a user would::

    spine-seg train OTHER --out m.keras
    spine-seg predict m.keras OTHER/data/test --out pred
    spine-seg evaluate pred OTHER/data/test --json scores.json

and reports the test split's mean spine Dice and pixel accuracy and the wall time of
each step. Targets: Dice >= 0.90, pixel accuracy >= 0.97, within 20 minutes on 2 cores.

Run ``python benchmarks/check_other_generator.py [--json FILE] [--seed 7]``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from other_generator import TEST_SEED, write_other_set


def spine_seg(*args: str) -> float:
    """Run ``spine-seg ARGS`` in a fresh process; return its wall time in seconds."""
    t = time.perf_counter()
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    subprocess.run([sys.executable, "-m", "napari_spine_seg.cli", *args], check=True, env=env)
    return time.perf_counter() - t


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", metavar="FILE")
    parser.add_argument("--seed", type=int, default=TEST_SEED)
    parser.add_argument("--train", type=int, default=40)
    parser.add_argument("--test", type=int, default=16)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="check-other-") as tmp:
        work = Path(tmp)
        data = write_other_set(work / "other", args.train, args.test, seed=args.seed)
        test = str(data / "data" / "test")
        seconds = {
            "train": spine_seg(
                "train", str(data), "--out", str(work / "m.keras"), "--cache", str(work / "cache")
            ),
            "predict": spine_seg(
                "predict", str(work / "m.keras"), test, "--out", str(work / "pred")
            ),
            "evaluate": spine_seg(
                "evaluate", str(work / "pred"), test, "--json", str(work / "scores.json")
            ),
        }
        scores = json.loads((work / "scores.json").read_text())["mean"]
    seconds["total"] = sum(seconds.values())
    result = {
        "n_train": args.train,
        "n_test": args.test,
        "seed": args.seed,
        "spine_dice": round(scores["spine_dice"], 4),
        "pixel_accuracy": round(scores["pixel_accuracy"], 4),
        "spine_iou": round(scores["spine_iou"], 4),
        "hd95_px": None if scores["hd95"] is None else round(scores["hd95"], 1),
        "seconds": {k: round(v, 1) for k, v in seconds.items()},
        "load_average": os.getloadavg(),
        "passed": scores["spine_dice"] >= 0.90
        and scores["pixel_accuracy"] >= 0.97
        and seconds["total"] <= 1200,
    }
    print(json.dumps(result, indent=1))
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=1) + "\n")
    return 0 if result["passed"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
