"""One test set, drawn again: how far its mean Cobb SMAPE can fall, and what its X-rays hold.

``bench_tilt_noise.py`` asks what a tilt noise costs over many spines. This benchmark
asks it of the very images a model was scored on (a ``bench_vertebrae.py`` test split),
to tell how much of one set's mean SMAPE is the model and how much the set:

* ``draws``: the set's true landmarks, each vertebra turned about its centre by
  Gaussian noise (σ degrees for all, or the per-vertebra spread and gain a model was
  measured with on that set, ``--measured``), ``--draws`` times. For each noise model:
  the 10th, 50th and 90th percentile of the set's mean SMAPE and MAE over the draws, the
  share of draws at or below the issue's targets (6 %, 2°), and per image the share of
  draws whose MT moved to another curve (``bench_tilt_noise.mt_moved``) and its mean
  SMAPE. An image whose two largest curves are nearly equal moves its MT in many draws
  and then scores some 50 %: such an image decides a set of 16.
* ``drawn_bodies``: the landmarks with every corner floored to a whole pixel of the
  drawing, as the test generators draw their bodies (Pillow fills a polygon of
  whole-pixel corners: ``test_other_generator.py`` checks it; the drawing is
  ``--antialias`` times finer than the image, 4 by default, 1 for the sets drawn before
  2026-12-01). Their tilt error and Cobb scores against the landmarks are those of the
  bodies the X-ray shows: what even a perfect reader of the image would measure.
* ``reader_at_truth``: each end plate read off the X-ray by the prediction's own reader
  (``spine/image_plates.py``), started at the *true* plate and taken whole (share 1):
  the image's line alone, with no network error in where it looks. Its tilt error
  (within-image sd, T1's, gain) and Cobb scores say what the set's images hold for that
  reader: a model whose plates are averaged with it cannot expect much less noise.

Run ``python benchmarks/bench_set_draws.py OUT.json --set NAME DIR [--set NAME DIR ...]
[--measured NAME JSON ...] [--antialias NAME K ...] [--sd 0.25 0.5 0.75] [--draws 400]
[--seed 1]``: DIR an AASCE-layout set with a ``test`` split (``bench_vertebrae.py
--work``'s), a ``--measured`` JSON a ``bench_vertebrae.py`` output on the set of that
NAME, ``--antialias`` how finely that set was drawn (about a minute a set of 64 on two
cores).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_end_plates import tilt_errors
from bench_tilt_noise import measured_noise, mt_moved, turned, uniform_noise
from fine_drawing import FINENESS, fineness
from napari_spine_seg.data.dataset import open_dataset
from napari_spine_seg.data.pixels import to_grayscale
from napari_spine_seg.spine.cobb import cobb_details, smape, vertebra_tilts
from napari_spine_seg.spine.image_plates import image_plates
from napari_spine_seg.trimap import N_VERTEBRAE

#: the issue's targets for a set's landmark Cobb angles
TARGET_SMAPE, TARGET_MAE = 6.0, 2.0


def load_set(root: Path) -> list[dict]:
    """``name``, true ``landmarks``, ``height`` and grey ``image`` of each test image."""
    out = []
    for sample in open_dataset(root).split("test"):
        pixels = to_grayscale(np.asarray(sample.load_image().pixels))
        out.append(
            {
                "name": sample.name,
                "landmarks": np.asarray(sample.load_landmarks(), dtype=np.float64),
                "height": pixels.shape[0],
                "image": pixels,
            }
        )
    if not out:
        raise SystemExit(f"{root}: no test images")
    return out


def image_scores(spines: list[dict], measured: list[np.ndarray]) -> dict:
    """Tilt error and Cobb scores of `measured` landmarks against the `spines`' truth."""
    errors, per_image, abs_err = [], [], []
    for spine, landmarks in zip(spines, measured, strict=True):
        errors.append(tilt_errors(landmarks, spine["landmarks"]))
        true = cobb_details(spine["landmarks"], spine["height"]).angles
        found = cobb_details(landmarks, spine["height"]).angles
        per_image.append(smape(true[None], found[None]))
        abs_err.append(np.abs(true - found).mean())
    errors = np.array(errors)
    within = errors - errors.mean(axis=1, keepdims=True)
    true_tilts = np.concatenate([vertebra_tilts(s["landmarks"]) for s in spines])
    return {
        "tilt_sd": float(within.std()),
        "tilt_sd_t1": float(within[:, 0].std()),
        "sd_per_vertebra": np.round(errors.std(axis=0), 3).tolist(),
        "gain": float(np.polyfit(true_tilts, true_tilts + errors.ravel(), 1)[0]),
        "smape": float(np.mean(per_image)),
        "mae": float(np.mean(abs_err)),
        "smape_per_image": np.round(per_image, 2).tolist(),
    }


def draw_scores(spines: list[dict], sd: np.ndarray, gain: float, draws: int, seed: int) -> dict:
    """The set's mean SMAPE and MAE over `draws` draws of per-vertebra tilt noise."""
    rng = np.random.default_rng([seed, 7])
    truth = [cobb_details(s["landmarks"], s["height"]) for s in spines]
    tilts = [vertebra_tilts(s["landmarks"]) for s in spines]
    smapes = np.zeros((draws, len(spines)))
    maes = np.zeros((draws, len(spines)))
    moved = np.zeros((draws, len(spines)), dtype=bool)
    for d in range(draws):
        for i, (spine, true, tilt) in enumerate(zip(spines, truth, tilts, strict=True)):
            turns = (gain - 1.0) * (tilt - tilt.mean()) + rng.normal(0.0, 1.0, N_VERTEBRAE) * sd
            found = cobb_details(turned(spine["landmarks"], turns), spine["height"])
            smapes[d, i] = smape(true.angles[None], found.angles[None])
            maes[d, i] = np.abs(true.angles - found.angles).mean()
            moved[d, i] = mt_moved(true.pairs, found.pairs)
    set_smape, set_mae = smapes.mean(axis=1), maes.mean(axis=1)
    return {
        "set_smape_p10_p50_p90": np.round(np.percentile(set_smape, [10, 50, 90]), 2).tolist(),
        "set_mae_p10_p50_p90": np.round(np.percentile(set_mae, [10, 50, 90]), 2).tolist(),
        "share_smape_at_most_6": float(np.mean(set_smape <= TARGET_SMAPE)),
        "share_mae_at_most_2": float(np.mean(set_mae <= TARGET_MAE)),
        "share_both": float(np.mean((set_smape <= TARGET_SMAPE) & (set_mae <= TARGET_MAE))),
        "mt_moved_per_image": np.round(moved.mean(axis=0), 3).tolist(),
        "smape_per_image": np.round(smapes.mean(axis=0), 2).tolist(),
    }


def noise_models(sds: list[float], measured: dict) -> dict:
    """``{name: (per-vertebra sd, gain)}``: one σ for all, and each model measured."""
    models = uniform_noise(sds)
    for name, report in measured.items():
        models[name] = measured_noise(report)
    return models


def drawn_corners(landmarks: np.ndarray, antialias: int = FINENESS) -> np.ndarray:
    """The corners of a body as Pillow fills it: each floored to a whole pixel, or to a
    whole pixel of a drawing `antialias` times finer (``other_generator.py
    --antialias``, a pixel's centre at its integer index at either scale)."""
    k, half = float(antialias), (antialias - 1) / 2.0
    return (np.floor(np.asarray(landmarks, dtype=np.float64) * k + half) - half) / k


def measure_set(
    spines: list[dict], models: dict, draws: int, seed: int, antialias: int = FINENESS
) -> dict:
    """`drawn_bodies`, `reader_at_truth` and one `draws` entry per noise model."""
    drawn = image_scores(spines, [drawn_corners(s["landmarks"], antialias) for s in spines])
    read = [image_plates(s["image"], s["landmarks"], share=1.0) for s in spines]
    reader = image_scores(spines, read)
    models = dict(models)
    models["the reader at the truth, as measured"] = (
        np.asarray(reader["sd_per_vertebra"]),
        reader["gain"],
    )
    report = {
        "n_images": len(spines),
        "names": [s["name"] for s in spines],
        "drawn_bodies": drawn,
        "reader_at_truth": reader,
        "draws": {},
    }
    for name, (sd, gain) in models.items():
        report["draws"][name] = draw_scores(spines, sd, gain, draws, seed)
    return report


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("json", help="output JSON file")
    parser.add_argument(
        "--set", nargs=2, action="append", required=True, metavar=("NAME", "DIR"),
        help="a set's name and its AASCE-layout folder (test split); repeatable",
    )  # fmt: skip
    parser.add_argument(
        "--measured", nargs=2, action="append", default=[], metavar=("NAME", "JSON"),
        help="a bench_vertebrae.py output measured on the set of that name; repeatable",
    )  # fmt: skip
    parser.add_argument(
        "--antialias", nargs=2, action="append", default=[], metavar=("NAME", "K"),
        help=f"the set of that name was drawn with --antialias K (default {FINENESS})",
    )  # fmt: skip
    parser.add_argument("--sd", type=float, nargs="*", default=[0.25, 0.5, 0.75])
    parser.add_argument("--draws", type=int, default=400)
    parser.add_argument("--seed", type=int, default=1)
    return parser


def main(argv=None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        antialias = {name: fineness(k) for name, k in args.antialias}
    except argparse.ArgumentTypeError as exc:
        parser.error(f"--antialias: {exc}")
    measured: dict[str, dict] = {}
    for name, path in args.measured:
        measured.setdefault(name, {})[f"measured ({Path(path).name})"] = json.loads(
            Path(path).read_text()
        )
    report = {"draws": args.draws, "seed": args.seed, "sets": {}}
    for name, root in args.set:
        spines = load_set(Path(root))
        models = noise_models(args.sd, measured.get(name, {}))
        finer = antialias.get(name, FINENESS)
        row = report["sets"][name] = measure_set(spines, models, args.draws, args.seed, finer)
        row["antialias"] = finer
        print(f"{name}: {row['n_images']} images", flush=True)
        for what in ("drawn_bodies", "reader_at_truth"):
            r = row[what]
            print(
                f"  {what:<48} tilt sd {r['tilt_sd']:.3f} deg (T1 {r['tilt_sd_t1']:.2f}), "
                f"gain {r['gain']:.3f}, Cobb {r['mae']:.2f} deg / {r['smape']:.2f} %",
                flush=True,
            )
        for model, d in row["draws"].items():
            worst = int(np.argmax(d["mt_moved_per_image"]))
            print(
                f"  {model:<48} set SMAPE p10/50/90 {d['set_smape_p10_p50_p90']}, "
                f"<= 6 %: {d['share_smape_at_most_6']:.0%}, MAE <= 2: "
                f"{d['share_mae_at_most_2']:.0%}; most moved: image {worst + 1} "
                f"({d['mt_moved_per_image'][worst]:.0%})",
                flush=True,
            )
    Path(args.json).write_text(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
