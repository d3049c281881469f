"""Layer-data tuples for napari: X-ray images, trimap and vertebra Labels, landmark Points.

Every reader, the sample data and the widgets build their layers here, so that a
trimap looks the same in every layer (the colours of :data:`~napari_spine_seg.trimap.LABEL_COLORS`:
background and the eraser's 0 transparent, spine and border in two distinct colours)
and landmarks are converted from ``(x, y)`` to napari's ``(row, col)`` in one place
(:func:`~napari_spine_seg.trimap.xy_to_rowcol`).

This module imports neither napari nor Qt: a layer-data tuple is ``(data, kwargs,
layer_type)`` with plain values, which napari turns into a layer.

Every layer function takes the layer's ``name``, and optionally its ``scale`` (the size
of a pixel per axis, e.g. DICOM pixel spacing in mm: an image's trimap and landmarks take
the image's) and ``metadata`` (stored under ``layer.metadata["spine_seg"]``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

import numpy as np

from ..spine.vertebra_labels import VERTEBRA_NAMES
from ..trimap import LABEL_COLORS, N_LANDMARKS, N_VERTEBRAE, xy_to_rowcol

LayerDataTuple = tuple[Any, dict[str, Any], str]

#: key of this package's entry in a layer's ``metadata``
METADATA_KEY = "spine_seg"


class PredictedNames(NamedTuple):
    """Names of the layers Predict makes for one image layer."""

    trimap: str
    probability: str
    vertebrae: str
    landmarks: str


_PREDICTED_SUFFIXES = PredictedNames(
    " predicted trimap", " predicted probability", " vertebrae", " landmarks"
)


def predicted_layer_names(image_name: str) -> PredictedNames:
    """Names of the layers Predict makes for image layer `image_name` (the vertebrae and
    landmarks layers only with a model that finds vertebrae).

    Examples
    --------
    >>> predicted_layer_names("p 1").trimap, predicted_layer_names("p 1").landmarks
    ('p 1 predicted trimap', 'p 1 landmarks')
    """
    return PredictedNames(*(image_name + suffix for suffix in _PREDICTED_SUFFIXES))


#: colour of labels other than 0–3 (a slip of the brush shows instead of vanishing)
OTHER_LABEL_COLOR = (1.0, 0.0, 1.0, 0.8)

#: Labels colormap: label value → RGBA, the same in every trimap layer
TRIMAP_COLORMAP: dict[int | None, tuple[float, float, float, float]] = {
    **{int(k): tuple(float(c) for c in v) for k, v in LABEL_COLORS.items()},
    None: OTHER_LABEL_COLOR,
}

#: landmark corners in file order within each vertebra
CORNERS = ("top-left", "top-right", "bottom-left", "bottom-right")

#: name of background (label 0) in a vertebrae layer's features
NO_VERTEBRA = "none"


def _vertebra_colour(k: int) -> tuple[float, float, float, float]:
    """A colour per vertebra; neighbours 7/17 of the hue circle apart, so they differ."""
    import colorsys

    r, g, b = colorsys.hsv_to_rgb((7 * (k - 1) % N_VERTEBRAE) / N_VERTEBRAE, 0.7, 1.0)
    return (r, g, b, 1.0)


#: Labels colormap of a vertebrae layer: 0 transparent, 1 = T1 … 17 = L5 a colour each
VERTEBRA_COLORMAP: dict[int | None, tuple[float, float, float, float]] = {
    0: (0.0, 0.0, 0.0, 0.0),
    **{k: _vertebra_colour(k) for k in range(1, N_VERTEBRAE + 1)},
    None: OTHER_LABEL_COLOR,
}

LANDMARK_FACE_COLOR = "#ff3b30"
LANDMARK_BORDER_COLOR = "#ffffff"


#: axis names of a data set stack: napari's slider reads "image"; the image axes keep
#: napari's default names, so that stacks and single images share a viewer
STACK_AXIS_LABELS = ("image", "-2", "-1")


def _scale_kwargs(scale: Sequence[float] | None) -> dict[str, Any]:
    return {} if scale is None else {"scale": tuple(float(s) for s in scale)}


def _stack_kwargs(ndim: int) -> dict[str, Any]:
    return {"axis_labels": STACK_AXIS_LABELS} if ndim == 3 else {}


def _metadata(metadata: Mapping[str, Any] | None) -> dict[str, Any]:
    return {METADATA_KEY: dict(metadata or {})}


def _raster_kwargs(data, name: str, scale, metadata) -> dict[str, Any]:
    """What an image and a trimap layer share: name, blending, metadata, scale, stack axes."""
    return {
        "name": name,
        "blending": "translucent_no_depth",
        "metadata": _metadata(metadata),
        **_scale_kwargs(scale),
        **_stack_kwargs(len(np.shape(data))),
    }


def image_layer(
    data,
    *,
    name: str,
    scale: Sequence[float] | None = None,
    contrast_limits: Sequence[float] | None = None,
    metadata: Mapping[str, Any] | None = None,
) -> LayerDataTuple:
    """Layer-data tuple of an X-ray (or a stack of X-rays) as a grayscale Image layer.

    Parameters
    ----------
    data : array_like
        ``(rows, cols)`` image or ``(n, rows, cols)`` stack (numpy or dask).
    contrast_limits : sequence of 2 floats, optional
        Given for lazy stacks so that napari does not compute them from the data.
    name, scale, metadata
        As for every layer (see the module).

    Returns
    -------
    tuple
        ``(data, kwargs, "image")``.
    """
    kwargs = _raster_kwargs(data, name, scale, metadata)
    kwargs["colormap"] = "gray"
    if contrast_limits is not None:
        kwargs["contrast_limits"] = [float(c) for c in contrast_limits]
    return (data, kwargs, "image")


def trimap_layer(
    data,
    *,
    name: str,
    scale: Sequence[float] | None = None,
    metadata: Mapping[str, Any] | None = None,
    opacity: float = 0.8,
) -> LayerDataTuple:
    """Layer-data tuple of a trimap (1 spine, 2 background, 3 border) as a Labels layer.

    Parameters
    ----------
    data : array_like
        ``(rows, cols)`` trimap or ``(n, rows, cols)`` stack of them, integer values
        0–3 (0, what the eraser writes, means background).
    opacity : float
        Layer opacity.
    name, scale, metadata
        As for every layer (see the module); the writer reads ``image_shape`` (one
        image) or ``names`` and ``shapes`` (a stack) from the metadata to crop padding.

    Returns
    -------
    tuple
        ``(data, kwargs, "labels")`` drawn with :data:`TRIMAP_COLORMAP`.
    """
    kwargs = _raster_kwargs(data, name, scale, metadata)
    kwargs.update(colormap=dict(TRIMAP_COLORMAP), opacity=float(opacity))
    return (data, kwargs, "labels")


def point_size(width: int) -> float:
    """Landmark marker diameter in pixels for images `width` pixels wide.

    Examples
    --------
    >>> point_size(100), point_size(1000)
    (5.0, 20.0)
    """
    return float(max(5, round(0.02 * width)))


def landmark_features(n_sets: int) -> dict[str, np.ndarray]:
    """Per-point ``vertebra`` (1–17), its ``name`` (T1…L5) and ``corner`` names for
    `n_sets` sets of 68 landmarks."""
    vertebra = np.repeat(np.arange(1, N_VERTEBRAE + 1), 4)
    corner = np.tile(np.array(CORNERS), N_VERTEBRAE)
    return {
        "vertebra": np.tile(vertebra, n_sets),
        "name": np.tile(np.repeat(np.array(VERTEBRA_NAMES), 4), n_sets),
        "corner": np.tile(corner, n_sets),
    }


def vertebra_features(n_labels: int = N_VERTEBRAE, *, named: bool = True) -> dict[str, np.ndarray]:
    """Features of a vertebrae Labels layer: ``index`` 0…n and its ``vertebra`` name.

    napari's status bar shows the name of the label under the cursor (``vertebra: T7``).
    Bodies are named T1…L5 only when `named` (17 were found); otherwise, and beyond 17,
    they are ``body k``: a count that is not 17 cannot say which vertebra a body is.

    Examples
    --------
    >>> list(vertebra_features()["vertebra"][[0, 1, 17]])
    ['none', 'T1', 'L5']
    >>> list(vertebra_features(18, named=False)["vertebra"][[1, 18]])
    ['body 1', 'body 18']
    """
    n = max(int(n_labels), N_VERTEBRAE)
    names = [
        VERTEBRA_NAMES[k - 1] if named and k <= N_VERTEBRAE else f"body {k}"
        for k in range(1, n + 1)
    ]
    return {"index": np.arange(n + 1), "vertebra": np.array([NO_VERTEBRA, *names])}


def vertebrae_layer(
    data,
    *,
    name: str,
    scale: Sequence[float] | None = None,
    metadata: Mapping[str, Any] | None = None,
    opacity: float = 0.5,
    named: bool = True,
) -> LayerDataTuple:
    """Layer-data tuple of the 17 vertebrae as a Labels layer, one label each.

    Parameters
    ----------
    data : array_like
        ``(rows, cols)`` labels, or ``(n, rows, cols)`` for a stack: 0 background,
        1 = T1 … 17 = L5.
    name : str
        Layer name.
    scale : sequence of float, optional
        Size of a pixel per axis; the same as the image's.
    metadata : mapping, optional
        Stored under ``layer.metadata["spine_seg"]``.
    opacity : float
        Layer opacity.
    named : bool
        Whether the labels are T1…L5 (17 found); else they are named ``body k``.

    Returns
    -------
    tuple
        ``(data, kwargs, "labels")`` drawn with :data:`VERTEBRA_COLORMAP`, with the
        features of :func:`vertebra_features`.
    """
    n_labels = int(np.max(data)) if np.size(data) else 0
    kwargs: dict[str, Any] = {
        "name": name,
        "colormap": dict(VERTEBRA_COLORMAP),
        "features": vertebra_features(n_labels, named=named),
        "opacity": float(opacity),
        "blending": "translucent_no_depth",
        "metadata": _metadata(metadata),
        **_scale_kwargs(scale),
        **_stack_kwargs(len(np.shape(data))),
    }
    return (data, kwargs, "labels")


def landmarks_layer(
    landmarks_xy,
    *,
    name: str,
    size: float,
    slice_index: Sequence[int] | None = None,
    scale: Sequence[float] | None = None,
    metadata: Mapping[str, Any] | None = None,
) -> LayerDataTuple:
    """Layer-data tuple of 68-landmark sets as a Points layer.

    Parameters
    ----------
    landmarks_xy : array_like
        ``(68, 2)`` landmarks of one image, or ``(k, 68, 2)`` for `k` slices of a
        stack, as ``(x, y)`` pixel coordinates (as the files store them).
    size : float
        Marker diameter in pixels (see :func:`point_size`).
    slice_index : sequence of int, optional
        For a stack: the slice each of the `k` sets belongs to; the points get it as
        their leading coordinate, ``(slice, row, col)``.
    name, scale, metadata
        As for every layer (see the module); for a stack, a leading 1 is added to a
        2-entry (one image's) scale.

    Returns
    -------
    tuple
        ``(points, kwargs, "points")`` with features ``vertebra`` and ``corner``.
    """
    xy = np.asarray(landmarks_xy, dtype=np.float64)
    if slice_index is None:
        sets = xy.reshape(-1, N_LANDMARKS, 2)
        points = xy_to_rowcol(sets.reshape(-1, 2))
    else:
        sets = xy.reshape(-1, N_LANDMARKS, 2)
        index = np.repeat(np.asarray(slice_index, dtype=np.float64), N_LANDMARKS)
        points = (
            np.column_stack([index, xy_to_rowcol(sets.reshape(-1, 2))])
            if sets.size
            else np.empty((0, 3))
        )
        if scale is not None and len(scale) == 2:  # an image's; a stack's has its slice axis
            scale = (1.0, *scale)
    kwargs: dict[str, Any] = {
        "name": name,
        "size": float(size),
        "face_color": LANDMARK_FACE_COLOR,
        "border_color": LANDMARK_BORDER_COLOR,
        "border_width": 0.15,
        "features": landmark_features(len(sets)),
        "metadata": _metadata(metadata),
        **_scale_kwargs(scale),
    }
    if slice_index is not None:
        # only the current slice's landmarks are drawn, not those of neighbours
        kwargs["out_of_slice_display"] = False
        kwargs["ndim"] = 3
        kwargs.update(_stack_kwargs(3))
    return (points, kwargs, "points")
