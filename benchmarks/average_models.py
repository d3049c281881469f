"""Average the outputs of several trained models in one model file (an ensemble probe).

The networks must take the same input and predict the same classes (models trained with
the same settings and different seeds). The file written holds one Keras model whose
output is the mean of theirs, with the first model's metadata, so ``bench_vertebrae.py
--model`` predicts it exactly as it predicts one model: this measures what averaging
independent trainings buys (docs/performance.md, "The learning rate's schedule").

Run ``python benchmarks/average_models.py OUT.keras MODEL.keras MODEL.keras [...]``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from napari_spine_seg.errors import SpineSegError
from napari_spine_seg.outputs import check_output


def average_models(out: Path, paths: list[Path]) -> Path:
    """Write `out`: one model whose output is the mean of the models in `paths`."""
    import keras

    from napari_spine_seg.model.files import load_model, save_model

    loaded = [load_model(p) for p in paths]
    shapes = {(tuple(m.keras_model.inputs[0].shape), len(m.info.classes)) for m in loaded}
    if len(shapes) != 1:
        raise SystemExit(f"average_models: the models differ in input or classes: {shapes}")
    x = keras.Input(shape=tuple(loaded[0].keras_model.inputs[0].shape[1:]))
    outputs = []
    for i, m in enumerate(loaded):
        m.keras_model.name = f"member_{i}"  # nested models need names of their own
        outputs.append(m.keras_model(x))
    mean = keras.layers.Average(name="mean")(outputs)
    return save_model(keras.Model(x, mean, name="average"), out, loaded[0].info)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path, help="the averaged model file (.keras)")
    parser.add_argument("models", type=Path, nargs="+", help="two or more model files")
    args = parser.parse_args(argv)
    if len(args.models) < 2:
        parser.error("give two or more models to average")
    try:
        check_output(args.out, keep=args.models, suffixes=(".keras",))
    except SpineSegError as exc:
        parser.error(str(exc))
    print(average_models(args.out, args.models))
    return 0


if __name__ == "__main__":
    sys.exit(main())
