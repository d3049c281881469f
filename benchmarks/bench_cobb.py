"""Cobb angles from trimaps on a test split drawn by another generator than the phantoms.

Writes a test split with :mod:`other_spines` (16 images by default: the severity mix of
the real set, shapes C, S and three-curve), draws its ground-truth trimaps with
``spine-seg trimaps``, measures them with ``spine-seg cobb TRIMAPS --csv FILE`` and
scores the CSV against the split's ``angles.csv``: mean absolute error (all angles and
per angle) and the challenge's SMAPE.

Two more sources of trimaps can be scored the same way:

* ``--degrade``: the ground-truth trimaps made to look like a network's output (a
  stand-in for predictions when no model is at hand, see :func:`unet_like`);
* ``--model FILE``: trimaps predicted by ``spine-seg predict FILE`` on the split's
  images.

Run ``python benchmarks/bench_cobb.py [--n 16] [--seed 2024] [--degrade] [--model FILE]
[--json FILE] [--keep DIR]``.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import io
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image
from scipy import ndimage

sys.path.insert(0, str(Path(__file__).resolve().parent))

from napari_spine_seg.cli import main as spine_seg
from napari_spine_seg.data.aasce import read_angles_csv
from napari_spine_seg.spine.cobb_eval import angle_scores
from other_spines import SEVERITIES, write_spine_set

#: targets of the issue, for ground-truth trimaps
TARGET_MAE = 3.0
TARGET_SMAPE = 10.0
#: network input size the stand-in predictions are made at (the default U-Net's)
UNET_SIZE = (256, 96)


def _cli(argv: list[str]) -> tuple[int, str, str]:
    """Run ``spine-seg`` in this process; its exit status, stdout and stderr."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            status = spine_seg(argv)
        except SystemExit as exc:  # argparse
            status = int(exc.code or 0)
    return status, out.getvalue(), err.getvalue()


def _checked(argv: list[str]) -> str:
    status, out, err = _cli(argv)
    if status != 0:
        raise RuntimeError(f"spine-seg {' '.join(argv)} failed ({status}): {err.strip()}")
    return err


def unet_like(trimap: np.ndarray, rng: np.random.Generator, size=UNET_SIZE) -> np.ndarray:
    """A ground-truth trimap made to look like a low-resolution network's prediction.

    The spine is resampled to `size` (what the network sees), its outline wobbled by a
    smooth random field (about ±1 input pixel, i.e. ±3 image pixels), thresholded and
    scaled back to the image's size; the top or bottom vertebra is sometimes partly
    lost, as networks often under-segment the column's ends.

    Parameters
    ----------
    trimap : (H, W) ndarray
    rng : numpy.random.Generator
    size : (int, int)
        Rows and columns of the network input.

    Returns
    -------
    (H, W) uint8 ndarray
        A trimap: 1 spine, 3 a 2-pixel ring around it, 2 elsewhere.
    """
    h, w = trimap.shape
    spine = (trimap == 1).astype(np.float64)
    small = ndimage.zoom(spine, (size[0] / h, size[1] / w), order=1, grid_mode=True, mode="nearest")
    # a soft edge (the network's probability), shifted by a smooth random field
    small = ndimage.gaussian_filter(small, 1.0)
    field = ndimage.gaussian_filter(rng.normal(0.0, 1.0, small.shape), 3.0)
    small += 0.2 * field / max(field.std(), 1e-9)
    big = ndimage.zoom(
        small, (h / small.shape[0], w / small.shape[1]), order=1, grid_mode=True, mode="nearest"
    )
    mask = np.zeros((h, w), bool)
    mask[: big.shape[0], : big.shape[1]] = big[:h, :w] > 0.5
    rows = np.flatnonzero(mask.any(axis=1))
    if rows.size and rng.random() < 0.5:
        lost = int(rng.uniform(0.0, 0.03) * (rows[-1] - rows[0]))
        if rng.random() < 0.5:
            mask[rows[0] : rows[0] + lost] = False
        else:
            mask[rows[-1] - lost + 1 : rows[-1] + 1] = False
    ring = ndimage.binary_dilation(mask, iterations=2) & ~mask
    return np.where(mask, 1, np.where(ring, 3, 2)).astype(np.uint8)


def degrade_folder(src: Path, dst: Path, seed: int) -> Path:
    """Write :func:`unet_like` versions of every trimap PNG in `src` into `dst`."""
    dst.mkdir(parents=True, exist_ok=True)
    for k, path in enumerate(sorted(src.glob("*.png"))):
        trimap = np.asarray(Image.open(path))
        out = unet_like(trimap, np.random.default_rng([seed, 77, k]))
        Image.fromarray(out).save(dst / path.name)
    return dst


def read_cobb_csv(path: Path) -> dict[str, np.ndarray]:
    """``file -> (3,)`` from a ``spine-seg cobb --csv`` file."""
    with open(path, newline="") as f:
        return {
            row["file"]: np.array([float(row[k]) for k in ("pt", "mt", "tl")])
            for row in csv.DictReader(f)
        }


def score(cobb_csv: Path, labels: Path, warnings: str = "") -> dict:
    """MAE and SMAPE of a ``spine-seg cobb`` CSV (trimap names) against ``angles.csv``."""
    reference = read_angles_csv(labels)
    measured = read_cobb_csv(cobb_csv)
    meta = json.loads((labels.parents[1] / "other-spines.json").read_text())["images"]
    names = sorted(reference)
    gt = np.array([reference[n] for n in names])
    pred = np.array([measured[Path(n).stem + ".png"] for n in names])
    out = angle_scores(gt, pred)
    severity = [meta[f"test/{n}"]["severity"] for n in names]
    curved = np.array([s != "near-straight" for s in severity])
    out["smape_without_near_straight"] = angle_scores(gt[curved], pred[curved])["smape"]
    per_image = np.abs(gt - pred).sum(axis=1) / np.maximum((gt + pred).sum(axis=1), 1e-12) * 100
    out["images"] = [
        {
            "name": n,
            "severity": s,
            "reference": [round(float(v), 2) for v in g],
            "measured": [round(float(v), 2) for v in p],
            "smape": round(float(e), 2),
        }
        for n, s, g, p, e in zip(names, severity, gt, pred, per_image, strict=True)
    ]
    out["warnings"] = [line for line in warnings.splitlines() if "warning" in line]
    return out


def run(
    n: int, seed: int, folder: Path, *, degrade: bool = False, model: str | None = None
) -> dict:
    """Make the split, measure its trimaps (and the optional others), score them all."""
    start = time.perf_counter()
    root = write_spine_set(folder / "set", n_test=n, seed=seed)
    split, labels = root / "data" / "test", root / "labels" / "test"
    made = time.perf_counter()
    trimaps = folder / "trimaps"
    _checked(["trimaps", str(split), "--out", str(trimaps)])
    drawn = time.perf_counter()
    report: dict = {
        "generator": "benchmarks/other_spines.py",
        "n_images": n,
        "seed": seed,
        "severity_mix": {name: round(share * 16) for name, _, share in SEVERITIES},
    }
    warnings = _checked(["cobb", str(trimaps), "--csv", str(folder / "gt.csv")])
    report["ground_truth"] = score(folder / "gt.csv", labels, warnings)
    measured = time.perf_counter()
    report["seconds"] = {
        "generate": round(made - start, 2),
        "trimaps": round(drawn - made, 2),
        "cobb": round(measured - drawn, 2),
    }
    if degrade:
        degraded = degrade_folder(trimaps, folder / "unet-like", seed)
        # a stand-in for predictions: measured as a network's outline, as predictions are
        warnings = _checked(
            ["cobb", str(degraded), "--csv", str(folder / "unet-like.csv"), "--predicted"]
        )
        report["unet_like"] = score(folder / "unet-like.csv", labels, warnings)
    if model:
        pred = folder / "predicted"
        images = sorted(str(p) for p in split.glob("*.jpg"))
        _checked(["predict", model, *images, "--out", str(pred)])
        pngs = [p for p in pred.iterdir() if p.suffix == ".png" and "probability" not in p.name]
        only = folder / "predicted-trimaps"
        only.mkdir(exist_ok=True)
        for p in pngs:
            (only / p.name).write_bytes(p.read_bytes())
        warnings = _checked(["cobb", str(only), "--csv", str(folder / "predicted.csv")])
        report["predicted"] = score(folder / "predicted.csv", labels, warnings)
        report["predicted"]["model"] = model
    gt = report["ground_truth"]
    report["targets_met"] = bool(gt["mae"] <= TARGET_MAE and gt["smape"] <= TARGET_SMAPE)
    return report


def _summary(name: str, s: dict) -> str:
    per = s["mae_per_angle"]
    return (
        f"{name}: MAE {s['mae']:.2f} deg (PT {per['pt']:.2f}, MT {per['mt']:.2f}, "
        f"TL/L {per['tl']:.2f}), SMAPE {s['smape']:.2f} % "
        f"({s['smape_without_near_straight']:.2f} % without near-straight), "
        f"{len(s['warnings'])} warning(s)"
    )


def main(argv=None) -> int:
    """Command line; exit status 1 when the ground-truth targets are missed."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=16, help="test images (default 16)")
    parser.add_argument("--seed", type=int, default=2024)
    parser.add_argument("--degrade", action="store_true", help="also score U-Net-like trimaps")
    parser.add_argument("--model", help="also score trimaps predicted by this model file")
    parser.add_argument("--json", metavar="FILE", help="write the report here")
    parser.add_argument("--keep", metavar="DIR", help="work in DIR and keep the files")
    args = parser.parse_args(argv)
    with contextlib.ExitStack() as stack:
        if args.keep:
            folder = Path(args.keep)
            folder.mkdir(parents=True, exist_ok=True)
        else:
            folder = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-cobb-")))
        report = run(args.n, args.seed, folder, degrade=args.degrade, model=args.model)
    for key, label in (
        ("ground_truth", "ground-truth trimaps"),
        ("unet_like", "U-Net-like trimaps"),
        ("predicted", "predicted trimaps"),
    ):
        if key in report:
            print(_summary(label, report[key]))
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=1) + "\n")
        print(f"wrote {args.json}")
    return 0 if report["targets_met"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
