"""What the Train widget shows about the current model: file, preset, input size,
outputs, training set and scores (from the model file's metadata)."""

from __future__ import annotations

from pathlib import Path

from ._vertebra_layers import model_outputs


def describe_model(model) -> str:
    """A few lines on a loaded model: file, input size, training set, scores."""
    info = model.info
    rows, cols = info.input_size
    lines = [
        f"{Path(model.path).name if model.path else 'model'}: {info.preset}, input {rows}x{cols}"
    ]
    lines.append("outputs: " + ", ".join(model_outputs(info)))
    ts = info.training_set or {}
    if ts:
        lines.append(
            f"trained on {ts.get('root') or '?'} ({ts.get('n_train', '?')} training, "
            f"{ts.get('n_val', '?')} validation images), {info.training.get('epoch', '?')} epochs"
        )
    metrics = info.metrics or {}
    scores = [
        f"{label} {metrics[key]:.3f}"
        for label, key in (
            ("val. spine Dice", "val_spine_dice"),
            ("val. accuracy", "val_accuracy"),
            ("spine Dice", "spine_dice"),
        )
        if isinstance(metrics.get(key), int | float)
    ]
    if scores:
        lines.append(", ".join(scores))
    return "\n".join(lines)
