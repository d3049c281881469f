"""Helpers of the gaps widget: pairing a trimap with its probability, finding its gaps,
recording painted pixels, and the viewer's camera."""

from __future__ import annotations

import numpy as np

from ...spine.gaps import KINDS, column_shape, find_gaps, with_corrections
from ...spine.vertebra_count import count_gap
from .._layers import METADATA_KEY
from .predict_widget import is_probability_layer


def view_camera(viewer):
    """The viewer's camera (``viewer.camera``, or its scene's where it has one)."""
    scene = getattr(viewer, "scene", None)
    return scene.camera if scene is not None else viewer.camera


def canvas_size(viewer) -> tuple[int, int]:
    """Width and height of the viewer's canvas in screen pixels."""
    canvas = getattr(viewer, "canvas", None)
    size = canvas.size if canvas is not None else viewer._canvas_size
    return int(size[0]), int(size[1])


def probability_layer_for(viewer, trimap_layer):
    """The probability layer predicted with `trimap_layer`, or None.

    Predict's layers are paired by their metadata (whatever their names); other
    widgets' by name: ``<image> trimap`` goes with ``<image> probability``.
    """
    from napari.layers import Image

    def prediction_of(layer):
        return layer.metadata.get(METADATA_KEY, {}).get("prediction")

    prediction = prediction_of(trimap_layer)
    candidates = [
        layer
        for layer in viewer.layers
        if isinstance(layer, Image)
        and layer.data.shape == trimap_layer.data.shape
        and is_probability_layer(layer)
        and prediction_of(layer) == prediction  # Predict's go only with their own trimap
    ]
    if prediction is not None:
        return candidates[0] if candidates else None
    if trimap_layer.name.endswith(" trimap"):
        name = trimap_layer.name[: -len(" trimap")] + " probability"
        return next((c for c in candidates if c.name == name), None)
    return None


def vertebrae_layer_for(viewer, trimap_layer):
    """The vertebrae layer predicted with `trimap_layer` (Predict's ``<image> vertebrae``).

    Paired by the prediction's id in the metadata, else by name (``<image> trimap`` or
    ``<image> predicted trimap`` goes with ``<image> vertebrae``); None when there is none.
    """
    from napari.layers import Labels

    def meta(layer):
        return layer.metadata.get(METADATA_KEY, {})

    prediction = meta(trimap_layer).get("prediction")
    base = trimap_layer.name
    for suffix in (" predicted trimap", " trimap"):
        if base.endswith(suffix):
            base = base[: -len(suffix)]
            break
    for layer in viewer.layers:
        if not isinstance(layer, Labels) or layer is trimap_layer:
            continue
        if np.shape(layer.data) != np.shape(trimap_layer.data):
            continue
        if prediction is not None:
            if (
                meta(layer).get("role") == "vertebrae"
                and meta(layer).get("prediction") == prediction
            ):
                return layer
        elif layer.name == base + " vertebrae":
            return layer
    return None


def inspect_trimap(trimap, probability=None, painted=None, vertebrae=None):
    """``(shape, gaps)`` of a trimap: its :class:`ColumnShape` (None: no spine) and gaps.

    The probability, when given, is first overlaid with the painted pixels
    (:func:`~napari_spine_seg.spine.gaps.with_corrections`). With the image's bodies
    (`vertebrae`, one label each), a count other than 17 adds a ``"vertebrae"`` gap on
    the largest (:func:`~napari_spine_seg.spine.vertebra_count.count_gap`). Runs in a
    worker thread.
    """
    shape = column_shape(trimap)
    if shape is None:
        return None, []
    if probability is not None:
        probability = with_corrections(probability, trimap, painted)
    gaps = find_gaps(trimap, probability)
    if vertebrae is not None:
        found = int(np.count_nonzero(np.unique(vertebrae)))
        counted = count_gap(found, vertebrae=vertebrae, trimap=trimap)
        if counted is not None:
            gaps = sorted([*gaps, counted], key=lambda g: (g.row, g.col, KINDS.index(g.kind)))
    return shape, gaps


def mark_painted(painted: np.ndarray, atom, data) -> None:
    """Set in `painted` the pixels one of napari's paint-history atoms went over.

    napari's atom records only the pixels whose label changed; a brush passed over
    pixels that already had the label (spine painted over a predicted but uncertain
    spine) is as much the person's word. So every pixel in the stroke's box that now
    holds the painted label counts too.
    """
    key = getattr(atom, "slice_key", None)
    if key is not None:  # a masked edit: a box of the array and the pixels in it
        key = tuple(key)
        region = painted[key]
        if getattr(atom, "mask", None) is None:
            region[...] = True
        else:
            region[np.asarray(atom.mask, dtype=bool)] = True
            region |= np.asarray(data[key]) == atom.new_value
    elif isinstance(atom, tuple) and len(atom) == 3:  # (indices, old values, new values)
        painted[atom[0]] = True
