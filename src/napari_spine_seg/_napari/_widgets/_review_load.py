"""Loading an image for review, off the GUI thread: what the review widget shows first."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from magicgui.widgets import FileEdit

from ...errors import SpineSegError
from ...review.predictions import PredictionCache
from .._layers import image_layer, trimap_layer
from .predict_widget import predict_pixels


def field_path(edit: FileEdit) -> Path | None:
    """The path typed in `edit`, or None when it is empty."""
    text = str(edit.line_edit.value).strip()
    return Path(text).expanduser() if text else None


def prediction_of(session, key: str, model, pixels) -> tuple[np.ndarray, np.ndarray]:
    """``(trimap, probability)`` of image `key`: kept in the review folder, or predicted
    (in the model process) and kept there. Blocks: call it in a worker thread."""
    if model.path is None:
        return predict_pixels(model, pixels)
    image = session.sample(key).image_path
    cache = PredictionCache(session.folder, model.path)
    kept = cache.get(key, image)
    if kept is not None:
        return kept.trimap, kept.probability
    trimap, probability = predict_pixels(model, pixels)
    try:
        cache.put(key, image, trimap, probability)
    except SpineSegError:
        pass  # only a time saver: the review goes on (its own saves say what is wrong)
    return trimap, probability


def load_for_review(session, key: str, model, cached) -> tuple:
    """What to show for image `key`: its saved review, else the model's prediction, else
    the data set's trimap, else an empty trimap. Blocks: call it in a worker thread.

    Parameters
    ----------
    session : ReviewSession
    key : str
    model : loaded model or None
    cached : (trimap, probability) or None
        A prediction of `key` kept by the widget.

    Returns
    -------
    tuple
        ``(key, sample, pixels, trimap, probability, source)``; `source` names what
        the trimap is.
    """
    sample = session.sample(key)
    pixels = sample.load_image().pixels
    probability = None
    trimap = session.reviewed_trimap(key)
    source = "saved review"
    if model is not None and (trimap is None or cached is None):
        predicted, probability = cached or prediction_of(session, key, model, pixels)
        if trimap is None:
            trimap, source = predicted, "prediction"
    if trimap is None and sample.has_labels:
        trimap, source = sample.load_trimap(), "the dataset's trimap"
    if trimap is None:
        trimap, source = np.full(pixels.shape, 2, np.uint8), "empty"
    return key, sample, pixels, trimap, probability, source


def review_layers(sample, key: str, pixels, trimap, probability, predicted: bool) -> list[tuple]:
    """Layer data tuples of image `key` under review: the X-ray, its probability (hidden)
    when there is one, and its trimap (marked `predicted` when a network drew it).

    Parameters
    ----------
    sample : Sample
    key : str
    pixels : (H, W) ndarray
    trimap : (H, W) array
    probability : (H, W) ndarray or None
    predicted : bool

    Returns
    -------
    list of (data, kwargs, layer type)
    """
    stem = Path(sample.name).stem
    meta = {"path": str(sample.image_path), "image_shape": list(pixels.shape), "review": key}
    trimap_meta = {**meta, "predicted": predicted}
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
    return tuples
