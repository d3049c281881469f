"""Defaults of training and prediction, importable without Keras (for the CLI's help).

They were chosen by measurement; ``docs/performance.md`` has the numbers and commands.
"""

from __future__ import annotations

#: defaults of :func:`napari_spine_seg.model.train.train`
TRAIN_DEFAULTS = {
    "preset": "unet",
    # early stopping (patience) ends most runs sooner: a trimap model's Dice levels off
    # in 30-50 epochs; a vertebrae model's end plates still sharpen until about 75
    # (with body shear, 100), in small steps between plateaus of up to a dozen epochs:
    # at patience 12 one default run stopped at epoch 39 and lost 1.1-1.8 points of
    # Cobb SMAPE on two test sets of three against the same run at 25
    # (docs/performance.md, "Bodies that are not rectangles")
    "epochs": 100,
    "batch_size": 8,
    "learning_rate": 1e-3,
    "loss": "ce+dice",
    "val_fraction": 0.15,
    "patience": 25,
    "fit": "letterbox",
    # largest tilt (degrees) the bending augmentation adds; 0: off (model/bend.py).
    # On: trained on mild spines, strongly curved ones got spine Dice 0.996 (min 0.981)
    # against 0.951 (min 0.746) without (docs/performance.md, "Bent spines")
    "bend_deg": 30.0,
    # the rate falls along a half cosine over the epochs (or the time budget), the same
    # way in every run; halving it on a stalled validation loss ("plateau") let one
    # training anneal 40 epochs later than another. Three trainings each way (seeds
    # 0-2): Cobb SMAPE 5.91 / 5.96 / 6.23 / 2.49 % on four test sets against
    # 5.93 / 6.30 / 7.03 / 2.74 %, and a spread of 0.7 against 1.4 points on the
    # largest (docs/performance.md, "The learning rate's schedule")
    "lr_schedule": "cosine",
}
#: images per forward pass when predicting
PREDICT_BATCH_SIZE = 4

#: environment that quietens TensorFlow's C++ logging (its start-up lines, and "failed
#: call to cuInit" on a machine without a GPU, which reads as a failure); set only where
#: the user has not set them: by the command line and for napari's model process
QUIET_TENSORFLOW_ENV = {
    "TF_CPP_MIN_LOG_LEVEL": "3",
    "GLOG_minloglevel": "3",
    "GRPC_VERBOSITY": "ERROR",
}
