"""The 17 vertebrae as labels, and their end plates, from 68 landmarks.

- :func:`vertebra_labels` draws each vertebra's body (its TL–TR–BR–BL quadrilateral) as
  one label, 1 = T1 … 17 = L5 top to bottom, 0 elsewhere: the instance map the napari
  plugin shows as ``<image> vertebrae`` when a model gives landmarks but no vertebra
  map, and the ground truth to compare a predicted one with.
- :func:`end_plates` gives each vertebra's upper and lower end plate as a segment: the
  lines a radiologist draws for a Cobb angle.

Landmarks are ``(x, y)`` in image pixels, corners in the data set's order (TL, TR, BL,
BR), vertebrae top to bottom (``docs/formats.md``).
"""

from __future__ import annotations

import numpy as np

from ..trimap import N_VERTEBRAE, check_landmarks, polygon_mask, sort_landmarks
from .vertebrae import VERTEBRA_NAMES, body_quadrilaterals

__all__ = ["VERTEBRA_NAMES", "end_plates", "vertebra_labels", "vertebra_name"]


def vertebra_name(label: int) -> str:
    """Name of vertebra label `label` (1 = T1 … 17 = L5); "" for 0 or any other value.

    Examples
    --------
    >>> vertebra_name(1), vertebra_name(12), vertebra_name(17), vertebra_name(0)
    ('T1', 'T12', 'L5', '')
    """
    return VERTEBRA_NAMES[label - 1] if 1 <= label <= N_VERTEBRAE else ""


def vertebra_labels(landmarks_xy: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Each vertebra's body as its own label, drawn from 68 landmarks.

    Parameters
    ----------
    landmarks_xy : (68, 2) array_like
        ``(x, y)`` corners; re-sorted into the data set's order first (as for trimaps),
        so a corner dragged past its neighbour does not swap two vertebrae's labels.
    shape : (rows, cols)
        The image's size.

    Returns
    -------
    (rows, cols) uint8
        ``k`` (1 = T1 … 17 = L5) inside vertebra ``k``'s quadrilateral (a pixel inside
        two overlapping bodies takes the lower one), 0 elsewhere.

    Raises
    ------
    SpineSegError
        When the landmarks are not 68 finite ``(x, y)`` pairs.

    Examples
    --------
    >>> v = np.array([[10 + 40 * (i % 2), 10 + 10 * k + 5 * (i // 2)]
    ...               for k in range(17) for i in range(4)], dtype=float)
    >>> labels = vertebra_labels(v, (200, 60))
    >>> int(labels[12, 30]), int(labels[17, 30]), int(labels[172, 30]), int(labels[12, 5])
    (1, 0, 17, 0)
    """
    landmarks = sort_landmarks(check_landmarks(landmarks_xy))
    shape = (int(shape[0]), int(shape[1]))
    labels = np.zeros(shape, dtype=np.uint8)
    for k, quad in enumerate(body_quadrilaterals(landmarks), start=1):
        labels[polygon_mask(quad, shape)] = k
    return labels


def end_plates(landmarks_xy: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each vertebra's upper and lower end plate, left end first.

    Parameters
    ----------
    landmarks_xy : (68, 2) array_like
        ``(x, y)`` corners in the data set's order (TL, TR, BL, BR per vertebra).

    Returns
    -------
    upper, lower : (17, 2, 2) ndarray
        ``(x, y)`` of each plate's two ends: ``upper[i]`` runs from vertebra ``i``'s
        top-left to its top-right corner, ``lower[i]`` from its bottom-left to its
        bottom-right one.

    Examples
    --------
    >>> v = np.arange(136, dtype=float).reshape(68, 2)
    >>> upper, lower = end_plates(v)
    >>> upper[0].tolist(), lower[0].tolist()
    ([[0.0, 1.0], [2.0, 3.0]], [[4.0, 5.0], [6.0, 7.0]])
    """
    corners = np.asarray(landmarks_xy, dtype=np.float64).reshape(N_VERTEBRAE, 4, 2)
    return corners[:, 0:2].copy(), corners[:, 2:4].copy()
