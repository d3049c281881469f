"""The 17 vertebrae: a body / space target from landmarks, and landmarks from bodies.

Two directions, both plain arrays in and out:

- :func:`body_space_target` draws, from a data set's 68 landmarks, each vertebra's
  body (its TL–TR–BR–BL quadrilateral) and the intervertebral spaces between them
  inside the spine column: the target a network learns so that it can tell one
  vertebra from the next.
- :func:`fit_vertebrae` goes back: from a map of body probability (or a body mask) it
  finds the bodies as ordered instances, top to bottom, and fits each with four
  corners, from whole edges rather than single pixels: every end plate and side is a
  line fitted robustly to the sub-pixel points where the probability crosses one
  half along many rays from the body's centre (:mod:`.body_edges`), an end plate
  that disagrees with its body and its neighbours is refitted, and, given the X-ray,
  each end plate is averaged with the image's own edge along it
  (:mod:`.image_plates`). An image whose bodies are not exactly 17 gets no landmarks
  and a fault that says why; nothing is guessed.

Landmarks are ``(x, y)`` in image pixels, corners in the data set's order (TL, TR, BL,
BR), vertebrae top to bottom (``docs/formats.md``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy import ndimage

from ..trimap import N_VERTEBRAE, column_mask, polygon_mask, sort_landmarks
from .body_edges import body_edges, reconcile_plates
from .image_plates import image_plates

#: classes of the vertebra target
OUTSIDE, BODY, SPACE = 0, 1, 2

#: names of the 17 vertebrae, top to bottom
VERTEBRA_NAMES = tuple([f"T{i}" for i in range(1, 13)] + [f"L{i}" for i in range(1, 6)])

#: corner names in the data set's order
CORNER_NAMES = ("TL", "TR", "BL", "BR")

#: a body whose area is under this fraction of the median body's is noise, not a body
MIN_AREA_FRACTION = 0.2


def body_quadrilaterals(landmarks: np.ndarray) -> np.ndarray:
    """Each vertebra's body as a polygon ``(17, 4, 2)``: TL, TR, BR, BL, in ``(x, y)``."""
    groups = np.asarray(landmarks, dtype=np.float64).reshape(N_VERTEBRAE, 4, 2)
    return groups[:, [0, 1, 3, 2]]


def body_space_target(landmarks: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """The vertebra target of one image: bodies, the spaces between them, the rest.

    Parameters
    ----------
    landmarks : (68, 2) array_like
        ``(x, y)`` corners as the data set stores them (re-sorted first, as for trimaps).
    shape : (rows, cols)
        The image's size.

    Returns
    -------
    (rows, cols) uint8
        :data:`BODY` inside a vertebra's quadrilateral, :data:`SPACE` elsewhere inside
        the spine column (the intervertebral spaces), :data:`OUTSIDE` outside it. Body
        ∪ space is exactly the column of the trimap convention.

    Examples
    --------
    >>> v = np.array([[10 + 40 * (i % 2), 10 + 10 * k + 5 * (i // 2)]
    ...               for k in range(17) for i in range(4)], dtype=float)
    >>> t = body_space_target(v, (200, 60))
    >>> int(t[12, 30]), int(t[17, 30]), int(t[12, 5])
    (1, 2, 0)
    """
    landmarks = sort_landmarks(landmarks)
    shape = (int(shape[0]), int(shape[1]))
    column = column_mask(landmarks, shape)
    bodies = np.zeros(shape, dtype=bool)
    for quad in body_quadrilaterals(landmarks):
        bodies |= polygon_mask(quad, shape)
    target = np.full(shape, OUTSIDE, dtype=np.uint8)
    target[column] = SPACE
    target[bodies] = BODY
    return target


@dataclass(frozen=True)
class VertebraeFit:
    """Vertebrae found in one prediction.

    Attributes
    ----------
    landmarks : (68, 2) ndarray or None
        The fitted corners, ``(x, y)``, data set order, vertebrae top to bottom; None
        unless exactly 17 bodies were found and every one could be fitted.
    instances : (rows, cols) int32
        The bodies found, numbered 1…n top to bottom (0 elsewhere).
    count : int
        How many bodies were found.
    faults : list of str
        Why there are no landmarks, or what is doubtful about them (one sentence each).
    """

    landmarks: np.ndarray | None
    instances: np.ndarray
    count: int
    faults: list[str] = field(default_factory=list)


def spine_column(column: np.ndarray) -> np.ndarray:
    """The spine column of a column mask: its largest piece, and any piece beside it.

    A piece whose centre lies outside the columns (x range) of the largest piece is not
    spine: a marker letter in a corner, a bright artefact. A piece above or below the
    largest (a vertebra cut off from the others by a wide space) stays.

    Parameters
    ----------
    column : (rows, cols) bool array
        Body ∪ space (the trimap's spine), as a network predicted it.

    Returns
    -------
    (rows, cols) bool array
    """
    column = np.asarray(column, dtype=bool)
    labels, n = ndimage.label(column)
    if n <= 1:
        return column
    index = np.arange(1, n + 1)
    largest = int(index[np.argmax(ndimage.sum_labels(column, labels, index))])
    cols = np.flatnonzero((labels == largest).any(axis=0))
    centres = ndimage.center_of_mass(column, labels, index)
    keep = [i for i, c in zip(index, centres, strict=True) if cols[0] <= c[1] <= cols[-1]]
    return np.isin(labels, keep)


def body_instances(body: np.ndarray, *, threshold: float = 0.5) -> tuple[np.ndarray, int]:
    """Number the bodies of a body-probability map or mask, top to bottom.

    Parameters
    ----------
    body : (rows, cols) array_like
        Probability that a pixel is a vertebral body, or a boolean mask.
    threshold : float
        Pixels above it are body.

    Returns
    -------
    instances : (rows, cols) int32
        0 outside the bodies, then 1…n ordered by the bodies' centre rows. Pieces under
        :data:`MIN_AREA_FRACTION` of the median body's area are dropped as noise.
    n : int
    """
    mask = np.asarray(body, dtype=np.float64) > threshold
    labels, n = ndimage.label(mask)
    if n == 0:
        return labels.astype(np.int32), 0
    index = np.arange(1, n + 1)
    areas = ndimage.sum_labels(mask, labels, index)
    keep = areas >= MIN_AREA_FRACTION * np.median(areas)
    rows = np.array([c[0] for c in ndimage.center_of_mass(mask, labels, index)])
    kept = index[keep][np.argsort(rows[keep], kind="stable")]
    lookup = np.zeros(n + 1, dtype=np.int32)
    lookup[kept] = np.arange(1, kept.size + 1)
    return lookup[labels], int(kept.size)


def fit_vertebrae(
    body: np.ndarray,
    *,
    threshold: float = 0.5,
    column: np.ndarray | None = None,
    reconcile: bool = True,
    image: np.ndarray | None = None,
) -> VertebraeFit:
    """Find the vertebral bodies of one image and fit their 68 corners.

    Parameters
    ----------
    body : (rows, cols) array_like
        Body probability in [0, 1] (a network's output at the image's size) or a
        boolean body mask.
    threshold : float
        The probability at which a body's edge is drawn.
    column : (rows, cols) bool array, optional
        The spine column (:func:`spine_column`): bodies whose centre lies outside it
        are not vertebrae and are not counted.
    reconcile : bool
        Refit an edge that disagrees with its opposite edge and its neighbours
        (:func:`~.body_edges.reconcile_plates`); False fits each body on its own (to
        measure what the refit buys: ``benchmarks/bench_end_plates.py``).
    image : (rows, cols) array_like, optional
        The X-ray itself, at `body`'s size: each end plate is then averaged with the
        line of the image's own edge along it (:func:`~.image_plates.image_plates`).

    Returns
    -------
    VertebraeFit
        Landmarks only when exactly 17 bodies were found, none touching the image's
        edge, and each could be fitted; otherwise ``landmarks`` is None and ``faults``
        says why.

    Examples
    --------
    >>> from napari_spine_seg.spine.vertebrae import body_space_target
    >>> v = np.array([[20 + 40 * (i % 2), 12 + 14 * k + 8 * (i // 2)]
    ...               for k in range(17) for i in range(4)], dtype=float)
    >>> fit = fit_vertebrae(body_space_target(v, (260, 80)) == 1)
    >>> fit.count, fit.faults, bool(np.abs(fit.landmarks - v).max() < 1.0)
    (17, [], True)
    """
    prob = np.asarray(body, dtype=np.float64)
    if image is not None and np.shape(image) != prob.shape:
        raise ValueError(f"image of shape {np.shape(image)} for a body map of shape {prob.shape}")
    instances, n = body_instances(prob, threshold=threshold)
    if column is not None and n:
        instances, n = _inside(instances, n, np.asarray(column, dtype=bool))
    faults: list[str] = []
    if n != N_VERTEBRAE:
        faults.append(
            f"found {n} vertebral bodies, not {N_VERTEBRAE} (bodies merged, split, missing "
            "or cut off by the image)"
        )
    edge = np.unique(
        np.concatenate([instances[0], instances[-1], instances[:, 0], instances[:, -1]])
    )
    cut = [int(i) for i in edge if i]
    if cut:
        faults.append(f"{len(cut)} body(ies) touch the image's edge: cut off")
    if faults:
        return VertebraeFit(None, instances, n, faults)
    edges = []
    downs = _column_directions(instances)
    for k in range(N_VERTEBRAE):
        lines = body_edges(prob, instances == k + 1, threshold=threshold, down=downs[k])
        if lines is None:
            faults.append(f"{VERTEBRA_NAMES[k]}: its edges could not be fitted")
            return VertebraeFit(None, instances, n, faults)
        edges.append(lines)
    if reconcile:
        edges = reconcile_plates(edges)
    corners = [lines.corners() for lines in edges]
    for k, fitted in enumerate(corners):
        if fitted is None:
            faults.append(f"{VERTEBRA_NAMES[k]}: its edges are parallel")
            return VertebraeFit(None, instances, n, faults)
    landmarks = np.concatenate(corners)
    if image is not None:
        landmarks = image_plates(image, landmarks)
    return VertebraeFit(landmarks, instances, n, faults)


def _column_directions(instances: np.ndarray) -> np.ndarray:
    """``(n, 2)`` unit ``(x, y)`` directions of the column at each body, pointing down.

    From the centre of the body above to that of the body below (at the ends, from or to
    the body's own centre).
    """
    n = int(instances.max())
    rc = np.array(ndimage.center_of_mass(instances > 0, instances, np.arange(1, n + 1)))
    centres = rc[:, ::-1]
    ahead = centres[np.minimum(np.arange(n) + 1, n - 1)]
    behind = centres[np.maximum(np.arange(n) - 1, 0)]
    d = ahead - behind
    return d / np.maximum(np.linalg.norm(d, axis=1, keepdims=True), 1e-12)


def _inside(instances: np.ndarray, n: int, column: np.ndarray) -> tuple[np.ndarray, int]:
    """`instances` without those whose centre lies outside `column`, renumbered."""
    index = np.arange(1, n + 1)
    centres = ndimage.center_of_mass(instances > 0, instances, index)
    keep = [
        i
        for i, (r, c) in zip(index, centres, strict=True)
        if column[min(int(round(r)), column.shape[0] - 1), min(int(round(c)), column.shape[1] - 1)]
    ]
    lookup = np.zeros(n + 1, dtype=np.int32)
    lookup[keep] = np.arange(1, len(keep) + 1)
    return lookup[instances], len(keep)


def corner_error(pred: np.ndarray, truth: np.ndarray) -> float:
    """Mean Euclidean distance between corresponding corners, in pixels."""
    diff = np.asarray(pred, dtype=np.float64) - np.asarray(truth, dtype=np.float64)
    return float(np.linalg.norm(diff.reshape(-1, 2), axis=1).mean())
