"""Keras objects of our own: the spine Dice metric and the cross-entropy + Dice loss.

They are written with ``keras.ops`` only (TensorFlow and JAX alike) and registered
under the package name ``napari_spine_seg`` so that a saved model's compile state
(needed to resume training) loads in Keras safe mode. Keras is imported when
:func:`custom_objects` is first called, never on import of this module.

Labels are class indices (0 spine, 1 background, 2 border); both the metric and the
Dice term ignore pixels whose true class is the border, as DESIGN.md's scoring does.

A vertebrae model (:mod:`.targets`) has its own loss and metrics, under the same
metric names so that the history and the choice of the best epoch read alike: its
classes are 0 body, 1 space, 2 background, and its labels may also be 3 (column: body
or space, from a trimap-only sample) or 4 (ignored: a trimap's border band). Its spine
is body ∪ space.
"""

from __future__ import annotations

import functools

from ..errors import SpineSegError

SPINE_CLASS = 0
BORDER_CLASS = 2
PACKAGE = "napari_spine_seg"
LOSSES = ("ce", "ce+dice")
#: vertebrae models: classes and extra labels (as :mod:`.targets` has them)
V_BACKGROUND_CLASS, V_COLUMN_LABEL, V_IGNORE_LABEL = 2, 3, 4


@functools.cache
def custom_objects() -> dict[str, object]:
    """Define (once) and return our Keras objects by their registered names.

    Returns
    -------
    dict
        ``{"SpineDice": metric class, "ce_dice_loss": loss function,
        "sparse_ce_loss": loss function}`` and the vertebrae model's
        (``"ColumnDice"``, ``"VertebraAccuracy"``, ``"vertebra_ce_loss"``,
        ``"vertebra_ce_dice_loss"``).
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

    return {
        "SpineDice": SpineDice,
        "sparse_ce_loss": sparse_ce_loss,
        "ce_dice_loss": ce_dice_loss,
        **_vertebra_objects(_labels, SpineDice),
    }


def _vertebra_objects(_labels, spine_dice) -> dict[str, object]:
    """The loss and metrics of a vertebrae model (classes body, space, background).

    `spine_dice` is the trimap model's Dice metric class, whose sums the vertebrae
    model's column Dice keeps."""
    from keras import ops

    def _parts(y_true, y_pred):
        """Labels, the probability of each pixel's label, its weight, truth/pred column."""
        y = _labels(y_true)
        p = ops.cast(y_pred, "float32")
        column_p = 1.0 - p[..., V_BACKGROUND_CLASS]
        known = ops.minimum(y, V_BACKGROUND_CLASS)
        p_label = ops.sum(ops.one_hot(known, 3) * p, axis=-1)
        p_label = ops.where(ops.equal(y, V_COLUMN_LABEL), column_p, p_label)
        valid = ops.cast(ops.not_equal(y, V_IGNORE_LABEL), "float32")
        truth = ops.cast(ops.not_equal(y, V_BACKGROUND_CLASS), "float32") * valid
        return y, p, p_label, valid, truth, column_p

    return {**_vertebra_losses(_parts), **_vertebra_metrics(_parts, spine_dice)}


def _vertebra_losses(_parts) -> dict[str, object]:
    """The vertebrae model's losses; `_parts` splits labels and output (see above)."""
    import keras
    from keras import ops

    @keras.saving.register_keras_serializable(package=PACKAGE)
    def vertebra_ce_loss(y_true, y_pred):
        """Cross-entropy of each pixel's label (a column label: of body + space)."""
        _, _, p_label, valid, _, _ = _parts(y_true, y_pred)
        return -ops.log(ops.clip(p_label, 1e-7, 1.0)) * valid

    def _dice(truth, p):
        return (2.0 * ops.sum(truth * p) + 1.0) / (ops.sum(truth) + ops.sum(p) + 1.0)

    @keras.saving.register_keras_serializable(package=PACKAGE)
    def vertebra_ce_dice_loss(y_true, y_pred):
        """:func:`vertebra_ce_loss` plus (1 − soft Dice) of the column, and of the bodies and
        of the spaces where they are known (not on a trimap-only sample's column)."""
        y, probs, p_label, valid, truth, column_p = _parts(y_true, y_pred)
        ce = -ops.log(ops.clip(p_label, 1e-7, 1.0)) * valid
        known = ops.cast(ops.less(y, V_COLUMN_LABEL), "float32")
        loss = ce + (1.0 - _dice(truth, column_p * valid))
        for k in (0, 1):  # body, space: the thin spaces are what tells vertebrae apart
            is_k = ops.cast(ops.equal(y, k), "float32")
            loss = loss + 0.5 * (1.0 - _dice(is_k, probs[..., k] * known))
        return loss

    return {"vertebra_ce_loss": vertebra_ce_loss, "vertebra_ce_dice_loss": vertebra_ce_dice_loss}


def _vertebra_metrics(_parts, spine_dice) -> dict[str, object]:
    """The vertebrae model's metrics, named as the trimap model's (accuracy, spine_dice)."""
    import keras
    from keras import ops

    @keras.saving.register_keras_serializable(package=PACKAGE)
    class ColumnDice(spine_dice):
        """Spine (body ∪ space) Dice of a vertebrae model over the epoch's pixels."""

        def update_state(self, y_true, y_pred, sample_weight=None):
            _, _, _, valid, truth, column_p = _parts(y_true, y_pred)
            pred = ops.cast(column_p > 0.5, "float32") * valid
            self.intersection.assign_add(ops.sum(truth * pred))
            self.total.assign_add(ops.sum(truth) + ops.sum(pred))

    @keras.saving.register_keras_serializable(package=PACKAGE)
    class VertebraAccuracy(keras.metrics.Metric):
        """Pixel accuracy of a vertebrae model: its argmax against each pixel's label."""

        def __init__(self, name="accuracy", **kwargs):
            super().__init__(name=name, **kwargs)
            self.right = self.add_variable(shape=(), initializer="zeros", name="right")
            self.count = self.add_variable(shape=(), initializer="zeros", name="count")

        def update_state(self, y_true, y_pred, sample_weight=None):
            y, p, _, valid, _, _ = _parts(y_true, y_pred)
            pred = ops.argmax(p, axis=-1)
            in_column = ops.not_equal(pred, V_BACKGROUND_CLASS)
            right = ops.where(ops.equal(y, V_COLUMN_LABEL), in_column, ops.equal(pred, y))
            self.right.assign_add(ops.sum(ops.cast(right, "float32") * valid))
            self.count.assign_add(ops.sum(valid))

        def result(self):
            return self.right / ops.maximum(self.count, 1.0)

        def reset_state(self):
            self.right.assign(0.0)
            self.count.assign(0.0)

    return {"ColumnDice": ColumnDice, "VertebraAccuracy": VertebraAccuracy}


def make_loss(name: str, target: str = "trimap"):
    """The Keras loss function for ``"ce"`` or ``"ce+dice"``, for a trimap or vertebrae model."""
    objs = custom_objects()
    prefix = "vertebra_" if target == "vertebrae" else ""
    if name == "ce":
        return objs[f"{prefix}ce_loss" if prefix else "sparse_ce_loss"]
    if name == "ce+dice":
        return objs[f"{prefix}ce_dice_loss"]

    raise SpineSegError(None, f"unknown loss {name!r}; choose one of {', '.join(LOSSES)}")


def make_metrics(target: str = "trimap") -> list:
    """Pixel accuracy (three classes, as the seed reported it) and spine Dice.

    For a vertebrae model: its own pixel accuracy (body, space, background) and the
    Dice of its column (body ∪ space), under the same names.
    """
    import keras

    if target == "vertebrae":
        objs = custom_objects()
        return [objs["VertebraAccuracy"](name="accuracy"), objs["ColumnDice"](name="spine_dice")]
    return [
        keras.metrics.SparseCategoricalAccuracy(name="accuracy"),
        custom_objects()["SpineDice"](name="spine_dice"),
    ]
