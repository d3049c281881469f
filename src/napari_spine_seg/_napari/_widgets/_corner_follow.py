"""A moved corner redraws its vertebra: ``<image> landmarks`` drives ``<image> vertebrae``.

When a corner of the landmarks Points layer moves (a drag, or any change of its data),
the vertebra it belongs to is painted again in the vertebrae Labels layer as the
quadrilateral of its four corners (TL, TR, BR, BL, re-sorted so that a corner dragged
past its neighbour does not make a bow tie): its old pixels are cleared, and the new
quadrilateral takes only background pixels and its own, so other vertebrae are never
touched. The edit goes through napari's ``data_setitem`` (redrawn at once).

A new prediction landing in the same layers (the Predict widget updates them in place,
with a new ``prediction`` id in their metadata) moves every corner at once; that is not
an edit, and repaints nothing.
"""

from __future__ import annotations

import numpy as np

from ...trimap import N_LANDMARKS, N_VERTEBRAE, polygon_mask, rowcol_to_xy, sort_corners
from .._layers import METADATA_KEY


def _prediction(layer) -> str | None:
    return layer.metadata.get(METADATA_KEY, {}).get("prediction")


def corner_sets(points) -> dict[int | None, np.ndarray]:
    """The ``(17, 4, 2)`` ``(row, col)`` corners of each image of a landmarks layer that
    has 68 points: key None for one image, else the stack's slice index."""
    data = np.array(points.data, dtype=np.float64)  # a copy: a drag moves points in place
    if data.ndim != 2 or data.shape[1] not in (2, 3):
        return {}
    if data.shape[1] == 2:
        return {None: data.reshape(N_VERTEBRAE, 4, 2)} if len(data) == N_LANDMARKS else {}
    slices = np.round(data[:, 0]).astype(int)
    return {
        int(i): data[slices == i][:, 1:].reshape(N_VERTEBRAE, 4, 2)
        for i in np.unique(slices)
        if np.count_nonzero(slices == i) == N_LANDMARKS
    }


def repaint_vertebra(labels, index: int | None, label: int, corners_rowcol: np.ndarray) -> None:
    """Paint vertebra `label` of `labels` (slice `index` of a stack, None for one image)
    as the quadrilateral of its four ``(row, col)`` corners, clearing its old pixels and
    leaving every other vertebra's as they are."""
    plane = np.asarray(labels.data if index is None else labels.data[index])
    quad = sort_corners(rowcol_to_xy(corners_rowcol))[[0, 1, 3, 2]]
    old = plane == label
    new = polygon_mask(quad, plane.shape) & (old | (plane == 0))
    rows, cols = np.nonzero(old ^ new)
    if rows.size == 0:
        return
    values = np.where(new[rows, cols], label, 0).astype(plane.dtype)
    where = (rows, cols) if index is None else (np.full_like(rows, index), rows, cols)
    labels.data_setitem(where, values)


def follow_corners(points, labels) -> None:
    """Keep `labels` (a vertebrae Labels layer) drawn from the corners of `points` (its
    landmarks Points layer): each vertebra whose corners move is painted again
    (:func:`repaint_vertebra`)."""
    seen = {"prediction": _prediction(points), "sets": corner_sets(points)}

    def moved(event=None) -> None:
        if str(getattr(event, "action", "changed")) != "changed":
            return  # the "changing" half of a change: the "changed" half follows
        before, now = seen["sets"], corner_sets(points)
        seen["sets"] = now
        if _prediction(points) != seen["prediction"]:
            seen["prediction"] = _prediction(points)  # a new prediction, not an edit
            return
        for index, corners in now.items():
            old = before.get(index)
            if old is None:
                continue
            for k in np.flatnonzero(np.any(old != corners, axis=(1, 2))):
                repaint_vertebra(labels, index, int(k) + 1, corners[k])

    points.events.data.connect(moved)
