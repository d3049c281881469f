"""``spine-seg predict MODEL INPUT... --out DIR``: one trimap PNG per image."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..model.defaults import PREDICT_BATCH_SIZE
from ._slurm_args import add_slurm_arguments, run_on_slurm


def add_parser(subparsers) -> argparse.ArgumentParser:
    """Add the ``predict`` subcommand."""
    p = subparsers.add_parser(
        "predict",
        help="predict a trimap PNG for each image",
        description=(
            "Predict the spine in each image of INPUT (image files, folders of images, or "
            "an AASCE root or split) and write one trimap PNG per image into DIR, named "
            "after the image (x.jpg -> x.png), at the image's own size."
        ),
    )
    p.add_argument("model", metavar="MODEL", help="a .keras model written by spine-seg train")
    p.add_argument(
        "inputs", nargs="+", metavar="INPUT", help="image files, folders or an AASCE split"
    )
    p.add_argument("--out", required=True, metavar="DIR", help="output folder")
    p.add_argument(
        "--batch-size", type=int, default=PREDICT_BATCH_SIZE, help="1 or more (default %(default)s)"
    )
    p.add_argument(
        "--tta", action="store_true", help="average with the left-right mirrored prediction"
    )
    p.add_argument(
        "--probability",
        action="store_true",
        help="also write spine probability maps (<stem>.probability.tif)",
    )
    add_slurm_arguments(p, array=True)
    p.set_defaults(func=run)
    return p


def run(args: argparse.Namespace) -> int:
    """Load the model, predict, and say how many trimaps were written where."""
    from ..model.predict import LANDMARKS_FOLDER, check_batch_size, collect_inputs, predict_files
    from ..outputs import check_output

    # a bad batch size, an --out over the inputs or bad input fail before TensorFlow loads
    check_batch_size(args.batch_size)
    check_output(args.out, args.inputs, folder=True, keep=[args.model])
    if args.slurm:
        return run_on_slurm(args)
    from ..data.images import check_image_headers
    from ..model.files import load_model
    from ._progress import progress

    files = collect_inputs(args.inputs)  # bad input fails before the model loads
    check_image_headers(files)  # … and before TensorFlow is imported
    model = load_model(args.model)
    missing: list[str] = []
    written = predict_files(
        model,
        [str(f) for f in files],
        args.out,
        batch_size=args.batch_size,
        tta=args.tta,
        probability=args.probability,
        progress=lambda it, n: progress(it, total=n, desc="predict", unit="image"),
        report=lambda line: (missing.append(line), print(line, file=sys.stderr)),
    )
    print(f"wrote {len(written)} trimap(s) to {args.out}")
    if model.info.has_vertebrae:
        folder = Path(args.out) / LANDMARKS_FOLDER
        print(f"wrote the landmarks of {len(written) - len(missing)} image(s) to {folder}")
    return 0
