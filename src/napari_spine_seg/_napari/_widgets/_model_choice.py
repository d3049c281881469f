"""Which model a training leaves current: a free file name, and a score comparison."""

from __future__ import annotations

from pathlib import Path


def free_model_name(model_path: Path, tag: str = "retrained") -> Path:
    """``<stem>-<tag>.keras`` beside `model_path`, numbered so that no file is replaced."""
    stem = (
        model_path.name[: -len(".keras")] if model_path.name.endswith(".keras") else model_path.stem
    )
    candidate = model_path.with_name(f"{stem}-{tag}.keras")
    n = 2
    while candidate.exists():
        candidate = model_path.with_name(f"{stem}-{tag}-{n}.keras")
        n += 1
    return candidate


def worse_than_current(info, current) -> str | None:
    """Why a new model (its `info`) scores worse than `current` (a ModelRef), or None.

    Compares validation spine Dice where both models have one, else training spine Dice.
    """
    if current is None:
        return None
    new, old = info.metrics or {}, current.info.metrics or {}
    for key, label in (("val_spine_dice", "val. spine Dice"), ("spine_dice", "spine Dice")):
        a, b = new.get(key), old.get(key)
        if isinstance(a, int | float) and isinstance(b, int | float):
            if a >= b:
                return None
            return f"its {label} {a:.3f} is below the current model's {b:.3f}"  # or NaN
    return None
