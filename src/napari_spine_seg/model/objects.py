"""Keras objects of our own: the spine Dice metric and the cross-entropy + Dice loss.

They are written with ``keras.ops`` only (TensorFlow and JAX alike) and registered
under the package name ``napari_spine_seg`` so that a saved model's compile state
(needed to resume training) loads in Keras safe mode. Keras is imported when
:func:`custom_objects` is first called, never on import of this module.

Labels are class indices (0 spine, 1 background, 2 border); both the metric and the
Dice term ignore pixels whose true class is the border, as DESIGN.md's scoring does.
"""

from __future__ import annotations

import functools

SPINE_CLASS = 0
BORDER_CLASS = 2
PACKAGE = "napari_spine_seg"
LOSSES = ("ce", "ce+dice")


@functools.cache
def custom_objects() -> dict[str, object]:
    """Define (once) and return our Keras objects by their registered names.

    Returns
    -------
    dict
        ``{"SpineDice": metric class, "ce_dice_loss": loss function,
        "sparse_ce_loss": loss function}``.
    """
    import keras
    from keras import ops

    def _labels(y_true):
        y = ops.cast(y_true, "int32")
        if len(y.shape) == 4:
            y = ops.squeeze(y, axis=-1)
        return y

    @keras.saving.register_keras_serializable(package=PACKAGE)
    class SpineDice(keras.metrics.Metric):
        """Spine Dice over all pixels seen this epoch, ignoring the true border band."""

        def __init__(self, name="spine_dice", **kwargs):
            super().__init__(name=name, **kwargs)
            self.intersection = self.add_variable(
                shape=(), initializer="zeros", name="intersection"
            )
            self.total = self.add_variable(shape=(), initializer="zeros", name="total")

        def update_state(self, y_true, y_pred, sample_weight=None):
            y = _labels(y_true)
            pred = ops.argmax(y_pred, axis=-1)
            valid = ops.cast(ops.not_equal(y, BORDER_CLASS), "float32")
            gt = ops.cast(ops.equal(y, SPINE_CLASS), "float32") * valid
            pr = ops.cast(ops.equal(pred, SPINE_CLASS), "float32") * valid
            self.intersection.assign_add(ops.sum(gt * pr))
            self.total.assign_add(ops.sum(gt) + ops.sum(pr))

        def result(self):
            # both empty → perfect agreement
            return ops.where(
                self.total > 0, 2.0 * self.intersection / ops.maximum(self.total, 1.0), 1.0
            )

        def reset_state(self):
            self.intersection.assign(0.0)
            self.total.assign(0.0)

    @keras.saving.register_keras_serializable(package=PACKAGE)
    def sparse_ce_loss(y_true, y_pred):
        """Sparse categorical cross-entropy per pixel (the seed's loss)."""
        y = _labels(y_true)
        y_pred = ops.cast(y_pred, "float32")
        return keras.losses.sparse_categorical_crossentropy(y, y_pred)

    @keras.saving.register_keras_serializable(package=PACKAGE)
    def ce_dice_loss(y_true, y_pred):
        """Sparse cross-entropy plus (1 − soft spine Dice of the batch), border ignored."""
        y = _labels(y_true)
        y_pred = ops.cast(y_pred, "float32")
        ce = keras.losses.sparse_categorical_crossentropy(y, y_pred)
        valid = ops.cast(ops.not_equal(y, BORDER_CLASS), "float32")
        gt = ops.cast(ops.equal(y, SPINE_CLASS), "float32") * valid
        p = y_pred[..., SPINE_CLASS] * valid
        dice = (2.0 * ops.sum(gt * p) + 1.0) / (ops.sum(gt) + ops.sum(p) + 1.0)
        # the Dice term is one number per batch; spread it over the pixels so that the
        # per-pixel mean Keras takes adds exactly (1 - dice)
        return ce + (1.0 - dice)

    return {"SpineDice": SpineDice, "sparse_ce_loss": sparse_ce_loss, "ce_dice_loss": ce_dice_loss}


def make_loss(name: str):
    """The Keras loss function for ``"ce"`` or ``"ce+dice"``."""
    objs = custom_objects()
    if name == "ce":
        return objs["sparse_ce_loss"]
    if name == "ce+dice":
        return objs["ce_dice_loss"]
    from ..errors import SpineSegError

    raise SpineSegError(None, f"unknown loss {name!r}; choose one of {', '.join(LOSSES)}")


def make_metrics() -> list:
    """Pixel accuracy (three classes, as the seed reported it) and spine Dice."""
    import keras

    return [
        keras.metrics.SparseCategoricalAccuracy(name="accuracy"),
        custom_objects()["SpineDice"](name="spine_dice"),
    ]
