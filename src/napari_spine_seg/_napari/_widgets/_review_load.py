"""Loading an image for review, off the GUI thread: what the review widget shows first.

A model that finds vertebrae gives the review, as it gives Predict, ``<image> vertebrae``
and ``<image> landmarks`` (:func:`~._vertebra_layers.vertebra_layers`), kept with the
prediction in the review folder; moving a corner repaints its vertebra
(:func:`~._corner_follow.follow_corners`). They are shown, measured and saved with File
> Save; the review itself keeps the trimap.
"""

from __future__ import annotations

import uuid
from pathlib import Path

import numpy as np
from magicgui.widgets import FileEdit

from ...errors import SpineSegError
from ...review.predictions import PredictionCache
from .._layers import image_layer, trimap_layer
from .._notify import notify_warning
from ._corner_follow import follow_corners
from ._vertebra_layers import (
    VertebraOutputs,
    fault_lines,
    model_outputs,
    vertebra_layers,
    vertebra_outputs,
)
from .predict_widget import predict_image


def field_path(edit: FileEdit) -> Path | None:
    """The path typed in `edit`, or None when it is empty."""
    text = str(edit.line_edit.value).strip()
    return Path(text).expanduser() if text else None


def prediction_of(session, key: str, model, pixels) -> tuple:
    """``(trimap, probability, vertebrae)`` of image `key`: kept in the review folder, or
    predicted (in the model process) and kept there; `vertebrae` is a
    :class:`~._vertebra_layers.VertebraOutputs` (all None for a trimap-only model).
    Blocks: call it in a worker thread."""
    if model.path is None:
        predicted = predict_image(model, pixels)
        return predicted.trimap, predicted.probability, vertebra_outputs(predicted)
    image = session.sample(key).image_path
    cache = PredictionCache(session.folder, model.path)
    kept = cache.get(key, image)
    # ranking worst first keeps no vertebrae: a vertebra model predicts such an image again
    if kept is not None and (
        kept.vertebrae is not None or "vertebrae" not in model_outputs(model.info)
    ):
        return kept.trimap, kept.probability, vertebra_outputs(kept)
    predicted = predict_image(model, pixels)
    try:
        cache.put(
            key,
            image,
            predicted.trimap,
            predicted.probability,
            vertebrae=predicted.vertebrae,
            landmarks=predicted.landmarks,
            vertebra_faults=predicted.vertebra_faults,
        )
    except SpineSegError:
        pass  # only a time saver: the review goes on (its own saves say what is wrong)
    return predicted.trimap, predicted.probability, vertebra_outputs(predicted)


def load_for_review(session, key: str, model, cached) -> tuple:
    """What to show for image `key`: its saved review, else the model's prediction, else
    the data set's trimap, else an empty trimap. Blocks: call it in a worker thread.

    Parameters
    ----------
    session : ReviewSession
    key : str
    model : loaded model or None
    cached : (trimap, probability, vertebrae) or None
        A prediction of `key` kept by the widget.

    Returns
    -------
    tuple
        ``(key, sample, pixels, trimap, probability, source, vertebrae)``; `source`
        names what the trimap is; `vertebrae` (a VertebraOutputs) is the model's, or
        None without a model.
    """
    sample = session.sample(key)
    pixels = sample.load_image().pixels
    probability = vertebrae = None
    trimap = session.reviewed_trimap(key)
    source = "saved review"
    if model is not None:
        if cached is None or (trimap is None and cached[0] is None):
            cached = prediction_of(session, key, model, pixels)
        predicted, probability, vertebrae = cached
        if trimap is None:
            trimap, source = predicted, "prediction"
    if trimap is None and sample.has_labels:
        trimap, source = sample.load_trimap(), "the dataset's trimap"
    if trimap is None:
        trimap, source = np.full(pixels.shape, 2, np.uint8), "empty"
    return key, sample, pixels, trimap, probability, source, vertebrae


def review_layers(
    sample,
    key: str,
    pixels,
    trimap,
    probability,
    predicted: bool,
    vertebrae: VertebraOutputs | None = None,
) -> list[tuple]:
    """Layer data tuples of image `key` under review: the X-ray, its probability (hidden)
    when there is one, its trimap (marked `predicted` when a network drew it), and a
    vertebra model's vertebrae and landmarks (paired with a predicted trimap, whose
    angles the Spine curve widget then measures on those landmarks).

    Parameters
    ----------
    sample : Sample
    key : str
    pixels : (H, W) ndarray
    trimap : (H, W) array
    probability : (H, W) ndarray or None
    predicted : bool
    vertebrae : VertebraOutputs, optional

    Returns
    -------
    list of (data, kwargs, layer type)
    """
    stem = Path(sample.name).stem
    meta = {"path": str(sample.image_path), "image_shape": list(pixels.shape), "review": key}
    pair = {"prediction": uuid.uuid4().hex}  # pairs the layers, whatever their names
    trimap_meta = {**meta, "predicted": predicted, **(pair if predicted else {})}
    tuples = [image_layer(pixels, name=stem, metadata=meta)]
    if probability is not None:
        data, kwargs, kind = image_layer(
            probability.astype(np.float32), name=f"{stem} probability", metadata=meta
        )
        kwargs.update(colormap="magma", contrast_limits=(0.0, 1.0), visible=False)
        tuples.append((data, kwargs, kind))
    tuples.append(
        trimap_layer(
            np.asarray(trimap, np.uint8).copy(), name=f"{stem} trimap", metadata=trimap_meta
        )
    )
    if vertebrae is not None:
        tuples += [
            t for t, _ in vertebra_layers(stem, [vertebrae], None, metadata={**meta, **pair})
        ]
    return tuples


def add_review_layers(viewer, name: str, tuples: list[tuple], vertebrae) -> list:
    """Add the layers of :func:`review_layers` to `viewer`; a moved corner repaints its
    vertebra; faults of the vertebrae (not 17 found) are one notification. Return the
    layers."""
    from napari.layers import Layer

    layers = [viewer.add_layer(Layer.create(*t)) for t in tuples]
    roles = {layer.metadata.get("spine_seg", {}).get("role"): layer for layer in layers}
    if "landmarks" in roles and "vertebrae" in roles:
        follow_corners(roles["landmarks"], roles["vertebrae"])
    lines = fault_lines([name], [vertebrae]) if vertebrae is not None else []
    if lines:
        notify_warning("vertebrae: " + "\n".join(lines))
    return layers
