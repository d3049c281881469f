"""Defaults of training and prediction, importable without Keras (for the CLI's help).

They were chosen by measurement; ``docs/performance.md`` has the numbers and commands.
"""

from __future__ import annotations

#: defaults of :func:`napari_spine_seg.model.train.train`
TRAIN_DEFAULTS = {
    "preset": "unet",
    "epochs": 40,
    "batch_size": 8,
    "learning_rate": 1e-3,
    "loss": "ce+dice",
    "val_fraction": 0.15,
    "patience": 12,
    "fit": "letterbox",
}
#: images per forward pass when predicting
PREDICT_BATCH_SIZE = 4
