"""Train once with given settings; score on phantom test images and on another generator's.

The measurements that chose the defaults (input size, fit, width, normalisation, loss)
in ``docs/performance.md`` come from this script. It trains
:func:`napari_spine_seg.model.train.train` on the training split of a phantom set (120
phantoms, seed 0, unless told otherwise) or of the other generator's set, then predicts
and scores, at full size, the phantom test split (24 images) and the other generator's
test split (16 images, ``benchmarks/other_generator.py``, seed 7; never trained on
unless ``--train-on other``).

Examples::

    python benchmarks/compare_settings.py --epochs 20 --set fit=letterbox
    python benchmarks/compare_settings.py --epochs 10 --set "options={'filters': 8}"
    python benchmarks/compare_settings.py --train-on other          # defaults, 40 images
"""

from __future__ import annotations

import argparse
import ast
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from other_generator import write_other_set


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train-on", choices=("phantoms", "other"), default="phantoms")
    parser.add_argument("--phantoms", type=int, default=120, help="training phantoms (default 120)")
    parser.add_argument("--epochs", type=int, help="epochs (default: train()'s)")
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="another train() argument (Python literal)",
    )
    parser.add_argument("--work", metavar="DIR", help="keep data, cache and models here")
    parser.add_argument("--json", metavar="FILE")
    args = parser.parse_args(argv)

    from napari_spine_seg.data.dataset import open_dataset
    from napari_spine_seg.data.phantom import write_phantom_set
    from napari_spine_seg.evaluate import evaluate
    from napari_spine_seg.model.files import load_model
    from napari_spine_seg.model.predict import predict_files
    from napari_spine_seg.model.train import train

    settings = {}
    for item in args.set:
        key, _, value = item.partition("=")
        try:
            settings[key] = ast.literal_eval(value)
        except (ValueError, SyntaxError):
            settings[key] = value
    if args.epochs:
        settings["epochs"] = args.epochs

    with tempfile.TemporaryDirectory(prefix="compare-") as tmp:
        work = Path(args.work or tmp)
        phantoms = work / f"phantoms{args.phantoms}"
        if not phantoms.exists():
            write_phantom_set(phantoms, n_train=args.phantoms, n_test=24, seed=0)
        other = work / "other"
        if not other.exists():
            write_other_set(other, 40, 16)
        source = open_dataset(phantoms if args.train_on == "phantoms" else other)

        def log(event):
            if type(event).__name__ == "EpochEnded":
                m = event.metrics
                print(
                    f"epoch {event.epoch}: {event.seconds:.1f} s loss {m['loss']:.3f} "
                    f"val Dice {m.get('val_spine_dice', float('nan')):.4f}",
                    file=sys.stderr,
                    flush=True,
                )

        result = train(
            source.split("training"),
            work / "m.keras",
            progress=log,
            cache=work / "cache",
            **settings,
        )
        model = load_model(result.model_path)
        scores = {}
        for name, root in (("phantoms", phantoms), ("other", other)):
            test = open_dataset(root).split("test")
            out = work / f"pred-{name}"
            t = time.perf_counter()
            predict_files(model, [str(root / "data" / "test")], out)
            ms = (time.perf_counter() - t) / len(test) * 1000
            mean = evaluate(out, test).mean
            scores[name] = {k: round(float(v), 4) for k, v in mean.items()} | {
                "predict_ms_per_image": round(ms)
            }
    report = {
        "train_on": args.train_on,
        "settings": settings,
        "n_train": result.n_train,
        "n_val": result.n_val,
        "epochs_run": result.epochs_run,
        "best_epoch": result.best_epoch,
        "train_seconds": round(result.seconds, 1),
        "test": scores,
    }
    print(json.dumps(report))
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
