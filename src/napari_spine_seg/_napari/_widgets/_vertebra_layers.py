"""The vertebrae of a prediction as napari layers: ``<image> vertebrae`` and ``<image> landmarks``.

A model that learnt the vertebrae (its metadata's ``outputs`` holds ``"vertebrae"``)
gives, with each trimap, the 17 bodies as labels (1 = T1 … 17 = L5) and, where exactly
17 were found, their 68 corners; otherwise a fault per image says why
(:class:`~napari_spine_seg.model.predict.Prediction`). The Predict widget turns them
into a Labels layer (:func:`~napari_spine_seg._napari._layers.vertebrae_layer`) and a
Points layer (:func:`~napari_spine_seg._napari._layers.landmarks_layer`), both editable,
both carrying the prediction's metadata, so that the Spine curve widget measures the
landmarks of the trimap they came with. A model with a trimap only adds neither.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ...spine.vertebra_labels import vertebra_labels
from ...trimap import N_LANDMARKS
from .._layers import (
    LayerDataTuple,
    landmarks_layer,
    point_size,
    predicted_layer_names,
    vertebrae_layer,
)


@dataclass(frozen=True)
class VertebraOutputs:
    """The vertebra outputs of one image's prediction.

    Attributes
    ----------
    vertebrae : (rows, cols) ndarray or None
        0 background, 1 = T1 … 17 = L5; None from a model without vertebrae.
    landmarks : (68, 2) ndarray or None
        ``(x, y)`` corners, AASCE order; None unless 17 vertebrae were found.
    faults : tuple of str
        Why there are no landmarks, or what is doubtful about them.
    """

    vertebrae: np.ndarray | None = None
    landmarks: np.ndarray | None = None
    faults: tuple[str, ...] = ()


def vertebra_outputs(prediction) -> VertebraOutputs:
    """The vertebra fields of a :class:`~napari_spine_seg.model.predict.Prediction`.

    A trimap-only model's prediction has none (all None). Landmarks without a vertebra
    map get one drawn from their quadrilaterals (:func:`vertebra_labels`).
    """
    vertebrae = getattr(prediction, "vertebrae", None)
    landmarks = getattr(prediction, "landmarks", None)
    if landmarks is not None:
        landmarks = np.asarray(landmarks, dtype=np.float64).reshape(N_LANDMARKS, 2)
        if vertebrae is None:
            vertebrae = vertebra_labels(landmarks, np.shape(prediction.trimap))
    faults = tuple(str(f) for f in (getattr(prediction, "vertebra_faults", None) or ()))
    return VertebraOutputs(vertebrae, landmarks, faults)


def vertebra_layers(
    image_name: str,
    outputs: Sequence[VertebraOutputs],
    shapes: Sequence[tuple[int, int]] | None,
    *,
    full_shape: tuple[int, ...] | None = None,
    metadata: dict | None = None,
    scale: Sequence[float] | None = None,
) -> list[tuple[LayerDataTuple, str]]:
    """The vertebrae and landmarks layers of one image layer's predictions.

    Parameters
    ----------
    image_name : str
        The image layer's name.
    outputs : sequence of VertebraOutputs
        One per image (one for a single image, one per slice of a stack).
    shapes : sequence of (rows, cols), optional
        For a stack: each slice's true size (the stack pads them to `full_shape`).
    full_shape : tuple of int, optional
        The stack's shape ``(n, rows, cols)``; needed with `shapes`.
    metadata : dict, optional
        The prediction's metadata (``image_shape`` or ``names``/``shapes``, the
        ``prediction`` id that pairs the layers …); each layer adds its ``role``.
    scale : sequence of float, optional
        The image's pixel size per axis.

    Returns
    -------
    list of (layer-data tuple, role)
        ``(vertebrae, "vertebrae")`` and ``(landmarks, "landmarks")`` (the latter
        holding only the images where 17 vertebrae were found); empty when no output
        has vertebrae (a trimap-only model). The bodies are named T1…L5 only when
        every image has its landmarks (17 found); otherwise ``body k``.
    """
    if all(o.vertebrae is None for o in outputs):
        return []
    meta = dict(metadata or {})
    *_, vertebrae_name, landmarks_name = predicted_layer_names(image_name)
    if shapes is None:
        (only,) = outputs
        labels = np.asarray(only.vertebrae, dtype=np.uint8)
        found = [only.landmarks] if only.landmarks is not None else []
        slices = None
        width = labels.shape[1]
    else:
        labels = np.zeros(full_shape, dtype=np.uint8)
        for i, (out, (rows, cols)) in enumerate(zip(outputs, shapes, strict=True)):
            if out.vertebrae is not None:
                labels[i, :rows, :cols] = out.vertebrae
        slices = [i for i, out in enumerate(outputs) if out.landmarks is not None]
        found = [outputs[i].landmarks for i in slices]
        width = max(cols for _, cols in shapes)
    xy = np.stack(found) if found else np.empty((0, N_LANDMARKS, 2))
    # T1…L5 only where every image's count was 17: otherwise a label is just a body
    named = all(o.landmarks is not None for o in outputs if o.vertebrae is not None)
    vertebrae = vertebrae_layer(
        labels,
        name=vertebrae_name,
        scale=scale,
        metadata={**meta, "role": "vertebrae"},
        named=named,
    )
    landmarks = landmarks_layer(
        xy if slices is not None else xy.reshape(-1, 2),
        name=landmarks_name,
        size=point_size(width),
        slice_index=slices,
        scale=scale,
        metadata={**meta, "role": "landmarks"},
    )
    return [(vertebrae, "vertebrae"), (landmarks, "landmarks")]


def fault_lines(names: Sequence[str], outputs: Sequence[VertebraOutputs]) -> list[str]:
    """One line per image whose vertebrae have faults: ``<name>: <fault>; <fault>``.

    Examples
    --------
    >>> fault_lines(["a", "b"], [VertebraOutputs(), VertebraOutputs(faults=("found 16",))])
    ['b: found 16']
    """
    return [
        f"{name}: {'; '.join(out.faults)}"
        for name, out in zip(names, outputs, strict=True)
        if out.faults
    ]


def model_outputs(info) -> list[str]:
    """What a model predicts, from its metadata (``ModelInfo.outputs``).

    A model written before vertebrae were learnt has no ``outputs``: a trimap only.
    """
    return [str(o) for o in (getattr(info, "outputs", None) or ["trimap"])]
