"""Time ``spine-seg synth`` of a full-size phantom set and ``spine-seg trimaps`` on it.

Writes the real set's size (481 training and 128 test phantoms by default), draws their
trimaps through the command line, checks that every trimap's spine matches the
landmark polygon (IoU >= 0.97 outside the border band, rasterised independently with
scikit-image) and reports the times, per image too, and how long one phantom takes to
draw in this process.

Run ``python benchmarks/bench_trimaps.py [--train 481] [--test 128] [--jobs 2]
[--json FILE] [--keep DIR]``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import scipy.io
from PIL import Image
from skimage.draw import polygon as draw_polygon

from napari_spine_seg.cli import main as spine_seg
from napari_spine_seg.data.phantom import make_phantom

IOU_MIN = 0.97


def spine_iou_outside_band(trimap: np.ndarray, p2: np.ndarray) -> float:
    """IoU of the trimap's spine (1) with the landmark column, away from the band (3)."""
    g = p2.reshape(17, 4, 2)
    outline = np.concatenate([g[:, [0, 2]].reshape(-1, 2), g[::-1, [3, 1]].reshape(-1, 2)])
    truth = np.zeros(trimap.shape, bool)
    rr, cc = draw_polygon(outline[:, 1], outline[:, 0], trimap.shape)
    truth[rr, cc] = True
    keep = trimap != 3
    truth &= keep
    drawn = (trimap == 1) & keep
    return float((truth & drawn).sum() / max(1, (truth | drawn).sum()))


def check_trimaps(root: Path, trimaps: Path) -> dict:
    """IoU of every trimap against its landmarks; the worst, the mean, and the failures."""
    ious, bad = [], []
    for split in ("training", "test"):
        names = (root / "labels" / split / "filenames.csv").read_text().splitlines()
        for name in names:
            p2 = scipy.io.loadmat(root / "labels" / split / f"{name}.mat")["p2"]
            png = trimaps / split / (name[: -len(".jpg")] + ".png")
            with Image.open(png) as im:
                trimap = np.asarray(im)
            with Image.open(root / "data" / split / name) as im:
                size_ok = trimap.shape == (im.height, im.width)
            iou = spine_iou_outside_band(trimap, p2)
            ious.append(iou)
            if iou < IOU_MIN or not size_ok:
                bad.append({"image": f"{split}/{name}", "iou": iou, "size_ok": size_ok})
    return {
        "checked": len(ious),
        "iou_min": min(ious),
        "iou_mean": float(np.mean(ious)),
        "failures": bad,
    }


def time_one_phantom(n: int = 40) -> float:
    """Mean milliseconds to draw one default-size phantom in this process."""
    make_phantom(0)
    start = time.perf_counter()
    for k in range(n):
        make_phantom(np.random.default_rng([123, k]))
    return (time.perf_counter() - start) / n * 1000


def run(train: int, test: int, jobs: int, folder: Path) -> dict:
    """Synth, trimaps and the IoU check in `folder`; the numbers as a dict."""
    root, trimaps = folder / "phantoms", folder / "trimaps"
    n = train + test
    start = time.perf_counter()
    rc = spine_seg(
        ["synth", str(root), "--train", str(train), "--test", str(test), "--jobs", str(jobs)]
    )
    synth_s = time.perf_counter() - start
    if rc != 0:
        raise SystemExit(f"spine-seg synth failed with exit status {rc}")
    start = time.perf_counter()
    rc = spine_seg(["trimaps", str(root), "--out", str(trimaps), "--jobs", str(jobs)])
    trimaps_s = time.perf_counter() - start
    if rc != 0:
        raise SystemExit(f"spine-seg trimaps failed with exit status {rc}")
    check = check_trimaps(root, trimaps)
    return {
        "images": n,
        "jobs": jobs,
        "cpus": os.cpu_count(),
        "synth_s": round(synth_s, 2),
        "synth_ms_per_image": round(synth_s / n * 1000, 1),
        "trimaps_s": round(trimaps_s, 2),
        "trimaps_ms_per_image": round(trimaps_s / n * 1000, 1),
        "phantom_ms_one_process": round(time_one_phantom(), 1),
        "iou_min": round(check["iou_min"], 4),
        "iou_mean": round(check["iou_mean"], 4),
        "checked": check["checked"],
        "failures": check["failures"],
        "ok": not check["failures"] and check["checked"] == n,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train", type=int, default=481)
    parser.add_argument("--test", type=int, default=128)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--json", metavar="FILE", help="write the numbers as JSON here")
    parser.add_argument(
        "--keep", metavar="DIR", help="work in DIR and keep it (default: a temp dir)"
    )
    args = parser.parse_args(argv)
    if args.keep:
        folder = Path(args.keep)
        folder.mkdir(parents=True, exist_ok=True)
        result = run(args.train, args.test, args.jobs, folder)
    else:
        with tempfile.TemporaryDirectory(prefix="bench-trimaps-") as tmp:
            result = run(args.train, args.test, args.jobs, Path(tmp))
    text = json.dumps(result, indent=2)
    print(text)
    if args.json:
        Path(args.json).write_text(text + "\n")
    return 0 if result["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
