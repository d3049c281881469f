"""Scores of a predicted trimap against a ground-truth trimap.

Conventions (docs/DESIGN.md): trimaps hold ``1`` spine, ``2`` background, ``3`` border
band; ``0`` (napari's eraser) counts as background in either input.

- :func:`pixel_accuracy` is over all three classes, as the seed reported it.
- :func:`spine_dice` and :func:`spine_iou` count label 1 as spine and ignore the pixels
  where the *ground truth* is border (3): the band straddles the annotated outline,
  where a pixel's class is a matter of opinion.
- :func:`hd95` measures how far apart the outlines of the two spine (label 1) regions
  are.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from ..trimap import BACKGROUND, BORDER, SPINE, UNLABELLED


def _pair(gt: np.ndarray, pred: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    gt_arr, pred_arr = np.asarray(gt), np.asarray(pred)
    if gt_arr.ndim != 2 or gt_arr.shape != pred_arr.shape:
        raise ValueError(
            f"need two 2-D trimaps of the same shape, got {gt_arr.shape} and {pred_arr.shape}"
        )
    return gt_arr, pred_arr


def _as_trimap(arr: np.ndarray) -> np.ndarray:
    return np.where(arr == UNLABELLED, BACKGROUND, arr)


def pixel_accuracy(gt: np.ndarray, pred: np.ndarray) -> float:
    """Fraction of pixels whose class (spine, background, border) agrees.

    Parameters
    ----------
    gt, pred : (H, W) array_like
        Trimaps; ``0`` counts as background (2) in both.

    Returns
    -------
    float
        In [0, 1].

    Examples
    --------
    >>> import numpy as np
    >>> gt = np.array([[1, 1], [2, 3]])
    >>> float(pixel_accuracy(gt, np.array([[1, 2], [0, 3]])))
    0.75
    """
    gt_arr, pred_arr = _pair(gt, pred)
    if gt_arr.size == 0:
        return float("nan")
    return float(np.mean(_as_trimap(gt_arr) == _as_trimap(pred_arr)))


def _spine_counts(gt: np.ndarray, pred: np.ndarray, ignore_border: bool) -> tuple[int, int, int]:
    """True positives, false positives and false negatives of label 1."""
    gt_arr, pred_arr = _pair(gt, pred)
    keep = gt_arr != BORDER if ignore_border else np.ones(gt_arr.shape, dtype=bool)
    g = (gt_arr == SPINE) & keep
    p = (pred_arr == SPINE) & keep
    tp = int(np.count_nonzero(g & p))
    return tp, int(np.count_nonzero(p)) - tp, int(np.count_nonzero(g)) - tp


def spine_dice(gt: np.ndarray, pred: np.ndarray, *, ignore_border: bool = True) -> float:
    """Dice coefficient of the spine (label 1), ignoring the ground truth's border band.

    Parameters
    ----------
    gt, pred : (H, W) array_like
        Trimaps.
    ignore_border : bool
        Leave out the pixels where `gt` is border (3). True is the project's scoring.

    Returns
    -------
    float
        ``2|G ∩ P| / (|G| + |P|)`` in [0, 1]; 1.0 when neither has any spine (they
        agree completely).

    Examples
    --------
    >>> import numpy as np
    >>> gt = np.array([[1, 1, 3, 2]])
    >>> float(spine_dice(gt, np.array([[1, 2, 1, 1]])))
    0.5
    """
    tp, fp, fn = _spine_counts(gt, pred, ignore_border)
    total = 2 * tp + fp + fn
    return 1.0 if total == 0 else 2 * tp / total


def spine_iou(gt: np.ndarray, pred: np.ndarray, *, ignore_border: bool = True) -> float:
    """Intersection over union of the spine (label 1), ignoring the ground truth's border.

    Takes what :func:`spine_dice` takes; returns ``|G ∩ P| / |G ∪ P|`` in [0, 1], 1.0 when
    neither has any spine.
    """
    tp, fp, fn = _spine_counts(gt, pred, ignore_border)
    total = tp + fp + fn
    return 1.0 if total == 0 else tp / total


def _outline(mask: np.ndarray) -> np.ndarray:
    """Pixels of `mask` with a 4-neighbour outside it (the image edge counts as outside)."""
    return mask & ~ndimage.binary_erosion(mask)


def _directed_distances(
    src: np.ndarray, dst: np.ndarray, spacing: tuple[float, float]
) -> np.ndarray:
    """Distance from every pixel of outline `src` to the nearest pixel of outline `dst`."""
    return ndimage.distance_transform_edt(~dst, sampling=spacing)[src]


def hd95(gt: np.ndarray, pred: np.ndarray, spacing: tuple[float, float] | None = None) -> float:
    """95th-percentile symmetric Hausdorff distance between the spines' outlines.

    The spine is label 1 of each trimap; its outline is the spine pixels with a
    4-neighbour outside it. For each outline the 95th percentile of the distances from
    its pixels to the other outline is taken; the result is the larger of the two
    (the symmetric Hausdorff distance with the maximum replaced by the 95th percentile,
    as MONAI computes it).

    Parameters
    ----------
    gt, pred : (H, W) array_like
        Trimaps.
    spacing : (float, float), optional
        Pixel size ``(row, col)``, e.g. in mm; default 1, so the result is in pixels.

    Returns
    -------
    float
        The distance; ``0.0`` when neither trimap has any spine, ``inf`` when exactly
        one of them has none (there is no outline to measure to).

    Examples
    --------
    >>> import numpy as np
    >>> gt = np.full((20, 20), 2); gt[5:15, 5:10] = 1
    >>> pred = np.full((20, 20), 2); pred[5:15, 8:13] = 1
    >>> float(hd95(gt, pred))
    3.0
    """
    gt_arr, pred_arr = _pair(gt, pred)
    g, p = gt_arr == SPINE, pred_arr == SPINE
    has_g, has_p = bool(g.any()), bool(p.any())
    if not (has_g or has_p):
        return 0.0
    if not (has_g and has_p):
        return float("inf")
    # everything happens inside the union's bounding box: the nearest outline pixel
    # of either mask is always in it, so cropping keeps the distances exact
    rows = np.flatnonzero((g | p).any(axis=1))
    cols = np.flatnonzero((g | p).any(axis=0))
    box = np.s_[max(rows[0] - 1, 0) : rows[-1] + 2, max(cols[0] - 1, 0) : cols[-1] + 2]
    edge_g, edge_p = _outline(g[box]), _outline(p[box])
    sampling = (1.0, 1.0) if spacing is None else tuple(float(s) for s in spacing)
    d_gp = _directed_distances(edge_g, edge_p, sampling)
    d_pg = _directed_distances(edge_p, edge_g, sampling)
    return float(max(np.percentile(d_gp, 95), np.percentile(d_pg, 95)))


def score_trimaps(
    gt: np.ndarray, pred: np.ndarray, spacing: tuple[float, float] | None = None
) -> dict[str, float]:
    """All scores of `pred` against `gt`.

    Parameters
    ----------
    gt, pred : (H, W) array_like
        Trimaps of the same shape.
    spacing : (float, float), optional
        Pixel size ``(row, col)`` for :func:`hd95`.

    Returns
    -------
    dict
        ``{"pixel_accuracy", "spine_dice", "spine_iou", "hd95"}`` as floats (see the
        functions of those names).
    """
    return {
        "pixel_accuracy": pixel_accuracy(gt, pred),
        "spine_dice": spine_dice(gt, pred),
        "spine_iou": spine_iou(gt, pred),
        "hd95": hd95(gt, pred, spacing),
    }
